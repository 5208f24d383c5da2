package imapd_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postoffice/postoffice/store"
	"github.com/postoffice/postoffice/testsuite"
)

// fetchFixture is a nested MIME message with LF line ends (as MTAs write
// them); every expectation below is in CRLF form.
const fetchFixture = `From: Alice Example <alice@example.org>
To: Bob <bob@example.net>, carol@example.com
Subject: =?ISO-8859-1?Q?Gr=FC=DFe?= test
Date: Tue, 05 Mar 2024 10:00:00 +0100
Message-ID: <m1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

preamble
--outer
Content-Type: text/plain; charset=utf-8

Hello plain part.
--outer
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

aGVsbG8gYmluYXJ5IHdvcmxk
--outer
Content-Type: message/rfc822

From: inner@example.org
Subject: inner

Inner body.
--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain

alt plain
--inner
Content-Type: text/html

<p>alt html</p>
--inner--
--outer--
epilogue
`

const simpleFixture = `From: bob@example.net
To: alice@example.org
Subject: simple
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: quoted-printable

line one=
 continued
line two
`

// deliverFixtures drops the fixtures into alice's INBOX as an MTA would
// (LF files in new/) and returns the server.
func deliverFixtures(t *testing.T, backend string) *selEnv {
	e := newSelEnv(t, backend)
	md := testsuite.Maildir(t, e.st, "alice")
	// One sync per file fixes the UID order.
	for _, f := range []string{fetchFixture, simpleFixture} {
		testsuite.Deliver(t, md, []byte(f))
		if err := e.st.Sync(context.Background(), e.inbox.ID); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func fetchOne(t *testing.T, c *imapclient.Client, set imap.NumSet, o *imap.FetchOptions) *imapclient.FetchMessageBuffer {
	t.Helper()
	msgs, err := c.Fetch(set, o).Collect()
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("fetch: %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

func TestFetch_sections(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		e := deliverFixtures(t, backend)
		c := e.client(t, nil)
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		full := crlf(fetchFixture)
		hdrEnd := strings.Index(full, "\r\n\r\n") + 4
		sec := func(part []int, spec imap.PartSpecifier, fields ...string) *imap.FetchItemBodySection {
			return &imap.FetchItemBodySection{Part: part, Specifier: spec, HeaderFields: fields, Peek: true}
		}
		cases := []struct {
			name string
			sec  *imap.FetchItemBodySection
			want string
		}{
			{"whole", sec(nil, ""), full},
			{"header", sec(nil, imap.PartSpecifierHeader), full[:hdrEnd]},
			{"text", sec(nil, imap.PartSpecifierText), full[hdrEnd:]},
			{"header.fields", sec(nil, imap.PartSpecifierHeader, "subject", "FROM"),
				"From: Alice Example <alice@example.org>\r\nSubject: =?ISO-8859-1?Q?Gr=FC=DFe?= test\r\n\r\n"},
			{"1", sec([]int{1}, ""), "Hello plain part."},
			{"1.MIME", sec([]int{1}, imap.PartSpecifierMIME), "Content-Type: text/plain; charset=utf-8\r\n\r\n"},
			{"2", sec([]int{2}, ""), "aGVsbG8gYmluYXJ5IHdvcmxk"},
			{"3", sec([]int{3}, ""), "From: inner@example.org\r\nSubject: inner\r\n\r\nInner body."},
			{"3.HEADER", sec([]int{3}, imap.PartSpecifierHeader), "From: inner@example.org\r\nSubject: inner\r\n\r\n"},
			{"3.HEADER.FIELDS", sec([]int{3}, imap.PartSpecifierHeader, "Subject"), "Subject: inner\r\n\r\n"},
			{"3.TEXT", sec([]int{3}, imap.PartSpecifierText), "Inner body."},
			{"3.1", sec([]int{3, 1}, ""), "Inner body."},
			{"4", sec([]int{4}, ""), "--inner\r\nContent-Type: text/plain\r\n\r\nalt plain\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>alt html</p>\r\n--inner--"},
			{"4.1", sec([]int{4, 1}, ""), "alt plain"},
			{"4.2", sec([]int{4, 2}, ""), "<p>alt html</p>"},
			{"4.2.MIME", sec([]int{4, 2}, imap.PartSpecifierMIME), "Content-Type: text/html\r\n\r\n"},
			{"5 (missing)", sec([]int{5}, ""), ""},
			{"1.1 (below a leaf)", sec([]int{1, 1}, ""), ""},
		}
		for _, tc := range cases {
			m := fetchOne(t, c, imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{tc.sec}})
			if got := string(m.FindBodySection(tc.sec)); got != tc.want {
				t.Errorf("BODY[%s] = %q, want %q", tc.name, got, tc.want)
			}
		}
		// HEADER.FIELDS.NOT keeps the rest, and the blank line.
		not := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "To"}, Peek: true}
		m := fetchOne(t, c, imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{not}})
		if got, want := string(m.FindBodySection(not)), "From: Alice Example <alice@example.org>\r\n\r\n"; got != want {
			t.Errorf("HEADER.FIELDS.NOT = %q, want %q", got, want)
		}
		// Partial fetches count in CRLF octets.
		for _, p := range []imap.SectionPartial{{Offset: 0, Size: 10}, {Offset: 40, Size: 100}, {Offset: int64(len(full)) - 5, Size: 100}, {Offset: int64(len(full)) + 10, Size: 5}} {
			s := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: p.Offset, Size: p.Size}}
			m := fetchOne(t, c, imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{s}})
			lo := min(p.Offset, int64(len(full)))
			hi := min(lo+p.Size, int64(len(full)))
			if got := string(m.FindBodySection(s)); got != full[lo:hi] {
				t.Errorf("BODY[]<%d.%d> = %q, want %q", p.Offset, p.Size, got, full[lo:hi])
			}
		}
		// Partial TEXT of a nested part.
		s := &imap.FetchItemBodySection{Part: []int{4, 2}, Peek: true, Partial: &imap.SectionPartial{Offset: 3, Size: 4}}
		m = fetchOne(t, c, imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{s}})
		if got := string(m.FindBodySection(s)); got != "alt " {
			t.Errorf("BODY[4.2]<3.4> = %q", got)
		}
	})
}

func TestFetch_binaryAndMetadata(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		e := deliverFixtures(t, backend)
		c := e.client(t, nil)
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		bin2 := &imap.FetchItemBinarySection{Part: []int{2}, Peek: true}
		bin2p := &imap.FetchItemBinarySection{Part: []int{2}, Peek: true, Partial: &imap.SectionPartial{Offset: 6, Size: 6}}
		m := fetchOne(t, c, imap.SeqSetNum(1), &imap.FetchOptions{
			UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true,
			BodyStructure:     &imap.FetchItemBodyStructure{Extended: true},
			BinarySection:     []*imap.FetchItemBinarySection{bin2},
			BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{2}}, {Part: []int{1}}},
		})
		if got := string(m.FindBinarySection(bin2)); got != "hello binary world" {
			t.Errorf("BINARY[2] = %q", got)
		}
		mp2 := fetchOne(t, c, imap.SeqSetNum(1), &imap.FetchOptions{BinarySection: []*imap.FetchItemBinarySection{bin2p}})
		if got := string(mp2.FindBinarySection(bin2p)); got != "binary" {
			t.Errorf("BINARY[2]<6.6> = %q", got)
		}
		if n, ok := m.FindBinarySectionSize([]int{2}); !ok || n != 18 {
			t.Errorf("BINARY.SIZE[2] = %d, %v", n, ok)
		}
		if n, ok := m.FindBinarySectionSize([]int{1}); !ok || n != uint32(len("Hello plain part.")) {
			t.Errorf("BINARY.SIZE[1] = %d, %v", n, ok)
		}
		if m.RFC822Size != int64(len(crlf(fetchFixture))) {
			t.Errorf("RFC822.SIZE = %d, want %d (CRLF)", m.RFC822Size, len(crlf(fetchFixture)))
		}
		if m.UID == 0 || m.InternalDate.IsZero() {
			t.Errorf("UID %d, INTERNALDATE %v", m.UID, m.InternalDate)
		}
		env := m.Envelope
		if env == nil || env.Subject != "Grüße test" || env.MessageID != "m1@example.org" ||
			len(env.From) != 1 || env.From[0].Name != "Alice Example" || env.From[0].Addr() != "alice@example.org" ||
			len(env.To) != 2 || env.To[1].Addr() != "carol@example.com" {
			t.Errorf("ENVELOPE = %+v", env)
		}
		mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
		if !ok || mp.Subtype != "mixed" || len(mp.Children) != 4 {
			t.Fatalf("BODYSTRUCTURE = %#v", m.BodyStructure)
		}
		if p, ok := mp.Children[0].(*imap.BodyStructureSinglePart); !ok || p.Type != "text" || p.Size != uint32(len("Hello plain part.")) || p.Text == nil || p.Text.NumLines > 1 {
			t.Errorf("part 1 = %#v", mp.Children[0])
		}
		if p, ok := mp.Children[2].(*imap.BodyStructureSinglePart); !ok || p.MessageRFC822 == nil || p.MessageRFC822.Envelope.Subject != "inner" {
			t.Errorf("part 3 = %#v", mp.Children[2])
		}
		if alt, ok := mp.Children[3].(*imap.BodyStructureMultiPart); !ok || alt.Subtype != "alternative" || len(alt.Children) != 2 {
			t.Errorf("part 4 = %#v", mp.Children[3])
		}
		// BODY (non-extended) too.
		m = fetchOne(t, c, imap.SeqSetNum(2), &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{}})
		if p, ok := m.BodyStructure.(*imap.BodyStructureSinglePart); !ok || p.Encoding != "quoted-printable" || p.Params["charset"] != "us-ascii" {
			t.Errorf("BODY of 2 = %#v", m.BodyStructure)
		}
		// BINARY of a quoted-printable single part message.
		b1 := &imap.FetchItemBinarySection{Part: []int{1}, Peek: true}
		m = fetchOne(t, c, imap.SeqSetNum(2), &imap.FetchOptions{BinarySection: []*imap.FetchItemBinarySection{b1}})
		if got := string(m.FindBinarySection(b1)); got != "line one continued\r\nline two\r\n" {
			t.Errorf("BINARY[1] of QP = %q", got)
		}
	})
}

func TestFetch_obsoleteItemsAndSeen(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		e := deliverFixtures(t, backend)
		r := e.raw(t)
		r.OK("EXAMINE INBOX")
		full := crlf(simpleFixture)
		hdrEnd := strings.Index(full, "\r\n\r\n") + 4
		// EXAMINE: a body fetch does not set \Seen.
		u := r.OK("FETCH 2 (RFC822)")
		if len(u) != 1 || u[0] != fmt.Sprintf("* 2 FETCH (RFC822 {%d}\r\n%s)", len(full), full) {
			t.Errorf("RFC822: %q", u)
		}
		u = r.OK("FETCH 2 (FLAGS)")
		if !has(u, "* 2 FETCH (FLAGS ())") {
			t.Errorf("after RFC822 in EXAMINE: %q", u)
		}
		r.OK("SELECT INBOX")
		u = r.OK("FETCH 2 (RFC822.HEADER)")
		if !has(u, fmt.Sprintf("* 2 FETCH (RFC822.HEADER {%d}\r\n%s)", hdrEnd, full[:hdrEnd])) {
			t.Errorf("RFC822.HEADER: %q", u)
		}
		u = r.OK("FETCH 2 (BODY.PEEK[TEXT])")
		if !has(u, fmt.Sprintf("* 2 FETCH (BODY[TEXT] {%d}\r\n%s)", len(full)-hdrEnd, full[hdrEnd:])) {
			t.Errorf("BODY.PEEK[TEXT]: %q", u)
		}
		u = r.OK("FETCH 2 (FLAGS)")
		if !has(u, "* 2 FETCH (FLAGS ())") {
			t.Errorf("PEEK set flags: %q", u)
		}
		// RFC822.TEXT is not a peek: \Seen is set and reported.
		u = r.OK("FETCH 2 (RFC822.TEXT)")
		if len(u) != 1 || !strings.Contains(u[0], `FLAGS (\Seen)`) || !strings.Contains(u[0], "RFC822.TEXT {") {
			t.Errorf("RFC822.TEXT: %q", u)
		}
		u = r.OK(`UID FETCH 1:* (FLAGS)`)
		if len(u) != 2 || !strings.Contains(u[1], `FLAGS (\Seen)`) || strings.Contains(u[0], `\Seen`) {
			t.Errorf("flags after: %q", u)
		}
		// A bad sequence number is BAD; a UID beyond the end is just nothing.
		if _, st := r.Cmd("FETCH 3 (FLAGS)"); !strings.HasPrefix(st, "BAD") {
			t.Errorf("FETCH 3: %s", st)
		}
		if u, st := r.Cmd("UID FETCH 999 (FLAGS)"); !strings.HasPrefix(st, "OK") || len(u) != 0 {
			t.Errorf("UID FETCH 999: %s %q", st, u)
		}
		// "n:*" with n past the last UID is the last message (RFC 9051 §6.4.8).
		u = r.OK("UID FETCH 999:* (UID)")
		if len(u) != 1 || !strings.HasPrefix(u[0], "* 2 FETCH") {
			t.Errorf("UID FETCH 999:*: %q", u)
		}
	})
}

func TestFetch_expungedElsewhere(t *testing.T) {
	e := deliverFixtures(t, testsuite.SQLite)
	r := e.raw(t)
	r.OK("SELECT INBOX")
	ctx := context.Background()
	infos, _, err := e.st.List(ctx, e.inbox.ID)
	if err != nil || len(infos) != 2 {
		t.Fatalf("list: %v %d", err, len(infos))
	}
	// Another host expunges message 1; this session has not been told.
	if _, err := e.st.SetFlags(ctx, e.inbox.ID, []store.UID{infos[0].UID}, store.FlagsAdd, store.FlagDeleted, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Expunge(ctx, e.inbox.ID, []store.UID{infos[0].UID}, true); err != nil {
		t.Fatal(err)
	}
	u, st := r.Cmd("FETCH 1:2 (BODY.PEEK[HEADER] RFC822.SIZE)")
	if !strings.HasPrefix(st, "NO [EXPUNGEISSUED]") {
		t.Errorf("FETCH of an expunged message: %s", st)
	}
	for _, l := range u {
		if strings.Contains(l, "EXPUNGE") && !strings.Contains(l, "FETCH") {
			t.Errorf("EXPUNGE during FETCH: %q", l)
		}
	}
	if !slicesContainsPrefix(u, "* 2 FETCH (") {
		t.Errorf("message 2 missing: %q", u)
	}
	// The next chance to say EXPUNGE reports it.
	r.Idle()
	r.WaitLine(`^\* 1 EXPUNGE$`, 2*time.Second)
	r.Done()
	if u := r.OK("FETCH 1 (UID)"); len(u) != 1 || !strings.Contains(u[0], fmt.Sprintf("UID %d", infos[1].UID)) {
		t.Errorf("after expunge: %q", u)
	}
}

func slicesContainsPrefix(lines []string, p string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

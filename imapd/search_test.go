package imapd_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
	"github.com/postoffice/postoffice/testsuite"
)

var searchFixtures = []struct {
	raw   string
	flags store.Flags
	kws   []string
	date  time.Time
}{
	{ // 1: base64 UTF-8 body, encoded From name
		raw: "From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>\r\n" +
			"To: alice@example.org\r\n" +
			"Subject: Quarterly report\r\n" +
			"Date: Thu, 01 Feb 2024 23:30:00 -0800\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\n" +
			"Content-Transfer-Encoding: base64\r\n\r\n" +
			base64.StdEncoding.EncodeToString([]byte("The Zebra crossing near the café is closed.\n")) + "\r\n",
		flags: store.FlagSeen, kws: []string{"$Important"},
		date: time.Date(2024, 2, 2, 12, 0, 0, 0, time.UTC),
	},
	{ // 2: multipart/alternative, ISO-8859-1 quoted-printable
		raw: "From: Bob <bob@example.net>\r\n" +
			"To: Alice <alice@example.org>\r\n" +
			"Cc: carol@example.com\r\n" +
			"Bcc: dave@example.com\r\n" +
			"Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\n" +
			"Date: Tue, 05 Mar 2024 10:00:00 +0100\r\n" +
			"Content-Type: multipart/alternative; boundary=b1\r\n\r\n" +
			"--b1\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			"Wir treffen uns in der Hauptstra=DFe.\r\n" +
			"--b1\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<p>html only words</p>\r\n--b1--\r\n",
		flags: store.FlagFlagged | store.FlagDeleted,
		date:  time.Date(2024, 3, 5, 9, 0, 0, 0, time.UTC),
	},
	{ // 3: large, with an attached message, no Date header
		raw: "From: carol@example.com\r\n" +
			"To: alice@example.org\r\n" +
			"Subject: fwd\r\n" +
			"X-Custom: Some Value\r\n" +
			"Content-Type: multipart/mixed; boundary=xx\r\n\r\n" +
			"--xx\r\nContent-Type: text/plain\r\n\r\n" + strings.Repeat("filler line\r\n", 500) +
			"--xx\r\nContent-Type: message/rfc822\r\n\r\nFrom: eve@example.org\r\nSubject: inner\r\n\r\nthe nested needle\r\n" +
			"--xx\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			base64.StdEncoding.EncodeToString([]byte("attachment secret")) + "\r\n--xx--\r\n",
		flags: 0,
		date:  time.Date(2024, 4, 1, 0, 30, 0, 0, time.UTC),
	},
	{ // 4: old, answered draft
		raw: "From: alice@example.org\r\n" +
			"To: bob@example.net\r\n" +
			"Subject: draft reply\r\n" +
			"Date: Sun, 31 Dec 2023 23:59:59 +0000\r\n\r\n" +
			"short\r\n",
		flags: store.FlagAnswered | store.FlagDraft, kws: []string{"$Later"},
		date: time.Date(2023, 12, 31, 23, 59, 59, 0, time.UTC),
	},
}

func TestSearch_keys(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		e := newSelEnv(t, backend)
		ctx := context.Background()
		for _, f := range searchFixtures {
			if _, err := e.st.Append(ctx, e.inbox.ID, strings.NewReader(f.raw), f.flags, f.kws, f.date); err != nil {
				t.Fatal(err)
			}
		}
		r := e.raw(t)
		r.OK("SELECT INBOX")
		cases := []struct{ q, want string }{
			{"ALL", "1 2 3 4"},
			{"1:2", "1 2"},
			{"2,*", "2 4"},
			{"5:*", "4"},
			{"UID 2:3", "2 3"},
			{"UID *", "4"},
			{"ANSWERED", "4"}, {"UNANSWERED", "1 2 3"},
			{"DELETED", "2"}, {"UNDELETED", "1 3 4"},
			{"DRAFT", "4"}, {"UNDRAFT", "1 2 3"},
			{"FLAGGED", "2"}, {"UNFLAGGED", "1 3 4"},
			{"SEEN", "1"}, {"UNSEEN", "2 3 4"},
			{"NEW", ""}, {"OLD", "1 2 3 4"}, {"RECENT", ""},
			{"KEYWORD $important", "1"}, {"UNKEYWORD $Important", "2 3 4"}, {"KEYWORD $Later", "4"},
			{"FROM joerg", "1"}, {`FROM "jörg müller"`, "1"}, {"FROM EXAMPLE.NET", "2"},
			{"TO bob", "4"}, {"TO alice", "1 2 3"}, {"CC carol", "2"}, {"BCC dave", "2"},
			{"SUBJECT report", "1"}, {`SUBJECT "grüße aus"`, "2"}, {"SUBJECT nomatch", ""},
			{`HEADER X-Custom "some val"`, "3"}, {`HEADER x-custom ""`, "3"}, {`HEADER Date ""`, "1 2 4"},
			{"BODY zebra", "1"}, {`BODY "CAFÉ"`, "1"}, {`BODY "hauptstraße"`, "2"}, {"BODY HTML", "2"},
			{"BODY needle", "3"}, {`BODY "attachment secret"`, ""}, {"BODY report", ""},
			{"TEXT report", "1"}, {"TEXT inner", "3"}, {"TEXT zebra", "1"},
			{"SINCE 5-Mar-2024", "2 3"}, {"BEFORE 5-Mar-2024", "1 4"}, {"ON 5-Mar-2024", "2"},
			{"ON 2-Feb-2024", "1"},
			{"SENTON 1-Feb-2024", "1"},    // the header's own date, not UTC
			{"SENTSINCE 1-Apr-2024", "3"}, // no Date: falls back to the internal date
			{"SENTBEFORE 1-Jan-2024", "4"},
			{"LARGER 5000", "3"}, {"SMALLER 200", "4"},
			{"NOT SEEN NOT DELETED", "3 4"},
			{"OR SEEN FLAGGED", "1 2"},
			{"OR (SEEN DRAFT) (FLAGGED DELETED)", "2"},
			{"NOT (OR SEEN OR FLAGGED DRAFT)", "3"},
			{"OR BODY zebra OR BODY needle SUBJECT draft", "1 3 4"},
			{"1:3 NOT UID 2", "1 3"},
			{`CHARSET UTF-8 BODY "café"`, "1"},
		}
		for _, tc := range cases {
			u, st := r.Cmd("SEARCH %s", tc.q)
			want := "* SEARCH"
			if tc.want != "" {
				want += " " + tc.want
			}
			if !strings.HasPrefix(st, "OK") || len(u) != 1 || u[0] != want {
				t.Errorf("SEARCH %s = %s %q, want %q", tc.q, st, u, want)
			}
		}
		// Non-ASCII in a literal with CHARSET.
		lit := "straße"
		r.Send(fmt.Sprintf("x1 SEARCH CHARSET UTF-8 BODY {%d}", len(lit)))
		if l := r.Line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("literal: %q", l)
		}
		r.Send(lit)
		if l := r.Line(); l != "* SEARCH 2" {
			t.Errorf("literal search: %q", l)
		}
		if l := r.Line(); !strings.HasPrefix(l, "x1 OK") {
			t.Errorf("literal search: %q", l)
		}
		if _, st := r.Cmd("SEARCH CHARSET KOI8-R ALL"); !strings.HasPrefix(st, "NO [BADCHARSET]") {
			t.Errorf("unknown charset: %s", st)
		}
		// ESEARCH.
		u := r.OK("SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN")
		if len(u) != 1 || !strings.HasSuffix(u[0], " ALL 2:4 MIN 2 MAX 4 COUNT 3") {
			t.Errorf("ESEARCH: %q", u)
		}
		u = r.OK("UID SEARCH RETURN (COUNT) KEYWORD nothing")
		if len(u) != 1 || !strings.HasSuffix(u[0], " UID COUNT 0") {
			t.Errorf("empty ESEARCH: %q", u)
		}
		u = r.OK("UID SEARCH RETURN () FLAGGED")
		if len(u) != 1 || !strings.HasSuffix(u[0], " UID ALL 2") {
			t.Errorf("RETURN (): %q", u)
		}
	})
}

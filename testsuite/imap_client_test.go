package testsuite

// End-to-end tests of the IMAP selected state with go-imap's imapclient
// (structured results) and a line-level client (exact untagged responses).
// Helpers here are prefixed "sel" to stay clear of the transcript runner's.

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postoffice/postoffice/auth"
	"github.com/postoffice/postoffice/imapd"
	"github.com/postoffice/postoffice/store"
)

// startSelIMAP serves st on 127.0.0.1 and returns the address. The server
// is shut down when t ends, and the test fails if a connection panicked.
func startSelIMAP(t testing.TB, st *store.Store) string {
	t.Helper()
	srv, err := imapd.New(imapd.Options{
		Store:             st,
		Auth:              NewVerifier(t, st, auth.ThrottleOptions{}, nil),
		PlaintextAuthNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Logger:            Logger(t),
		MaxConnsPerIP:     -1,
		MaxConnsPerUser:   -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln := Listen(t)
	Serve(t, "imapd", srv, imapd.ErrServerClosed, func() error { return srv.Serve(ln) })
	return ln.Addr().String()
}

// selClient is a logged-in imapclient.Client that records unilateral data.
type selClient struct {
	*imapclient.Client
	mu       sync.Mutex
	exists   []uint32
	expunges []uint32
	flags    map[uint32][]imap.Flag
	notify   chan struct{}
}

func dialSelClient(t testing.TB, addr, user, pass string) *selClient {
	t.Helper()
	sc := &selClient{flags: map[uint32][]imap.Flag{}, notify: make(chan struct{}, 1)}
	poke := func() {
		select {
		case sc.notify <- struct{}{}:
		default:
		}
	}
	h := &imapclient.UnilateralDataHandler{
		Expunge: func(seq uint32) {
			sc.mu.Lock()
			sc.expunges = append(sc.expunges, seq)
			sc.mu.Unlock()
			poke()
		},
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				sc.mu.Lock()
				sc.exists = append(sc.exists, *d.NumMessages)
				sc.mu.Unlock()
				poke()
			}
		},
		Fetch: func(m *imapclient.FetchMessageData) {
			buf, err := m.Collect()
			if err != nil {
				return
			}
			sc.mu.Lock()
			sc.flags[buf.SeqNum] = buf.Flags
			sc.mu.Unlock()
			poke()
		},
	}
	c, err := imapclient.DialInsecure(addr, &imapclient.Options{UnilateralDataHandler: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	sc.Client = c
	return sc
}

// waitFor waits until cond (checked under the lock) holds.
func (sc *selClient) waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		sc.mu.Lock()
		ok := cond()
		sc.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-sc.notify:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// selStore opens a store of backend where alice (password "secret") has
// selMsg(1) to selMsg(n) in INBOX.
func selStore(t testing.TB, backend string, n int) *store.Store {
	t.Helper()
	st := NewStore(t, backend)
	MustUser(t, st, "alice", "secret")
	for i := 1; i <= n; i++ {
		appendMsg(t, st, "alice", selMsg(i))
	}
	return st
}

func selMsg(i int) string {
	return fmt.Sprintf("From: a@example.org\r\nTo: alice@example.org\r\nSubject: message %d\r\nDate: Tue, 05 Mar 2024 10:00:00 +0100\r\nMessage-ID: <m%d@example.org>\r\n\r\nbody %d\r\n", i, i, i)
}

// TestIMAPClient_twoSessionNumbering drives two imapclient sessions: one
// changes the mailbox (STORE, COPY, MOVE, EXPUNGE, APPEND), the other must
// keep correct sequence numbers throughout.
func TestIMAPClient_twoSessionNumbering(t *testing.T) {
	Backends(t, func(t *testing.T, backend string) {
		st := selStore(t, backend, 6)
		addr := startSelIMAP(t, st)
		a := dialSelClient(t, addr, "alice", "secret")
		b := dialSelClient(t, addr, "alice", "secret")
		if _, err := a.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		if err := b.Create("Trash", nil).Wait(); err != nil && !strings.Contains(err.Error(), "ALREADYEXISTS") {
			t.Fatal(err)
		}
		// b: flag 2, move 3 and 5 to Trash, expunge 1.
		if err := b.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}, Silent: true}, nil).Close(); err != nil {
			t.Fatal(err)
		}
		md, err := b.Move(imap.SeqSetNum(3, 5), "Trash").Wait()
		if err != nil {
			t.Fatal(err)
		}
		if got := md.DestUIDs.String(); got != "1:2" {
			t.Errorf("MOVE COPYUID dest %s", got)
		}
		if err := b.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Expunge().Collect(); err != nil {
			t.Fatal(err)
		}
		// b appends one.
		raw := selMsg(7)
		ac := b.Append("INBOX", int64(len(raw)), nil)
		io.WriteString(ac, raw)
		ac.Close()
		if _, err := ac.Wait(); err != nil {
			t.Fatal(err)
		}
		// a idles until it has seen everything: 3 expunges, the flag, 4 messages.
		idle, err := a.Idle()
		if err != nil {
			t.Fatal(err)
		}
		a.waitFor(t, 2*time.Second, "3 EXPUNGEs and EXISTS 4", func() bool {
			return len(a.expunges) == 3 && len(a.exists) > 0 && a.exists[len(a.exists)-1] == 4
		})
		if err := idle.Close(); err != nil {
			t.Fatal(err)
		}
		if err := idle.Wait(); err != nil {
			t.Fatal(err)
		}
		msgs, err := a.Fetch(imap.SeqSetNum(1, 2, 3, 4), &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		wantSubj := []string{"message 2", "message 4", "message 6", "message 7"}
		for i, m := range msgs {
			if m.SeqNum != uint32(i+1) || m.Envelope.Subject != wantSubj[i] {
				t.Errorf("a: seq %d = %q, want %q", m.SeqNum, m.Envelope.Subject, wantSubj[i])
			}
		}
		if len(msgs) == 4 && (len(msgs[0].Flags) != 1 || msgs[0].Flags[0] != imap.FlagFlagged) {
			t.Errorf("a: flags of message 2 = %v", msgs[0].Flags)
		}
		// Same view in b.
		sd, err := b.Select("INBOX", nil).Wait()
		if err != nil || sd.NumMessages != 4 {
			t.Fatalf("b reselect: %v %+v", err, sd)
		}
	})
}

// TestIMAPClient_fetchStructured checks structured FETCH data of an LF file
// delivered by an MTA: CRLF sizes, envelope, body structure.
func TestIMAPClient_fetchStructured(t *testing.T) {
	Backends(t, func(t *testing.T, backend string) {
		st := NewStore(t, backend)
		MustUser(t, st, "alice", "secret")
		lf := "From: Bob <bob@example.net>\nTo: alice@example.org\nSubject: lf file\nMessage-ID: <lf@example.net>\nContent-Type: text/plain\n\nline 1\nline 2\n"
		Deliver(t, Maildir(t, st, "alice"), []byte(lf))
		addr := startSelIMAP(t, st)
		c := dialSelClient(t, addr, "alice", "secret")
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		text := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText, Peek: true}
		part := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText, Peek: true, Partial: &imap.SectionPartial{Offset: 4, Size: 6}}
		msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
			UID: true, RFC822Size: true, Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
			BodySection: []*imap.FetchItemBodySection{text},
		}).Collect()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("fetch: %v %d", err, len(msgs))
		}
		m := msgs[0]
		crlf := strings.ReplaceAll(lf, "\n", "\r\n")
		if m.RFC822Size != int64(len(crlf)) {
			t.Errorf("RFC822.SIZE %d, want %d", m.RFC822Size, len(crlf))
		}
		if got := string(m.FindBodySection(text)); got != "line 1\r\nline 2\r\n" {
			t.Errorf("TEXT %q", got)
		}
		bs, ok := m.BodyStructure.(*imap.BodyStructureSinglePart)
		if !ok || bs.Size != uint32(len("line 1\r\nline 2\r\n")) || bs.Text == nil || bs.Text.NumLines != 2 {
			t.Errorf("BODYSTRUCTURE %#v", m.BodyStructure)
		}
		if m.Envelope.Subject != "lf file" || m.Envelope.MessageID != "lf@example.net" {
			t.Errorf("ENVELOPE %+v", m.Envelope)
		}
		msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{part}}).Collect()
		if err != nil || len(msgs) != 1 {
			t.Fatal(err)
		}
		if got := string(msgs[0].FindBodySection(part)); got != " 1\r\nli" {
			t.Errorf("TEXT<4.6> %q", got)
		}
	})
}

package imapd_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
	"github.com/postoffice/postoffice/testsuite"
)

// selFuzzSeeds are command scripts run in the selected state.
var selFuzzSeeds = []string{
	"FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)",
	"FETCH 1 (BODY[1.2.MIME] BODY.PEEK[HEADER.FIELDS (From To)]<0.10> BINARY[1] BINARY.SIZE[1])\nFETCH * BODY[]",
	"UID FETCH 1:* (BODY.PEEK[TEXT]<5.3>)\nFETCH 1,2 RFC822\nFETCH 2 RFC822.HEADER",
	"STORE 1:* +FLAGS (\\Deleted $Kw)\nEXPUNGE\nNOOP",
	"STORE 2 -FLAGS.SILENT (\\Seen)\nUID STORE 1:* FLAGS (\\Answered)\nUID EXPUNGE 1:2",
	"SEARCH OR (FROM a) (NOT BODY x) LARGER 1 SMALLER 99999 SINCE 1-Jan-2020\nSEARCH RETURN (SAVE MIN) ALL\nFETCH $ UID\nCOPY $ INBOX",
	"SEARCH TEXT \"é\" HEADER subject \"\" UNKEYWORD $x SENTON 5-Mar-2024\nUID SEARCH RETURN (COUNT MAX) UID 1:*",
	"COPY 1:2 Trash\nMOVE 1 Trash\nMOVE 1 Nowhere\nCOPY 1 INBOX\nCHECK",
	"APPEND INBOX (\\Seen) {12+}\r\nSubject: x\r\n\nNOOP\nCLOSE\nSELECT INBOX\nEXAMINE INBOX\nSTORE 1 +FLAGS (\\Seen)\nCLOSE",
	"IDLE\nDONE\nUNSELECT\nFETCH 1 UID",
	"FETCH 0 FLAGS\nFETCH 4294967295 FLAGS\nUID FETCH 4294967295:1 FLAGS\nFETCH 1:*:2 FLAGS\nSTORE * +FLAGS (\\Bogus)",
}

const selFuzzMsg = "From: a@example.org\r\nSubject: fuzz\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n--c--\r\n--b--\r\n"

// FuzzSelectedSession feeds command scripts to a session with INBOX
// selected. Invariants: no panic, the connection ends cleanly, and the
// store stays consistent (every listed message opens with its size, and a
// fresh session sees exactly the store's UIDs).
func FuzzSelectedSession(f *testing.F) {
	for _, s := range selFuzzSeeds {
		f.Add(s)
	}
	// One server for all inputs, quiet: F may not log once fuzzing runs.
	quiet := slog.New(slog.DiscardHandler)
	// PostgreSQL when available: under -fuzz the coverage-instrumented
	// embedded SQLite (transpiled C) is too slow to explore anything.
	o := store.Options{Logger: quiet}
	if os.Getenv("FUZZ_BACKEND") != testsuite.SQLite {
		o.DatabaseURL = testsuite.NewDatabaseURL(f)
	}
	st := testsuite.NewStoreAt(f, o)
	e := newSelEnvOn(f, st, true, quiet)
	f.Fuzz(func(t *testing.T, script string) {
		if len(script) > 4096 {
			return
		}
		ctx := context.Background()
		for {
			infos, _, err := e.st.List(ctx, e.inbox.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(infos) >= 3 {
				break
			}
			e.appendMsg(t, "INBOX", selFuzzMsg, 0)
		}
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var b strings.Builder
		b.WriteString("a LOGIN alice secret\r\nb SELECT INBOX\r\n")
		for i, l := range strings.Split(script, "\n") {
			l = strings.TrimRight(l, "\r")
			if l == "DONE" || strings.HasPrefix(l, "\r") {
				b.WriteString(l + "\r\n")
				continue
			}
			b.WriteString("f" + string(rune('a'+i%26)) + " " + l + "\r\n")
		}
		b.WriteString("z LOGOUT\r\n")
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			_, _ = io.WriteString(c, b.String())
			_ = c.(*net.TCPConn).CloseWrite()
		}()
		// Read until the server closes (LOGOUT, EOF or an error).
		br := bufio.NewReader(c)
		for {
			if _, err := br.ReadString('\n'); err != nil {
				break
			}
		}
		c.Close()
		<-wrote
		if p := e.srv.Panics(); p != 0 {
			t.Fatalf("%d panics", p)
		}
		checkStoreConsistent(t, e)
	})
}

// checkStoreConsistent verifies the INBOX against a fresh session.
func checkStoreConsistent(t *testing.T, e *selEnv) {
	t.Helper()
	ctx := context.Background()
	if err := e.st.Sync(ctx, e.inbox.ID); err != nil {
		t.Fatal(err)
	}
	infos, _, err := e.st.List(ctx, e.inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		rc, size, err := e.st.OpenMessage(ctx, e.inbox.ID, in.UID)
		if err != nil {
			t.Fatalf("open uid %d: %v", in.UID, err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n != size || size != in.Size {
			t.Fatalf("uid %d: read %d (%v), size %d, listed %d", in.UID, n, err, size, in.Size)
		}
	}
	r := e.raw(t)
	r.OK("EXAMINE INBOX")
	var got []store.UID
	if len(infos) > 0 {
		for seq, uid := range uidsOf(t, r.OK("FETCH 1:* (UID)")) {
			for len(got) < seq {
				got = append(got, 0)
			}
			got[seq-1] = store.UID(uid)
		}
	}
	if len(got) != len(infos) {
		t.Fatalf("session sees %d messages, store %d", len(got), len(infos))
	}
	for i := range infos {
		if got[i] != infos[i].UID {
			t.Fatalf("seq %d: UID %d, store %d", i+1, got[i], infos[i].UID)
		}
	}
	r.OK("LOGOUT")
}

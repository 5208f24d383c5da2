package pop3d

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
)

// FuzzSession feeds arbitrary input to a real session, either straight
// after the greeting (AUTHORIZATION) or after a login (TRANSACTION, mode
// odd). Invariants: no panics, every response line ends in CRLF, the
// maildrop lock is free once the connection ends, and messages disappear
// only when the session said "+OK bye" (a QUIT).
func FuzzSession(f *testing.F) {
	seeds := []string{
		"STAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 1\r\nDELE 1\r\nRSET\r\nDELE 2\r\nQUIT\r\n",
		"CAPA\r\nAUTH\r\nAUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\nSTAT\r\n",
		"AUTH LOGIN\r\nYWxpY2U=\r\n*\r\n",
		"USER alice\r\nPASS wrong\r\nUSER alice\r\nPASS secret\r\nDELE 3\r\nQUIT\r\n",
		"LIST 0\r\nLIST 99999999999\r\nTOP 1 -1\r\nRETR\r\nDELE 1 2\r\n\r\n\x00\xff\r\n",
		strings.Repeat("A", 600) + "\r\nNOOP\r\n",
		"STLS\r\nQUIT\r\n",
		"GET / HTTP/1.1\r\n",
		"RETR 1\nRETR 2\nRETR 3\nQUIT\n",
	}
	for _, s := range seeds {
		f.Add(uint8(0), []byte(s))
		f.Add(uint8(1), []byte(s))
	}
	e := newTestEnv(f, func(o *Options) {
		o.LoginTimeout = 2 * time.Second
		o.IdleTimeout = 2 * time.Second
	})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, mode uint8, input []byte) {
		// Top the maildrop up to three messages.
		before := e.list(t)
		for i := len(before); i < 3; i++ {
			e.appendMsg(t, []string{msgA, msgB, "Subject: c\n\n.\n..\nno final newline"}[i])
		}
		before = e.list(t)

		nc, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		var script bytes.Buffer
		if mode%2 == 1 {
			script.WriteString("USER alice\r\nPASS secret\r\n")
		}
		script.Write(input)
		script.WriteString("\r\n*\r\nQUIT\r\n")
		go func() {
			nc.SetWriteDeadline(time.Now().Add(15 * time.Second))
			nc.Write(script.Bytes()) // may fail once the server closes
		}()
		nc.SetReadDeadline(time.Now().Add(15 * time.Second))
		out, err := io.ReadAll(nc)
		if err != nil && !isReset(err) {
			t.Fatalf("reading the session: %v\noutput: %q", err, out)
		}
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) && !isReset(err) {
			t.Fatalf("output does not end in CRLF: %q", out)
		}
		if bytes.Contains(bytes.ReplaceAll(out, []byte("\r\n"), nil), []byte("\n")) {
			t.Fatalf("bare LF in output: %q", out)
		}
		if n := e.srv.Panics(); n != 0 {
			t.Fatalf("%d panics", n)
		}
		unlock, err := e.st.LockMaildrop(ctx, e.user.ID)
		if err != nil {
			t.Fatalf("maildrop locked after the session ended: %v", err)
		}
		unlock()
		after := e.list(t)
		if !bytes.Contains(out, []byte("+OK bye\r\n")) && len(after) != len(before) {
			t.Fatalf("%d messages before, %d after, without QUIT", len(before), len(after))
		}
		old := map[store.UID]bool{}
		for _, m := range before {
			old[m.UID] = true
		}
		for _, m := range after {
			if !old[m.UID] {
				t.Fatalf("unexpected message UID %d", m.UID)
			}
		}
	})
}

// isReset reports a TCP reset: the server closed with input unread.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

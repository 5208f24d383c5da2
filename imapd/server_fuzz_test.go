package imapd_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/imapd"
	"github.com/postoffice/postoffice/testsuite"
)

// FuzzSession feeds arbitrary input to a live connection, in the
// not-authenticated state or right after LOGIN, and checks that the server
// recovered no panic and still serves new connections.
func FuzzSession(f *testing.F) {
	seeds := []string{
		"a CAPABILITY",
		"a NOOP\r\nb LOGOUT",
		"a LOGIN alice secret\r\nb LIST \"\" *",
		"a AUTHENTICATE PLAIN\r\n*",
		"a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==",
		"a AUTHENTICATE LOGIN\r\nYWxpY2U=\r\nc2VjcmV0",
		"a STARTTLS",
		"a CREATE foo\r\nb RENAME foo bar\r\nc DELETE bar",
		"a CREATE \"x.y.z\"\r\nb LIST (SUBSCRIBED RECURSIVEMATCH) \"\" % RETURN (CHILDREN STATUS (MESSAGES SIZE))",
		"a LIST (SPECIAL-USE) \"\" * RETURN (SPECIAL-USE SUBSCRIBED)",
		"a LSUB \"\" *\r\nb SUBSCRIBE INBOX\r\nc UNSUBSCRIBE INBOX",
		"a STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE APPENDLIMIT RECENT)",
		"a NAMESPACE\r\nb ENABLE UTF8=ACCEPT IMAP4rev2\r\nc LIST \"\" *",
		"a CREATE &ZeVnLIqe-\r\nb CREATE \"\xc3\xa9t\xc3\xa9\"",
		"a CREATE {3}\r\nabc",
		"a CREATE {3+}\r\nabc",
		"a APPEND INBOX {5000+}\r\nb LOGOUT",
		"a APPEND INBOX (\\Seen) {11}\r\nSubject: x\r\n",
		"a SELECT INBOX\r\nb FETCH 1:* (FLAGS)\r\nc IDLE\r\nDONE",
		"a UNAUTHENTICATE\r\nb LIST \"\" *",
		"a LIST \"\" \"*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%x\"",
		"a CREATE (USE (\\Sent)) x",
		"a CREATE y (USE (\\Junk \\Trash))",
		"a STATUS INBOX (DELETED-STORAGE)",
		"\x00\xff\r\n\r\n",
		"a",
		"GET / HTTP/1.1",
	}
	for _, s := range seeds {
		f.Add(false, s)
		f.Add(true, s)
	}
	e := newEnv(f, testsuite.SQLite, envConfig{plaintext: true, quiet: true, opts: func(o *imapd.Options) {
		o.MaxConnsPerIP = -1
		o.MaxConnsPerUser = -1
		o.SpecialFolders = map[string]string{}
	}})
	e.user("alice", "secret")

	f.Fuzz(func(t *testing.T, authed bool, input string) {
		conn, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		r := bufio.NewReader(conn)
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatalf("greeting: %v", err)
		}
		if authed {
			if _, err := io.WriteString(conn, "L0 LOGIN alice secret\r\n"); err != nil {
				t.Fatal(err)
			}
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("login: %v", err)
				}
				if strings.HasPrefix(l, "L0 ") {
					break
				}
			}
		}
		// The input, then a way out of IDLE and a LOGOUT; then EOF, so a
		// pending literal or AUTHENTICATE exchange ends too.
		_, _ = io.WriteString(conn, input+"\r\nDONE\r\nZ9 LOGOUT\r\n")
		_ = conn.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, r); err != nil {
			t.Fatalf("server did not end the connection: %v", err)
		}
		if n := e.srv.Panics(); n != 0 {
			t.Fatalf("%d panics recovered", n)
		}
		// Still serving.
		c2, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		_ = c2.SetDeadline(time.Now().Add(10 * time.Second))
		if l, err := bufio.NewReader(c2).ReadString('\n'); err != nil || !strings.HasPrefix(l, "* OK ") {
			t.Fatalf("new connection: %q %v", l, err)
		}
	})
}

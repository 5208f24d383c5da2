package testsuite

// What the IMAP and POP3 transcript tests (imap_transcript_test.go,
// pop3_transcript_test.go) share: running every testdata file for each
// backend, the fixture, directives, and playing the C:/R:/S: lines over
// numbered connections. The protocols differ in their directives, how a
// connection is opened, how a server line is read and how an S: line
// matches.

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
)

// The messages of the transcript fixture (see transcriptStore).
const (
	fixtureMsg1 = "From: alice@example.org\r\nSubject: one\r\n\r\nHello\r\n"
	fixtureMsg2 = "Subject: two\r\n\r\n.dot line\r\n..two dots\r\nend\r\n"
	fixtureMsg3 = "Subject: three\n\nline1\nline2"
)

// runTranscripts runs every file matching glob as a parallel subtest named
// after it, with run called once per backend on the file's text.
func runTranscripts(t *testing.T, glob string, run func(t *testing.T, backend, script string)) {
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			Backends(t, func(t *testing.T, backend string) {
				run(t, backend, string(data))
			})
		})
	}
}

// transcriptStore opens the fixture store of the transcripts: alice
// (password "secret") has three messages in INBOX: 1 and 2 appended
// (fixtureMsg1, fixtureMsg2), 3 delivered into new/ as an LF file
// (fixtureMsg3). bob (password "bobpw") has an empty INBOX.
func transcriptStore(t *testing.T, backend string) *store.Store {
	t.Helper()
	st := NewStore(t, backend)
	MustUser(t, st, "alice", "secret")
	MustUser(t, st, "bob", "bobpw")
	appendMsg(t, st, "alice", fixtureMsg1)
	appendMsg(t, st, "alice", fixtureMsg2)
	inboxUIDs(t, st, "alice") // index 1 and 2 before 3 arrives
	Deliver(t, Maildir(t, st, "alice"), []byte(fixtureMsg3))
	return st
}

// transcriptLines splits a transcript into its lines.
func transcriptLines(script string) []string {
	return strings.Split(strings.ReplaceAll(script, "\r\n", "\n"), "\n")
}

// transcriptDirectives calls fn for every "#! " line with its number
// (from 1), its text after "#! " and the fields of that text.
func transcriptDirectives(lines []string, fn func(line int, d string, f []string)) {
	for i, l := range lines {
		if d, ok := strings.CutPrefix(l, "#! "); ok {
			fn(i+1, d, strings.Fields(d))
		}
	}
}

// transcriptConn is one connection of a transcript.
type transcriptConn struct {
	nc net.Conn
	r  *bufio.Reader
}

// transcriptProto is what a protocol's transcripts differ in.
type transcriptProto struct {
	dial  func(n string) net.Conn                 // opens connection n (fails t on error)
	read  func(c *transcriptConn) (string, error) // reads a server line without its line end
	match func(want, got string) bool             // matches a server line against an S: line
}

// playTranscript plays the C:/R:/S: lines (C2:, R2:, S2: … on further
// connections, opened at first use) and fails t on the first line that does
// not hold, or on any server line left unread at the end.
func playTranscript(t *testing.T, lines []string, p transcriptProto) {
	t.Helper()
	conns := map[string]*transcriptConn{}
	get := func(n string) *transcriptConn {
		if c, ok := conns[n]; ok {
			return c
		}
		nc := p.dial(n)
		t.Cleanup(func() { nc.Close() })
		c := &transcriptConn{nc: nc, r: bufio.NewReader(nc)}
		conns[n] = c
		return c
	}
	for i, l := range lines {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		kind, arg, ok := strings.Cut(l, ": ")
		if !ok {
			if k, found := strings.CutSuffix(l, ":"); found {
				kind, arg = k, ""
			} else {
				t.Fatalf("line %d: malformed %q", i+1, l)
			}
		}
		n := kind[1:]
		if n == "" {
			n = "1"
		}
		c := get(n)
		switch kind[0] {
		case 'C', 'R':
			data := arg + "\r\n"
			if kind[0] == 'R' {
				raw, err := strconv.Unquote(arg)
				if err != nil {
					t.Fatalf("line %d: bad quoted string: %v", i+1, err)
				}
				data = raw
			}
			_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.nc.Write([]byte(data)); err != nil {
				t.Fatalf("line %d: send %q: %v", i+1, data, err)
			}
		case 'S':
			got, err := p.read(c)
			if arg == "<EOF>" {
				if err == nil {
					t.Fatalf("line %d: got %q, want the connection closed", i+1, got)
				}
				continue
			}
			if err != nil {
				t.Fatalf("line %d: want %q, read error %v (got %q)", i+1, arg, err, got)
			}
			if !p.match(arg, got) {
				t.Fatalf("line %d: got %q, want %q", i+1, got, arg)
			}
		default:
			t.Fatalf("line %d: unknown kind %q", i+1, kind)
		}
	}
	for n, c := range conns {
		_ = c.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if l, err := c.r.ReadString('\n'); err == nil {
			t.Errorf("connection %s: unexpected trailing line %q", n, l)
		}
	}
}

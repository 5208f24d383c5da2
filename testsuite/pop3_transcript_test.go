package testsuite

// Transcript tests for pop3d (STYLE.md §7). Each testdata/pop3/*.txt file is
// one scenario, run against a fresh server and store for each backend.
//
// Format, one item per line:
//
//	# comment                 ignored
//	#! tls                    directive: STLS configured (no POP3S needed)
//	#! no-plaintext           directive: no PlaintextAuthNets (logins need TLS)
//	#! login-timeout 300ms    directive: Options.LoginTimeout
//	C: text                   send text + CRLF on connection 1
//	R: "go-quoted"            send the bytes exactly (no CRLF added)
//	S: text                   expect this line; a pattern (path.Match) if it ends in *
//	S: <EOF>                  expect the server to close the connection
//	C2: / R2: / S2:           the same on connection 2 (opened at first use)
//
// Fixture: alice (password "secret") has three messages: 1 and 2 were
// appended, 3 was delivered into new/ as an LF file without a final
// newline. bob (password "bobpw") has an empty maildrop.

import (
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/pop3d"
)

const (
	fixtureMsg1 = "From: alice@example.org\r\nSubject: one\r\n\r\nHello\r\n"
	fixtureMsg2 = "Subject: two\r\n\r\n.dot line\r\n..two dots\r\nend\r\n"
	fixtureMsg3 = "Subject: three\n\nline1\nline2"
)

func TestPOP3Transcripts(t *testing.T) {
	files, err := filepath.Glob("testdata/pop3/*.txt")
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
				runPOP3Transcript(t, backend, string(data))
			})
		})
	}
}

func runPOP3Transcript(t *testing.T, backend, script string) {
	st := NewStore(t, backend)
	MustUser(t, st, "alice", "secret")
	MustUser(t, st, "bob", "bobpw")
	appendMsg(t, st, "alice", fixtureMsg1)
	appendMsg(t, st, "alice", fixtureMsg2)
	inboxUIDs(t, st, "alice") // index 1 and 2 before 3 arrives
	Deliver(t, Maildir(t, st, "alice"), []byte(fixtureMsg3))

	lines := strings.Split(strings.ReplaceAll(script, "\r\n", "\n"), "\n")
	var cfg pop3Config
	var loginTimeout time.Duration
	var err error
	for i, l := range lines {
		d, ok := strings.CutPrefix(l, "#! ")
		if !ok {
			continue
		}
		switch f := strings.Fields(d); f[0] {
		case "tls":
			cfg.tls = true
		case "no-plaintext":
			cfg.noPlain = true
		case "login-timeout":
			if len(f) != 2 {
				t.Fatalf("line %d: login-timeout needs a duration", i+1)
			}
			if loginTimeout, err = time.ParseDuration(f[1]); err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
		default:
			t.Fatalf("line %d: unknown directive %q", i+1, d)
		}
	}
	cfg.opts = func(o *pop3d.Options) { o.LoginTimeout = loginTimeout }
	ps := startPOP3(t, st, cfg)

	conns := map[string]*pop3Client{}
	conn := func(n string) *pop3Client {
		if c, ok := conns[n]; ok {
			return c
		}
		c := dialPOP3(t, ps.addr)
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
		c := conn(n)
		switch kind[0] {
		case 'C':
			c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.nc.Write([]byte(arg + "\r\n")); err != nil {
				t.Fatalf("line %d: send %q: %v", i+1, arg, err)
			}
		case 'R':
			raw, err := strconv.Unquote(arg)
			if err != nil {
				t.Fatalf("line %d: bad quoted string: %v", i+1, err)
			}
			c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.nc.Write([]byte(raw)); err != nil {
				t.Fatalf("line %d: send %q: %v", i+1, raw, err)
			}
		case 'S':
			got, err := c.readLine()
			if arg == "<EOF>" {
				if err == nil {
					t.Fatalf("line %d: got %q, want the connection closed", i+1, got)
				}
				continue
			}
			if err != nil {
				t.Fatalf("line %d: want %q, read error %v (got %q)", i+1, arg, err, got)
			}
			if !matchLine(arg, got) {
				t.Fatalf("line %d: got %q, want %q", i+1, got, arg)
			}
		default:
			t.Fatalf("line %d: unknown kind %q", i+1, kind)
		}
	}
	for n, c := range conns {
		c.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if l, err := c.r.ReadString('\n'); err == nil {
			t.Errorf("connection %s: unexpected trailing line %q", n, l)
		}
	}
}

// matchLine matches a got line against a transcript S: line.
func matchLine(want, got string) bool {
	if strings.HasSuffix(want, "*") {
		ok, err := path.Match(want, got)
		return err == nil && ok
	}
	return want == got
}

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
	"net"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/pop3d"
)

func TestPOP3Transcripts(t *testing.T) {
	runTranscripts(t, "testdata/pop3/*.txt", runPOP3Transcript)
}

func runPOP3Transcript(t *testing.T, backend, script string) {
	st := transcriptStore(t, backend)
	lines := transcriptLines(script)
	var cfg pop3Config
	var loginTimeout time.Duration
	var err error
	transcriptDirectives(lines, func(line int, d string, f []string) {
		switch f[0] {
		case "tls":
			cfg.tls = true
		case "no-plaintext":
			cfg.noPlain = true
		case "login-timeout":
			if len(f) != 2 {
				t.Fatalf("line %d: login-timeout needs a duration", line)
			}
			if loginTimeout, err = time.ParseDuration(f[1]); err != nil {
				t.Fatalf("line %d: %v", line, err)
			}
		default:
			t.Fatalf("line %d: unknown directive %q", line, d)
		}
	})
	cfg.opts = func(o *pop3d.Options) { o.LoginTimeout = loginTimeout }
	ps := startPOP3(t, st, cfg)

	playTranscript(t, lines, transcriptProto{
		dial: func(string) net.Conn {
			nc, err := net.DialTimeout("tcp", ps.addr, 10*time.Second)
			if err != nil {
				t.Fatalf("dial %s: %v", ps.addr, err)
			}
			return nc
		},
		read: func(c *transcriptConn) (string, error) {
			return (&pop3Client{nc: c.nc, r: c.r}).readLine()
		},
		match: matchLine,
	})
}

// matchLine matches a got line against a transcript S: line.
func matchLine(want, got string) bool {
	if strings.HasSuffix(want, "*") {
		ok, err := path.Match(want, got)
		return err == nil && ok
	}
	return want == got
}

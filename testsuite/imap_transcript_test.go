package testsuite

// Transcript tests for imapd (STYLE.md §7). Each testdata/imap/*.txt file is
// one scenario, run against a fresh server and store for each backend.
//
// Format, one item per line:
//
//	# comment                  ignored
//	#! no-plaintext            directive: no PlaintextAuthNets (LOGINDISABLED on cleartext)
//	#! tls                     directive: every connection uses IMAPS
//	#! append-limit N          directive: Options.AppendLimit
//	#! max-conns-per-user N    directive: Options.MaxConnsPerUser
//	#! max-conns-per-ip N      directive: Options.MaxConnsPerIP
//	#! no-special-folders      directive: create no special-use folders at first login
//	C: text                    send text + CRLF on connection 1
//	R: "go-quoted"             send the bytes exactly (no CRLF added)
//	S: text                    expect this line; a pattern if it ends in *
//	S: <EOF>                   expect the server to close the connection
//	C2: / R2: / S2:            the same on connection 2 (opened at first use), etc.
//
// Patterns are path.Match patterns in which "[" and "]" stand for themselves
// (IMAP response codes are bracketed), so only "*" and "?" are wildcards.
// Connections are cleartext from 127.0.0.1, which is in PlaintextAuthNets
// unless no-plaintext is given. Any line left unread at the end fails the
// test.
//
// Fixture: alice (password "secret") has three messages in INBOX: 1 and 2
// were appended (fixtureMsg1, fixtureMsg2), 3 was delivered into new/ as an
// LF file (fixtureMsg3). bob (password "bobpw") has an empty INBOX. Neither
// has logged in before, so the first login creates Drafts, Sent, Trash,
// Junk and Archive.

import (
	"crypto/tls"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/auth"
	"github.com/postoffice/postoffice/imapd"
	"github.com/postoffice/postoffice/store"
)

// imapServer is an imapd.Server serving a store on 127.0.0.1: cleartext
// (with STARTTLS) on addr, IMAPS on tlsAddr.
type imapServer struct {
	srv     *imapd.Server
	addr    string
	tlsAddr string
	certPEM string // path of the self-signed server certificate (PEM)
	tlsConf *tls.Config
}

// imapConfig changes the options of a test server.
type imapConfig struct {
	noPlain  bool // no PlaintextAuthNets
	opts     func(*imapd.Options)
	throttle auth.ThrottleOptions
}

// startIMAP starts an imapd.Server over st. It is shut down when t ends, and
// the test fails if a connection goroutine panicked.
func startIMAP(t testing.TB, st *store.Store, cfg imapConfig) *imapServer {
	t.Helper()
	is := &imapServer{}
	is.tlsConf, is.certPEM = testTLS(t)
	o := imapd.Options{
		Store:     st,
		Auth:      NewVerifier(t, st, cfg.throttle, nil),
		TLSConfig: is.tlsConf,
		Logger:    Logger(t),
	}
	if !cfg.noPlain {
		o.PlaintextAuthNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	if cfg.opts != nil {
		cfg.opts(&o)
	}
	srv, err := imapd.New(o)
	if err != nil {
		t.Fatalf("imapd.New: %v", err)
	}
	is.srv = srv
	ln, tln := Listen(t), Listen(t)
	is.addr, is.tlsAddr = ln.Addr().String(), tln.Addr().String()
	Serve(t, "imapd", srv, imapd.ErrServerClosed,
		func() error { return srv.Serve(ln) },
		func() error { return srv.ServeTLS(tln) })
	return is
}

// clientTLS returns a client config trusting the server's certificate.
func (is *imapServer) clientTLS(t testing.TB) *tls.Config {
	t.Helper()
	return ClientTLS(t, is.tlsConf)
}

func TestIMAPTranscripts(t *testing.T) {
	runTranscripts(t, "testdata/imap/*.txt", runIMAPTranscript)
}

func runIMAPTranscript(t *testing.T, backend, script string) {
	st := transcriptStore(t, backend)
	lines := transcriptLines(script)
	var cfg imapConfig
	var useTLS bool
	var mods []func(*imapd.Options)
	transcriptDirectives(lines, func(line int, d string, f []string) {
		num := func() int {
			if len(f) != 2 {
				t.Fatalf("line %d: %s needs a number", line, f[0])
			}
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("line %d: %v", line, err)
			}
			return n
		}
		switch f[0] {
		case "no-plaintext":
			cfg.noPlain = true
		case "tls":
			useTLS = true
		case "append-limit":
			n := num()
			mods = append(mods, func(o *imapd.Options) { o.AppendLimit = uint32(n) })
		case "max-conns-per-user":
			n := num()
			mods = append(mods, func(o *imapd.Options) { o.MaxConnsPerUser = n })
		case "max-conns-per-ip":
			n := num()
			mods = append(mods, func(o *imapd.Options) { o.MaxConnsPerIP = n })
		case "no-special-folders":
			mods = append(mods, func(o *imapd.Options) { o.SpecialFolders = map[string]string{} })
		default:
			t.Fatalf("line %d: unknown directive %q", line, d)
		}
	})
	cfg.opts = func(o *imapd.Options) {
		for _, m := range mods {
			m(o)
		}
	}
	is := startIMAP(t, st, cfg)

	playTranscript(t, lines, transcriptProto{
		dial: func(n string) net.Conn {
			var nc net.Conn
			var err error
			if useTLS {
				nc, err = tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", is.tlsAddr, is.clientTLS(t))
			} else {
				nc, err = net.DialTimeout("tcp", is.addr, 10*time.Second)
			}
			if err != nil {
				t.Fatalf("connection %s: %v", n, err)
			}
			return nc
		},
		read: func(c *transcriptConn) (string, error) {
			_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, err := c.r.ReadString('\n')
			return strings.TrimRight(got, "\r\n"), err
		},
		match: imapMatchLine,
	})
}

var bracketEscaper = strings.NewReplacer("[", `\[`, "]", `\]`)

// imapMatchLine matches a got line against a transcript S: line.
func imapMatchLine(want, got string) bool {
	if strings.HasSuffix(want, "*") {
		ok, err := path.Match(bracketEscaper.Replace(want), got)
		return err == nil && ok
	}
	return want == got
}

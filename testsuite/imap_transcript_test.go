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
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
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
		Auth:      newVerifier(t, st, cfg.throttle),
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	is.addr, is.tlsAddr = ln.Addr().String(), tln.Addr().String()
	done := make(chan error, 2)
	go func() { done <- srv.Serve(ln) }()
	go func() { done <- srv.ServeTLS(tln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("imapd shutdown: %v", err)
		}
		for range 2 {
			if err := <-done; !errors.Is(err, imapd.ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		}
		if p := srv.Panics(); p != 0 {
			t.Errorf("imapd: %d connection goroutines panicked", p)
		}
	})
	return is
}

// clientTLS returns a client config trusting the server's certificate.
func (is *imapServer) clientTLS(t testing.TB) *tls.Config {
	t.Helper()
	c, err := x509.ParseCertificate(is.tlsConf.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

func TestIMAPTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/imap/*.txt")
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
				runIMAPTranscript(t, backend, string(data))
			})
		})
	}
}

func runIMAPTranscript(t *testing.T, backend, script string) {
	st := NewStore(t, backend)
	MustUser(t, st, "alice", "secret")
	MustUser(t, st, "bob", "bobpw")
	appendMsg(t, st, "alice", fixtureMsg1)
	appendMsg(t, st, "alice", fixtureMsg2)
	inboxUIDs(t, st, "alice") // index 1 and 2 before 3 arrives
	Deliver(t, Maildir(t, st, "alice"), []byte(fixtureMsg3))

	lines := strings.Split(strings.ReplaceAll(script, "\r\n", "\n"), "\n")
	var cfg imapConfig
	var useTLS bool
	var mods []func(*imapd.Options)
	for i, l := range lines {
		d, ok := strings.CutPrefix(l, "#! ")
		if !ok {
			continue
		}
		f := strings.Fields(d)
		num := func() int {
			if len(f) != 2 {
				t.Fatalf("line %d: %s needs a number", i+1, f[0])
			}
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("line %d: %v", i+1, err)
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
			t.Fatalf("line %d: unknown directive %q", i+1, d)
		}
	}
	cfg.opts = func(o *imapd.Options) {
		for _, m := range mods {
			m(o)
		}
	}
	is := startIMAP(t, st, cfg)

	type conn struct {
		nc net.Conn
		r  *bufio.Reader
	}
	conns := map[string]*conn{}
	get := func(n string) *conn {
		if c, ok := conns[n]; ok {
			return c
		}
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
		t.Cleanup(func() { nc.Close() })
		c := &conn{nc: nc, r: bufio.NewReader(nc)}
		conns[n] = c
		return c
	}
	for i, l := range lines {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		kind, arg, ok := strings.Cut(l, ": ")
		if !ok {
			t.Fatalf("line %d: malformed %q", i+1, l)
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
			_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, err := c.r.ReadString('\n')
			got = strings.TrimRight(got, "\r\n")
			if arg == "<EOF>" {
				if err == nil {
					t.Fatalf("line %d: got %q, want the connection closed", i+1, got)
				}
				continue
			}
			if err != nil {
				t.Fatalf("line %d: want %q, read error %v (got %q)", i+1, arg, err, got)
			}
			if !imapMatchLine(arg, got) {
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

var bracketEscaper = strings.NewReplacer("[", `\[`, "]", `\]`)

// imapMatchLine matches a got line against a transcript S: line.
func imapMatchLine(want, got string) bool {
	if strings.HasSuffix(want, "*") {
		ok, err := path.Match(bracketEscaper.Replace(want), got)
		return err == nil && ok
	}
	return want == got
}

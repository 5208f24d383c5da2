package imapd_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postoffice/postoffice/auth"
	"github.com/postoffice/postoffice/imapd"
	"github.com/postoffice/postoffice/store"
	"github.com/postoffice/postoffice/testsuite"
)

// env is an imapd.Server over a fresh store, listening on 127.0.0.1 for
// cleartext (with STARTTLS) and IMAPS.
type env struct {
	t         testing.TB
	st        *store.Store
	srv       *imapd.Server
	addr      string
	tlsAddr   string
	certPEM   string
	clientTLS *tls.Config
}

type envConfig struct {
	plaintext bool // 127.0.0.0/8 may log in without TLS
	throttle  auth.ThrottleOptions
	opts      func(*imapd.Options)
	quiet     bool // discard logs (fuzz targets must not log through f)
}

var tagSeq atomic.Uint64

var bracketEscaper = strings.NewReplacer("[", `\[`, "]", `\]`)

func newEnv(t testing.TB, backend string, cfg envConfig) *env {
	t.Helper()
	logger := testsuite.Logger(t)
	var st *store.Store
	if cfg.quiet {
		logger = slog.New(slog.DiscardHandler)
		o := testsuite.BackendOptions(t, backend, store.Options{Logger: logger})
		st = testsuite.NewStoreAt(t, o)
	} else {
		st = testsuite.NewStore(t, backend)
	}
	serverTLS, certPEM := testsuite.SelfSignedTLS(t)
	o := imapd.Options{
		Store:     st,
		Auth:      testsuite.NewVerifier(t, st, cfg.throttle, logger),
		TLSConfig: serverTLS,
		Logger:    logger,
	}
	if cfg.plaintext {
		o.PlaintextAuthNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	if cfg.opts != nil {
		cfg.opts(&o)
	}
	srv, err := imapd.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, tln := testsuite.Listen(t), testsuite.Listen(t)
	testsuite.Serve(t, "imapd", srv, imapd.ErrServerClosed,
		func() error { return srv.Serve(ln) },
		func() error { return srv.ServeTLS(tln) })
	return &env{
		t: t, st: st, srv: srv,
		addr: ln.Addr().String(), tlsAddr: tln.Addr().String(),
		certPEM:   certPEM,
		clientTLS: testsuite.ClientTLS(t, serverTLS),
	}
}

// user creates a user with a password.
func (e *env) user(name, password string) *store.User {
	e.t.Helper()
	return testsuite.MustUser(e.t, e.st, name, password)
}

// client is a line-level IMAP client for tests.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func (e *env) dial() *client {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	return newClient(e.t, c)
}

func (e *env) dialTLS() *client {
	e.t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", e.tlsAddr, e.clientTLS)
	if err != nil {
		e.t.Fatal(err)
	}
	return newClient(e.t, c)
}

func newClient(t testing.TB, c net.Conn) *client {
	cl := &client{t: t, conn: c, r: bufio.NewReader(c)}
	t.Cleanup(func() { c.Close() })
	return cl
}

// line reads one line (without CRLF); "<EOF>" when the server closed.
func (c *client) line() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := c.r.ReadString('\n')
	if err != nil {
		if s == "" && (errors.Is(err, net.ErrClosed) || isEOF(err)) {
			return "<EOF>"
		}
		c.t.Fatalf("read: %v (partial %q)", err, s)
	}
	return strings.TrimRight(s, "\r\n")
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// expect reads a line and checks it against want (path.Match if it ends in
// "*").
func (c *client) expect(want string) string {
	c.t.Helper()
	got := c.line()
	if !matchLine(want, got) {
		c.t.Fatalf("got %q, want %q", got, want)
	}
	return got
}

// matchLine matches a line; a want ending in "*" is a path.Match pattern in
// which "[" and "]" stand for themselves (IMAP response codes).
func matchLine(want, got string) bool {
	if strings.HasSuffix(want, "*") {
		ok, err := path.Match(bracketEscaper.Replace(want), got)
		return err == nil && ok
	}
	return want == got
}

// send writes raw text (CRLF added).
func (c *client) send(s string) {
	c.t.Helper()
	c.write(s + "\r\n")
}

func (c *client) write(s string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// writeMay writes raw text, ignoring errors: the server may close the
// connection before it has read everything.
func (c *client) writeMay(s string) {
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, _ = c.conn.Write([]byte(s))
}

// cmd sends "tag cmd" and returns the untagged lines and the tagged
// completion line.
func (c *client) cmd(cmd string) (untagged []string, done string) {
	c.t.Helper()
	tag := fmt.Sprintf("t%d", tagSeq.Add(1))
	c.send(tag + " " + cmd)
	for {
		l := c.line()
		if l == "<EOF>" {
			c.t.Fatalf("%s: connection closed", cmd)
		}
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

// ok runs cmd and fails unless it completes with OK.
func (c *client) ok(cmd string) []string {
	c.t.Helper()
	u, done := c.cmd(cmd)
	if !strings.HasPrefix(done, "OK") {
		c.t.Fatalf("%s: %s", cmd, done)
	}
	return u
}

// want runs cmd and checks the completion (path.Match if it ends in "*").
func (c *client) want(cmd, done string) []string {
	c.t.Helper()
	u, got := c.cmd(cmd)
	if !matchLine(done, got) {
		c.t.Fatalf("%s: got %q, want %q", cmd, got, done)
	}
	return u
}

// skipTo reads lines until one matches want.
func (c *client) skipTo(want string) {
	c.t.Helper()
	for range 100 {
		l := c.line()
		if matchLine(want, l) {
			return
		}
		if l == "<EOF>" {
			break
		}
	}
	c.t.Fatalf("no line matching %q", want)
}

// expectClosed waits for the server to close the connection, skipping
// lines.
func (c *client) expectClosed() {
	c.t.Helper()
	for range 100 {
		if c.line() == "<EOF>" {
			return
		}
	}
	c.t.Fatal("connection not closed")
}

// imapClient returns a go-imap client logged in as user over IMAPS.
func (e *env) imapClient(user, password string) *imapclient.Client {
	e.t.Helper()
	c, err := imapclient.DialTLS(e.tlsAddr, &imapclient.Options{TLSConfig: e.clientTLS})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Login(user, password).Wait(); err != nil {
		e.t.Fatalf("login %s: %v", user, err)
	}
	return c
}

package testsuite

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/auth"
	"github.com/postoffice/postoffice/pop3d"
	"github.com/postoffice/postoffice/store"
)

// pop3Server is a pop3d.Server serving a store on 127.0.0.1.
type pop3Server struct {
	srv     *pop3d.Server
	addr    string // plain POP3 (with STLS when TLS is configured)
	tlsAddr string // POP3S, when TLS is configured
	certPEM string // path of the server certificate (PEM), when TLS is configured
	tlsConf *tls.Config
}

// pop3Config changes the options of a test server.
type pop3Config struct {
	tls       bool // STLS and a POP3S listener
	noPlain   bool // no PlaintextAuthNets
	opts      func(*pop3d.Options)
	verifier  *auth.Verifier
	throttleO auth.ThrottleOptions
}

// startPOP3 starts a pop3d.Server over st. It is shut down when t ends, and
// the test fails if a connection goroutine panicked.
func startPOP3(t testing.TB, st *store.Store, cfg pop3Config) *pop3Server {
	t.Helper()
	v := cfg.verifier
	if v == nil {
		v = NewVerifier(t, st, cfg.throttleO, nil)
	}
	o := pop3d.Options{
		Store:    st,
		Auth:     v,
		Logger:   Logger(t),
		Hostname: "pop.test",
	}
	if !cfg.noPlain {
		o.PlaintextAuthNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	ps := &pop3Server{}
	if cfg.tls {
		ps.tlsConf, ps.certPEM = testTLS(t)
		o.TLSConfig = ps.tlsConf
	}
	if cfg.opts != nil {
		cfg.opts(&o)
	}
	srv, err := pop3d.New(o)
	if err != nil {
		t.Fatalf("pop3d.New: %v", err)
	}
	ps.srv = srv
	ln := Listen(t)
	ps.addr = ln.Addr().String()
	serves := []func() error{func() error { return srv.Serve(ln) }}
	if cfg.tls {
		ln2 := Listen(t)
		ps.tlsAddr = ln2.Addr().String()
		tln := tls.NewListener(ln2, ps.tlsConf)
		serves = append(serves, func() error { return srv.Serve(tln) })
	}
	Serve(t, "pop3d", srv, pop3d.ErrServerClosed, serves...)
	return ps
}

// testTLS is SelfSignedTLS with TLS 1.2 at least, for the pop3d servers.
func testTLS(t testing.TB) (*tls.Config, string) {
	t.Helper()
	c, p := SelfSignedTLS(t)
	c.MinVersion = tls.VersionTLS12
	return c, p
}

// clientTLS returns a client config trusting the server's certificate.
func (ps *pop3Server) clientTLS(t testing.TB) *tls.Config {
	t.Helper()
	return ClientTLS(t, ps.tlsConf)
}

// pop3Client is a line-level POP3 client for tests.
type pop3Client struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dialPOP3(t testing.TB, addr string) *pop3Client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &pop3Client{t: t, nc: nc, r: bufio.NewReader(nc)}
}

// readLine reads one response line without CRLF; io errors are returned.
func (c *pop3Client) readLine() (string, error) {
	c.nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		return l, err
	}
	if !strings.HasSuffix(l, "\r\n") {
		return l, fmt.Errorf("line without CRLF: %q", l)
	}
	return strings.TrimSuffix(l, "\r\n"), nil
}

func (c *pop3Client) line() string {
	c.t.Helper()
	l, err := c.readLine()
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	return l
}

func (c *pop3Client) send(s string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(15 * time.Second))
	if _, err := c.nc.Write([]byte(s + "\r\n")); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// cmd sends a command and returns the status line; it fails the test
// unless the line starts with want ("+OK" or "-ERR").
func (c *pop3Client) cmd(want, s string) string {
	c.t.Helper()
	c.send(s)
	l := c.line()
	if !strings.HasPrefix(l, want) {
		c.t.Fatalf("%s: got %q, want %s", s, l, want)
	}
	return l
}

// multi reads a multi-line body up to the terminating "." and returns it
// unstuffed, with CRLFs.
func (c *pop3Client) multi() string {
	c.t.Helper()
	var b strings.Builder
	for {
		l := c.line()
		if l == "." {
			return b.String()
		}
		b.WriteString(strings.TrimPrefix(l, "."))
		b.WriteString("\r\n")
	}
}

// login reads the greeting and logs in with USER/PASS.
func (c *pop3Client) login(user, pass string) string {
	c.t.Helper()
	if g := c.line(); !strings.HasPrefix(g, "+OK") {
		c.t.Fatalf("greeting: %q", g)
	}
	c.cmd("+OK", "USER "+user)
	c.send("PASS " + pass)
	return c.line()
}

// expectClosed checks the server closed the connection.
func (c *pop3Client) expectClosed() {
	c.t.Helper()
	l, err := c.readLine()
	if err == nil {
		c.t.Fatalf("got %q, want connection closed", l)
	}
}

// inbox returns the INBOX of user name.
func inbox(t testing.TB, st *store.Store, name string) *store.Mailbox {
	t.Helper()
	ctx := context.Background()
	u, err := st.User(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := st.Mailbox(ctx, u.ID, store.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

// inboxUIDs syncs and lists the INBOX of user name.
func inboxUIDs(t testing.TB, st *store.Store, name string) []store.UID {
	t.Helper()
	ctx := context.Background()
	mb := inbox(t, st, name)
	if err := st.Sync(ctx, mb.ID); err != nil {
		t.Fatal(err)
	}
	infos, _, err := st.List(ctx, mb.ID)
	if err != nil {
		t.Fatal(err)
	}
	uids := make([]store.UID, len(infos))
	for i, m := range infos {
		uids[i] = m.UID
	}
	return uids
}

// appendMsg appends raw to the INBOX of user name.
func appendMsg(t testing.TB, st *store.Store, name, raw string) store.UID {
	t.Helper()
	res, err := st.Append(context.Background(), inbox(t, st, name).ID, strings.NewReader(raw), 0, nil, time.Now())
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res.UID
}

func newReader(nc net.Conn) *bufio.Reader { return bufio.NewReader(nc) }

package testsuite

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
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

// newVerifier returns an auth.Verifier over st with cheap hashing.
func newVerifier(t testing.TB, st *store.Store, th auth.ThrottleOptions) *auth.Verifier {
	t.Helper()
	v, err := auth.New(auth.Options{
		Lookup: func(ctx context.Context, name string) (string, bool, bool, error) {
			h, disabled, err := st.PasswordHash(ctx, name)
			if errors.Is(err, store.ErrNoUser) {
				return "", false, false, nil
			}
			if err != nil {
				return "", false, false, err
			}
			return h, disabled, true, nil
		},
		Argon2:   CheapParams(),
		Throttle: th,
		Logger:   Logger(t),
	})
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	return v
}

// startPOP3 starts a pop3d.Server over st. It is shut down when t ends, and
// the test fails if a connection goroutine panicked.
func startPOP3(t testing.TB, st *store.Store, cfg pop3Config) *pop3Server {
	t.Helper()
	v := cfg.verifier
	if v == nil {
		v = newVerifier(t, st, cfg.throttleO)
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
	done := make(chan error, 2)
	n := 0
	serve := func(ln net.Listener) {
		n++
		go func() { done <- srv.Serve(ln) }()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ps.addr = ln.Addr().String()
	serve(ln)
	if cfg.tls {
		ln2, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ps.tlsAddr = ln2.Addr().String()
		serve(tls.NewListener(ln2, ps.tlsConf))
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("pop3d shutdown: %v", err)
		}
		for i := 0; i < n; i++ {
			if err := <-done; !errors.Is(err, pop3d.ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		}
		if p := srv.Panics(); p != 0 {
			t.Errorf("pop3d: %d connection goroutines panicked", p)
		}
	})
	return ps
}

// testTLS makes a self-signed certificate for localhost and 127.0.0.1 and
// returns a server config and the path of the certificate in PEM.
func testTLS(t testing.TB) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		// fetchmail matches the host name only against DNS names, so the
		// address is listed as one too.
		DNSNames:              []string{"localhost", "127.0.0.1"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}, p
}

// clientTLS returns a client config trusting the server's certificate.
func (ps *pop3Server) clientTLS(t testing.TB) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	c, err := x509.ParseCertificate(ps.tlsConf.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool.AddCert(c)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
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

package proxyproto

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"net/netip"
	"testing"
	"time"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// newListener wraps a fresh loopback listener.
func newListener(t *testing.T, trusted []netip.Prefix, required bool, timeout time.Duration) *Listener {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &Listener{Listener: raw, Trusted: trusted, Required: required, Timeout: timeout}
	t.Cleanup(func() { l.Close() })
	return l
}

// dial connects to l and writes data.
func dial(t *testing.T, l net.Listener, data string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if data != "" {
		if _, err := io.WriteString(c, data); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// accept returns the next connection, failing after 5 s.
func accept(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.Accept()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("accept: %v", r.err)
		}
		t.Cleanup(func() { r.c.Close() })
		return r.c
	case <-time.After(5 * time.Second):
		t.Fatal("accept: timed out")
	}
	return nil
}

func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// expectClosed checks that the server closed c without sending anything.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1)
	n, err := c.Read(b)
	if n != 0 || (!errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err)) {
		t.Fatalf("read from dropped connection: %d bytes, %v; want EOF", n, err)
	}
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && !oe.Timeout()
}

func TestListener_headers(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   string // remote address; "" means the peer's own
	}{
		{"v1 tcp4", "PROXY TCP4 192.0.2.1 198.51.100.2 56324 993\r\n", "192.0.2.1:56324"},
		{"v1 tcp6", "PROXY TCP6 2001:db8::1 2001:db8::2 4000 143\r\n", "[2001:db8::1]:4000"},
		{"v1 unknown", "PROXY UNKNOWN\r\n", ""},
		{"v2 ipv4", string(v2(0x21, 0x11, inet4Body("192.0.2.7", "192.0.2.2", 40000, 995))), "192.0.2.7:40000"},
		{"v2 ipv6", string(v2(0x21, 0x21, inet6Body("2001:db8::7", "2001:db8::2", 40001, 993))), "[2001:db8::7]:40001"},
		{"v2 local", string(v2(0x20, 0x00, nil)), ""},
		{"v2 unix", string(v2(0x21, 0x31, make([]byte, 216))), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newListener(t, loopback, true, 0)
			cc := dial(t, l, tt.header+"a001 NOOP\r\n")
			sc := accept(t, l)
			want := tt.want
			if want == "" {
				want = cc.LocalAddr().String()
			}
			if got := sc.RemoteAddr().String(); got != want {
				t.Errorf("RemoteAddr = %s, want %s", got, want)
			}
			if _, ok := sc.RemoteAddr().(*net.TCPAddr); !ok {
				t.Errorf("RemoteAddr is %T, want *net.TCPAddr", sc.RemoteAddr())
			}
			if sc.LocalAddr().String() != cc.RemoteAddr().String() {
				t.Errorf("LocalAddr = %s, want %s", sc.LocalAddr(), cc.RemoteAddr())
			}
			// The bytes after the header arrive intact, and the
			// connection works both ways.
			if got := readN(t, sc, 11); got != "a001 NOOP\r\n" {
				t.Errorf("payload = %q", got)
			}
			io.WriteString(sc, "a001 OK\r\n")
			if got := readN(t, cc, 9); got != "a001 OK\r\n" {
				t.Errorf("reply = %q", got)
			}
		})
	}
}

// The header may arrive in pieces.
func TestListener_splitHeader(t *testing.T) {
	l := newListener(t, loopback, true, 0)
	h := string(v2(0x21, 0x11, inet4Body("192.0.2.9", "192.0.2.2", 1234, 110)))
	cc := dial(t, l, h[:5])
	done := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		done <- c
	}()
	for _, part := range []string{h[5:14], h[14:20], h[20:] + "USER x\r\n"} {
		if _, err := io.WriteString(cc, part); err != nil {
			t.Fatal(err)
		}
	}
	sc := <-done
	defer sc.Close()
	if got := sc.RemoteAddr().String(); got != "192.0.2.9:1234" {
		t.Errorf("RemoteAddr = %s", got)
	}
	if got := readN(t, sc, 8); got != "USER x\r\n" {
		t.Errorf("payload = %q", got)
	}
}

// An untrusted peer is passed through: its header is just data.
func TestListener_untrustedPeer(t *testing.T) {
	l := newListener(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, true, 0)
	header := "PROXY TCP4 192.0.2.1 198.51.100.2 56324 993\r\n"
	cc := dial(t, l, header)
	sc := accept(t, l)
	if _, ok := sc.(*Conn); ok {
		t.Error("untrusted connection was parsed")
	}
	if got, want := sc.RemoteAddr().String(), cc.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr = %s, want the real peer %s", got, want)
	}
	if got := readN(t, sc, len(header)); got != header {
		t.Errorf("data = %q, want the header bytes", got)
	}
}

// Garbage, a truncated header and a silent peer are dropped without
// holding up Accept for a good connection.
func TestListener_badHeadersDropped(t *testing.T) {
	l := newListener(t, loopback, true, 300*time.Millisecond)
	garbage := dial(t, l, "GET / HTTP/1.0\r\n\r\n")
	badV1 := dial(t, l, "PROXY TCP4 999.0.2.1 198.51.100.2 1 2\r\n")
	tooLong := dial(t, l, string(v2(0x21, 0x11, make([]byte, maxV2Len+1))))
	slow := dial(t, l, "PROXY TCP4 192.0.2.1") // never finishes
	silent := dial(t, l, "")
	start := time.Now()
	good := dial(t, l, "PROXY TCP4 192.0.2.44 198.51.100.2 5 6\r\n")
	sc := accept(t, l)
	if got := sc.RemoteAddr().String(); got != "192.0.2.44:5" {
		t.Fatalf("first accepted connection is from %s, want the good one", got)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("good connection waited %v behind slow ones", d)
	}
	_ = good
	for name, c := range map[string]net.Conn{"garbage": garbage, "bad v1": badV1, "too long": tooLong, "slow": slow, "silent": silent} {
		t.Run(name, func(t *testing.T) { expectClosed(t, c) })
	}
	// Nothing else was delivered.
	next := dial(t, l, "PROXY UNKNOWN\r\n")
	sc = accept(t, l)
	if sc.RemoteAddr().String() != next.LocalAddr().String() {
		t.Errorf("unexpected connection from %s", sc.RemoteAddr())
	}
}

// The header deadline does not linger on the delivered connection, and
// deadlines set afterwards work.
func TestListener_deadlineCleared(t *testing.T) {
	l := newListener(t, loopback, true, 100*time.Millisecond)
	cc := dial(t, l, "PROXY UNKNOWN\r\n")
	sc := accept(t, l)
	go func() {
		time.Sleep(300 * time.Millisecond) // longer than Timeout
		io.WriteString(cc, "x")
	}()
	b := make([]byte, 1)
	if _, err := sc.Read(b); err != nil {
		t.Fatalf("read after the header timeout: %v", err)
	}
}

func TestListener_optional(t *testing.T) {
	l := newListener(t, loopback, false, 200*time.Millisecond)
	t.Run("header", func(t *testing.T) {
		dial(t, l, "PROXY TCP4 192.0.2.1 198.51.100.2 7 8\r\n")
		if got := accept(t, l).RemoteAddr().String(); got != "192.0.2.1:7" {
			t.Errorf("RemoteAddr = %s", got)
		}
	})
	t.Run("client speaks first", func(t *testing.T) {
		cc := dial(t, l, "a001 CAPABILITY\r\n")
		sc := accept(t, l)
		if got := sc.RemoteAddr().String(); got != cc.LocalAddr().String() {
			t.Errorf("RemoteAddr = %s, want %s", got, cc.LocalAddr())
		}
		if got := readN(t, sc, 17); got != "a001 CAPABILITY\r\n" {
			t.Errorf("replayed data = %q", got)
		}
	})
	t.Run("silent client after timeout", func(t *testing.T) {
		cc := dial(t, l, "")
		sc := accept(t, l)
		if got := sc.RemoteAddr().String(); got != cc.LocalAddr().String() {
			t.Errorf("RemoteAddr = %s, want %s", got, cc.LocalAddr())
		}
		io.WriteString(sc, "* OK\r\n")
		if got := readN(t, cc, 6); got != "* OK\r\n" {
			t.Errorf("greeting = %q", got)
		}
	})
	t.Run("invalid header still dropped", func(t *testing.T) {
		expectClosed(t, dial(t, l, "PROXY TCP4 x y 1 2\r\n"))
	})
}

// Implicit TLS: tls.NewListener wraps the proxy listener; the balancer
// sends the header in clear, then the client's TLS bytes follow.
func TestListener_TLS(t *testing.T) {
	l := newListener(t, loopback, true, 0)
	cert := selfSigned(t)
	tl := tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}})
	raw := dial(t, l, string(v2(0x21, 0x11, inet4Body("203.0.113.5", "192.0.2.2", 50000, 993))))
	cc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
	errc := make(chan error, 1)
	go func() {
		_, err := io.WriteString(cc, "a001 NOOP\r\n")
		errc <- err
	}()
	sc := accept(t, tl)
	if _, ok := sc.(*tls.Conn); !ok {
		t.Fatalf("accepted %T, want *tls.Conn", sc)
	}
	if got := sc.RemoteAddr().String(); got != "203.0.113.5:50000" {
		t.Errorf("RemoteAddr = %s", got)
	}
	if got := readN(t, sc, 11); got != "a001 NOOP\r\n" {
		t.Errorf("payload = %q", got)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// Close closes connections whose header is pending and ends Accept.
func TestListener_close(t *testing.T) {
	l := newListener(t, loopback, true, time.Minute)
	pending := dial(t, l, "PROXY ")
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		errc <- err
	}()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Accept after Close: %v", err)
	}
	expectClosed(t, pending)
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Closing the wrapped listener directly ends Accept too.
func TestListener_innerClosed(t *testing.T) {
	l := newListener(t, loopback, true, 0)
	l.Listener.Close()
	for range 2 {
		if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept: %v, want net.ErrClosed", err)
		}
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

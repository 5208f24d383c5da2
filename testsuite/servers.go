package testsuite

// Helpers for tests that run an imapd or pop3d server: a login verifier over
// a store, a self-signed certificate, and serving until the test ends. They
// take the servers through small interfaces, so this package need not
// import the daemons.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/postoffice/postoffice/auth"
	"github.com/postoffice/postoffice/store"
)

// PasswordLookup is an auth.Options.Lookup over the users of st: an unknown
// user is not found, a disabled one is reported as such.
func PasswordLookup(st *store.Store) func(ctx context.Context, name string) (string, bool, bool, error) {
	return func(ctx context.Context, name string) (string, bool, bool, error) {
		h, disabled, err := st.PasswordHash(ctx, name)
		if errors.Is(err, store.ErrNoUser) {
			return "", false, false, nil
		}
		if err != nil {
			return "", false, false, err
		}
		return h, disabled, true, nil
	}
}

// NewVerifier returns an auth.Verifier over the users of st with
// CheapParams, the throttle th and logger (Logger(t) if nil).
func NewVerifier(t testing.TB, st *store.Store, th auth.ThrottleOptions, logger *slog.Logger) *auth.Verifier {
	t.Helper()
	if logger == nil {
		logger = Logger(t)
	}
	v, err := auth.New(auth.Options{
		Lookup:   PasswordLookup(st),
		Argon2:   CheapParams(),
		Throttle: th,
		Logger:   logger,
	})
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	return v
}

// SelfSignedTLS makes a self-signed certificate for localhost and
// 127.0.0.1 (also listed as a DNS name: fetchmail matches the host name only
// against DNS names) and returns a server config presenting it and the path
// of the certificate in PEM. The config leaves MinVersion to the caller.
func SelfSignedTLS(t testing.TB) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
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
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}, p
}

// ClientTLS returns a client config for "localhost" that trusts the first
// certificate of the server config srv (as made by SelfSignedTLS).
func ClientTLS(t testing.TB, srv *tls.Config) *tls.Config {
	t.Helper()
	c, err := x509.ParseCertificate(srv.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

// Listen returns a listener on a free port of 127.0.0.1.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// Server is what Serve needs of an imapd.Server or a pop3d.Server.
type Server interface {
	Shutdown(ctx context.Context) error
	Panics() uint64
}

// Serve runs each of serves (such as a bound srv.Serve(ln)) in a goroutine
// until t ends. Then it shuts srv down, checks that every one returned
// closed (the daemon's ErrServerClosed) and fails the test if a connection
// goroutine of srv panicked. name ("imapd", "pop3d") prefixes the messages.
func Serve(t testing.TB, name string, srv Server, closed error, serves ...func() error) {
	t.Helper()
	done := make(chan error, len(serves))
	for _, serve := range serves {
		go func() { done <- serve() }()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("%s shutdown: %v", name, err)
		}
		for range serves {
			if err := <-done; !errors.Is(err, closed) {
				t.Errorf("Serve returned %v, want %v", err, closed)
			}
		}
		if p := srv.Panics(); p != 0 {
			t.Errorf("%s: %d connection goroutines panicked", name, p)
		}
	})
}

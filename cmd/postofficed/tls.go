package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// Names of the generated self-signed certificate files in the data directory.
const (
	selfSignedCert = "tls-cert.pem"
	selfSignedKey  = "tls-key.pem"
)

// certificate serves the TLS certificate through tls.Config.GetCertificate,
// so that Reload (on SIGHUP) takes effect for new handshakes without a
// restart. Safe for concurrent use.
type certificate struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// loadCertificate loads certFile/keyFile. When both are empty it uses the
// self-signed pair in dataDir, generating it first if missing or expired,
// and logs that it does so.
func loadCertificate(log *slog.Logger, dataDir, certFile, keyFile string) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile}
	if certFile == "" && keyFile == "" {
		c.certFile = filepath.Join(dataDir, selfSignedCert)
		c.keyFile = filepath.Join(dataDir, selfSignedKey)
		generated, err := ensureSelfSigned(c.certFile, c.keyFile, time.Now())
		if err != nil {
			return nil, err
		}
		verb := "using the self-signed certificate generated earlier"
		if generated {
			verb = "generated a self-signed certificate"
		}
		defer func() {
			if cert := c.cur.Load(); cert != nil {
				log.Warn("no tls-cert configured: "+verb+"; clients will have to accept it",
					"cert", c.certFile, "sha256", fingerprint(cert.Certificate[0]))
			}
		}()
	}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload re-reads the certificate and key files. On error the previous
// certificate stays in use.
func (c *certificate) Reload() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s: %w", c.certFile, err)
	}
	c.cur.Store(&cert)
	return nil
}

// GetCertificate is for tls.Config.
func (c *certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// TLSConfig returns a server configuration using c.
func (c *certificate) TLSConfig() *tls.Config {
	return &tls.Config{GetCertificate: c.GetCertificate, MinVersion: tls.VersionTLS12}
}

// Leaf returns the current certificate, parsed.
func (c *certificate) Leaf() (*x509.Certificate, error) {
	return x509.ParseCertificate(c.cur.Load().Certificate[0])
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// ensureSelfSigned makes sure certFile and keyFile hold a usable
// self-signed pair, generating one when either is missing, unreadable or
// the certificate expires within a day. It reports whether it generated.
func ensureSelfSigned(certFile, keyFile string, now time.Time) (bool, error) {
	if cert, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil {
		if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil && now.Add(24*time.Hour).Before(leaf.NotAfter) {
			return false, nil
		}
	} else if _, serr := os.Stat(certFile); serr == nil || !errors.Is(serr, os.ErrNotExist) {
		if _, kerr := os.Stat(keyFile); kerr == nil {
			// Both exist but do not load: do not silently replace files an
			// operator may have put there.
			return false, fmt.Errorf("self-signed certificate %s: %w (remove both files to regenerate)", certFile, err)
		}
	}
	certPEM, keyPEM, err := selfSigned(now)
	if err != nil {
		return false, err
	}
	// Key first, so a crash in between leaves a cert without key, which is
	// regenerated.
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return false, err
	}
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// selfSigned returns a new ECDSA P-256 certificate for localhost, the
// loopback addresses and this host's name, valid for five years.
func selfSigned(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	names := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		names = append(names, h)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[len(names)-1], Organization: []string{"postoffice self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// writeFileAtomic writes data to a temporary file next to name, syncs it
// and renames it into place.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

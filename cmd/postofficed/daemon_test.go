package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/postoffice/postoffice/internal/config"
	"github.com/postoffice/postoffice/store"
	"github.com/postoffice/postoffice/testsuite"
)

// TestMain lets the test binary act as postofficed when re-executed by
// TestDaemon_signals.
func TestMain(m *testing.M) {
	if os.Getenv("POSTOFFICED_TEST_MAIN") == "1" {
		os.Args = append([]string{"postofficed"}, strings.Fields(os.Getenv("POSTOFFICED_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is a daemon started in-process by startDaemon.
type running struct {
	addrs    map[string]net.Addr
	hup      chan os.Signal
	reloaded chan error // one value per SIGHUP handled
	log      *syncBuffer
	data     string
	stop     func() error // cancels and waits for run to return
}

func noEnv(string) (string, bool) { return "", false }

// startDaemon runs the daemon in-process with args (plus --data and
// loopback listeners unless given) until the test ends.
func startDaemon(t *testing.T, data string, args ...string) *running {
	t.Helper()
	r := &running{hup: make(chan os.Signal, 1), reloaded: make(chan error, 1), log: &syncBuffer{}, data: data}
	ready := make(chan map[string]net.Addr, 1)
	all := append([]string{"--data", data, "--imap", "127.0.0.1:0", "--pop3", "127.0.0.1:0",
		"--imaps", "127.0.0.1:0", "--pop3s", "127.0.0.1:0", "--http", "127.0.0.1:0",
		"--plaintext-auth-nets", "127.0.0.0/8", "--argon2-memory", "8", "--argon2-time", "1"}, args...)
	d := &daemon{args: all, lookupEnv: noEnv, stderr: r.log, hup: r.hup,
		ready:    func(a map[string]net.Addr) { ready <- a },
		reloaded: func(err error) { r.reloaded <- err }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()
	select {
	case r.addrs = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("daemon exited early: %v\n%s", err, r.log)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("daemon not ready\n%s", r.log)
	}
	var once sync.Once
	var stopErr error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = errors.New("daemon did not stop within 30s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("daemon: %v", err)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", r.log)
		}
	})
	return r
}

// rootsFor returns a pool holding the certificate in certFile.
func rootsFor(t *testing.T, certFile string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("no certificate in %s", certFile)
	}
	return pool
}

// greeting connects (with TLS when roots is non-nil) and returns the first
// line and the server certificate's fingerprint.
func greeting(t *testing.T, addr net.Addr, roots *x509.CertPool, serverName string) (line, fp string) {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second}
	var c net.Conn
	var err error
	if roots != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr.String(), &tls.Config{RootCAs: roots, ServerName: serverName})
	} else {
		c, err = d.Dial("tcp", addr.String())
	}
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if tc, ok := c.(*tls.Conn); ok {
		fp = fingerprint(tc.ConnectionState().PeerCertificates[0].Raw)
	}
	line, err = bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read greeting from %s: %v", addr, err)
	}
	return line, fp
}

func healthz(t *testing.T, addr net.Addr) (int, map[string]string) {
	t.Helper()
	cl := &http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get("http://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, m
}

func TestDaemon_listenersAndTLS(t *testing.T) {
	data := t.TempDir()
	r := startDaemon(t, data)
	for _, name := range []string{"imap", "imaps", "pop3", "pop3s", "http"} {
		if r.addrs[name] == nil {
			t.Fatalf("no %s listener: %v", name, r.addrs)
		}
	}
	if !strings.Contains(r.log.String(), "generated a self-signed certificate") {
		t.Errorf("log does not say a certificate was generated:\n%s", r.log)
	}
	certFile := filepath.Join(data, selfSignedCert)
	roots := rootsFor(t, certFile)

	if line, _ := greeting(t, r.addrs["imap"], nil, ""); !strings.HasPrefix(line, "* OK") {
		t.Errorf("IMAP greeting %q", line)
	}
	if line, _ := greeting(t, r.addrs["pop3"], nil, ""); !strings.HasPrefix(line, "+OK") {
		t.Errorf("POP3 greeting %q", line)
	}
	// The self-signed certificate verifies for localhost and 127.0.0.1.
	line, fp1 := greeting(t, r.addrs["imaps"], roots, "localhost")
	if !strings.HasPrefix(line, "* OK") {
		t.Errorf("IMAPS greeting %q", line)
	}
	if line, _ := greeting(t, r.addrs["pop3s"], roots, "127.0.0.1"); !strings.HasPrefix(line, "+OK") {
		t.Errorf("POP3S greeting %q", line)
	}
	if code, m := healthz(t, r.addrs["http"]); code != 200 || m["status"] != "ok" {
		t.Errorf("healthz = %d %v", code, m)
	}

	// SIGHUP re-reads the certificate: replace it and see the new one.
	certPEM, keyPEM, err := selfSigned(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeFileAtomic(filepath.Join(data, selfSignedKey), keyPEM, 0o600)
	writeFileAtomic(certFile, certPEM, 0o644)
	r.hup <- syscall.SIGHUP
	if err := <-r.reloaded; err != nil {
		t.Fatalf("reload: %v", err)
	}
	roots2 := rootsFor(t, certFile)
	_, fp2 := greeting(t, r.addrs["imaps"], roots2, "localhost")
	if fp2 == fp1 {
		t.Fatalf("certificate not replaced after SIGHUP (still %s)", fp1)
	}
	// A broken file keeps the old certificate.
	os.WriteFile(certFile, []byte("garbage"), 0o644)
	r.hup <- syscall.SIGHUP
	if err := <-r.reloaded; err == nil {
		t.Error("reload of a broken certificate succeeded")
	}
	if _, fp3 := greeting(t, r.addrs["imaps"], roots2, "localhost"); fp3 != fp2 {
		t.Errorf("broken certificate file replaced the working certificate")
	}
	os.WriteFile(certFile, certPEM, 0o644)

	if err := r.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if !strings.Contains(r.log.String(), "msg=stopped") {
		t.Errorf("no stop log:\n%s", r.log)
	}
	// The listeners are closed.
	if c, err := net.DialTimeout("tcp", r.addrs["imap"].String(), time.Second); err == nil {
		c.Close()
		t.Error("IMAP listener still accepts after shutdown")
	}

	// A restart reuses the generated certificate.
	r2 := startDaemon(t, data)
	if !strings.Contains(r2.log.String(), "using the self-signed certificate generated earlier") {
		t.Errorf("restart did not reuse the certificate:\n%s", r2.log)
	}
	if _, fp := greeting(t, r2.addrs["imaps"], roots2, "localhost"); fp != fp2 {
		t.Error("restart serves another certificate")
	}
}

// TestDaemon_login logs in over POP3 and IMAP with a user created in the
// store, through the whole wiring (store, auth, servers).
func TestDaemon_login(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		data := t.TempDir()
		var args []string
		var dbURL string
		if backend == testsuite.Postgres {
			dbURL = testsuite.NewDatabaseURL(t)
			args = append(args, "--db", dbURL)
		}
		st := testsuite.NewStoreAt(t, store.Options{DataDir: data, DatabaseURL: dbURL})
		u := testsuite.MustUser(t, st, "alice", "pw")
		testsuite.Deliver(t, st.MaildirPath(u), []byte("Subject: hi\n\nhello\n"))
		r := startDaemon(t, data, args...)

		c, err := net.DialTimeout("tcp", r.addrs["pop3"].String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(c)
		var got []string
		for _, cmd := range []string{"", "USER alice", "PASS pw", "STAT", "QUIT"} {
			if cmd != "" {
				io.WriteString(c, cmd+"\r\n")
			}
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("after %q: %v (so far %q)", cmd, err, got)
			}
			got = append(got, strings.TrimSpace(line))
		}
		if !strings.HasPrefix(got[2], "+OK") || !strings.HasPrefix(got[3], "+OK 1 ") {
			t.Errorf("POP3 session: %q", got)
		}

		ic, err := net.DialTimeout("tcp", r.addrs["imap"].String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer ic.Close()
		ic.SetDeadline(time.Now().Add(20 * time.Second))
		ibr := bufio.NewReader(ic)
		ibr.ReadString('\n')
		io.WriteString(ic, "a LOGIN alice pw\r\n")
		for {
			line, err := ibr.ReadString('\n')
			if err != nil {
				t.Fatalf("IMAP LOGIN: %v", err)
			}
			if strings.HasPrefix(line, "a ") {
				if !strings.HasPrefix(line, "a OK") {
					t.Errorf("IMAP LOGIN: %q", line)
				}
				break
			}
		}
	})
}

// TestDaemon_healthzDatabaseDown drops the database under a running daemon.
func TestDaemon_healthzDatabaseDown(t *testing.T) {
	dbURL := testsuite.NewDatabaseURL(t)
	r := startDaemon(t, t.TempDir(), "--db", dbURL)
	if code, m := healthz(t, r.addrs["http"]); code != 200 {
		t.Fatalf("healthz = %d %v", code, m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = testsuite.DefaultDatabaseURL
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := dbURL[strings.LastIndex(dbURL, "/")+1:]
	name = name[:strings.IndexByte(name, '?')]
	if _, err := conn.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	if code, m := healthz(t, r.addrs["http"]); code != http.StatusServiceUnavailable || m["db"] != "unreachable" || m["maildir"] != "ok" {
		t.Errorf("healthz with the database gone = %d %v", code, m)
	}
}

func TestDaemon_startupErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	data := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--bogus"}, "usage error"},
		{"bad address", []string{"--imap", "nope"}, "usage error"},
		{"extra argument", []string{"serve"}, "usage error"},
		{"cert without key", []string{"--tls-cert", "/x"}, "together"},
		{"missing cert", []string{"--tls-cert", "/nonexistent/c", "--tls-key", "/nonexistent/k"}, "load TLS certificate"},
		{"port in use", []string{"--imap", busy.Addr().String(), "--pop3", ""}, "imap: listen tcp"},
		{"unreachable db", []string{"--db", "postgres://postgres:hunter2@127.0.0.1:1/x?connect_timeout=5"}, "open store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log syncBuffer
			d := &daemon{args: append([]string{"--data", data, "--imap", "127.0.0.1:0", "--pop3", "127.0.0.1:0"}, tt.args...),
				lookupEnv: noEnv, stderr: &log}
			err := d.run(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run = %v, want %q\n%s", err, tt.want, log.String())
			}
			if strings.Contains(log.String()+err.Error(), "hunter2") {
				t.Errorf("password leaked:\n%v\n%s", err, log.String())
			}
		})
	}
}

// TestDaemon_signals runs postofficed as a process: SIGHUP reloads, SIGTERM
// shuts down cleanly with exit status 0.
func TestDaemon_signals(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a process")
	}
	data := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "POSTOFFICED_TEST_MAIN=1",
		"POSTOFFICED_TEST_ARGS=--data "+data+" --imap 127.0.0.1:0 --pop3 127.0.0.1:0 --log-format json --argon2-memory 8")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan map[string]any, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
	}()
	waitFor := func(msg string) map[string]any {
		t.Helper()
		timeout := time.After(60 * time.Second)
		for {
			select {
			case m, ok := <-lines:
				if !ok {
					t.Fatalf("log ended before %q", msg)
				}
				if m["msg"] == msg {
					return m
				}
			case <-timeout:
				t.Fatalf("no %q log line", msg)
			}
		}
	}
	waitFor("ready")
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor("SIGHUP: TLS certificate reloaded")
	cmd.Process.Signal(syscall.SIGTERM)
	waitFor("shutting down")
	waitFor("stopped")
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("postofficed exit: %v", err)
	}
}

func TestEnsureSelfSigned(t *testing.T) {
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	now := time.Now()
	gen, err := ensureSelfSigned(cf, kf, now)
	if err != nil || !gen {
		t.Fatalf("first call: generated=%v err=%v", gen, err)
	}
	if st, _ := os.Stat(kf); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", st.Mode().Perm())
	}
	b, _ := os.ReadFile(cf)
	blk, _ := pem.Decode(b)
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("localhost"); err != nil {
		t.Error(err)
	}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(ip); err != nil {
			t.Error(err)
		}
	}
	if h, _ := os.Hostname(); h != "" {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Error(err)
		}
	}
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm %v", leaf.PublicKeyAlgorithm)
	}
	if gen, err := ensureSelfSigned(cf, kf, now); err != nil || gen {
		t.Errorf("second call: generated=%v err=%v", gen, err)
	}
	// Near expiry: regenerated.
	if gen, err := ensureSelfSigned(cf, kf, leaf.NotAfter.Add(-time.Hour)); err != nil || !gen {
		t.Errorf("near expiry: generated=%v err=%v", gen, err)
	}
	// Key missing: regenerated.
	os.Remove(kf)
	if gen, err := ensureSelfSigned(cf, kf, now); err != nil || !gen {
		t.Errorf("key missing: generated=%v err=%v", gen, err)
	}
	// Both present but broken: refused, files kept.
	os.WriteFile(cf, []byte("junk"), 0o644)
	if _, err := ensureSelfSigned(cf, kf, now); err == nil {
		t.Error("broken pair silently replaced")
	}
	if b, _ := os.ReadFile(cf); string(b) != "junk" {
		t.Error("broken certificate overwritten")
	}
}

func TestMaildirRoot(t *testing.T) {
	tests := []struct{ tmpl, want string }{
		{"%u/Maildir", "/data"},
		{"/srv/mail/%d/%n/Maildir", "/srv/mail"},
		{"/srv/mail/%u", "/srv/mail"},
		{"mail/%u", "/data/mail"},
		{"mail-%u/Maildir", "/data"},
		{"/srv/shared/Maildir", "/srv/shared"},
	}
	for _, tt := range tests {
		if got := maildirRoot("/data", tt.tmpl); got != tt.want {
			t.Errorf("maildirRoot(%q) = %q, want %q", tt.tmpl, got, tt.want)
		}
	}
}

type fakePasswords struct {
	hash     string
	disabled bool
	err      error
}

func (f *fakePasswords) PasswordHash(ctx context.Context, name string) (string, bool, error) {
	return f.hash, f.disabled, f.err
}
func (f *fakePasswords) SetPassword(ctx context.Context, name, hash string) error { return nil }

func TestAuthOptions_lookup(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name               string
		f                  fakePasswords
		wantFound, wantDis bool
		wantErr            error
	}{
		{"found", fakePasswords{hash: "{PLAIN}x"}, true, false, nil},
		{"disabled", fakePasswords{hash: "{PLAIN}x", disabled: true}, true, true, nil},
		{"unknown", fakePasswords{err: store.ErrNoUser}, false, false, nil},
		{"unknown wrapped", fakePasswords{err: errors.Join(errors.New("x"), store.ErrNoUser)}, false, false, nil},
		{"db down", fakePasswords{err: boom}, false, false, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			o := authOptions(&c, &tt.f, nil)
			_, dis, found, err := o.Lookup(context.Background(), "u")
			if found != tt.wantFound || dis != tt.wantDis || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("Lookup = %v %v %v", dis, found, err)
			}
		})
	}
	if zeroOff(0) != -1 || zeroOff(5) != 5 {
		t.Error("zeroOff")
	}
}

// TestDaemon_tlsFiles serves a configured certificate and generates none.
func TestDaemon_tlsFiles(t *testing.T) {
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "mail.pem"), filepath.Join(dir, "mail.key")
	certPEM, keyPEM, err := selfSigned(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cf, certPEM, 0o644)
	os.WriteFile(kf, keyPEM, 0o600)
	data := t.TempDir()
	r := startDaemon(t, data, "--tls-cert", cf, "--tls-key", kf)
	if strings.Contains(r.log.String(), "self-signed") {
		t.Errorf("self-signed certificate mentioned with tls-cert set:\n%s", r.log)
	}
	if _, err := os.Stat(filepath.Join(data, selfSignedCert)); !os.IsNotExist(err) {
		t.Errorf("a certificate was generated into the data dir: %v", err)
	}
	blk, _ := pem.Decode(certPEM)
	if _, fp := greeting(t, r.addrs["pop3s"], rootsFor(t, cf), "localhost"); fp != fingerprint(blk.Bytes) {
		t.Error("POP3S serves another certificate")
	}
}

package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string) (int, http.Header, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

func TestHandler(t *testing.T) {
	reg := NewRegistry()
	NewServer(reg).Proto("imap").Login(LoginOK)
	var healthErr error
	var gotDeadline bool
	h := Handler(reg, func(ctx context.Context) error {
		_, gotDeadline = ctx.Deadline()
		return healthErr
	})

	code, hdr, body := get(t, h, "GET", "/metrics")
	if code != 200 || hdr.Get("Content-Type") != ContentType {
		t.Errorf("/metrics: %d %q", code, hdr.Get("Content-Type"))
	}
	if !strings.Contains(body, `postoffice_logins_total{proto="imap",result="ok"} 1`+"\n") {
		t.Errorf("/metrics body lacks the login counter:\n%s", body)
	}

	code, _, body = get(t, h, "GET", "/healthz")
	if code != 200 || body != "ok\n" {
		t.Errorf("/healthz healthy: %d %q", code, body)
	}
	if !gotDeadline {
		t.Error("health func got no deadline")
	}
	healthErr = errors.New("index database: connection refused")
	code, _, body = get(t, h, "GET", "/healthz")
	if code != 503 || body != "index database: connection refused\n" {
		t.Errorf("/healthz failing: %d %q", code, body)
	}
	if code, _, body := get(t, h, "HEAD", "/healthz"); code != 503 || body != "" {
		t.Errorf("HEAD /healthz: %d %q", code, body)
	}
	if code, _, _ := get(t, h, "GET", "/"); code != 404 {
		t.Errorf("GET /: %d", code)
	}
	if code, _, _ := get(t, h, "POST", "/metrics"); code != 405 {
		t.Errorf("POST /metrics: %d", code)
	}
	if code, _, body := get(t, Handler(reg, nil), "GET", "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("nil health: %d %q", code, body)
	}
}

func TestMaildirWritable(t *testing.T) {
	dir := t.TempDir()
	if err := MaildirWritable(dir); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %d files behind", len(ents))
	}
	if err := MaildirWritable(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing directory reported writable")
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	if err := MaildirWritable(file); err == nil {
		t.Error("regular file reported writable")
	}
}

// The counting listener tracks open connections and bytes written.
func TestProtoListener(t *testing.T) {
	reg := NewRegistry()
	s := NewServer(reg)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := s.Proto("pop3").Listener(raw)
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if sc.RemoteAddr().String() != cc.LocalAddr().String() {
		t.Errorf("RemoteAddr = %s", sc.RemoteAddr())
	}
	if got := s.Connections.With("pop3").Value(); got != 1 {
		t.Errorf("open = %d, want 1", got)
	}
	io.WriteString(sc, "+OK ready\r\n")
	if got := s.BytesSent.With("pop3").Value(); got != 11 {
		t.Errorf("bytes = %d, want 11", got)
	}
	sc.Close()
	sc.Close() // counted once
	if got := s.Connections.With("pop3").Value(); got != 0 {
		t.Errorf("open after close = %d, want 0", got)
	}
	if got := s.ConnectionsTotal.With("pop3").Value(); got != 1 {
		t.Errorf("total = %d, want 1", got)
	}
}

package testsuite

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// needTool returns the path of an external client program, skipping the
// test when it is missing (failing in CI, which installs it).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (CI must install it)", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

type poplibResult struct {
	Welcome       string              `json:"welcome"`
	CapaBeforeTLS []string            `json:"capa_before_tls"`
	Capa          map[string][]string `json:"capa"`
	Auth          string              `json:"auth"`
	Stat          []int               `json:"stat"`
	List          []string            `json:"list"`
	UIDL          []string            `json:"uidl"`
	Messages      []string            `json:"messages"`
	Top1          string              `json:"top1"`
	Dele          string              `json:"dele"`
	Quit          string              `json:"quit"`
}

// TestPOP3_poplib drives pop3d with Python's poplib over plain POP3, STLS,
// POP3S and AUTH PLAIN, and checks the messages arrive byte-intact and that
// DELE+QUIT reaches the store.
func TestPOP3_poplib(t *testing.T) {
	python := needTool(t, "python3")
	script, err := filepath.Abs("testdata/pop3/poplib_client.py")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"plain", "stls", "ssl", "sasl"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			st := NewStore(t, SQLite)
			MustUser(t, st, "alice", "secret")
			appendMsg(t, st, "alice", fixtureMsg1)
			appendMsg(t, st, "alice", fixtureMsg2)
			inboxUIDs(t, st, "alice")
			Deliver(t, Maildir(t, st, "alice"), []byte(fixtureMsg3))
			// With TLS, passwords are refused on the plain connection.
			ps := startPOP3(t, st, pop3Config{tls: true, noPlain: mode == "stls" || mode == "ssl"})
			addr := ps.addr
			if mode == "ssl" {
				addr = ps.tlsAddr
			}
			host, port, _ := net.SplitHostPort(addr)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, python, script, mode, host, port, "alice", "secret", ps.certPEM)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("poplib: %v\nstderr:\n%s", err, stderr.String())
			}
			var r poplibResult
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("poplib output %q: %v", out, err)
			}
			if mode == "stls" {
				if !slices.Contains(r.CapaBeforeTLS, "STLS") || slices.Contains(r.CapaBeforeTLS, "USER") {
					t.Errorf("CAPA before TLS = %v, want STLS and no USER", r.CapaBeforeTLS)
				}
			}
			if _, ok := r.Capa["STLS"]; ok == (mode == "stls" || mode == "ssl") {
				t.Errorf("CAPA (mode %s) lists STLS = %v: %v", mode, ok, r.Capa)
			}
			for _, c := range []string{"TOP", "UIDL", "USER", "RESP-CODES", "PIPELINING"} {
				if _, ok := r.Capa[c]; !ok {
					t.Errorf("CAPA lacks %s: %v", c, r.Capa)
				}
			}
			if !strings.HasPrefix(r.Auth, "+OK") {
				t.Fatalf("login: %q", r.Auth)
			}
			if want := []int{3, 122}; !slices.Equal(r.Stat, want) {
				t.Errorf("STAT = %v, want %v", r.Stat, want)
			}
			if want := []string{"1 48", "2 44", "3 30"}; !slices.Equal(r.List, want) {
				t.Errorf("LIST = %v, want %v", r.List, want)
			}
			if len(r.UIDL) != 3 || !strings.HasPrefix(r.UIDL[0], "1 00000001") || len(r.UIDL[0]) != 18 {
				t.Errorf("UIDL = %v", r.UIDL)
			}
			want := []string{fixtureMsg1, fixtureMsg2, "Subject: three\r\n\r\nline1\r\nline2\r\n"}
			for i, m := range r.Messages {
				got, _ := base64.StdEncoding.DecodeString(m)
				if string(got) != want[i] {
					t.Errorf("RETR %d = %q, want %q", i+1, got, want[i])
				}
			}
			if top, _ := base64.StdEncoding.DecodeString(r.Top1); string(top) != "From: alice@example.org\r\nSubject: one\r\n\r\n" {
				t.Errorf("TOP 1 0 = %q", top)
			}
			if !strings.HasPrefix(r.Dele, "+OK") || !strings.HasPrefix(r.Quit, "+OK") {
				t.Errorf("DELE %q QUIT %q", r.Dele, r.Quit)
			}
			if n := len(inboxUIDs(t, st, "alice")); n != 2 {
				t.Errorf("%d messages in the store after DELE 1 + QUIT, want 2", n)
			}
		})
	}
}

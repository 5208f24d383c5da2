package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
	"github.com/postoffice/postoffice/testsuite"
)

// TestDaemon_proxyProtocolAndMetrics: a POP3 listener with the PROXY
// protocol on takes the client address from the header (the log shows it),
// and /metrics counts the connection, the login and the bytes.
func TestDaemon_proxyProtocolAndMetrics(t *testing.T) {
	data := t.TempDir()
	st := testsuite.NewStoreAt(t, store.Options{DataDir: data})
	testsuite.MustUser(t, st, "alice", "pw")
	st.Close()
	r := startDaemon(t, data, "--proxy-pop3", "--proxy-protocol-nets", "127.0.0.0/8")

	// The address in the header is what plaintext-auth-nets is checked
	// against: a client outside 127.0.0.0/8 may not log in without TLS.
	c0, err := net.DialTimeout("tcp", r.addrs["pop3"].String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c0.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c0, "PROXY TCP4 192.0.2.7 127.0.0.1 40000 110\r\nUSER alice\r\n")
	br0 := bufio.NewReader(c0)
	br0.ReadString('\n')
	if line, _ := br0.ReadString('\n'); !strings.HasPrefix(line, "-ERR [AUTH]") {
		t.Fatalf("client 192.0.2.7 without TLS: %q", line)
	}
	c0.Close()

	c, err := net.DialTimeout("tcp", r.addrs["pop3"].String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "PROXY TCP4 127.0.0.9 127.0.0.1 40001 110\r\n")
	br := bufio.NewReader(c)
	for _, cmd := range []string{"", "USER alice", "PASS pw", "QUIT"} {
		if cmd != "" {
			io.WriteString(c, cmd+"\r\n")
		}
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "+OK") {
			t.Fatalf("after %q: %q %v", cmd, line, err)
		}
	}
	c.Close()

	// Without a header, a connection from a trusted network is dropped.
	c2, err := net.DialTimeout("tcp", r.addrs["pop3"].String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c2, "USER alice\r\n")
	c2.SetDeadline(time.Now().Add(20 * time.Second))
	if line, err := bufio.NewReader(c2).ReadString('\n'); err == nil {
		t.Fatalf("headerless connection got %q", line)
	}
	c2.Close()

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.log.String(), "remote=127.0.0.9:40001") {
		if time.Now().After(deadline) {
			t.Fatalf("client address from the PROXY header not logged:\n%s", r.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// An IMAP login and command are counted too.
	ic, err := net.DialTimeout("tcp", r.addrs["imap"].String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ic.SetDeadline(time.Now().Add(20 * time.Second))
	ibr := bufio.NewReader(ic)
	ibr.ReadString('\n')
	io.WriteString(ic, "a LOGIN alice pw\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
	for {
		line, err := ibr.ReadString('\n')
		if err != nil {
			t.Fatalf("IMAP: %v", err)
		}
		if strings.HasPrefix(line, "c ") {
			break
		}
	}
	ic.Close()
	resp, err := http.Get("http://" + r.addrs["http"].String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`postoffice_connections_total{proto="pop3"} 2`, // the headerless one never reaches the server
		`postoffice_logins_total{proto="pop3",result="ok"} 1`,
		`postoffice_logins_total{proto="imap",result="ok"} 1`,
		`postoffice_commands_total{proto="imap",command="SELECT"} 1`,
		`postoffice_commands_total{proto="pop3",command="USER"} 2`,
		`postoffice_command_duration_seconds_count{proto="pop3",command="PASS"} 1`,
		`postoffice_bytes_sent_total{proto="pop3"}`,
		`postoffice_panics_total{proto="imap"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

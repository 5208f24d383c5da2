package testsuite

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
)

// TestPOP3_inUseAcrossServers runs two pop3d servers, each with its own
// store on one PostgreSQL database and one Maildir tree (two hosts): a
// second session on the other host gets [IN-USE], the first is unharmed,
// its DELE+QUIT reaches the other host's store, and then the other host can
// log in.
func TestPOP3_inUseAcrossServers(t *testing.T) {
	postgresAvailable(t)
	dbURL := NewDatabaseURL(t)
	dataDir := t.TempDir()
	stA := NewStoreAt(t, store.Options{DataDir: dataDir, DatabaseURL: dbURL})
	stB := NewStoreAt(t, store.Options{DataDir: dataDir, DatabaseURL: dbURL})
	MustUser(t, stA, "alice", "secret")
	appendMsg(t, stA, "alice", fixtureMsg1)
	appendMsg(t, stA, "alice", fixtureMsg2)
	srvA := startPOP3(t, stA, pop3Config{})
	srvB := startPOP3(t, stB, pop3Config{})

	a := dialPOP3(t, srvA.addr)
	if l := a.login("alice", "secret"); l != "+OK maildrop has 2 messages (92 octets)" {
		t.Fatalf("login on A: %q", l)
	}
	a.cmd("+OK", "DELE 1")

	b := dialPOP3(t, srvB.addr)
	if l := b.login("alice", "secret"); l != "-ERR [IN-USE] maildrop is locked by another session" {
		t.Fatalf("second login on B: %q", l)
	}
	// The same on A itself.
	a2 := dialPOP3(t, srvA.addr)
	if l := a2.login("alice", "secret"); !strings.HasPrefix(l, "-ERR [IN-USE]") {
		t.Fatalf("second login on A: %q", l)
	}

	// A is unharmed.
	if l := a.cmd("+OK", "STAT"); l != "+OK 1 44" {
		t.Fatalf("STAT on A: %q", l)
	}
	a.cmd("+OK", "RETR 2")
	if got := a.multi(); got != fixtureMsg2 {
		t.Fatalf("RETR 2 on A: %q", got)
	}
	a.cmd("+OK", "QUIT")
	a.expectClosed()

	// B sees the deletion and may log in now (the lock was released before
	// A's +OK).
	b.cmd("+OK", "USER alice")
	if l := b.cmd("+OK", "PASS secret"); l != "+OK maildrop has 1 messages (44 octets)" {
		t.Fatalf("login on B after A quit: %q", l)
	}
	b.cmd("+OK", "QUIT")
	if uids := inboxUIDs(t, stB, "alice"); len(uids) != 1 || uids[0] != 2 {
		t.Fatalf("store B has %v, want [2]", uids)
	}
}

// TestPOP3_dropReleasesLock: a session that goes away without QUIT (on
// PostgreSQL, whose lock is an advisory lock) deletes nothing and frees the
// maildrop for the next session.
func TestPOP3_dropReleasesLock(t *testing.T) {
	Backends(t, func(t *testing.T, backend string) {
		st := NewStore(t, backend)
		MustUser(t, st, "alice", "secret")
		appendMsg(t, st, "alice", fixtureMsg1)
		ps := startPOP3(t, st, pop3Config{})
		c := dialPOP3(t, ps.addr)
		c.login("alice", "secret")
		c.cmd("+OK", "DELE 1")
		c.nc.Close()
		// The server notices the drop asynchronously: retry, bounded.
		deadline := time.Now().Add(10 * time.Second)
		for {
			c2 := dialPOP3(t, ps.addr)
			l := c2.login("alice", "secret")
			if l == "+OK maildrop has 1 messages (48 octets)" {
				c2.cmd("+OK", "QUIT")
				break
			}
			if !strings.HasPrefix(l, "-ERR [IN-USE]") || time.Now().After(deadline) {
				t.Fatalf("login after drop: %q", l)
			}
			c2.nc.Close()
			time.Sleep(10 * time.Millisecond)
		}
		if n := len(inboxUIDs(t, st, "alice")); n != 1 {
			t.Fatalf("%d messages, want 1", n)
		}
	})
}

// TestPOP3_STLS upgrades a connection with STLS (Go's TLS client, the
// certificate verified), checks CAPA no longer lists STLS, that plaintext
// pipelined after STLS is discarded, and that login works over TLS.
func TestPOP3_STLS(t *testing.T) {
	st := NewStore(t, SQLite)
	MustUser(t, st, "alice", "secret")
	appendMsg(t, st, "alice", fixtureMsg1)
	ps := startPOP3(t, st, pop3Config{tls: true, noPlain: true})

	c := dialPOP3(t, ps.addr)
	c.line() // greeting
	c.cmd("-ERR [AUTH]", "USER alice")
	// A command pipelined in plaintext behind STLS must not be run
	// (command injection): it is discarded.
	c.nc.Write([]byte("STLS\r\nUSER mallory\r\n"))
	if l := c.line(); l != "+OK begin TLS negotiation" {
		t.Fatalf("STLS: %q", l)
	}
	tc := tls.Client(c.nc, ps.clientTLS(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c = &pop3Client{t: t, nc: tc, r: newReader(tc)}
	c.send("CAPA")
	if l := c.line(); l != "+OK capability list follows" {
		t.Fatalf("CAPA: %q (a response to the injected command?)", l)
	}
	capa := c.multi()
	if strings.Contains(capa, "STLS") || !strings.Contains(capa, "USER\r\n") {
		t.Fatalf("CAPA over TLS:\n%s", capa)
	}
	c.cmd("-ERR", "STLS")
	// PASS without USER: the injected USER was not taken.
	c.cmd("-ERR USER first", "PASS secret")
	c.cmd("+OK", "USER alice")
	if l := c.cmd("+OK", "PASS secret"); l != "+OK maildrop has 1 messages (48 octets)" {
		t.Fatalf("login: %q", l)
	}
	c.cmd("+OK", "RETR 1")
	if got := c.multi(); got != fixtureMsg1 {
		t.Fatalf("RETR over TLS: %q", got)
	}
	c.cmd("+OK", "QUIT")
}

// TestPOP3_POP3SBadHandshake: a client that never completes the TLS
// handshake on the POP3S port is dropped without a greeting.
func TestPOP3_POP3SBadHandshake(t *testing.T) {
	st := NewStore(t, SQLite)
	ps := startPOP3(t, st, pop3Config{tls: true})
	c := dialPOP3(t, ps.tlsAddr)
	c.nc.Write([]byte("USER alice\r\n"))
	l, err := c.readLine()
	if err == nil {
		t.Fatalf("got %q over a failed handshake", l)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("server did not close the connection")
	}
}

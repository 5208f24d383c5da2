package imapd_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/imapd"
	"github.com/postoffice/postoffice/testsuite"
)

const (
	greetCleartext = "* OK [CAPABILITY IMAP4rev2 IMAP4rev1 SASL-IR LITERAL- STARTTLS LOGINDISABLED] IMAP server ready"
	greetTrusted   = "* OK [CAPABILITY IMAP4rev2 IMAP4rev1 SASL-IR LITERAL- STARTTLS AUTH=PLAIN AUTH=LOGIN] IMAP server ready"
	greetTLS       = "* OK [CAPABILITY IMAP4rev2 IMAP4rev1 SASL-IR LITERAL- AUTH=PLAIN AUTH=LOGIN] IMAP server ready"
	// capsAuthed is everything advertised after login: exactly what is
	// implemented and tested (no LITERAL+, CONDSTORE, QUOTA, ID, ...).
	capsAuthed = "* CAPABILITY IMAP4rev2 IMAP4rev1 SASL-IR LITERAL- UNSELECT ENABLE IDLE UTF8=ACCEPT " +
		"NAMESPACE UIDPLUS ESEARCH SEARCHRES LIST-EXTENDED LIST-STATUS MOVE STATUS=SIZE BINARY CHILDREN " +
		"SPECIAL-USE CREATE-SPECIAL-USE UNAUTHENTICATE APPENDLIMIT=67108864"
)

func TestServer_capabilities(t *testing.T) {
	e := newEnv(t, testsuite.SQLite, envConfig{})
	e.user("alice", "secret")

	c := e.dial()
	c.expect(greetCleartext)
	u := c.ok("CAPABILITY")
	if len(u) != 1 || u[0] != "* CAPABILITY IMAP4rev2 IMAP4rev1 SASL-IR LITERAL- STARTTLS LOGINDISABLED" {
		t.Fatalf("CAPABILITY before TLS: %q", u)
	}

	c = e.dialTLS()
	c.expect(greetTLS)
	c.want("LOGIN alice secret", "OK [CAPABILITY "+strings.TrimPrefix(capsAuthed, "* CAPABILITY ")+"] Logged in")
	u = c.ok("CAPABILITY")
	if len(u) != 1 || u[0] != capsAuthed {
		t.Fatalf("CAPABILITY after login:\n got %q\nwant %q", u, capsAuthed)
	}
}

func TestServer_loginDisabled(t *testing.T) {
	t.Run("untrusted", func(t *testing.T) {
		e := newEnv(t, testsuite.SQLite, envConfig{})
		e.user("alice", "secret")
		c := e.dial()
		c.expect(greetCleartext)
		c.want("LOGIN alice secret", "NO [PRIVACYREQUIRED] *")
		c.want("AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==", "NO [PRIVACYREQUIRED] *")
		c.want("AUTHENTICATE LOGIN", "NO [PRIVACYREQUIRED] *")
		c.want("SELECT INBOX", "BAD *")
	})
	t.Run("trusted", func(t *testing.T) {
		e := newEnv(t, testsuite.SQLite, envConfig{plaintext: true})
		e.user("alice", "secret")
		c := e.dial()
		c.expect(greetTrusted)
		c.want("LOGIN alice secret", "OK *")
	})
}

func TestServer_startTLSThenLogin(t *testing.T) {
	e := newEnv(t, testsuite.SQLite, envConfig{})
	e.user("alice", "secret")
	c := e.dial()
	c.expect(greetCleartext)
	c.want("STARTTLS", "OK Begin TLS negotiation now")
	tc := tls.Client(c.conn, e.clientTLS)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c = newClient(t, tc)
	u := c.ok("CAPABILITY")
	if len(u) != 1 || u[0] != "* CAPABILITY IMAP4rev2 IMAP4rev1 SASL-IR LITERAL- AUTH=PLAIN AUTH=LOGIN" {
		t.Fatalf("CAPABILITY after STARTTLS: %q", u)
	}
	c.want("STARTTLS", "BAD *")
	c.want("LOGIN alice secret", "OK *")
}

func TestServer_startTLSRejectsInjectedCommands(t *testing.T) {
	// CVE-2011-0411-style injection: commands pipelined after STARTTLS in
	// cleartext must not run inside the TLS session.
	e := newEnv(t, testsuite.SQLite, envConfig{})
	e.user("alice", "secret")
	c := e.dial()
	c.expect(greetCleartext)
	c.write("a STARTTLS\r\nb LOGIN alice secret\r\n")
	c.expect("a OK Begin TLS negotiation now")
	tc := tls.Client(c.conn, e.clientTLS)
	// The server treats the injected bytes as a TLS record: the handshake
	// fails, or the login never happens.
	if err := tc.Handshake(); err == nil {
		c = newClient(t, tc)
		c.want("NOOP", "OK *")
		if u, _ := c.cmd("CAPABILITY"); len(u) == 1 && !strings.Contains(u[0], "AUTH=PLAIN") {
			t.Fatalf("injected LOGIN ran: %q", u)
		}
	}
}

func TestServer_implicitTLS(t *testing.T) {
	e := newEnv(t, testsuite.SQLite, envConfig{})
	e.user("alice", "secret")
	c := e.dialTLS()
	c.expect(greetTLS)
	c.want("STARTTLS", "NO *")
	c.want("LOGIN alice wrong", "NO [AUTHENTICATIONFAILED] *")
	c.want("LOGIN alice secret", "OK *")
	c.want("LOGOUT", "OK *")
}

func TestServer_tlsMinVersion(t *testing.T) {
	e := newEnv(t, testsuite.SQLite, envConfig{})
	cfg := e.clientTLS.Clone()
	cfg.MaxVersion = tls.VersionTLS11
	cfg.MinVersion = tls.VersionTLS10
	c, err := tls.Dial("tcp", e.tlsAddr, cfg)
	if err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}

func TestServer_connLimitPerIP(t *testing.T) {
	e := newEnv(t, testsuite.SQLite, envConfig{opts: func(o *imapd.Options) { o.MaxConnsPerIP = 2 }})
	c1 := e.dial()
	c1.expect(greetCleartext)
	c2 := e.dialTLS()
	c2.expect(greetTLS)
	c3 := e.dial()
	c3.expect("* BYE [LIMIT] *")
	c3.expect("<EOF>")
	c4 := e.dialTLS()
	c4.expect("* BYE [LIMIT] *")
	// A slot frees when a connection ends.
	c1.want("LOGOUT", "OK *")
	waitFor(t, func() bool {
		c := e.dial()
		defer c.conn.Close()
		return c.line() == greetCleartext
	})
}

func TestServer_connLimitPerUser(t *testing.T) {
	e := newEnv(t, testsuite.SQLite, envConfig{opts: func(o *imapd.Options) { o.MaxConnsPerUser = 1 }})
	e.user("alice", "secret")
	e.user("bob", "bobpw")
	c1 := e.dialTLS()
	c1.expect(greetTLS)
	c1.want("LOGIN alice secret", "OK *")
	c2 := e.dialTLS()
	c2.expect(greetTLS)
	c2.want("LOGIN alice secret", "NO [LIMIT] *")
	c2.want("LOGIN bob bobpw", "OK *") // other users are not affected
	c1.want("UNAUTHENTICATE", "OK *")  // gives the slot back
	c3 := e.dialTLS()
	c3.expect(greetTLS)
	c3.want("LOGIN alice secret", "OK *")
}

// waitFor polls cond until it holds, for a few seconds: for effects of a
// connection that ends on the server's side after the client saw its last
// response.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServer_oversizedLiteral: a refused literal's data is never executed
// as commands.
func TestServer_oversizedLiteral(t *testing.T) {
	e := newEnv(t, testsuite.SQLite, envConfig{opts: func(o *imapd.Options) { o.AppendLimit = 10000 }})
	e.user("alice", "secret")
	payload := func(n int) string {
		// Every line of the literal is a command that would be visible.
		var b strings.Builder
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, "x%d CREATE pwned%d\r\n", i, i)
		}
		return b.String()[:n]
	}
	login := func() *client {
		c := e.dialTLS()
		c.expect(greetTLS)
		c.want("LOGIN alice secret", "OK *")
		return c
	}
	checkNoPwned := func() {
		t.Helper()
		c := login()
		u := c.ok(`LIST "" "pwned*"`)
		if len(u) != 0 {
			t.Fatalf("literal data ran as commands: %q", u)
		}
		c.ok("LOGOUT")
	}

	t.Run("nonsync over APPENDLIMIT", func(t *testing.T) {
		c := login()
		c.writeMay("a APPEND INBOX {20000+}\r\n" + payload(20000) + "\r\n")
		c.expect("a NO [TOOBIG] *")
		c.expect("<EOF>")
		checkNoPwned()
	})
	t.Run("nonsync over 4096 under APPENDLIMIT", func(t *testing.T) {
		c := login()
		c.writeMay("a APPEND INBOX {5000+}\r\n" + payload(5000) + "\r\n")
		c.expect("a BAD *")
		c.expect("<EOF>")
		checkNoPwned()
	})
	t.Run("nonsync over 4096 in LOGIN", func(t *testing.T) {
		c := e.dialTLS()
		c.expect(greetTLS)
		c.writeMay("a LOGIN {5000+}\r\n" + payload(5000) + " secret\r\n")
		c.expect("a BAD [TOOBIG] *")
		c.expect("<EOF>")
		checkNoPwned()
	})
	t.Run("sync over APPENDLIMIT", func(t *testing.T) {
		c := login()
		c.send("a APPEND INBOX {20000}")
		c.expect("a NO [TOOBIG] *") // no "+": the client must not send it
		c.want("NOOP", "OK *")      // and the connection goes on
		c.ok("LOGOUT")
		checkNoPwned()
	})
	t.Run("small nonsync literals work", func(t *testing.T) {
		c := e.dialTLS()
		c.expect(greetTLS)
		c.write("a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n")
		c.expect("a OK *")
		c.write("b CREATE {4+}\r\nok.1\r\n")
		c.expect("b OK *")
		c.write("c APPEND ok.1 {2+}\r\n\r\n\r\n") // a literal ending in a line break
		c.expect("c OK [APPENDUID *")
		c.want("NOOP", "OK *")
	})
	t.Run("sync literals work", func(t *testing.T) {
		c := e.dialTLS()
		c.expect(greetTLS)
		c.send("a LOGIN {5}")
		c.expect("+ *")
		c.send("alice {6}")
		c.expect("+ *")
		c.send("secret")
		c.expect("a OK *")
		// A literal whose data looks like an oversized literal header
		// is data, not a header.
		c.send("b CREATE {8}")
		c.expect("+ *")
		c.send("{99999+}")
		c.expect("b * *")
		c.want("NOOP", "OK *")
	})
}

func TestServer_shutdown(t *testing.T) {
	e := newEnv(t, testsuite.SQLite, envConfig{plaintext: true})
	e.user("alice", "secret")
	idle := e.dial()
	idle.expect(greetTrusted)
	idle.want("LOGIN alice secret", "OK *")
	pre := e.dialTLS()
	pre.expect(greetTLS)
	idling := e.dialTLS()
	idling.expect(greetTLS)
	idling.want("LOGIN alice secret", "OK *")
	idling.ok("SELECT INBOX")
	idling.send("i IDLE")
	idling.expect("+ idling")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	idle.expect("* BYE *")
	idle.expect("<EOF>")
	pre.expect("* BYE *")
	pre.expect("<EOF>")
	idling.skipTo("* BYE *") // "i OK IDLE completed" may come first
	idling.expect("<EOF>")
	if _, err := net.DialTimeout("tcp", e.addr, time.Second); err == nil {
		t.Fatal("listener still open after Shutdown")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := e.srv.Serve(ln); !errors.Is(err, imapd.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func TestServer_newValidates(t *testing.T) {
	if _, err := imapd.New(imapd.Options{}); err == nil {
		t.Fatal("New without Store succeeded")
	}
	st := testsuite.NewStore(t, testsuite.SQLite)
	if _, err := imapd.New(imapd.Options{Store: st}); err == nil {
		t.Fatal("New without Auth succeeded")
	}
}

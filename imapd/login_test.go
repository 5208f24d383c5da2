package imapd_test

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/postoffice/postoffice/auth"
	"github.com/postoffice/postoffice/imapd"
	"github.com/postoffice/postoffice/testsuite"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestLogin_authenticate(t *testing.T) {
	e := newEnv(t, testsuite.SQLite, envConfig{})
	e.user("alice", "secret")
	e.user("bob", "bobpw")
	conn := func() *client {
		c := e.dialTLS()
		c.expect(greetTLS)
		return c
	}

	t.Run("PLAIN with SASL-IR", func(t *testing.T) {
		c := conn()
		c.want("AUTHENTICATE PLAIN "+b64("\x00alice\x00secret"), "OK [CAPABILITY IMAP4rev2 *")
		c.want("LOGIN alice secret", "BAD *") // already authenticated
	})
	t.Run("PLAIN without SASL-IR", func(t *testing.T) {
		c := conn()
		c.send("a AUTHENTICATE PLAIN")
		c.expect("+*")
		c.send(b64("alice\x00alice\x00secret")) // identity = user is fine
		c.expect("a OK *")
	})
	t.Run("PLAIN other identity", func(t *testing.T) {
		c := conn()
		c.want("AUTHENTICATE PLAIN "+b64("bob\x00alice\x00secret"), "NO [AUTHORIZATIONFAILED] *")
	})
	t.Run("PLAIN wrong password", func(t *testing.T) {
		c := conn()
		c.want("AUTHENTICATE PLAIN "+b64("\x00alice\x00nope"), "NO [AUTHENTICATIONFAILED] *")
		c.want("AUTHENTICATE PLAIN "+b64("\x00alice\x00secret"), "OK *")
	})
	t.Run("PLAIN malformed", func(t *testing.T) {
		c := conn()
		c.want("AUTHENTICATE PLAIN "+b64("alice"), "BAD *")
		c.want("AUTHENTICATE PLAIN =", "BAD *") // RFC 4959 empty initial response
		// deviation (library): an initial response that is not base64 is
		// answered NO [SERVERBUG] before our code runs.
		c.want("AUTHENTICATE PLAIN !!!", "NO *")
		c.want("NOOP", "OK *")
	})
	t.Run("cancel", func(t *testing.T) {
		c := conn()
		c.send("a AUTHENTICATE PLAIN")
		c.expect("+*")
		c.send("*")
		c.expect("a BAD *")
		c.want("LOGIN alice secret", "OK *")
	})
	t.Run("LOGIN", func(t *testing.T) {
		c := conn()
		c.send("a AUTHENTICATE LOGIN")
		c.expect("+ " + b64("Username:"))
		c.send(b64("alice"))
		c.expect("+ " + b64("Password:"))
		c.send(b64("secret"))
		if l := c.expect("a OK [CAPABILITY *"); !strings.HasSuffix(l, "] LOGIN authentication successful") {
			t.Errorf("AUTHENTICATE LOGIN: %s", l)
		}
	})
	t.Run("LOGIN with SASL-IR", func(t *testing.T) {
		c := conn()
		c.send("a AUTHENTICATE LOGIN " + b64("bob"))
		c.expect("+ " + b64("Password:"))
		c.send(b64("wrong"))
		c.expect("a NO [AUTHENTICATIONFAILED] *")
	})
	t.Run("unsupported mechanism", func(t *testing.T) {
		c := conn()
		c.want("AUTHENTICATE CRAM-MD5", "NO *")
		c.want("AUTHENTICATE XOAUTH2 "+b64("x"), "NO *")
		c.want("NOOP", "OK *")
	})
	t.Run("imapclient", func(t *testing.T) {
		c := e.imapClient("bob", "bobpw")
		if err := c.Unauthenticate().Wait(); err != nil {
			t.Fatal(err)
		}
		if err := c.Authenticate(sasl.NewPlainClient("", "alice", "secret")); err != nil {
			t.Fatalf("AUTHENTICATE PLAIN: %v", err)
		}
	})
}

func TestLogin_disabledAndUnknown(t *testing.T) {
	e := newEnv(t, testsuite.SQLite, envConfig{})
	e.user("alice", "secret")
	if err := e.st.SetDisabled(context.Background(), "alice", true); err != nil {
		t.Fatal(err)
	}
	c := e.dialTLS()
	c.expect(greetTLS)
	c.want("LOGIN alice secret", "NO [AUTHENTICATIONFAILED] *")
	c.want("LOGIN nobody secret", "NO [AUTHENTICATIONFAILED] *")
	c.want(`LOGIN "" ""`, "NO [AUTHENTICATIONFAILED] *")
}

// TestLogin_throttled: a locked-out login is visible as NO [UNAVAILABLE],
// even with the right password, and the metrics count it.
func TestLogin_throttled(t *testing.T) {
	e := newEnv(t, testsuite.SQLite, envConfig{throttle: auth.ThrottleOptions{
		FreeFailures: -1, BaseDelay: -1, UserLimit: 2, IPLimit: -1, Lockout: time.Hour,
	}})
	e.user("alice", "secret")
	c := e.dialTLS()
	c.expect(greetTLS)
	c.want("LOGIN alice wrong1", "NO [AUTHENTICATIONFAILED] *")
	c.want("LOGIN alice wrong2", "NO [AUTHENTICATIONFAILED] *")
	c.want("LOGIN alice secret", "NO [UNAVAILABLE] *")
	c.want("AUTHENTICATE PLAIN "+b64("\x00alice\x00secret"), "NO [UNAVAILABLE] *")
}

func TestLogin_specialFolders(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		e := newEnv(t, testsuite.SQLite, envConfig{})
		e.user("alice", "secret")
		c := e.imapClient("alice", "secret")
		got := listAttrs(t, c, "*")
		want := map[string][]imap.MailboxAttr{
			"INBOX":   {imap.MailboxAttrHasNoChildren},
			"Archive": {imap.MailboxAttrHasNoChildren, imap.MailboxAttrArchive},
			"Drafts":  {imap.MailboxAttrHasNoChildren, imap.MailboxAttrDrafts},
			"Junk":    {imap.MailboxAttrHasNoChildren, imap.MailboxAttrJunk},
			"Sent":    {imap.MailboxAttrHasNoChildren, imap.MailboxAttrSent},
			"Trash":   {imap.MailboxAttrHasNoChildren, imap.MailboxAttrTrash},
		}
		checkAttrs(t, got, want)
		// They are subscribed (LSUB lists them).
		subs := listAttrsOpts(t, c, "*", &imap.ListOptions{SelectSubscribed: true})
		for _, n := range []string{"Archive", "Drafts", "Junk", "Sent", "Trash"} {
			if _, ok := subs[n]; !ok {
				t.Errorf("%s not subscribed", n)
			}
		}
		// A folder the user deletes stays deleted at the next login.
		if err := c.Delete("Junk").Wait(); err != nil {
			t.Fatal(err)
		}
		c2 := e.imapClient("alice", "secret")
		if _, ok := listAttrs(t, c2, "*")["Junk"]; ok {
			t.Error("Junk recreated at the second login")
		}
	})
	t.Run("configured", func(t *testing.T) {
		e := newEnv(t, testsuite.SQLite, envConfig{opts: func(o *imapd.Options) {
			o.SpecialFolders = map[string]string{`\Sent`: "Sent Items", `\Trash`: "Deleted Items", `\Junk`: ""}
		}})
		e.user("alice", "secret")
		c := e.imapClient("alice", "secret")
		checkAttrs(t, listAttrs(t, c, "*"), map[string][]imap.MailboxAttr{
			"INBOX":         {imap.MailboxAttrHasNoChildren},
			"Sent Items":    {imap.MailboxAttrHasNoChildren, imap.MailboxAttrSent},
			"Deleted Items": {imap.MailboxAttrHasNoChildren, imap.MailboxAttrTrash},
		})
	})
	t.Run("invalid", func(t *testing.T) {
		st := testsuite.NewStore(t, testsuite.SQLite)
		v, err := auth.New(auth.Options{Lookup: func(context.Context, string) (string, bool, bool, error) {
			return "", false, false, nil
		}, Argon2: testsuite.CheapParams()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = imapd.New(imapd.Options{Store: st, Auth: v, SpecialFolders: map[string]string{`\All`: "All"}})
		if err == nil {
			t.Fatal(`New accepted \All as a special folder`)
		}
	})
}

func TestLogin_unauthenticate(t *testing.T) {
	e := newEnv(t, testsuite.SQLite, envConfig{})
	e.user("alice", "secret")
	e.user("bob", "bobpw")
	c := e.dialTLS()
	c.expect(greetTLS)
	c.want("UNAUTHENTICATE", "BAD *")
	c.want("LOGIN alice secret", "OK *")
	c.ok("CREATE alicefolder")
	c.ok("SELECT INBOX")
	c.want("UNAUTHENTICATE", "OK *")
	c.want(`LIST "" *`, "BAD *")
	c.want("LOGIN bob bobpw", "OK *")
	u := c.ok(`LIST "" *`)
	if strings.Contains(strings.Join(u, "\n"), "alicefolder") {
		t.Fatalf("bob sees alice's folder after UNAUTHENTICATE: %q", u)
	}
}

func checkAttrs(t *testing.T, got, want map[string][]imap.MailboxAttr) {
	t.Helper()
	for name, attrs := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s not listed", name)
			continue
		}
		slices.Sort(g)
		w := slices.Clone(attrs)
		slices.Sort(w)
		if !slices.Equal(g, w) {
			t.Errorf("%s: attributes %v, want %v", name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected mailbox %q listed", name)
		}
	}
}

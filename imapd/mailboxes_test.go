package imapd_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postoffice/postoffice/imapd"
	"github.com/postoffice/postoffice/store"
	"github.com/postoffice/postoffice/testsuite"
)

// listAttrs returns LIST "" pattern as name → attributes.
func listAttrs(t *testing.T, c *imapclient.Client, pattern string) map[string][]imap.MailboxAttr {
	t.Helper()
	return listAttrsOpts(t, c, pattern, nil)
}

func listAttrsOpts(t *testing.T, c *imapclient.Client, pattern string, o *imap.ListOptions) map[string][]imap.MailboxAttr {
	t.Helper()
	l, err := c.List("", pattern, o).Collect()
	if err != nil {
		t.Fatalf("LIST %q: %v", pattern, err)
	}
	m := map[string][]imap.MailboxAttr{}
	for _, d := range l {
		if d.Delim != '.' {
			t.Errorf("%s: delimiter %q", d.Mailbox, d.Delim)
		}
		m[d.Mailbox] = d.Attrs
	}
	return m
}

func names(m map[string][]imap.MailboxAttr) []string {
	var n []string
	for k := range m {
		n = append(n, k)
	}
	slices.Sort(n)
	return n
}

// noSpecial disables the first-login folders, so listings stay small.
func noSpecial(o *imapd.Options) { o.SpecialFolders = map[string]string{} }

func appendRaw(t *testing.T, st *store.Store, user *store.User, mailbox, raw string, flags store.Flags) {
	t.Helper()
	ctx := context.Background()
	mb, err := st.Mailbox(ctx, user.ID, mailbox)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, mb.ID, strings.NewReader(raw), flags, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestMailboxes_list(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, envConfig{opts: noSpecial})
		e.user("alice", "secret")
		c := e.imapClient("alice", "secret")
		for _, n := range []string{"Work", "Work.2024", "Work.2024.Q1", "Travel"} {
			if err := c.Create(n, nil).Wait(); err != nil {
				t.Fatalf("CREATE %s: %v", n, err)
			}
		}
		if err := c.Create("Sent", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrSent}}).Wait(); err != nil {
			t.Fatal(err)
		}
		if err := c.Subscribe("Work.2024").Wait(); err != nil {
			t.Fatal(err)
		}

		checkAttrs(t, listAttrs(t, c, "*"), map[string][]imap.MailboxAttr{
			"INBOX":        {imap.MailboxAttrHasNoChildren},
			"Sent":         {imap.MailboxAttrHasNoChildren, imap.MailboxAttrSent},
			"Travel":       {imap.MailboxAttrHasNoChildren},
			"Work":         {imap.MailboxAttrHasChildren},
			"Work.2024":    {imap.MailboxAttrHasChildren},
			"Work.2024.Q1": {imap.MailboxAttrHasNoChildren},
		})
		if got := names(listAttrs(t, c, "%")); !slices.Equal(got, []string{"INBOX", "Sent", "Travel", "Work"}) {
			t.Errorf(`LIST "" %%: %q`, got)
		}
		if got := names(listAttrs(t, c, "Work.%")); !slices.Equal(got, []string{"Work.2024"}) {
			t.Errorf(`LIST "" Work.%%: %q`, got)
		}
		if got := names(listAttrs(t, c, "*Q1")); !slices.Equal(got, []string{"Work.2024.Q1"}) {
			t.Errorf(`LIST "" *Q1: %q`, got)
		}
		if got := names(listAttrs(t, c, "inBox")); !slices.Equal(got, []string{"INBOX"}) {
			t.Errorf(`LIST "" inBox: %q`, got)
		}
		// Reference argument.
		l, err := c.List("Work", "%", nil).Collect()
		if err != nil || len(l) != 1 || l[0].Mailbox != "Work.2024" {
			t.Errorf(`LIST Work %%: %v %v`, l, err)
		}

		// LIST-EXTENDED selection and return options.
		checkAttrs(t, listAttrsOpts(t, c, "*", &imap.ListOptions{SelectSubscribed: true}), map[string][]imap.MailboxAttr{
			"INBOX":     {imap.MailboxAttrHasNoChildren, imap.MailboxAttrSubscribed}, // subscribed from the start
			"Work.2024": {imap.MailboxAttrHasChildren, imap.MailboxAttrSubscribed},
		})
		rm, err := c.List("", "W%", &imap.ListOptions{SelectSubscribed: true, SelectRecursiveMatch: true}).Collect()
		if err != nil || len(rm) != 1 || rm[0].Mailbox != "Work" || rm[0].ChildInfo == nil || !rm[0].ChildInfo.Subscribed {
			t.Errorf("LIST (SUBSCRIBED RECURSIVEMATCH) %%: %+v %v", rm, err)
		}
		checkAttrs(t, listAttrsOpts(t, c, "*", &imap.ListOptions{SelectSpecialUse: true}), map[string][]imap.MailboxAttr{
			"Sent": {imap.MailboxAttrHasNoChildren, imap.MailboxAttrSent},
		})
		sub := listAttrsOpts(t, c, "Work*", &imap.ListOptions{ReturnSubscribed: true})
		if !slices.Contains(sub["Work.2024"], imap.MailboxAttrSubscribed) || slices.Contains(sub["Work"], imap.MailboxAttrSubscribed) {
			t.Errorf("RETURN (SUBSCRIBED): %v", sub)
		}

		// LIST-STATUS.
		u, _ := e.st.User(context.Background(), "alice")
		appendRaw(t, e.st, u, "Travel", "Subject: a\r\n\r\nhello\r\n", 0)
		appendRaw(t, e.st, u, "Travel", "Subject: b\r\n\r\nhi\r\n", store.FlagSeen)
		ls, err := c.List("", "*", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{
			NumMessages: true, NumUnseen: true, Size: true, UIDNext: true, UIDValidity: true,
		}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ls {
			if d.Status == nil {
				t.Errorf("%s: no STATUS", d.Mailbox)
				continue
			}
			if d.Mailbox == "Travel" {
				st := d.Status
				if *st.NumMessages != 2 || *st.NumUnseen != 1 || *st.Size != int64(len("Subject: a\r\n\r\nhello\r\n")+len("Subject: b\r\n\r\nhi\r\n")) || st.UIDNext != 3 || st.UIDValidity == 0 {
					t.Errorf("Travel STATUS: messages %d unseen %d size %d uidnext %d", *st.NumMessages, *st.NumUnseen, *st.Size, st.UIDNext)
				}
			}
		}
	})
}

func TestMailboxes_listRaw(t *testing.T) {
	e := newEnv(t, testsuite.SQLite, envConfig{opts: noSpecial})
	e.user("alice", "secret")
	c := e.dialTLS()
	c.expect(greetTLS)
	c.ok("LOGIN alice secret")
	if u := c.ok(`LIST "" ""`); !slices.Equal(u, []string{`* LIST (\Noselect) "." ""`}) {
		t.Errorf(`LIST "" "": %q`, u)
	}
	c.ok("CREATE a.b")
	if u := c.ok(`LSUB "" a*`); len(u) != 0 {
		t.Errorf("LSUB: %q", u)
	}
	c.ok("SUBSCRIBE a.b")
	if u := c.ok(`LSUB "" a*`); !slices.Equal(u, []string{`* LSUB (\HasNoChildren \Subscribed) "." "a.b"`}) {
		t.Errorf("LSUB: %q", u)
	}
	c.ok("UNSUBSCRIBE a.b")
	c.want("SUBSCRIBE nosuch", "NO [NONEXISTENT] *")
	// LIST-STATUS items we cannot answer are refused, not crashed on.
	c.want(`LIST "" * RETURN (STATUS (DELETED-STORAGE))`, "BAD *")
	c.want(`STATUS INBOX (DELETED-STORAGE)`, "BAD *")
	c.want(`LIST (BOGUS) "" *`, "BAD *")
	// Pathological patterns are cheap.
	start := time.Now()
	c.ok(`LIST "" "` + strings.Repeat("*a%", 80) + `b"`)
	c.want(`LIST "" "`+strings.Repeat("a", 300)+`"`, "BAD *")
	c.want(`LIST "" (`+strings.Repeat("a ", 17)+`)`, "BAD *")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("pathological LIST took %v", d)
	}
	u := c.ok(`LIST "" * RETURN (CHILDREN SPECIAL-USE)`)
	if !slices.Contains(u, `* LIST (\HasChildren) "." "a"`) || !slices.Contains(u, `* LIST (\HasNoChildren) "." "a.b"`) {
		t.Errorf("LIST RETURN (CHILDREN): %q", u)
	}
}

func TestMailboxes_status(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, envConfig{opts: noSpecial})
		u := e.user("alice", "secret")
		m1 := "Subject: one\r\n\r\nbody\r\n"
		m2 := "Subject: two\n\nLF body\n" // CRLF size counts
		appendRaw(t, e.st, u, "INBOX", m1, store.FlagSeen|store.FlagDeleted)
		appendRaw(t, e.st, u, "INBOX", m2, 0)
		c := e.imapClient("alice", "secret")
		st, err := c.Status("INBOX", &imap.StatusOptions{
			NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true,
			NumDeleted: true, Size: true, AppendLimit: true,
		}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		wantSize := int64(len(m1) + len(m2) + 3)
		if *st.NumMessages != 2 || st.UIDNext != 3 || st.UIDValidity == 0 || *st.NumUnseen != 1 ||
			*st.NumDeleted != 1 || *st.Size != wantSize || st.AppendLimit == nil || *st.AppendLimit != imapd.DefaultAppendLimit {
			t.Errorf("STATUS: %+v (size %d, want %d)", st, *st.Size, wantSize)
		}
		if _, err := c.Status("Nosuch", &imap.StatusOptions{NumMessages: true}).Wait(); !hasCode(err, imap.ResponseCodeNonExistent) {
			t.Errorf("STATUS Nosuch: %v", err)
		}
	})
}

func hasCode(err error, code imap.ResponseCode) bool {
	ie, ok := err.(*imap.Error)
	return ok && ie.Code == code
}

func TestMailboxes_namespace(t *testing.T) {
	e := newEnv(t, testsuite.SQLite, envConfig{opts: noSpecial})
	e.user("alice", "secret")
	c := e.imapClient("alice", "secret")
	ns, err := c.Namespace().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.Personal) != 1 || ns.Personal[0].Prefix != "" || ns.Personal[0].Delim != '.' || ns.Other != nil || ns.Shared != nil {
		t.Errorf("NAMESPACE: %+v", ns)
	}
}

func TestMailboxes_createDeleteRename(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, envConfig{opts: noSpecial})
		u := e.user("alice", "secret")
		c := e.dialTLS()
		c.expect(greetTLS)
		c.ok("LOGIN alice secret")

		c.ok("CREATE Projects.")  // declares children: creates Projects
		c.ok("CREATE Projects.A") // children
		c.ok("CREATE Projects.A.x")
		c.want("CREATE Projects", "NO [ALREADYEXISTS] *")
		c.want("CREATE inbox", "NO *")
		c.ok(`CREATE Arch (USE (\Archive))`)
		c.want(`CREATE All (USE (\All))`, "NO [USEATTR] *")
		c.want(`CREATE Two (USE (\Sent \Trash))`, "NO [USEATTR] *")
		c.want(`CREATE Bad (USE (\Nonsense))`, "NO [USEATTR] *")
		if u := c.ok(`LIST "" Arch`); !slices.Equal(u, []string{`* LIST (\HasNoChildren \Archive) "." "Arch"`}) {
			t.Errorf("LIST Arch: %q", u)
		}

		c.want("DELETE INBOX", "NO [CANNOT] *")
		c.want("DELETE Projects", "NO [HASCHILDREN] *")
		c.want("DELETE Nosuch", "NO [NONEXISTENT] *")
		c.want("RENAME Nosuch Other", "NO [NONEXISTENT] *")
		c.want("RENAME Projects Arch", "NO [ALREADYEXISTS] *")

		// RENAME carries children along.
		c.ok("RENAME Projects Done")
		lines := c.ok(`LIST "" *`)
		got := strings.Join(lines, "\n")
		for _, n := range []string{` "Done"`, ` "Done.A"`, ` "Done.A.x"`} {
			if !strings.Contains(got+"\n", n) {
				t.Errorf("after RENAME, %q missing: %s", n, got)
			}
		}
		if strings.Contains(got, "Projects") {
			t.Errorf("after RENAME, Projects still listed: %s", got)
		}
		c.ok("DELETE Done.A.x")
		c.ok("DELETE Done.A")
		c.ok("DELETE Done")

		// RENAME INBOX moves the messages and leaves INBOX empty.
		appendRaw(t, e.st, u, "INBOX", "Subject: x\r\n\r\nx\r\n", 0)
		c.ok("RENAME INBOX Old")
		if u := c.ok("STATUS INBOX (MESSAGES)"); !slices.Equal(u, []string{"* STATUS INBOX (MESSAGES 0)"}) {
			t.Errorf("INBOX after RENAME: %q", u)
		}
		if u := c.ok("STATUS Old (MESSAGES)"); !slices.Equal(u, []string{`* STATUS "Old" (MESSAGES 1)`}) {
			t.Errorf("Old after RENAME INBOX: %q", u)
		}
	})
}

func TestMailboxes_hostileNames(t *testing.T) {
	e := newEnv(t, testsuite.SQLite, envConfig{opts: noSpecial})
	e.user("alice", "secret")
	c := e.dialTLS()
	c.expect(greetTLS)
	c.ok("LOGIN alice secret")
	for _, name := range []string{`"../x"`, `"a..b"`, `".a"`, `"a/b"`, `".."`, `"..."`, `"/etc/passwd"`, `"a.b/../../c"`} {
		_, done := c.cmd("CREATE " + name)
		if !strings.HasPrefix(done, "NO ") && !strings.HasPrefix(done, "BAD ") {
			t.Errorf("CREATE %s: %s", name, done)
		}
	}
	// Names the library cannot decode (control characters, NUL, broken
	// modified UTF-7): it answers NO and may close the connection (known
	// limit), so each gets its own connection.
	for _, raw := range []string{"a\x00b", "a\x01b", "a\x7fb", "tab\there", "&Jjo", "&AGE-"} {
		c2 := e.dialTLS()
		c2.expect(greetTLS)
		c2.ok("LOGIN alice secret")
		c2.send("x CREATE {" + strconv.Itoa(len(raw)) + "}")
		c2.expect("+ *")
		c2.send(raw)
		l := c2.line()
		if !strings.HasPrefix(l, "x NO ") && !strings.HasPrefix(l, "x BAD ") {
			t.Errorf("CREATE %q: %s", raw, l)
		}
	}
	c.want(`RENAME INBOX "../../x"`, "NO *")
	c.want(`STATUS "../alice" (MESSAGES)`, "NO *")
	if u := c.ok(`LIST "" *`); !slices.Equal(u, []string{`* LIST (\HasNoChildren) "." INBOX`}) {
		t.Errorf("mailboxes after hostile names: %q", u)
	}
}

func TestMailboxes_utf8Names(t *testing.T) {
	e := newEnv(t, testsuite.SQLite, envConfig{opts: noSpecial})
	e.user("alice", "secret")
	c := e.dialTLS()
	c.expect(greetTLS)
	c.ok("LOGIN alice secret")
	c.ok("CREATE &ZeVnLIqe-")                      // 日本語 in modified UTF-7
	c.ok(`CREATE "Überweisung"`)                   // raw UTF-8
	c.ok(`CREATE "Tom &- Jerry"`)                  // "&" escaped
	c.want(`CREATE "日本語"`, "NO [ALREADYEXISTS] *") // the same name both ways
	u := c.ok(`LIST "" *`)
	for _, want := range []string{`* LIST (\HasNoChildren) "." "&ZeVnLIqe-"`, `* LIST (\HasNoChildren) "." "&ANw-berweisung"`, `* LIST (\HasNoChildren) "." "Tom &- Jerry"`} {
		if !slices.Contains(u, want) {
			t.Errorf("LIST without UTF8=ACCEPT lacks %q: %q", want, u)
		}
	}
	c.ok("ENABLE UTF8=ACCEPT")
	// deviation (library): "&" stays "&-" after UTF8=ACCEPT, matching the
	// library's unconditional modified UTF-7 decoding of names.
	u = c.ok(`LIST "" *`)
	for _, want := range []string{`* LIST (\HasNoChildren) "." "日本語"`, `* LIST (\HasNoChildren) "." "Überweisung"`, `* LIST (\HasNoChildren) "." "Tom &- Jerry"`} {
		if !slices.Contains(u, want) {
			t.Errorf("LIST with UTF8=ACCEPT lacks %q: %q", want, u)
		}
	}
	c.ok(`STATUS "日本語" (MESSAGES)`)
}

// TestMailboxes_isolation: a user never sees, opens or changes another
// user's folders.
func TestMailboxes_isolation(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, envConfig{opts: noSpecial})
		e.user("alice", "secret")
		e.user("bob", "bobpw")
		a := e.dialTLS()
		a.expect(greetTLS)
		a.ok("LOGIN alice secret")
		a.ok("CREATE Secret")
		a.ok("CREATE Secret.Deep")

		b := e.dialTLS()
		b.expect(greetTLS)
		b.ok("LOGIN bob bobpw")
		if u := b.ok(`LIST "" *`); !slices.Equal(u, []string{`* LIST (\HasNoChildren) "." INBOX`}) {
			t.Errorf("bob's LIST: %q", u)
		}
		for _, cmd := range []string{"STATUS Secret (MESSAGES)", "SELECT Secret", "EXAMINE Secret", "DELETE Secret", "RENAME Secret Mine", "SUBSCRIBE Secret", "DELETE Secret.Deep"} {
			b.want(cmd, "NO *")
		}
		for _, cmd := range []string{`STATUS "../alice" (MESSAGES)`, `SELECT "~alice"`, `STATUS "alice.Secret" (MESSAGES)`, `LIST "" "../*"`, `LIST "~alice" *`} {
			u, done := b.cmd(cmd)
			if strings.Contains(strings.Join(u, " "), "Secret") || (!strings.HasPrefix(done, "NO") && !strings.HasPrefix(done, "OK") && !strings.HasPrefix(done, "BAD")) {
				t.Errorf("bob %s: %q %s", cmd, u, done)
			}
		}
		b.ok("CREATE Secret") // his own, independent
		if u := a.ok(`STATUS Secret (MESSAGES)`); len(u) != 1 {
			t.Errorf("alice's Secret: %q", u)
		}
		if u := a.ok(`LIST "" *`); len(u) != 3 {
			t.Errorf("alice's LIST: %q", u)
		}
	})
}

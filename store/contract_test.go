package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
	"github.com/postoffice/postoffice/testsuite"
)

// The store contract: every test here runs against both index backends.

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const lfMsg = "From: Alice <alice@example.org>\nTo: bob@example.org\nSubject: hello\nDate: Mon, 02 Jan 2006 15:04:05 +0000\nMessage-ID: <1@example.org>\n\nline one\nline two\n"

func uidsOf(list []store.MessageInfo) []store.UID {
	out := make([]store.UID, len(list))
	for i, m := range list {
		out[i] = m.UID
	}
	return out
}

func mustList(t *testing.T, st *store.Store, id store.MailboxID) []store.MessageInfo {
	t.Helper()
	ctx := ctxT(t)
	if err := st.Sync(ctx, id); err != nil {
		t.Fatalf("sync: %v", err)
	}
	l, _, err := st.List(ctx, id)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	return l
}

func inbox(t *testing.T, st *store.Store, u *store.User) *store.Mailbox {
	t.Helper()
	m, err := st.Mailbox(ctxT(t), u.ID, "inbox")
	if err != nil {
		t.Fatalf("inbox: %v", err)
	}
	return m
}

// watchInbox returns the INBOX of u and a watch on its change feed, which
// the caller closes.
func watchInbox(t *testing.T, st *store.Store, u *store.User) (*store.Mailbox, *store.Watch) {
	t.Helper()
	in := inbox(t, st, u)
	w, err := st.Watch(ctxT(t), in.ID)
	if err != nil {
		t.Fatal(err)
	}
	return in, w
}

func TestUsers_contract(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		st := testsuite.NewStore(t, backend)
		ctx := ctxT(t)
		u := testsuite.MustUser(t, st, "alice@example.org", "pw")
		if _, err := st.CreateUser(ctx, store.User{Name: "alice@example.org", PasswordHash: "x"}); !errors.Is(err, store.ErrUserExists) {
			t.Fatalf("duplicate user: got %v, want ErrUserExists", err)
		}
		for _, bad := range []string{"", "../etc", "a/b", ".hidden", "a b", "x\x00y"} {
			if _, err := st.CreateUser(ctx, store.User{Name: bad, PasswordHash: "x"}); err == nil {
				t.Errorf("CreateUser(%q) succeeded", bad)
			}
		}
		if _, err := st.User(ctx, "nobody"); !errors.Is(err, store.ErrNoUser) {
			t.Fatalf("unknown user: %v", err)
		}
		if err := st.SetDisabled(ctx, u.Name, true); err != nil {
			t.Fatal(err)
		}
		if _, dis, err := st.PasswordHash(ctx, u.Name); err != nil || !dis {
			t.Fatalf("disabled: %v %v", dis, err)
		}
		if err := st.SetQuota(ctx, u.Name, 1000, 5); err != nil {
			t.Fatal(err)
		}
		if err := st.SetPassword(ctx, "nobody", "x"); !errors.Is(err, store.ErrNoUser) {
			t.Fatalf("set password of unknown: %v", err)
		}
		if err := st.RecordLogin(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		got, err := st.User(ctx, u.Name)
		if err != nil || got.QuotaBytes != 1000 || got.QuotaMessages != 5 || got.LastLoginAt.IsZero() {
			t.Fatalf("user after updates: %+v %v", got, err)
		}
		if !strings.HasSuffix(st.MaildirPath(got), filepath.Join("alice@example.org", "Maildir")) {
			t.Fatalf("maildir path %s", st.MaildirPath(got))
		}
		users, err := st.Users(ctx)
		if err != nil || len(users) != 1 {
			t.Fatalf("users: %v %v", users, err)
		}
		if err := st.DeleteUser(ctx, u.Name, true); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(st.MaildirPath(got)); !os.IsNotExist(err) {
			t.Fatalf("maildir not purged: %v", err)
		}
	})
}

func TestMailboxes_contract(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		st := testsuite.NewStore(t, backend)
		ctx := ctxT(t)
		u := testsuite.MustUser(t, st, "alice", "pw")
		root := testsuite.Maildir(t, st, "alice")
		if _, err := st.CreateMailbox(ctx, u.ID, "Archive.2024", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateMailbox(ctx, u.ID, "Entwürfe", `\Drafts`); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(root, ".Entw&APw-rfe", "maildirfolder")); err != nil {
			t.Fatalf("mUTF-7 folder on disk: %v", err)
		}
		if _, err := st.CreateMailbox(ctx, u.ID, "Archive", ""); !errors.Is(err, store.ErrMailboxExists) {
			t.Fatalf("parent should have been created: %v", err)
		}
		for _, bad := range []string{"../x", "a/b", "a..b", ".a", "a.", "", "x\x00"} {
			if _, err := st.CreateMailbox(ctx, u.ID, bad, ""); !errors.Is(err, store.ErrBadMailboxName) {
				t.Errorf("CreateMailbox(%q): %v", bad, err)
			}
		}
		names := func() []string {
			l, err := st.Mailboxes(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			var n []string
			for _, m := range l {
				n = append(n, m.Name)
			}
			return n
		}
		if got := names(); !slices.Equal(got, []string{"INBOX", "Archive", "Archive.2024", "Entwürfe"}) {
			t.Fatalf("mailboxes: %v", got)
		}
		// A folder made by another tool is adopted.
		if err := os.MkdirAll(filepath.Join(root, ".Other", "cur"), 0o700); err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(root, ".Other", "new"), 0o700)
		os.MkdirAll(filepath.Join(root, ".Other", "tmp"), 0o700)
		if got := names(); !slices.Contains(got, "Other") {
			t.Fatalf("outside folder not adopted: %v", got)
		}
		if err := st.DeleteMailbox(ctx, u.ID, "Archive"); !errors.Is(err, store.ErrMailboxHasChild) {
			t.Fatalf("delete parent: %v", err)
		}
		if err := st.DeleteMailbox(ctx, u.ID, "INBOX"); !errors.Is(err, store.ErrCannot) {
			t.Fatalf("delete INBOX: %v", err)
		}
		a, _ := st.Mailbox(ctx, u.ID, "Archive.2024")
		if _, err := st.Append(ctx, a.ID, strings.NewReader(lfMsg), 0, nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := st.RenameMailbox(ctx, u.ID, "Archive", "Old.Stuff"); err != nil {
			t.Fatal(err)
		}
		if got := names(); !slices.Equal(got, []string{"INBOX", "Entwürfe", "Old", "Old.Stuff", "Old.Stuff.2024", "Other"}) {
			t.Fatalf("after rename: %v", got)
		}
		b, err := st.Mailbox(ctx, u.ID, "Old.Stuff.2024")
		if err != nil || b.ID != a.ID || b.UIDValidity != a.UIDValidity {
			t.Fatalf("renamed child keeps identity: %+v %v", b, err)
		}
		if l := mustList(t, st, b.ID); len(l) != 1 {
			t.Fatalf("renamed child messages: %v", l)
		}
		// Renaming INBOX moves its messages.
		in := inbox(t, st, u)
		st.Append(ctx, in.ID, strings.NewReader(lfMsg), 0, nil, time.Time{})
		if err := st.RenameMailbox(ctx, u.ID, "INBOX", "Saved"); err != nil {
			t.Fatal(err)
		}
		sv, _ := st.Mailbox(ctx, u.ID, "Saved")
		if len(mustList(t, st, in.ID)) != 0 || len(mustList(t, st, sv.ID)) != 1 {
			t.Fatal("INBOX rename did not move messages")
		}
		if err := st.DeleteMailbox(ctx, u.ID, "Saved"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Mailbox(ctx, u.ID, "Saved"); !errors.Is(err, store.ErrNoMailbox) {
			t.Fatalf("deleted mailbox: %v", err)
		}
		// Re-creating gives a new UIDVALIDITY.
		nb, err := st.CreateMailbox(ctx, u.ID, "Saved", "")
		if err != nil || nb.UIDValidity <= sv.UIDValidity {
			t.Fatalf("recreated uidvalidity %d after %d: %v", nb.UIDValidity, sv.UIDValidity, err)
		}
		if err := st.SetSubscribed(ctx, u.ID, "Saved", true); err != nil {
			t.Fatal(err)
		}
		if m, _ := st.Mailbox(ctx, u.ID, "Saved"); !m.Subscribed {
			t.Fatal("not subscribed")
		}
	})
}

func TestMessages_appendFetchCRLF(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		st := testsuite.NewStore(t, backend)
		ctx := ctxT(t)
		u := testsuite.MustUser(t, st, "alice", "pw")
		in := inbox(t, st, u)
		date := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
		res, err := st.Append(ctx, in.ID, strings.NewReader(lfMsg), store.FlagSeen|store.FlagFlagged, []string{"$Label1"}, date)
		if err != nil {
			t.Fatal(err)
		}
		if res.UID != 1 || res.UIDValidity != in.UIDValidity {
			t.Fatalf("append result %+v", res)
		}
		crlf := strings.ReplaceAll(lfMsg, "\n", "\r\n")
		l := mustList(t, st, in.ID)
		if len(l) != 1 || l[0].Size != int64(len(crlf)) || l[0].Flags != store.FlagSeen|store.FlagFlagged || !slices.Equal(l[0].Keywords, []string{"$Label1"}) {
			t.Fatalf("list %+v", l)
		}
		ms, err := st.Messages(ctx, in.ID, []store.UID{1, 99}, store.WithHeader|store.WithBodyStructure)
		if err != nil || len(ms) != 1 {
			t.Fatalf("messages %v %v", ms, err)
		}
		if !ms[0].InternalDate.Equal(date) {
			t.Errorf("internal date %v", ms[0].InternalDate)
		}
		if !strings.HasPrefix(crlf, string(ms[0].Header)) || !bytes.HasSuffix(ms[0].Header, []byte("\r\n\r\n")) {
			t.Errorf("header %q", ms[0].Header)
		}
		if bs := ms[0].BodyStructure; bs == nil || bs.Type != "text" || bs.Lines != 2 || bs.Size != int64(len("line one\r\nline two\r\n")) {
			t.Errorf("bodystructure %+v", ms[0].BodyStructure)
		}
		rc, size, err := st.OpenMessage(ctx, in.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(rc)
		rc.Close()
		if string(body) != crlf || size != int64(len(crlf)) {
			t.Fatalf("open: size %d body %q", size, body)
		}
		// The file is Maildir-named with S= and W= and flags.
		ents, _ := os.ReadDir(filepath.Join(testsuite.Maildir(t, st, "alice"), "cur"))
		if len(ents) != 1 || !strings.Contains(ents[0].Name(), ",W="+itoa(len(crlf))) || !strings.HasSuffix(ents[0].Name(), ":2,FSa") {
			t.Fatalf("file name %v", ents)
		}
		if _, _, err := st.OpenMessage(ctx, in.ID, 42); !errors.Is(err, store.ErrNoMessage) {
			t.Fatalf("open missing: %v", err)
		}
	})
}

func itoa(n int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(n)) }

func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestSync_outsideChanges(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		st := testsuite.NewStore(t, backend)
		ctx := ctxT(t)
		u := testsuite.MustUser(t, st, "alice", "pw")
		root := testsuite.Maildir(t, st, "alice")
		in := inbox(t, st, u)
		p1 := testsuite.Deliver(t, root, []byte(lfMsg))
		p2 := testsuite.DeliverCur(t, root, []byte(lfMsg), "2,S")
		l := mustList(t, st, in.ID)
		if len(l) != 2 || l[0].UID != 1 || l[1].UID != 2 {
			t.Fatalf("after delivery %+v", l)
		}
		var seen int
		for _, m := range l {
			if m.Flags == store.FlagSeen {
				seen++
			}
		}
		if seen != 1 {
			t.Fatalf("flags from cur/ name: %+v", l)
		}
		if _, err := os.Stat(p1); !os.IsNotExist(err) {
			t.Fatal("new/ file not moved to cur/")
		}
		// Another tool marks the first one flagged and removes the second.
		cur := filepath.Join(root, "cur")
		k1 := filepath.Base(p1)
		if err := os.Rename(filepath.Join(cur, k1+":2,"), filepath.Join(cur, k1+":2,F")); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(p2); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // let the directory mtime move on coarse clocks
		l = mustList(t, st, in.ID)
		if len(l) != 1 || l[0].UID != 1 || l[0].Flags != store.FlagFlagged {
			t.Fatalf("after outside rename/remove %+v", l)
		}
		// UIDs are never reused.
		testsuite.Deliver(t, root, []byte(lfMsg))
		l = mustList(t, st, in.ID)
		if len(l) != 2 || l[1].UID != 3 {
			t.Fatalf("uid reuse: %+v", l)
		}
		// Dot files and tmp/ are ignored.
		os.WriteFile(filepath.Join(root, "new", ".hidden"), []byte("x"), 0o600)
		os.WriteFile(filepath.Join(root, "tmp", "partial"), []byte("From: x"), 0o600)
		if l = mustList(t, st, in.ID); len(l) != 2 {
			t.Fatalf("ignored files indexed: %+v", l)
		}
		u2, _ := st.User(ctx, "alice")
		if u2.UsedMessages != 2 {
			t.Fatalf("usage %d", u2.UsedMessages)
		}
	})
}

func TestFlags_expunge_copy_move(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		st := testsuite.NewStore(t, backend)
		ctx := ctxT(t)
		u := testsuite.MustUser(t, st, "alice", "pw")
		root := testsuite.Maildir(t, st, "alice")
		in := inbox(t, st, u)
		for i := 0; i < 3; i++ {
			if _, err := st.Append(ctx, in.ID, strings.NewReader(lfMsg), 0, nil, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		ch, err := st.SetFlags(ctx, in.ID, []store.UID{1, 2}, store.FlagsAdd, store.FlagDeleted|store.FlagSeen, []string{"work"})
		if err != nil || len(ch) != 2 || ch[0].Flags != store.FlagDeleted|store.FlagSeen {
			t.Fatalf("set flags %+v %v", ch, err)
		}
		if ch, _ := st.SetFlags(ctx, in.ID, []store.UID{1}, store.FlagsAdd, store.FlagSeen, nil); len(ch) != 0 {
			t.Fatalf("no-op change reported: %+v", ch)
		}
		ents, _ := os.ReadDir(filepath.Join(root, "cur"))
		var withT int
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ":2,STa") {
				withT++
			}
		}
		if withT != 2 {
			t.Fatalf("flags not mirrored into names: %v", ents)
		}
		arch, _ := st.CreateMailbox(ctx, u.ID, "Archive", "")
		cr, err := st.Copy(ctx, in.ID, []store.UID{1, 3}, arch.ID)
		if err != nil || len(cr.Pairs) != 2 || cr.Pairs[0] != (store.UIDPair{Src: 1, Dst: 1}) || cr.UIDValidity != arch.UIDValidity {
			t.Fatalf("copy %+v %v", cr, err)
		}
		gone, err := st.Expunge(ctx, in.ID, nil, true)
		if err != nil || !slices.Equal(gone, []store.UID{1, 2}) {
			t.Fatalf("expunge %v %v", gone, err)
		}
		if l := mustList(t, st, in.ID); !slices.Equal(uidsOf(l), []store.UID{3}) {
			t.Fatalf("after expunge %v", uidsOf(l))
		}
		al := mustList(t, st, arch.ID)
		if len(al) != 2 || al[0].Flags != store.FlagDeleted|store.FlagSeen || !slices.Equal(al[0].Keywords, []string{"work"}) {
			t.Fatalf("copied flags %+v", al)
		}
		mr, err := st.Move(ctx, in.ID, []store.UID{3}, arch.ID)
		if err != nil || len(mr.Pairs) != 1 || mr.Pairs[0].Dst != 3 {
			t.Fatalf("move %+v %v", mr, err)
		}
		if l := mustList(t, st, in.ID); len(l) != 0 {
			t.Fatalf("moved message still in source %v", l)
		}
		if l := mustList(t, st, arch.ID); len(l) != 3 {
			t.Fatalf("moved message not in dest %v", l)
		}
		ents, _ = os.ReadDir(filepath.Join(root, "cur"))
		if len(ents) != 0 {
			t.Fatalf("files left in INBOX: %v", ents)
		}
		uu, _ := st.User(ctx, "alice")
		if uu.UsedMessages != 3 {
			t.Fatalf("usage %d", uu.UsedMessages)
		}
	})
}

func TestQuota(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		st := testsuite.NewStore(t, backend)
		ctx := ctxT(t)
		u := testsuite.MustUser(t, st, "alice", "pw")
		st.SetQuota(ctx, "alice", 0, 2)
		in := inbox(t, st, u)
		for i := 0; i < 2; i++ {
			if _, err := st.Append(ctx, in.ID, strings.NewReader(lfMsg), 0, nil, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.Append(ctx, in.ID, strings.NewReader(lfMsg), 0, nil, time.Time{}); !errors.Is(err, store.ErrOverQuota) {
			t.Fatalf("third append: %v", err)
		}
		arch, _ := st.CreateMailbox(ctx, u.ID, "Archive", "")
		if _, err := st.Copy(ctx, in.ID, []store.UID{1}, arch.ID); !errors.Is(err, store.ErrOverQuota) {
			t.Fatalf("copy over quota: %v", err)
		}
		if _, err := st.Move(ctx, in.ID, []store.UID{1}, arch.ID); err != nil {
			t.Fatalf("move within quota: %v", err)
		}
		st.SetQuota(ctx, "alice", int64(len(lfMsg)*3), 0)
		if _, err := st.Append(ctx, in.ID, strings.NewReader(lfMsg), 0, nil, time.Time{}); !errors.Is(err, store.ErrOverQuota) {
			t.Fatalf("byte quota: %v", err)
		}
		if ents, _ := os.ReadDir(filepath.Join(testsuite.Maildir(t, st, "alice"), "cur")); len(ents) != 1 {
			t.Fatalf("refused append left a file: %v", ents)
		}
	})
}

func TestWatch_seesChanges(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		o := testsuite.BackendOptions(t, backend, store.Options{PollInterval: 200 * time.Millisecond})
		st := testsuite.NewStoreAt(t, o)
		ctx := ctxT(t)
		u := testsuite.MustUser(t, st, "alice", "pw")
		in, w := watchInbox(t, st, u)
		defer w.Close()
		start := w.ModSeq()
		wait := func(pred func([]store.Change) bool) []store.Change {
			t.Helper()
			deadline := time.After(5 * time.Second)
			for {
				ch := w.Changed()
				c, _, ok := w.ChangesSince(start)
				if !ok {
					t.Fatal("log lost")
				}
				if pred(c) {
					return c
				}
				select {
				case <-ch:
				case <-deadline:
					t.Fatalf("timed out; changes %+v", c)
				}
			}
		}
		st.Append(ctx, in.ID, strings.NewReader(lfMsg), 0, nil, time.Time{})
		wait(func(c []store.Change) bool { return len(c) == 1 && c[0].UID == 1 })
		// An outside delivery is found by inotify or the periodic check.
		testsuite.Deliver(t, testsuite.Maildir(t, st, "alice"), []byte(lfMsg))
		wait(func(c []store.Change) bool { return len(c) == 2 })
		st.Expunge(ctx, in.ID, []store.UID{1}, false)
		wait(func(c []store.Change) bool { return len(c) == 2 && c[0].UID == 2 && c[1].UID == 1 && c[1].Expunged })
	})
}

func TestLockMaildrop(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		o := testsuite.BackendOptions(t, backend, store.Options{})
		st := testsuite.NewStoreAt(t, o)
		ctx := ctxT(t)
		u := testsuite.MustUser(t, st, "alice", "pw")
		unlock, err := st.LockMaildrop(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.LockMaildrop(ctx, u.ID); !errors.Is(err, store.ErrMailboxBusy) {
			t.Fatalf("second lock: %v", err)
		}
		if backend == testsuite.Postgres {
			// Another host on the same database.
			o2 := o
			o2.DataDir = testsuite.Options(t, st).DataDir
			st2 := testsuite.NewStoreAt(t, o2)
			if _, err := st2.LockMaildrop(ctx, u.ID); !errors.Is(err, store.ErrMailboxBusy) {
				t.Fatalf("lock on other host: %v", err)
			}
			unlock()
			un2, err := st2.LockMaildrop(ctx, u.ID)
			if err != nil {
				t.Fatalf("lock after release: %v", err)
			}
			// The host dies: its locks go with its connection.
			st2.Close()
			_ = un2
			// PostgreSQL frees them when the backend exits, just after
			// the connection closes.
			deadline := time.Now().Add(5 * time.Second)
			for {
				un, err := st.LockMaildrop(ctx, u.ID)
				if err == nil {
					un()
					break
				}
				if !errors.Is(err, store.ErrMailboxBusy) || time.Now().After(deadline) {
					t.Fatalf("lock after other host died: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			return
		}
		unlock()
		un, err := st.LockMaildrop(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		un()
	})
}

// TestSync_ownChangesThenOutside: after our own renames the index trusts
// the new cur/ mtime, but a verifying scan still catches an outside rename
// that happened in the same instant (same mtime).
func TestSync_ownChangesThenOutside(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		st := testsuite.NewStore(t, backend)
		ctx := ctxT(t)
		u := testsuite.MustUser(t, st, "alice", "pw")
		root := testsuite.Maildir(t, st, "alice")
		in := inbox(t, st, u)
		testsuite.DeliverCur(t, root, []byte(lfMsg), "2,")
		testsuite.DeliverCur(t, root, []byte(lfMsg), "2,")
		cur := filepath.Join(root, "cur")
		old := time.Now().Add(-10 * time.Second)
		os.Chtimes(cur, old, old)
		os.Chtimes(filepath.Join(root, "new"), old, old)
		mustList(t, st, in.ID) // indexes, records settled mtimes
		if _, err := st.SetFlags(ctx, in.ID, []store.UID{1}, store.FlagsAdd, store.FlagSeen, nil); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(cur)
		mt := fi.ModTime()
		ents, _ := os.ReadDir(cur)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ":2,") {
				os.Rename(filepath.Join(cur, e.Name()), filepath.Join(cur, e.Name()+"F"))
			}
		}
		os.Chtimes(cur, mt, mt) // the outside change landed in the same tick
		time.Sleep(2100 * time.Millisecond)
		l := mustList(t, st, in.ID)
		if len(l) != 2 || l[0].Flags != store.FlagSeen || l[1].Flags != store.FlagFlagged {
			t.Fatalf("outside rename after own change not seen: %+v", l)
		}
	})
}

// TestMailboxEvents: created, renamed and deleted mailboxes reach
// subscribers on this host and, over PostgreSQL, on another host.
func TestMailboxEvents(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		o := testsuite.BackendOptions(t, backend, store.Options{})
		st := testsuite.NewStoreAt(t, o)
		stores := []*store.Store{st}
		if backend == testsuite.Postgres {
			o2 := o
			o2.DataDir = testsuite.Options(t, st).DataDir
			stores = append(stores, testsuite.NewStoreAt(t, o2))
		}
		ctx := ctxT(t)
		var chans []chan store.MailboxEvent
		for _, s := range stores {
			ch := make(chan store.MailboxEvent, 16)
			cancel := s.SubscribeMailboxes(func(e store.MailboxEvent) { ch <- e })
			t.Cleanup(cancel)
			chans = append(chans, ch)
		}
		u := testsuite.MustUser(t, st, "alice", "pw")
		m, err := st.CreateMailbox(ctx, u.ID, "Work", "")
		if err != nil {
			t.Fatal(err)
		}
		st.RenameMailbox(ctx, u.ID, "Work", "Jobs")
		st.DeleteMailbox(ctx, u.ID, "Jobs")
		want := []store.MailboxEvent{{store.MailboxCreated, u.ID, m.ID, "Work"}, {store.MailboxRenamed, u.ID, m.ID, "Jobs"}, {store.MailboxDeleted, u.ID, m.ID, "Jobs"}}
		for i, ch := range chans {
			for _, w := range want {
				select {
				case e := <-ch:
					if e != w {
						t.Fatalf("host %d: event %+v, want %+v", i, e, w)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("host %d: no event, want %+v", i, w)
				}
			}
		}
	})
}

func TestSubscriptions_mirroredForDovecot(t *testing.T) {
	st := testsuite.NewStore(t, testsuite.SQLite)
	ctx := ctxT(t)
	u := testsuite.MustUser(t, st, "alice", "pw")
	st.CreateMailbox(ctx, u.ID, "Archive.2024", "")
	st.CreateMailbox(ctx, u.ID, "Entwürfe", "")
	st.SetSubscribed(ctx, u.ID, "INBOX", true)
	st.SetSubscribed(ctx, u.ID, "Archive.2024", true)
	st.SetSubscribed(ctx, u.ID, "Entwürfe", true)
	b, err := os.ReadFile(filepath.Join(testsuite.Maildir(t, st, "alice"), "subscriptions"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "V\t2\n\nArchive\t2024\nEntw&APw-rfe\nINBOX\n"; string(b) != want {
		t.Fatalf("subscriptions file %q, want %q", b, want)
	}
}

// TestMove_backAndForth: a message moved away and back, and a file put back
// by another tool under an expunged message's key, are live messages; the
// tombstones left behind never swallow them.
func TestMove_backAndForth(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		st := testsuite.NewStore(t, backend)
		ctx := ctxT(t)
		u := testsuite.MustUser(t, st, "alice", "pw")
		root := testsuite.Maildir(t, st, "alice")
		in := inbox(t, st, u)
		arch, _ := st.CreateMailbox(ctx, u.ID, "Archive", "")
		st.Append(ctx, in.ID, strings.NewReader(lfMsg), 0, nil, time.Time{})
		for i := 0; i < 3; i++ {
			from, to := in.ID, arch.ID
			if i%2 == 1 {
				from, to = arch.ID, in.ID
			}
			l := mustList(t, st, from)
			if len(l) != 1 {
				t.Fatalf("round %d: source has %d messages", i, len(l))
			}
			if _, err := st.Move(ctx, from, uidsOf(l), to); err != nil {
				t.Fatal(err)
			}
			// Every sync of both sides keeps exactly one live message.
			time.Sleep(20 * time.Millisecond)
			if n := len(mustList(t, st, to)) + len(mustList(t, st, from)); n != 1 {
				t.Fatalf("round %d: %d messages in total", i, n)
			}
		}
		// Another tool restores an expunged message's file under its old key.
		l := mustList(t, st, arch.ID)
		ents, _ := os.ReadDir(filepath.Join(testsuite.Folder(root, "Archive"), "cur"))
		if len(ents) != 1 {
			t.Fatalf("archive files %v", ents)
		}
		saved, _ := os.ReadFile(filepath.Join(testsuite.Folder(root, "Archive"), "cur", ents[0].Name()))
		if _, err := st.Expunge(ctx, arch.ID, uidsOf(l), false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		os.WriteFile(filepath.Join(testsuite.Folder(root, "Archive"), "cur", ents[0].Name()), saved, 0o600)
		got := mustList(t, st, arch.ID)
		if len(got) != 1 || got[0].UID <= l[0].UID {
			t.Fatalf("restored file not indexed as a new message: %+v (old uid %d)", got, l[0].UID)
		}
		if ents, _ := os.ReadDir(filepath.Join(testsuite.Folder(root, "Archive"), "cur")); len(ents) != 1 {
			t.Fatalf("restored file removed: %v", ents)
		}
	})
}

// TestSync_sameTickDelivery: a delivery into new/ that leaves the
// directory mtime as it was (same clock tick) is found by the verifying
// scan once the mtime has settled.
func TestSync_sameTickDelivery(t *testing.T) {
	st := testsuite.NewStore(t, testsuite.SQLite)
	u := testsuite.MustUser(t, st, "alice", "pw")
	root := testsuite.Maildir(t, st, "alice")
	in := inbox(t, st, u)
	testsuite.Deliver(t, root, []byte(lfMsg))
	if l := mustList(t, st, in.ID); len(l) != 1 {
		t.Fatalf("first delivery: %v", l)
	}
	mustList(t, st, in.ID) // records new/'s mtime after our move to cur/
	fi, _ := os.Stat(filepath.Join(root, "new"))
	testsuite.Deliver(t, root, []byte(lfMsg))
	os.Chtimes(filepath.Join(root, "new"), fi.ModTime(), fi.ModTime()) // same tick
	if l := mustList(t, st, in.ID); len(l) != 1 {
		t.Fatalf("same-tick delivery seen before the settle window (test premise broken): %v", l)
	}
	time.Sleep(1200 * time.Millisecond)
	if l := mustList(t, st, in.ID); len(l) != 2 {
		t.Fatalf("same-tick delivery not found after the settle window: %v", l)
	}
}

// TestRename_otherHost: after a rename on one host, another host that had
// the mailbox cached finds it under its new name and can deliver into it.
func TestRename_otherHost(t *testing.T) {
	o := store.Options{DatabaseURL: testsuite.NewDatabaseURL(t)}
	st1 := testsuite.NewStoreAt(t, o)
	o.DataDir = testsuite.Options(t, st1).DataDir
	st2 := testsuite.NewStoreAt(t, o)
	ctx := ctxT(t)
	u := testsuite.MustUser(t, st1, "alice", "pw")
	f1, err := st1.CreateMailbox(ctx, u.ID, "F1", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st2.Append(ctx, f1.ID, strings.NewReader(lfMsg), 0, nil, time.Time{}); err != nil {
		t.Fatal(err) // st2 now has F1's directory cached
	}
	if err := st1.RenameMailbox(ctx, u.ID, "F1", "R2"); err != nil {
		t.Fatal(err)
	}
	r2, err := st2.Mailbox(ctx, u.ID, "R2")
	if err != nil || r2.ID != f1.ID {
		t.Fatalf("R2 on the other host: %+v %v", r2, err)
	}
	if _, err := st2.Append(ctx, r2.ID, strings.NewReader(lfMsg), 0, nil, time.Time{}); err != nil {
		t.Fatalf("append on the other host after rename: %v", err)
	}
	if l := mustList(t, st2, r2.ID); len(l) != 2 {
		t.Fatalf("messages after rename: %v", l)
	}
}

// TestWatch_concurrentWriters follows a mailbox's change feed while writers
// on two stores (two hosts with PostgreSQL) append, flag and expunge at
// once. Whatever the interleaving of commits and refreshes, the view built
// from ChangesSince alone must end equal to the index.
func TestWatch_concurrentWriters(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		o := testsuite.BackendOptions(t, backend, store.Options{PollInterval: time.Hour})
		st1 := testsuite.NewStoreAt(t, o)
		st2 := st1
		if backend == testsuite.Postgres {
			o.DataDir = testsuite.Options(t, st1).DataDir
			st2 = testsuite.NewStoreAt(t, o)
		}
		ctx := ctxT(t)
		u := testsuite.MustUser(t, st1, "alice", "pw")
		in, w := watchInbox(t, st1, u)
		defer w.Close()
		view := map[store.UID]store.Flags{}
		seen := w.ModSeq()
		follow := func() {
			c, cur, ok := w.ChangesSince(seen)
			if !ok {
				t.Fatal("change log no longer reaches the view")
			}
			for _, ch := range c {
				if ch.Expunged {
					delete(view, ch.UID)
				} else {
					view[ch.UID] = ch.Flags
				}
			}
			seen = cur
		}
		stop := make(chan struct{})
		followed := make(chan struct{})
		go func() {
			defer close(followed)
			for {
				ch := w.Changed()
				follow()
				select {
				case <-ch:
				case <-stop:
					return
				}
			}
		}()
		const writers, rounds = 6, 30
		errs := make(chan error, writers)
		for g := 0; g < writers; g++ {
			st := st1
			if g%2 == 1 {
				st = st2
			}
			go func() {
				var err error
				defer func() { errs <- err }()
				for i := 0; i < rounds && err == nil; i++ {
					var res *store.AppendResult
					if res, err = st.Append(ctx, in.ID, strings.NewReader(lfMsg), 0, nil, time.Time{}); err != nil {
						return
					}
					uid := res.UID
					if _, err = st.SetFlags(ctx, in.ID, []store.UID{uid}, store.FlagsAdd, store.FlagSeen, nil); err != nil {
						return
					}
					if i%3 == 0 {
						_, err = st.Expunge(ctx, in.ID, []store.UID{uid}, false)
					}
				}
			}()
		}
		for g := 0; g < writers; g++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		want := mustList(t, st1, in.ID)
		final, err := st1.Mailbox(ctx, u.ID, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.After(10 * time.Second)
		for w.ModSeq() < final.HighestModSeq {
			select {
			case <-deadline:
				t.Fatalf("feed stuck at %d, want %d", w.ModSeq(), final.HighestModSeq)
			case <-time.After(10 * time.Millisecond):
			}
		}
		close(stop)
		<-followed
		follow()
		if len(view) != len(want) {
			t.Fatalf("feed view has %d messages, index %d", len(view), len(want))
		}
		for _, m := range want {
			if f, ok := view[m.UID]; !ok || f != m.Flags {
				t.Errorf("UID %d: feed view flags %v (present %v), index %v", m.UID, f, ok, m.Flags)
			}
		}
	})
}

// TestOpenLoaded opens messages from what Messages returned: directly, after
// another tool renamed the file, after an expunge (the file is still
// there until the unlink), and after the file is gone.
func TestOpenLoaded(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		st := testsuite.NewStore(t, backend)
		ctx := ctxT(t)
		u := testsuite.MustUser(t, st, "alice", "pw")
		root := testsuite.Maildir(t, st, "alice")
		in := inbox(t, st, u)
		p1 := testsuite.DeliverCur(t, root, []byte(lfMsg), "2,")
		p2 := testsuite.DeliverCur(t, root, []byte(lfMsg), "2,S")
		l := mustList(t, st, in.ID)
		ms, err := st.Messages(ctx, in.ID, uidsOf(l), 0)
		if err != nil || len(ms) != 2 {
			t.Fatalf("messages: %v %v", ms, err)
		}
		want := strings.ReplaceAll(lfMsg, "\n", "\r\n")
		read := func(m *store.Message) (string, error) {
			t.Helper()
			rc, err := st.OpenLoaded(ctx, in.ID, m)
			if err != nil {
				return "", err
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			return string(b), err
		}
		if got, err := read(&ms[0]); err != nil || got != want {
			t.Fatalf("open: %q %v", got, err)
		}
		// Renamed by another tool: found again by key.
		if err := os.Rename(p1, strings.TrimSuffix(p1, ":2,")+":2,F"); err != nil {
			t.Fatal(err)
		}
		if got, err := read(&ms[0]); err != nil || got != want {
			t.Fatalf("open after rename: %q %v", got, err)
		}
		// Gone: ErrNoMessage.
		if err := os.Remove(p2); err != nil {
			t.Fatal(err)
		}
		if _, err := read(&ms[1]); !errors.Is(err, store.ErrNoMessage) {
			t.Fatalf("open of a removed file: %v, want ErrNoMessage", err)
		}
		// A Message without a location (not from Messages) is looked up.
		m := store.Message{MessageInfo: store.MessageInfo{UID: ms[0].UID}}
		if got, err := read(&m); err != nil || got != want {
			t.Fatalf("open by UID: %q %v", got, err)
		}
	})
}

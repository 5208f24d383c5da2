package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
	"github.com/postoffice/postoffice/testsuite"
)

// The List cache (listcache.go): a warm List must equal a fresh listing
// from the index after any change, made by this host or another.

// writeIndexable writes messages first..first+n-1 into the cur/ of the
// Maildir (or folder) at dir, with ",S=,W=" sizes in their names so Sync
// indexes them from the names alone. Every third one is \Seen.
func writeIndexable(t testing.TB, dir string, first, n int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "cur"), 0o700); err != nil {
		t.Fatal(err)
	}
	for i := first; i < first+n; i++ {
		msg := fmt.Sprintf("From: a@example.org\nTo: b@example.org\nSubject: message %d\nMessage-ID: <%d@listcache>\n\nbody %d\n", i, i, i)
		flags := ""
		if i%3 == 0 {
			flags = "S"
		}
		name := fmt.Sprintf("%d.M%dP1.listcache,S=%d,W=%d:2,%s", 1700000000+i/1000, i, len(msg), len(msg)+strings.Count(msg, "\n"), flags)
		if err := os.WriteFile(filepath.Join(dir, "cur", name), []byte(msg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// bigBox creates user alice with n messages in INBOX and returns the user
// and the INBOX.
func bigBox(t *testing.T, st *store.Store, n int) (*store.User, *store.Mailbox) {
	t.Helper()
	u := testsuite.MustUser(t, st, "alice", "pw")
	mb := inbox(t, st, u)
	writeIndexable(t, testsuite.Maildir(t, st, "alice"), 0, n)
	if err := st.Sync(ctxT(t), mb.ID); err != nil {
		t.Fatal(err)
	}
	return u, mb
}

// directList reads the listing of a mailbox straight from the index,
// bypassing List, with its HIGHESTMODSEQ.
func directList(t *testing.T, st *store.Store, u store.UserID, name string) ([]store.MessageInfo, uint64) {
	t.Helper()
	ctx := ctxT(t)
	mb, err := st.Mailbox(ctx, u, name)
	if err != nil {
		t.Fatal(err)
	}
	uids := make([]store.UID, 0, mb.UIDNext)
	for uid := store.UID(1); uid < mb.UIDNext; uid++ {
		uids = append(uids, uid)
	}
	ms, err := st.Messages(ctx, mb.ID, uids, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]store.MessageInfo, len(ms))
	for i, m := range ms {
		out[i] = m.MessageInfo
	}
	return out, mb.HighestModSeq
}

func infoEqual(a, b store.MessageInfo) bool {
	return a.UID == b.UID && a.Flags == b.Flags && slices.Equal(a.Keywords, b.Keywords) && a.Size == b.Size && a.ModSeq == b.ModSeq
}

func cloneInfos(l []store.MessageInfo) []store.MessageInfo {
	out := slices.Clone(l)
	for i := range out {
		out[i].Keywords = slices.Clone(out[i].Keywords)
	}
	return out
}

func sameArray(a, b []store.MessageInfo) bool {
	return len(a) > 0 && len(b) > 0 && &a[0] == &b[0]
}

// checkList compares st's List of mailbox name (no Sync first) with the
// index, and returns the listing.
func checkList(t *testing.T, st *store.Store, u store.UserID, name, what string) []store.MessageInfo {
	t.Helper()
	ctx := ctxT(t)
	mb, err := st.Mailbox(ctx, u, name)
	if err != nil {
		t.Fatal(err)
	}
	got, modseq, err := st.List(ctx, mb.ID)
	if err != nil {
		t.Fatalf("%s: list: %v", what, err)
	}
	want, wantMod := directList(t, st, u, name)
	if modseq != wantMod {
		t.Errorf("%s: List MODSEQ %d, index has %d", what, modseq, wantMod)
	}
	if !slices.EqualFunc(got, want, infoEqual) {
		t.Fatalf("%s: List differs from the index:\n got %d messages %v\nwant %d messages %v", what, len(got), short(got), len(want), short(want))
	}
	return got
}

func short(l []store.MessageInfo) string {
	if len(l) <= 8 {
		return fmt.Sprint(l)
	}
	return fmt.Sprint(l[:4], " ... ", l[len(l)-4:])
}

func uidsAt(l []store.MessageInfo, idx ...int) []store.UID {
	out := make([]store.UID, len(idx))
	for i, j := range idx {
		out[i] = l[j].UID
	}
	return out
}

// changeAll makes every kind of change through st (append, flags and
// keywords, expunge, move out, delivery picked up by Sync, a flag change
// made on disk) and checks after each that lister's List matches the index.
func changeAll(t *testing.T, st, lister *store.Store, u store.UserID, id store.MailboxID, archive string) {
	t.Helper()
	ctx := ctxT(t)
	l := checkList(t, lister, u, store.Inbox, "before changes")
	if _, err := st.Append(ctx, id, strings.NewReader(lfMsg), store.FlagSeen, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	l = checkList(t, lister, u, store.Inbox, "after append")
	if _, err := st.SetFlags(ctx, id, uidsAt(l, 10, 300, len(l)-1), store.FlagsAdd, store.FlagFlagged, []string{"$label1", "work"}); err != nil {
		t.Fatal(err)
	}
	l = checkList(t, lister, u, store.Inbox, "after set flags")
	if _, err := st.SetFlags(ctx, id, uidsAt(l, 300), store.FlagsRemove, 0, []string{"work"}); err != nil {
		t.Fatal(err)
	}
	l = checkList(t, lister, u, store.Inbox, "after removing a keyword")
	if _, err := st.Expunge(ctx, id, uidsAt(l, 0, 5, 6, len(l)-1), false); err != nil {
		t.Fatal(err)
	}
	l = checkList(t, lister, u, store.Inbox, "after expunge")
	arch, err := st.Mailbox(ctx, u, archive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Move(ctx, id, uidsAt(l, 100, 101, 102, 200), arch.ID); err != nil {
		t.Fatal(err)
	}
	l = checkList(t, lister, u, store.Inbox, "after move out")
	checkList(t, lister, u, archive, "move target")
	// Outside changes, seen through Sync: a delivery and a flag set by
	// another tool renaming a file.
	user, err := st.UserByID(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	root := st.MaildirPath(user)
	testsuite.Deliver(t, root, []byte(lfMsg))
	cur, err := os.ReadDir(filepath.Join(root, "cur"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cur {
		if strings.HasSuffix(e.Name(), ":2,") {
			if err := os.Rename(filepath.Join(root, "cur", e.Name()), filepath.Join(root, "cur", e.Name()+"F")); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if err := st.Sync(ctx, id); err != nil {
		t.Fatal(err)
	}
	if len(l) == len(checkList(t, lister, u, store.Inbox, "after outside delivery")) {
		t.Fatal("outside delivery not listed")
	}
}

func TestListCache_changes(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		st := testsuite.NewStore(t, backend)
		u, mb := bigBox(t, st, 600)
		if _, err := st.CreateMailbox(ctxT(t), u.ID, "Archive", ""); err != nil {
			t.Fatal(err)
		}
		first := mustList(t, st, mb.ID)
		if len(first) != 600 {
			t.Fatalf("listed %d messages, want 600", len(first))
		}
		kept := cloneInfos(first)
		again := mustList(t, st, mb.ID)
		if !sameArray(first, again) {
			t.Error("second List of an unchanged big mailbox did not come from the cache")
		}
		changeAll(t, st, st, u.ID, mb.ID, "Archive")
		// What List returned before the changes was not touched.
		if !slices.EqualFunc(first, kept, infoEqual) {
			t.Fatal("a listing handed out earlier was modified by later changes")
		}
	})
}

// TestListCache_otherHost makes the changes through a second store on the
// same database and DataDir: the first store's cached listing must follow.
func TestListCache_otherHost(t *testing.T) {
	o := store.Options{DatabaseURL: testsuite.NewDatabaseURL(t)}
	st1 := testsuite.NewStoreAt(t, o)
	o.DataDir = testsuite.Options(t, st1).DataDir
	st2 := testsuite.NewStoreAt(t, o)
	o.ListCacheEntries = -1
	ref := testsuite.NewStoreAt(t, o)
	ctx := ctxT(t)
	u, mb := bigBox(t, st1, 600)
	if _, err := st1.CreateMailbox(ctx, u.ID, "Archive", ""); err != nil {
		t.Fatal(err)
	}
	a := checkList(t, st1, u.ID, store.Inbox, "first list")
	kept := cloneInfos(a)
	if b := checkList(t, st1, u.ID, store.Inbox, "second list"); !sameArray(a, b) {
		t.Error("second List of an unchanged big mailbox did not come from the cache")
	}
	checkList(t, st2, u.ID, store.Inbox, "first list on the other host")

	changeAll(t, st2, st1, u.ID, mb.ID, "Archive")
	if !slices.EqualFunc(a, kept, infoEqual) {
		t.Fatal("a listing handed out earlier was modified by later changes")
	}
	changeAll(t, st1, st2, u.ID, mb.ID, "Archive")

	// All three hosts agree, cached or not.
	l1, m1, err1 := st1.List(ctx, mb.ID)
	l2, m2, err2 := st2.List(ctx, mb.ID)
	lr, mr, errr := ref.List(ctx, mb.ID)
	if err := errors.Join(err1, err2, errr); err != nil {
		t.Fatal(err)
	}
	if m1 != mr || m2 != mr || !slices.EqualFunc(l1, lr, infoEqual) || !slices.EqualFunc(l2, lr, infoEqual) {
		t.Fatalf("hosts disagree: %d/%d/%d MODSEQ, %d/%d/%d messages", m1, m2, mr, len(l1), len(l2), len(lr))
	}
	if lr2, _, _ := ref.List(ctx, mb.ID); sameArray(lr, lr2) {
		t.Error("a store with ListCacheEntries -1 cached a listing")
	}

	// A mailbox deleted by the other host is gone here too.
	big, err := st1.CreateMailbox(ctx, u.ID, "Big", "")
	if err != nil {
		t.Fatal(err)
	}
	writeIndexable(t, testsuite.Folder(testsuite.Maildir(t, st1, "alice"), "Big"), 0, 300)
	if l := mustList(t, st2, big.ID); len(l) != 300 {
		t.Fatalf("Big has %d messages, want 300", len(l))
	}
	checkList(t, st2, u.ID, "Big", "big folder on the other host")
	if err := st1.DeleteMailbox(ctx, u.ID, "Big"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st2.List(ctx, big.ID); !errors.Is(err, store.ErrNoMailbox) {
		t.Fatalf("List of a mailbox deleted by another host: %v, want ErrNoMailbox", err)
	}
}

func TestListCache_deleted(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		st := testsuite.NewStore(t, backend)
		ctx := ctxT(t)
		u := testsuite.MustUser(t, st, "alice", "pw")
		big, err := st.CreateMailbox(ctx, u.ID, "Big", "")
		if err != nil {
			t.Fatal(err)
		}
		writeIndexable(t, testsuite.Folder(testsuite.Maildir(t, st, "alice"), "Big"), 0, 300)
		a := mustList(t, st, big.ID)
		if b := mustList(t, st, big.ID); len(a) != 300 || !sameArray(a, b) {
			t.Fatalf("big folder: %d messages, cached %v", len(a), sameArray(a, b))
		}
		if err := st.DeleteMailbox(ctx, u.ID, "Big"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.List(ctx, big.ID); !errors.Is(err, store.ErrNoMailbox) {
			t.Fatalf("List of a deleted mailbox: %v, want ErrNoMailbox", err)
		}
		// A new mailbox of the same name is a new mailbox.
		again, err := st.CreateMailbox(ctx, u.ID, "Big", "")
		if err != nil {
			t.Fatal(err)
		}
		if l := mustList(t, st, again.ID); len(l) != 0 {
			t.Fatalf("recreated mailbox lists %d messages", len(l))
		}
		if _, _, err := st.List(ctx, big.ID); !errors.Is(err, store.ErrNoMailbox) {
			t.Fatalf("List of the deleted mailbox's id: %v, want ErrNoMailbox", err)
		}
	})
}

// TestListCache_budget checks what is cached: big mailboxes within the
// entry budget, least recently used evicted first; never small ones, never
// one bigger than the budget, nothing with a negative budget.
func TestListCache_budget(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		o := testsuite.BackendOptions(t, backend, store.Options{ListCacheEntries: 1000})
		st := testsuite.NewStoreAt(t, o)
		ctx := ctxT(t)
		u := testsuite.MustUser(t, st, "alice", "pw")
		root := testsuite.Maildir(t, st, "alice")
		boxes := map[string]store.MailboxID{}
		for name, n := range map[string]int{"A": 600, "B": 600, "Small": 255, "Huge": 1001} {
			mb, err := st.CreateMailbox(ctx, u.ID, name, "")
			if err != nil {
				t.Fatal(err)
			}
			writeIndexable(t, testsuite.Folder(root, name), 0, n)
			if err := st.Sync(ctx, mb.ID); err != nil {
				t.Fatal(err)
			}
			boxes[name] = mb.ID
		}
		list := func(name string) []store.MessageInfo {
			t.Helper()
			l, _, err := st.List(ctx, boxes[name])
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		cached := func(name string, prev []store.MessageInfo, want bool) []store.MessageInfo {
			t.Helper()
			l := list(name)
			if got := sameArray(prev, l); got != want {
				t.Errorf("%s: cached %v, want %v", name, got, want)
			}
			return l
		}
		a := list("A")
		a = cached("A", a, true)
		b := list("B") // 1200 entries > 1000: A goes
		b = cached("B", b, true)
		a = cached("A", a, false) // B goes
		a = cached("A", a, true)
		cached("B", b, false)
		cached("Small", list("Small"), false)
		cached("Huge", list("Huge"), false)

		// With room for both, both stay.
		o.ListCacheEntries = 1300
		o.DataDir = testsuite.Options(t, st).DataDir
		if backend == testsuite.SQLite {
			// One process owns the embedded index: hand it over.
			st.Close()
		}
		st2 := testsuite.NewStoreAt(t, o)
		list2 := func(name string) []store.MessageInfo {
			t.Helper()
			l, _, err := st2.List(ctx, boxes[name])
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		a = list2("A")
		b = list2("B")
		if !sameArray(a, list2("A")) || !sameArray(b, list2("B")) {
			t.Error("two mailboxes within the budget not both cached")
		}

		o.ListCacheEntries = -1
		if backend == testsuite.SQLite {
			st2.Close()
		}
		st3 := testsuite.NewStoreAt(t, o)
		l1, _, err1 := st3.List(ctx, boxes["A"])
		l2, _, err2 := st3.List(ctx, boxes["A"])
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if sameArray(l1, l2) || len(l1) != 600 {
			t.Error("ListCacheEntries -1 still caches")
		}
	})
}

// TestListCache_concurrent lists one mailbox from several goroutines while
// it changes: every listing is in UID order, each goroutine's MODSEQs never
// go back, and the end result matches the index.
func TestListCache_concurrent(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		st := testsuite.NewStore(t, backend)
		u, mb := bigBox(t, st, 400)
		ctx := ctxT(t)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		errc := make(chan error, 8)
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var last uint64
				for {
					select {
					case <-stop:
						return
					default:
					}
					l, m, err := st.List(ctx, mb.ID)
					if err != nil {
						errc <- err
						return
					}
					if m < last {
						errc <- fmt.Errorf("MODSEQ went back from %d to %d", last, m)
						return
					}
					last = m
					if !slices.IsSortedFunc(l, func(a, b store.MessageInfo) int { return int(a.UID) - int(b.UID) }) {
						errc <- errors.New("listing not in UID order")
						return
					}
				}
			}()
		}
		for i := 0; i < 30; i++ {
			l, _, err := st.List(ctx, mb.ID)
			if err != nil {
				t.Fatal(err)
			}
			switch i % 3 {
			case 0:
				_, err = st.Append(ctx, mb.ID, strings.NewReader(lfMsg), 0, nil, time.Time{})
			case 1:
				_, err = st.SetFlags(ctx, mb.ID, uidsAt(l, i, len(l)/2, len(l)-1), store.FlagsAdd, store.FlagAnswered, []string{fmt.Sprintf("k%d", i)})
			case 2:
				_, err = st.Expunge(ctx, mb.ID, uidsAt(l, i), false)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		close(stop)
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
		checkList(t, st, u.ID, store.Inbox, "after concurrent changes")
	})
}

// TestListCache_importOrder indexes a Dovecot mailbox whose UIDs run
// against the order the files are indexed in, while listing it: the
// batches that come later insert UIDs before the cached ones.
func TestListCache_importOrder(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		st := testsuite.NewStore(t, backend)
		ctx := ctxT(t)
		u := testsuite.MustUser(t, st, "alice", "pw")
		mb, err := st.CreateMailbox(ctx, u.ID, "Imported", "")
		if err != nil {
			t.Fatal(err)
		}
		dir := testsuite.Folder(testsuite.Maildir(t, st, "alice"), "Imported")
		const n = 2000
		writeIndexable(t, dir, 0, n)
		ents, err := os.ReadDir(filepath.Join(dir, "cur"))
		if err != nil {
			t.Fatal(err)
		}
		var ul strings.Builder
		fmt.Fprintf(&ul, "3 V%d N%d\n", mb.UIDValidity, 3*n)
		for _, e := range ents {
			var i int
			if _, err := fmt.Sscanf(e.Name()[strings.Index(e.Name(), ".M")+2:], "%d", &i); err != nil {
				t.Fatal(err)
			}
			key, _, _ := strings.Cut(e.Name(), ":")
			// Later files get lower UIDs, with gaps.
			fmt.Fprintf(&ul, "%d :%s\n", 2*(n-i), key)
		}
		if err := os.WriteFile(filepath.Join(dir, "dovecot-uidlist"), []byte(ul.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- st.Sync(ctx, mb.ID) }()
		lists := 0
	loop:
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				break loop
			default:
			}
			if _, _, err := st.List(ctx, mb.ID); err != nil {
				t.Fatal(err)
			}
			lists++
		}
		l := checkList(t, st, u.ID, "Imported", "after import")
		if len(l) != n || l[0].UID != 2 || l[n-1].UID != 2*n {
			t.Fatalf("imported %d messages, UIDs %d..%d", len(l), l[0].UID, l[len(l)-1].UID)
		}
		t.Logf("listed %d times during the import", lists)
	})
}

// BenchmarkList_warm100k measures List of an unchanged 100,000-message
// mailbox that was listed before, with the List cache ("cached") and
// without it ("uncached": ListCacheEntries -1, a full read every time),
// and with the cache after one flag change each time ("changed": the
// snapshot is copied with the change applied).
func BenchmarkList_warm100k(b *testing.B) {
	for _, backend := range []string{testsuite.SQLite, testsuite.Postgres} {
		b.Run(backend, func(b *testing.B) {
			o := testsuite.BackendOptions(b, backend, store.Options{})
			st := testsuite.NewStoreAt(b, o)
			o.DataDir = testsuite.Options(b, st).DataDir
			u := testsuite.MustUser(b, st, "alice", "pw")
			box, err := st.Mailbox(b.Context(), u.ID, "INBOX")
			if err != nil {
				b.Fatal(err)
			}
			writeIndexable(b, testsuite.Maildir(b, st, "alice"), 0, 100000)
			if err := st.Sync(b.Context(), box.ID); err != nil {
				b.Fatal(err)
			}
			// The embedded index has one owner at a time: close this
			// store before each sub-benchmark opens its own.
			st.Close()
			for _, mode := range []struct {
				name    string
				entries int
				change  bool
			}{{"cached", 0, false}, {"uncached", -1, false}, {"changed", 0, true}} {
				b.Run(mode.name, func(b *testing.B) {
					o := o
					o.ListCacheEntries = mode.entries
					st := testsuite.NewStoreAt(b, o)
					ctx := context.Background()
					if l, _, err := st.List(ctx, box.ID); err != nil || len(l) != 100000 {
						b.Fatalf("listed %d: %v", len(l), err)
					}
					if _, err := st.SetFlags(ctx, box.ID, []store.UID{50000}, store.FlagsRemove, store.FlagFlagged, nil); err != nil {
						b.Fatal(err)
					}
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						if mode.change {
							// Flag and unflag one message in the middle
							// (left unflagged by the previous run).
							b.StopTimer()
							op := store.FlagsAdd
							if i%2 == 1 {
								op = store.FlagsRemove
							}
							if _, err := st.SetFlags(ctx, box.ID, []store.UID{50000}, op, store.FlagFlagged, nil); err != nil {
								b.Fatal(err)
							}
							b.StartTimer()
						}
						if _, _, err := st.List(ctx, box.ID); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					st.Close()
				})
			}
		})
	}
}

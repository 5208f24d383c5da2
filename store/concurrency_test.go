package store_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
	"github.com/postoffice/postoffice/testsuite"
)

// TestIndexers_concurrent runs several indexers, each a separate store with
// its own connection pool, on one tree and one index while files are
// delivered, renamed and removed. In the end every file is indexed exactly
// once and the index matches the disk.
func TestIndexers_concurrent(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		o := testsuite.BackendOptions(t, backend, store.Options{DataDir: t.TempDir(), PollInterval: time.Hour})
		const indexers = 3
		var sts []*store.Store
		for i := 0; i < indexers; i++ {
			sts = append(sts, testsuite.NewStoreAt(t, o))
		}
		ctx := ctxT(t)
		u := testsuite.MustUser(t, sts[0], "alice", "pw")
		root := testsuite.Maildir(t, sts[0], "alice")
		box := inbox(t, sts[0], u)

		const deliveries = 200
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var removedMu sync.Mutex
		removed := map[string]bool{}
		// The MTA.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < deliveries; i++ {
				testsuite.Deliver(t, root, []byte(fmt.Sprintf("Message-ID: <%d@x>\nSubject: %d\n\nbody %d\n", i, i, i)))
			}
		}()
		// Another tool renaming (flagging) and removing files in cur/.
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(1))
			considered := map[string]bool{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				ents, _ := os.ReadDir(filepath.Join(root, "cur"))
				for _, e := range ents {
					key, _, _ := strings.Cut(e.Name(), ":")
					if considered[key] {
						continue
					}
					considered[key] = true
					switch rnd.Intn(10) {
					case 0:
						key, _, _ := strings.Cut(e.Name(), ":")
						removedMu.Lock()
						if os.Remove(filepath.Join(root, "cur", e.Name())) == nil {
							removed[key] = true
						}
						removedMu.Unlock()
					case 1, 2:
						key, _, _ := strings.Cut(e.Name(), ":")
						_ = os.Rename(filepath.Join(root, "cur", e.Name()), filepath.Join(root, "cur", key+":2,F"))
					}
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		var iwg sync.WaitGroup
		errs := make(chan error, indexers)
		for i := 0; i < indexers; i++ {
			iwg.Add(1)
			go func(st *store.Store) {
				defer iwg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := st.Sync(ctx, box.ID); err != nil {
						errs <- err
						return
					}
					time.Sleep(time.Millisecond)
				}
			}(sts[i])
		}
		// Let deliveries finish, then stop the others.
		deadline := time.After(60 * time.Second)
		for {
			ents, _ := os.ReadDir(filepath.Join(root, "new"))
			all, _ := os.ReadDir(filepath.Join(root, "cur"))
			removedMu.Lock()
			n := len(all) + len(ents) + len(removed)
			removedMu.Unlock()
			if n >= deliveries {
				break
			}
			select {
			case <-deadline:
				t.Fatalf("deliveries did not finish: %d", n)
			case <-time.After(10 * time.Millisecond):
			}
		}
		close(stop)
		iwg.Wait()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("indexer: %v", err)
		}
		time.Sleep(1100 * time.Millisecond) // past the mtime settle window
		var lists [][]store.MessageInfo
		for _, st := range sts {
			lists = append(lists, mustList(t, st, box.ID))
		}
		for i := 1; i < indexers; i++ {
			if fmt.Sprint(lists[i]) != fmt.Sprint(lists[0]) {
				t.Fatalf("indexers disagree")
			}
		}
		ents, _ := os.ReadDir(filepath.Join(root, "cur"))
		if len(lists[0]) != len(ents) {
			t.Fatalf("index has %d messages, cur/ has %d files", len(lists[0]), len(ents))
		}
		// Every file is one message with its own UID; UIDs strictly increase.
		seenSubj := map[string]bool{}
		for i, m := range lists[0] {
			if i > 0 && m.UID <= lists[0][i-1].UID {
				t.Fatalf("UIDs not strictly increasing at %d", i)
			}
			ms, err := sts[0].Messages(ctx, box.ID, []store.UID{m.UID}, store.WithHeader)
			if err != nil || len(ms) != 1 {
				t.Fatalf("messages: %v", err)
			}
			subj := string(ms[0].Header)
			if seenSubj[subj] {
				t.Fatalf("message indexed twice: %q", subj)
			}
			seenSubj[subj] = true
			var fl store.Flags
			if strings.Contains(fileOf(t, root, ents, subj), ":2,F") {
				fl = store.FlagFlagged
			}
			if m.Flags != fl {
				t.Fatalf("uid %d flags %v, file says %v", m.UID, m.Flags, fl)
			}
		}
		t.Logf("%d delivered, %d removed, %d indexed", deliveries, len(removed), len(lists[0]))
	})
}

func fileOf(t *testing.T, root string, ents []os.DirEntry, header string) string {
	t.Helper()
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(root, "cur", e.Name()))
		if strings.HasPrefix(strings.ReplaceAll(string(b), "\n", "\r\n"), header) {
			return e.Name()
		}
	}
	t.Fatalf("no file for %q", header)
	return ""
}

// TestAppend_crash kills a process with SIGKILL in the middle of APPENDs.
// Every append it acknowledged must be there, intact, and no partial
// message may be visible.
func TestAppend_crash(t *testing.T) {
	if os.Getenv("PO_CRASH_CHILD") != "" {
		return
	}
	testsuite.Backends(t, func(t *testing.T, backend string) {
		o := testsuite.BackendOptions(t, backend, store.Options{DataDir: t.TempDir()})
		st := testsuite.NewStoreAt(t, o)
		u := testsuite.MustUser(t, st, "alice", "pw")
		box := inbox(t, st, u)
		st.Close()

		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "PO_CRASH_CHILD=1", "PO_CRASH_DATA="+o.DataDir, "PO_CRASH_DB="+o.DatabaseURL,
			"PO_CRASH_BOX="+strconv.FormatInt(int64(box.ID), 10))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := map[store.UID]int{}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var uid, n int
			if _, err := fmt.Sscanf(sc.Text(), "ACK %d %d", &uid, &n); err == nil {
				acked[store.UID(uid)] = n
			}
			if len(acked) == 40 {
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		go io.Copy(io.Discard, out)
		cmd.Wait()
		if len(acked) < 40 {
			t.Fatalf("child acknowledged only %d appends", len(acked))
		}
		st2 := testsuite.NewStoreAt(t, o)
		ctx := ctxT(t)
		list := mustList(t, st2, box.ID)
		have := map[store.UID]bool{}
		for _, m := range list {
			have[m.UID] = true
			rc, _, err := st2.OpenMessage(ctx, box.ID, m.UID)
			if err != nil {
				t.Fatalf("open uid %d: %v", m.UID, err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			var n int
			if _, err := fmt.Sscanf(string(b), "X-Seq: %d", &n); err != nil || string(b) != strings.ReplaceAll(crashMsg(n), "\n", "\r\n") {
				t.Fatalf("uid %d is not a complete message: %q", m.UID, b[:min(len(b), 80)])
			}
			if want, ok := acked[m.UID]; ok && want != n {
				t.Fatalf("uid %d holds message %d, acknowledged as %d", m.UID, n, want)
			}
		}
		for uid := range acked {
			if !have[uid] {
				t.Fatalf("acknowledged uid %d lost", uid)
			}
		}
		t.Logf("%d acknowledged, %d in mailbox after crash", len(acked), len(list))
	})
}

func crashMsg(n int) string {
	return fmt.Sprintf("X-Seq: %d\nSubject: crash test\n\n%s\n", n, strings.Repeat("0123456789abcdef", 4096))
}

// TestCrashChild is the victim process of TestAppend_crash.
func TestCrashChild(t *testing.T) {
	if os.Getenv("PO_CRASH_CHILD") == "" {
		return // only runs as TestAppend_crash's child process
	}
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DataDir: os.Getenv("PO_CRASH_DATA"), DatabaseURL: os.Getenv("PO_CRASH_DB")})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := strconv.ParseInt(os.Getenv("PO_CRASH_BOX"), 10, 64)
	for n := 0; ; n++ {
		res, err := st.Append(ctx, store.MailboxID(id), strings.NewReader(crashMsg(n)), 0, nil, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ACK %d %d\n", res.UID, n)
	}
}

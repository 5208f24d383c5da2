package pop3d

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
)

const (
	msgA = "Subject: a\r\n\r\nbody a\r\n"
	msgB = "Subject: b\r\n\r\n.body b\r\n"
)

func TestShutdown_endsIdleSessionsWithoutUpdate(t *testing.T) {
	e := newTestEnv(t, nil)
	e.appendMsg(t, msgA)
	c := e.dial(t)
	c.login()
	if l := c.cmd("DELE 1"); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("DELE: %q", l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(ctx) }()
	if l := c.line(); l != "-ERR [SYS/TEMP] server shutting down" {
		t.Fatalf("got %q", l)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := len(e.list(t)); n != 1 {
		t.Fatalf("%d messages after shutdown, want 1 (nothing expunged)", n)
	}
	unlock, err := e.st.LockMaildrop(ctx, e.user.ID)
	if err != nil {
		t.Fatalf("maildrop still locked: %v", err)
	}
	unlock()
}

func TestClose_withBusyClient(t *testing.T) {
	e := newTestEnv(t, nil)
	c := e.dial(t)
	c.login()
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	// The connection may still get the shutdown notice, then it ends.
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("connection still open after Close")
			}
			break
		}
		if l != "-ERR [SYS/TEMP] server shutting down\r\n" {
			t.Fatalf("got %q after Close", l)
		}
	}
}

func TestDrop_deletesNothingAndUnlocks(t *testing.T) {
	e := newTestEnv(t, nil)
	e.appendMsg(t, msgA)
	e.appendMsg(t, msgB)
	c := e.dial(t)
	c.login()
	c.cmd("DELE 1")
	c.cmd("DELE 2")
	c.nc.Close()
	// The server notices the drop asynchronously: wait (bounded) for the lock.
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		unlock, err := e.st.LockMaildrop(ctx, e.user.ID)
		if err == nil {
			unlock()
			break
		}
		if !errors.Is(err, store.ErrMailboxBusy) || time.Now().After(deadline) {
			t.Fatalf("LockMaildrop: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(e.list(t)); n != 2 {
		t.Fatalf("%d messages after a dropped session, want 2", n)
	}
}

func TestRetr_vanishedMessage(t *testing.T) {
	e := newTestEnv(t, nil)
	uid := e.appendMsg(t, msgA)
	e.appendMsg(t, msgB)
	c := e.dial(t)
	c.login()
	// Expunged behind the session's back, as an IMAP client would.
	if _, err := e.st.Expunge(context.Background(), e.mbox.ID, []store.UID{uid}, false); err != nil {
		t.Fatal(err)
	}
	if l := c.cmd("RETR 1"); l != "-ERR message 1 no longer exists" {
		t.Fatalf("RETR 1: %q", l)
	}
	if l := c.cmd("TOP 1 0"); l != "-ERR message 1 no longer exists" {
		t.Fatalf("TOP 1: %q", l)
	}
	if l := c.cmd("RETR 2"); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("RETR 2: %q", l)
	}
	for c.line() != "." {
	}
	// DELE of the vanished message and QUIT still work.
	c.cmd("DELE 1")
	if l := c.cmd("QUIT"); l != "+OK bye" {
		t.Fatalf("QUIT: %q", l)
	}
	if n := len(e.list(t)); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

func TestQuit_marksRetrievedSeen(t *testing.T) {
	for _, noFlags := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "NoFlagUpdates"}[noFlags], func(t *testing.T) {
			e := newTestEnv(t, func(o *Options) { o.NoFlagUpdates = noFlags })
			e.appendMsg(t, msgA)
			e.appendMsg(t, msgB)
			e.appendMsg(t, msgA)
			c := e.dial(t)
			c.login()
			c.cmd("RETR 1")
			for c.line() != "." {
			}
			c.cmd("TOP 2 0")
			for c.line() != "." {
			}
			c.cmd("RETR 3")
			for c.line() != "." {
			}
			c.cmd("DELE 3")
			c.cmd("QUIT")
			infos := e.list(t)
			if len(infos) != 2 {
				t.Fatalf("%d messages, want 2", len(infos))
			}
			if got, want := infos[0].Flags&store.FlagSeen != 0, !noFlags; got != want {
				t.Errorf("RETR'd message seen = %v, want %v", got, want)
			}
			if infos[1].Flags&store.FlagSeen != 0 {
				t.Errorf("TOP'd message marked seen")
			}
		})
	}
}

// panicStore panics in List, to test the connection's recover.
type panicStore struct{ Store }

func (panicStore) List(context.Context, store.MailboxID) ([]store.MessageInfo, uint64, error) {
	panic("test panic")
}

func TestPanic_recoveredCountedAndUnlocked(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.Store = panicStore{o.Store} })
	e.wantPanics = 1
	c := e.dial(t)
	c.cmd("USER alice")
	if _, err := c.nc.Write([]byte("PASS secret\r\n")); err != nil {
		t.Fatal(err)
	}
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if l, err := c.r.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Fatalf("got %q, %v; want EOF", l, err)
	}
	// serve's deferred cleanup released the lock before closing.
	unlock, err := e.st.LockMaildrop(context.Background(), e.user.ID)
	if err != nil {
		t.Fatalf("maildrop still locked after panic: %v", err)
	}
	unlock()
	if n := e.srv.Panics(); n != 1 {
		t.Fatalf("Panics() = %d, want 1", n)
	}
}

func TestNew_requiresStoreAndAuth(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without Store succeeded")
	}
	e := newTestEnv(t, nil)
	if _, err := New(Options{Store: e.st}); err == nil {
		t.Fatal("New without Auth succeeded")
	}
}

// TestRetr_loadAhead retrieves a maildrop bigger than one look-ahead
// window, with messages expunged behind the session's back both after
// their window was located (file gone) and before (missing from the
// answer): each of those gets -ERR, every other message its own content.
func TestRetr_loadAhead(t *testing.T) {
	e := newTestEnv(t, nil)
	const n = 150
	var uids []store.UID
	for i := 1; i <= n; i++ {
		uids = append(uids, e.appendMsg(t, fmt.Sprintf("Subject: message %d\n\nbody %d\n", i, i)))
	}
	c := e.dial(t)
	c.login()
	retr := func(i int) string {
		t.Helper()
		l := c.cmd(fmt.Sprintf("RETR %d", i))
		if !strings.HasPrefix(l, "+OK") {
			return l
		}
		var lines []string
		for l := c.line(); l != "."; l = c.line() {
			lines = append(lines, l)
		}
		if want := fmt.Sprintf("Subject: message %d", i); len(lines) == 0 || lines[0] != want {
			t.Fatalf("RETR %d: got %q, want %q first", i, lines, want)
		}
		return "+OK"
	}
	if l := retr(1); l != "+OK" { // locates 1-64
		t.Fatalf("RETR 1: %q", l)
	}
	gone := map[int]bool{10: true, 70: true} // 10: located already; 70: not yet
	for i := range gone {
		if _, err := e.st.Expunge(context.Background(), e.mbox.ID, []store.UID{uids[i-1]}, false); err != nil {
			t.Fatal(err)
		}
	}
	for i := 2; i <= n; i++ {
		l := retr(i)
		if gone[i] {
			if want := fmt.Sprintf("-ERR message %d no longer exists", i); l != want {
				t.Fatalf("RETR %d: %q, want %q", i, l, want)
			}
			continue
		}
		if l != "+OK" {
			t.Fatalf("RETR %d: %q", i, l)
		}
	}
	if l := c.cmd("QUIT"); l != "+OK bye" {
		t.Fatalf("QUIT: %q", l)
	}
}

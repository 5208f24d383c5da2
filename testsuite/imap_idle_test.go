package testsuite

// IDLE push from every source (issue 3, "Push"): another session, an
// outside delivery into new/, a POP3 deletion, and a second postofficed on
// the same PostgreSQL database. Each change must reach the idling client
// within one second.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
)

// selPushDeadline is the bound for a change to reach an IDLE client.
const selPushDeadline = time.Second

// within runs act and waits for a line matching re on r, failing if it
// takes longer than selPushDeadline.
func selWithin(t *testing.T, r *RawIMAP, what, re string, act func()) {
	t.Helper()
	start := time.Now()
	act()
	l := r.WaitLine(re, selPushDeadline)
	t.Logf("%s: %q after %v", what, l, time.Since(start).Round(time.Millisecond))
}

func TestIMAPIdle_otherSession(t *testing.T) {
	Backends(t, func(t *testing.T, backend string) {
		st := selStore(t, backend, 3)
		addr := startSelIMAP(t, st)
		a := DialRawIMAP(t, addr, "alice", "secret")
		b := DialRawIMAP(t, addr, "alice", "secret")
		a.OK("SELECT INBOX")
		b.OK("SELECT INBOX")
		a.Idle()
		selWithin(t, a, "APPEND", `^\* 4 EXISTS$`, func() {
			raw := selMsg(4)
			b.Send(fmt.Sprintf("ap APPEND INBOX {%d+}", len(raw)))
			b.Send(raw)
			if l := b.LineBy(time.Now().Add(5 * time.Second)); !strings.HasPrefix(l, "* 4 EXISTS") {
				t.Errorf("b: %q", l)
			}
			if l := b.LineBy(time.Now().Add(5 * time.Second)); !strings.HasPrefix(l, "ap OK [APPENDUID") {
				t.Errorf("b APPEND: %q", l)
			}
		})
		selWithin(t, a, "STORE", `^\* 2 FETCH \(UID 2 FLAGS \(\\Seen \\Flagged\)\)$`, func() {
			b.OK(`STORE 2 +FLAGS (\Seen \Flagged)`)
		})
		selWithin(t, a, "EXPUNGE", `^\* 1 EXPUNGE$`, func() {
			b.OK(`STORE 1 +FLAGS.SILENT (\Deleted)`)
			b.OK("EXPUNGE")
		})
		a.Done()
		if u := a.OK("FETCH 1:* (UID)"); len(u) != 3 || u[0] != "* 1 FETCH (UID 2)" || u[2] != "* 3 FETCH (UID 4)" {
			t.Errorf("after IDLE: %q", u)
		}
	})
}

func TestIMAPIdle_outsideDelivery(t *testing.T) {
	Backends(t, func(t *testing.T, backend string) {
		st := NewStore(t, backend)
		MustUser(t, st, "alice", "secret")
		addr := startSelIMAP(t, st)
		a := DialRawIMAP(t, addr, "alice", "secret")
		if u := a.OK("SELECT INBOX"); !selContainsLine(u, "* 0 EXISTS") {
			t.Fatalf("SELECT: %q", u)
		}
		a.Idle()
		md := Maildir(t, st, "alice")
		selWithin(t, a, "delivery into new/", `^\* 1 EXISTS$`, func() {
			Deliver(t, md, []byte(selMsg(1)))
		})
		selWithin(t, a, "two deliveries", `^\* 3 EXISTS$`, func() {
			Deliver(t, md, []byte(selMsg(2)))
			Deliver(t, md, []byte(selMsg(3)))
		})
		a.Done()
		u := a.OK("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
		for i, l := range u {
			if !strings.Contains(l, fmt.Sprintf("Subject: message %d", i+1)) {
				t.Errorf("message %d: %q", i+1, l)
			}
		}
	})
}

func TestIMAPIdle_pop3Deletion(t *testing.T) {
	Backends(t, func(t *testing.T, backend string) {
		st := selStore(t, backend, 3)
		addr := startSelIMAP(t, st)
		ps := startPOP3(t, st, pop3Config{})
		a := DialRawIMAP(t, addr, "alice", "secret")
		a.OK("SELECT INBOX")
		a.Idle()
		p := dialPOP3(t, ps.addr)
		if l := p.login("alice", "secret"); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("POP3 login: %q", l)
		}
		p.cmd("+OK", "DELE 2")
		selWithin(t, a, "POP3 QUIT", `^\* 2 EXPUNGE$`, func() {
			p.cmd("+OK", "QUIT")
		})
		a.Done()
		if u := a.OK("FETCH 1:* (UID)"); len(u) != 2 || u[1] != "* 2 FETCH (UID 3)" {
			t.Errorf("after POP3 deletion: %q", u)
		}
	})
}

// TestIMAPIdle_otherHost runs two stores (two postofficed hosts) on one
// PostgreSQL database and one Maildir tree: changes made through host B
// reach an IDLE client of host A through LISTEN/NOTIFY.
func TestIMAPIdle_otherHost(t *testing.T) {
	url := NewDatabaseURL(t)
	dir := t.TempDir()
	stA := NewStoreAt(t, store.Options{DatabaseURL: url, DataDir: dir})
	stB := NewStoreAt(t, store.Options{DatabaseURL: url, DataDir: dir})
	MustUser(t, stA, "alice", "secret")
	appendMsg(t, stA, "alice", selMsg(1))
	addrA, addrB := startSelIMAP(t, stA), startSelIMAP(t, stB)
	a := DialRawIMAP(t, addrA, "alice", "secret")
	b := DialRawIMAP(t, addrB, "alice", "secret")
	a.OK("SELECT INBOX")
	b.OK("SELECT INBOX")
	a.Idle()
	selWithin(t, a, "APPEND on host B", `^\* 2 EXISTS$`, func() {
		raw := selMsg(2)
		b.Send(fmt.Sprintf("ap APPEND INBOX {%d+}", len(raw)))
		b.Send(raw)
		b.WaitLine(`^ap OK`, 5*time.Second)
	})
	selWithin(t, a, "STORE on host B", `^\* 1 FETCH \(UID 1 FLAGS \(\\Answered\)\)$`, func() {
		b.OK(`STORE 1 FLAGS (\Answered)`)
	})
	selWithin(t, a, "EXPUNGE on host B", `^\* 1 EXPUNGE$`, func() {
		b.OK(`UID STORE 1 +FLAGS.SILENT (\Deleted)`)
		b.OK("UID EXPUNGE 1")
	})
	selWithin(t, a, "delivery seen by host B", `^\* 2 EXISTS$`, func() {
		// Host B's watch notices the file (A's does too; whichever indexes
		// it first, A learns through the feed).
		Deliver(t, Maildir(t, stB, "alice"), []byte(selMsg(3)))
	})
	a.Done()
}

// TestIMAPIdle_authenticatedState: IDLE without a selected mailbox just
// waits for DONE.
func TestIMAPIdle_authenticatedState(t *testing.T) {
	st := NewStore(t, SQLite)
	MustUser(t, st, "alice", "secret")
	a := DialRawIMAP(t, startSelIMAP(t, st), "alice", "secret")
	a.Idle()
	appendMsg(t, st, "alice", selMsg(1))
	if out := a.Done(); len(out) != 0 {
		t.Errorf("IDLE in authenticated state sent %q", out)
	}
}

func selContainsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

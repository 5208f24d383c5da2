package imapd_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
	"github.com/postoffice/postoffice/testsuite"
)

// waitFeed waits until this host's change feed for mailbox id has caught up
// with the mailbox's HIGHESTMODSEQ, so every session's next poll sees all
// changes made so far. (Watches are shared per mailbox per store, so the
// test's handle is the sessions' record.)
func waitFeed(t testing.TB, st *store.Store, u store.UserID, name string) {
	t.Helper()
	ctx := context.Background()
	mb, err := st.Mailbox(ctx, u, name)
	if err != nil {
		t.Fatal(err)
	}
	w, err := st.Watch(ctx, mb.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	deadline := time.After(5 * time.Second)
	for {
		ch := w.Changed()
		if w.ModSeq() >= mb.HighestModSeq {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("change feed stuck at %d, want %d", w.ModSeq(), mb.HighestModSeq)
		}
	}
}

// appendMsgs appends msg(1) to msg(n) to the INBOX and returns their UIDs.
func (e *selEnv) appendMsgs(t testing.TB, n int) []store.UID {
	t.Helper()
	var uids []store.UID
	for i := 1; i <= n; i++ {
		uids = append(uids, e.appendMsg(t, "INBOX", msg(i), 0))
	}
	return uids
}

func msg(i int) string {
	return fmt.Sprintf("From: a@example.org\r\nSubject: message %d\r\n\r\nbody %d\r\n", i, i)
}

// uidsOf parses "* n FETCH (UID u)" lines into seq->uid.
func uidsOf(t testing.TB, lines []string) map[int]int {
	t.Helper()
	re := regexp.MustCompile(`^\* (\d+) FETCH \(UID (\d+)\)$`)
	out := map[int]int{}
	for _, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("unexpected line %q", l)
		}
		var s, u int
		fmt.Sscan(m[1], &s)
		fmt.Sscan(m[2], &u)
		out[s] = u
	}
	return out
}

func TestSelected_multiArrival(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		e := newSelEnv(t, backend)
		e.appendMsgs(t, 2)
		a := e.raw(t)
		u := a.OK("SELECT INBOX")
		if !has(u, "* 2 EXISTS") {
			t.Fatalf("SELECT: %q", u)
		}
		// Three messages arrive at once (one Sync of an outside delivery)
		// and two more by APPEND.
		md := testsuite.Maildir(t, e.st, "alice")
		for i := 3; i <= 5; i++ {
			testsuite.Deliver(t, md, []byte(msg(i)))
		}
		if err := e.st.Sync(context.Background(), e.inbox.ID); err != nil {
			t.Fatal(err)
		}
		for i := 6; i <= 7; i++ {
			e.appendMsg(t, "INBOX", msg(i), 0)
		}
		waitFeed(t, e.st, e.user.ID, "INBOX")
		u = a.OK("NOOP")
		if len(u) != 1 || u[0] != "* 7 EXISTS" {
			t.Fatalf("NOOP after 5 arrivals: %q", u)
		}
		got := uidsOf(t, a.OK("FETCH 1:* (UID)"))
		infos, _, err := e.st.List(context.Background(), e.inbox.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(infos) {
			t.Fatalf("FETCH 1:* gave %d messages, store has %d", len(got), len(infos))
		}
		for i, in := range infos {
			if got[i+1] != int(in.UID) {
				t.Errorf("seq %d = UID %d, want %d", i+1, got[i+1], in.UID)
			}
		}
		// Subjects in order, too.
		for i := 1; i <= 7; i++ {
			u := a.OK("FETCH %d (BODY.PEEK[HEADER.FIELDS (Subject)])", i)
			if len(u) != 1 || !strings.Contains(u[0], fmt.Sprintf("Subject: message %d\r\n", i)) {
				t.Errorf("message %d: %q", i, u)
			}
		}
	})
}

func TestSelected_expungeByOtherSession(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		e := newSelEnv(t, backend)
		uids := e.appendMsgs(t, 5)
		a, b := e.raw(t), e.raw(t)
		a.OK("SELECT INBOX")
		b.OK("SELECT INBOX")

		u := b.OK(`STORE 2,4 +FLAGS.SILENT (\Deleted)`)
		if len(u) != 0 {
			t.Errorf("STORE .SILENT answered %q", u)
		}
		u = b.OK("EXPUNGE")
		if len(u) != 2 || u[0] != "* 2 EXPUNGE" || u[1] != "* 3 EXPUNGE" {
			t.Errorf("EXPUNGE in b: %q", u)
		}
		waitFeed(t, e.st, e.user.ID, "INBOX")

		// a knows 5 messages; no EXPUNGE during FETCH, STORE or SEARCH
		// (RFC 9051 §7.5.1), and sequence numbers keep their meaning.
		u, st := a.Cmd("FETCH 1:5 (UID)")
		for _, l := range u {
			if strings.HasSuffix(l, " EXPUNGE") {
				t.Errorf("EXPUNGE during FETCH: %q", u)
			}
		}
		if !strings.HasPrefix(st, "OK") { // UID comes from the view (RFC 2180 §4.1.1)
			t.Errorf("FETCH status %s", st)
		}
		got := map[int]int{}
		for _, l := range u {
			if m := regexp.MustCompile(`^\* (\d+) FETCH \(UID (\d+)\)$`).FindStringSubmatch(l); m != nil {
				var s, x int
				fmt.Sscan(m[1], &s)
				fmt.Sscan(m[2], &x)
				got[s] = x
			}
		}
		for seq, uid := range map[int]store.UID{1: uids[0], 3: uids[2], 5: uids[4]} {
			if got[seq] != int(uid) {
				t.Errorf("before EXPUNGE is reported: seq %d = UID %d, want %d (%q)", seq, got[seq], uid, u)
			}
		}
		u = a.OK(`SEARCH ALL`)
		if len(u) != 1 || u[0] != "* SEARCH 1 3 5" { // expunged ones match nothing
			t.Errorf("SEARCH ALL before expunge report: %q", u)
		}
		u = a.OK(`STORE 5 +FLAGS (\Flagged)`)
		if len(u) != 1 || u[0] != `* 5 FETCH (FLAGS (\Flagged))` {
			t.Errorf("STORE 5: %q", u)
		}
		u = a.OK("NOOP")
		if len(u) != 2 || u[0] != "* 2 EXPUNGE" || u[1] != "* 3 EXPUNGE" {
			t.Errorf("NOOP: %q", u)
		}
		got = uidsOf(t, a.OK("FETCH 1:* (UID)"))
		if len(got) != 3 || got[1] != int(uids[0]) || got[2] != int(uids[2]) || got[3] != int(uids[4]) {
			t.Errorf("after expunge: %v", got)
		}
		// b learns about a's flag change with the UID.
		waitFeed(t, e.st, e.user.ID, "INBOX")
		u = b.OK("NOOP")
		if len(u) != 1 || u[0] != fmt.Sprintf(`* 3 FETCH (UID %d FLAGS (\Flagged))`, uids[4]) {
			t.Errorf("b NOOP: %q", u)
		}
	})
}

func TestSelected_storeAndUIDExpunge(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		e := newSelEnv(t, backend)
		uids := e.appendMsgs(t, 4)
		r := e.raw(t)
		r.OK("SELECT INBOX")
		u := r.OK(`STORE 1:2 +FLAGS (\Seen $Work)`)
		if !has(u, `* 1 FETCH (FLAGS (\Seen $Work))`) || !has(u, `* 2 FETCH (FLAGS (\Seen $Work))`) {
			t.Errorf("STORE +FLAGS: %q", u)
		}
		u = r.OK(`UID STORE %d -FLAGS ($work)`, uids[1])
		if len(u) != 1 || u[0] != fmt.Sprintf(`* 2 FETCH (UID %d FLAGS (\Seen))`, uids[1]) {
			t.Errorf("UID STORE -FLAGS: %q", u)
		}
		u = r.OK(`STORE 3 FLAGS (\Answered \Draft)`)
		if len(u) != 1 || u[0] != `* 3 FETCH (FLAGS (\Answered \Draft))` {
			t.Errorf("STORE FLAGS: %q", u)
		}
		if _, st := r.Cmd(`STORE 1 +FLAGS (\Bogus)`); !strings.HasPrefix(st, "BAD") {
			t.Errorf("unknown system flag: %s", st)
		}
		// The new keyword shows in FLAGS of the next poll and a re-SELECT.
		u = r.OK("SELECT INBOX")
		if !has(u, `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Work)`) {
			t.Errorf("SELECT FLAGS: %q", u)
		}
		// UID EXPUNGE removes only \Deleted messages among the given UIDs.
		r.OK(`STORE 1:4 +FLAGS.SILENT (\Deleted)`)
		u = r.OK("UID EXPUNGE %d,%d", uids[1], uids[3])
		if len(u) != 2 || u[0] != "* 2 EXPUNGE" || u[1] != "* 3 EXPUNGE" {
			t.Errorf("UID EXPUNGE: %q", u)
		}
		got := uidsOf(t, r.OK("FETCH 1:* (UID)"))
		if len(got) != 2 || got[1] != int(uids[0]) || got[2] != int(uids[2]) {
			t.Errorf("after UID EXPUNGE: %v", got)
		}
		// CLOSE expunges the rest silently.
		u = r.OK("CLOSE")
		if len(u) != 0 {
			t.Errorf("CLOSE answered %q", u)
		}
		st, err := e.st.Status(context.Background(), e.user.ID, "INBOX")
		if err != nil || st.Messages != 0 {
			t.Errorf("after CLOSE: %+v %v", st, err)
		}
	})
}

func TestSelected_examineIsReadOnly(t *testing.T) {
	e := newSelEnv(t, testsuite.SQLite)
	e.appendMsg(t, "INBOX", msg(1), store.FlagDeleted)
	e.appendMsg(t, "INBOX", msg(2), 0)
	r := e.raw(t)
	u, st := r.Cmd("EXAMINE INBOX")
	if !strings.HasPrefix(st, "OK [READ-ONLY]") || !has(u, "* OK [PERMANENTFLAGS ()] Permanent flags") {
		t.Errorf("EXAMINE: %s %q", st, u)
	}
	for _, c := range []string{`STORE 1 +FLAGS (\Seen)`, "EXPUNGE", "UID EXPUNGE 1:*", "MOVE 1 Trash"} {
		if _, st := r.Cmd("%s", c); !strings.HasPrefix(st, "NO") {
			t.Errorf("%s in EXAMINE: %s", c, st)
		}
	}
	r.OK("FETCH 1:2 (BODY[])")
	u = r.OK("FETCH 1:2 (FLAGS)")
	if !has(u, `* 1 FETCH (FLAGS (\Deleted))`) || !has(u, `* 2 FETCH (FLAGS ())`) {
		t.Errorf("flags changed in EXAMINE: %q", u)
	}
	r.OK("CREATE Copies")
	u, st = r.Cmd("COPY 1:2 Copies")
	if !strings.HasPrefix(st, "OK [COPYUID ") {
		t.Errorf("COPY from EXAMINE: %s %q", st, u)
	}
	r.OK("CLOSE") // no expunge in read-only mode
	ms, err := e.st.Status(context.Background(), e.user.ID, "INBOX")
	if err != nil || ms.Messages != 2 {
		t.Errorf("CLOSE after EXAMINE expunged: %+v %v", ms, err)
	}
}

func TestSelected_copyMoveAppend(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		e := newSelEnv(t, backend)
		uids := e.appendMsgs(t, 4)
		r := e.raw(t)
		r.OK("CREATE Archive.2024")
		r.OK("SELECT INBOX")
		u, st := r.Cmd("COPY 2:3 Nowhere")
		if !strings.HasPrefix(st, "NO [TRYCREATE]") {
			t.Errorf("COPY to missing: %s %q", st, u)
		}
		if _, st := r.Cmd("MOVE 1 Nowhere"); !strings.HasPrefix(st, "NO [TRYCREATE]") {
			t.Errorf("MOVE to missing: %s", st)
		}
		_, st = r.Cmd("COPY 2:3 Archive.2024")
		ab, _ := e.st.Mailbox(context.Background(), e.user.ID, "Archive.2024")
		want := fmt.Sprintf("OK [COPYUID %d %d:%d 1:2]", ab.UIDValidity, uids[1], uids[2])
		if !strings.HasPrefix(st, want) {
			t.Errorf("COPY: %s, want %s", st, want)
		}
		// MOVE: COPYUID first, then EXPUNGE with the right numbers.
		u, st = r.Cmd("MOVE 1,3 Archive.2024")
		if !strings.HasPrefix(st, "OK") || len(u) != 3 ||
			u[0] != fmt.Sprintf("* OK [COPYUID %d %d,%d 3:4] COPY completed", ab.UIDValidity, uids[0], uids[2]) ||
			u[1] != "* 1 EXPUNGE" || u[2] != "* 2 EXPUNGE" {
			t.Errorf("MOVE: %s %q", st, u)
		}
		got := uidsOf(t, r.OK("FETCH 1:* (UID)"))
		if len(got) != 2 || got[1] != int(uids[1]) || got[2] != int(uids[3]) {
			t.Errorf("after MOVE: %v", got)
		}
		// APPEND to the selected mailbox: EXISTS before the tagged OK.
		lit := msg(9)
		r.Send(fmt.Sprintf(`a1 APPEND INBOX (\Flagged $Later) "05-Mar-2024 10:00:00 +0100" {%d}`, len(lit)))
		if l := r.Line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("APPEND: %q", l)
		}
		r.Send(lit)
		var lines []string
		for {
			l := r.Line()
			lines = append(lines, l)
			if strings.HasPrefix(l, "a1 ") {
				break
			}
		}
		if !has(lines, "* 3 EXISTS") || !regexp.MustCompile(`^a1 OK \[APPENDUID \d+ \d+\]`).MatchString(lines[len(lines)-1]) {
			t.Errorf("APPEND to selected: %q", lines)
		}
		u = r.OK("FETCH 3 (FLAGS INTERNALDATE RFC822.SIZE)")
		if len(u) != 1 || u[0] != fmt.Sprintf(`* 3 FETCH (FLAGS (\Flagged $Later) INTERNALDATE " 5-Mar-2024 09:00:00 +0000" RFC822.SIZE %d)`, len(lit)) {
			t.Errorf("appended: %q", u)
		}
		if _, st := r.Cmd("APPEND Nowhere {3+}\r\nabc"); !strings.HasPrefix(st, "NO [TRYCREATE]") {
			t.Errorf("APPEND to missing: %s", st)
		}
		// COPY into the selected mailbox itself shows up too.
		u = r.OK("COPY 1 INBOX")
		if !has(u, "* 4 EXISTS") {
			t.Errorf("COPY to self: %q", u)
		}
		// MOVE into the selected mailbox itself is a no-op in the store:
		// OK, no COPYUID, nothing expunged.
		u = r.OK("MOVE 1 INBOX")
		if len(u) != 0 {
			t.Errorf("MOVE to self: %q", u)
		}
		if got := uidsOf(t, r.OK("FETCH 1:* (UID)")); len(got) != 4 {
			t.Errorf("after MOVE to self: %v", got)
		}
	})
}

func TestSelected_searchRes(t *testing.T) {
	e := newSelEnv(t, testsuite.SQLite)
	var uids []store.UID
	for i := 1; i <= 5; i++ {
		var f store.Flags
		if i%2 == 0 {
			f = store.FlagSeen
		}
		uids = append(uids, e.appendMsg(t, "INBOX", msg(i), f))
	}
	r := e.raw(t)
	r.OK("SELECT INBOX")
	// deviation (library): RFC 5182 §2.1 sends no ESEARCH for SAVE alone;
	// imapserver defaults the return options to ALL and sends one.
	u := r.OK("SEARCH RETURN (SAVE) UNSEEN")
	if len(u) > 1 {
		t.Errorf("SEARCH RETURN (SAVE) answered %q", u)
	}
	u = r.OK("FETCH $ (UID)")
	got := uidsOf(t, u)
	if len(got) != 3 || got[1] != int(uids[0]) || got[3] != int(uids[2]) || got[5] != int(uids[4]) {
		t.Errorf("FETCH $: %q", u)
	}
	u = r.OK("UID SEARCH RETURN (MIN MAX COUNT) UID $ NOT 1")
	if len(u) != 1 || u[0] != fmt.Sprintf(`* ESEARCH (TAG "t5") UID MIN %d MAX %d COUNT 2`, uids[2], uids[4]) {
		t.Errorf("ESEARCH with $: %q", u)
	}
	r.OK("SEARCH RETURN (MIN SAVE) UNSEEN")
	got = uidsOf(t, r.OK("UID FETCH $ (UID)"))
	if len(got) != 1 || got[1] != int(uids[0]) {
		t.Errorf("$ after MIN SAVE: %v", got)
	}
	r.OK(`STORE $ +FLAGS.SILENT (\Deleted)`)
	r.OK(`UID EXPUNGE $`)
	u = r.OK("SEARCH ALL")
	if len(u) != 1 || u[0] != "* SEARCH 1 2 3 4" {
		t.Errorf("after expunging $: %q", u)
	}
	u = r.OK("FETCH $ (UID)") // the saved message is gone
	if len(u) != 0 {
		t.Errorf("FETCH $ after expunge: %q", u)
	}
}

func TestSelected_overQuota(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		e := newSelEnv(t, backend)
		e.appendMsgs(t, 3)
		if err := e.st.SetQuota(context.Background(), "alice", 0, 3); err != nil {
			t.Fatal(err)
		}
		r := e.raw(t)
		r.OK("CREATE Copies")
		r.OK("SELECT INBOX")
		if _, st := r.Cmd("COPY 1 Copies"); !strings.HasPrefix(st, "NO [OVERQUOTA]") {
			t.Errorf("COPY over quota: %s", st)
		}
		if _, st := r.Cmd("APPEND INBOX {3+}\r\nabc"); !strings.HasPrefix(st, "NO [OVERQUOTA]") {
			t.Errorf("APPEND over quota: %s", st)
		}
		// MOVE does not add to the total: allowed.
		u, st := r.Cmd("MOVE 1 Copies")
		if !strings.HasPrefix(st, "OK") || !has(u, "* 1 EXPUNGE") {
			t.Errorf("MOVE at quota: %s %q", st, u)
		}
	})
}

func TestSelected_imap4rev2SelectList(t *testing.T) {
	e := newSelEnv(t, testsuite.SQLite)
	r := e.raw(t)
	r.OK("CREATE Sent.2024")
	r.OK("ENABLE IMAP4rev2")
	u := r.OK("SELECT Sent")
	if !has(u, `* LIST (\HasChildren \Sent) "." "Sent"`) {
		t.Errorf("SELECT Sent: %q", u)
	}
	for _, l := range u {
		if strings.Contains(l, "RECENT") || strings.Contains(l, "[UNSEEN") {
			t.Errorf("IMAP4rev1 response in IMAP4rev2: %q", l)
		}
	}
	u = r.OK("EXAMINE INBOX")
	if !has(u, `* LIST (\HasNoChildren) "." INBOX`) {
		t.Errorf("EXAMINE INBOX: %q", u)
	}
}

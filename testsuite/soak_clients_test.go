package testsuite

// The chaos soak's IMAP clients (owner and readers), the POP3 client and
// the outside deliverer. The IDLE watcher is in soak_idle_test.go.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// soakRun is the state shared by the soak's goroutines.
type soakRun struct {
	hosts   []*soakHost
	users   []*soakUser
	tree    string // Maildir tree: tree/USER/Maildir
	think   time.Duration
	st      *soakStats
	enabled atomic.Uint32 // bit i: clients may use host i
	seq     atomic.Int64

	imapCmds, pop3Cmds, deliveries, ambiguous atomic.Int64

	mu     sync.Mutex
	nos    map[string]int // "CMD: response" → count, for the report
	debug  *os.File       // the soak's own event log, work/soak-events.log
	pgDown [2]time.Time   // PostgreSQL restart window; end zero while it runs
}

// pgWindow reports whether t falls into the PostgreSQL restart, or the
// few seconds after it in which pools reconnect.
func (r *soakRun) pgWindowLocked(t time.Time) bool {
	start, end := r.pgDown[0], r.pgDown[1]
	if start.IsZero() || t.Before(start.Add(-time.Second)) {
		return false
	}
	return end.IsZero() || t.Before(end.Add(5*time.Second))
}

// logf appends a line to the soak's event log (host kills, folder
// operations, interrupted commands), for reading next to the daemon logs.
func (r *soakRun) logf(format string, args ...any) {
	if r.debug == nil {
		return
	}
	line := time.Now().UTC().Format("2006-01-02T15:04:05.000Z ") + fmt.Sprintf(format, args...) + "\n"
	r.mu.Lock()
	r.debug.WriteString(line)
	r.mu.Unlock()
}

func (r *soakRun) pause(rng *mrand.Rand) {
	time.Sleep(r.think/2 + time.Duration(rng.Int64N(int64(r.think))))
}

func (r *soakRun) pickHost(rng *mrand.Rand) *soakHost {
	for {
		h := r.hosts[rng.IntN(len(r.hosts))]
		if r.enabled.Load()&(1<<h.idx) != 0 {
			return h
		}
	}
}

func (r *soakRun) newID(u *soakUser, kind string) string {
	return fmt.Sprintf("%s-%s%d", u.name, kind, r.seq.Add(1))
}

// noted records a NO/-ERR answer for the report.
func (r *soakRun) noted(cmd string, err error) {
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	r.mu.Lock()
	if r.pgWindowLocked(time.Now()) {
		cmd = "[during PostgreSQL restart] " + cmd
	}
	r.nos[cmd+": "+msg]++
	r.mu.Unlock()
	r.logf("NO %s: %s", cmd, msg)
}

// soakDefinite reports whether err is the server's tagged NO or BAD, that
// is, a definite "not done" rather than a lost answer.
func soakDefinite(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && (ie.Type == imap.StatusResponseTypeNo || ie.Type == imap.StatusResponseTypeBad)
}

// soakIMAP is one IMAP session of a soak client.
type soakIMAP struct {
	r    *soakRun
	c    *imapclient.Client
	host *soakHost
	inc  int64
	who  string

	// The watchdog closes a session whose current command has gone
	// unanswered for soakHang; clients pause well below that between
	// commands.
	mu      sync.Mutex
	cur     string
	since   time.Time
	stopDog chan struct{}
}

const soakHang = 60 * time.Second

// begin notes the command the session sends next, for the watchdog.
func (s *soakIMAP) begin(cmd string) {
	s.r.imapCmds.Add(1)
	s.mu.Lock()
	s.cur, s.since = cmd, time.Now()
	s.mu.Unlock()
}

func (s *soakIMAP) watchdog() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stopDog:
			return
		case <-t.C:
		}
		s.mu.Lock()
		cur, since := s.cur, s.since
		s.mu.Unlock()
		if time.Since(since) > soakHang {
			s.r.st.hung.Add(1)
			s.r.st.note("hung", "%s (incarnation %d): %s unanswered for %v since %s; closing the connection",
				s.who, s.inc, cur, soakHang, since.Format("15:04:05.000"))
			s.r.logf("%s: %s unanswered since %s", s.who, cur, since.Format("15:04:05.000"))
			s.c.Close()
			return
		}
	}
}

func (r *soakRun) dialIMAP(u *soakUser, h *soakHost, who string, handler *imapclient.UnilateralDataHandler) (*soakIMAP, error) {
	s := &soakIMAP{r: r, host: h, inc: h.inc.Load(), who: fmt.Sprintf("%s@host%d", who, h.idx+1)}
	nc, err := net.DialTimeout("tcp", h.imapAddr, 3*time.Second)
	if err != nil {
		return nil, err
	}
	s.c = imapclient.New(nc, &imapclient.Options{UnilateralDataHandler: handler})
	s.stopDog = make(chan struct{})
	s.cur, s.since = "greeting", time.Now()
	go s.watchdog()
	if err := s.c.WaitGreeting(); err != nil {
		s.shut()
		return nil, err
	}
	s.begin("LOGIN")
	if err := s.c.Login(u.name, u.pass).Wait(); err != nil {
		s.shut()
		return nil, fmt.Errorf("login: %w", err)
	}
	return s, nil
}

func (s *soakIMAP) amb() *soakAmb {
	s.r.ambiguous.Add(1)
	s.r.logf("%s: answer lost (host incarnation %d)", s.who, s.inc)
	return &soakAmb{host: s.host.idx, inc: s.inc, at: time.Now()}
}

func (s *soakIMAP) shut() {
	close(s.stopDog)
	s.c.Close()
}

func (s *soakIMAP) close() {
	defer close(s.stopDog)
	s.begin("LOGOUT")
	done := make(chan struct{})
	go func() {
		s.c.Logout().Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	s.c.Close()
}

// soakSel is a selected folder as a client listed it.
type soakSel struct {
	name string
	uv   uint32
	list []soakObs
	byID map[string]uint32
}

// soakAllUIDs is "UID 1:*", which is valid in an empty mailbox too.
var soakAllUIDs = imap.UIDSet{{Start: 1, Stop: 0}}

var soakIDSection = &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"X-Soak-ID"}, Peek: true}

// selectList selects name and lists it (UID, FLAGS, X-Soak-ID), checking
// UIDVALIDITY, UID order and UID reuse. The owner also settles its model.
func (s *soakIMAP) selectList(u *soakUser, name string, owner bool) (*soakSel, error) {
	snap := u.curGen()
	s.begin("SELECT " + name)
	data, err := s.c.Select(name, nil).Wait()
	if err != nil {
		return nil, err
	}
	sel := &soakSel{name: name, uv: data.UIDValidity, byID: map[string]uint32{}}
	u.checkUIDValidity(s.r.st, s.who, name, data.UIDValidity)
	if data.NumMessages > 0 {
		s.begin("UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (X-Soak-ID)])")
		opts := &imap.FetchOptions{UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{soakIDSection}}
		msgs, err := s.c.Fetch(soakAllUIDs, opts).Collect()
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == "EXPUNGEISSUED" {
			// Another session expunged messages of our view: NOOP
			// announces them, then list again.
			s.r.noted("UID FETCH 1:*", err)
			s.begin("NOOP")
			if err := s.c.Noop().Wait(); err != nil {
				return nil, err
			}
			s.begin("UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (X-Soak-ID)])")
			msgs, err = s.c.Fetch(soakAllUIDs, opts).Collect()
		}
		if err != nil {
			return nil, err
		}
		sel.list = s.r.obsList(u, s.who, name, data.UIDValidity, msgs)
	}
	for _, o := range sel.list {
		sel.byID[o.id] = o.uid
	}
	if owner {
		u.observe(name, snap, sel.list, s.r.hosts)
	}
	return sel, nil
}

// obsList turns FETCH results into observations, checking UID order and
// reuse.
func (r *soakRun) obsList(u *soakUser, who, folder string, uv uint32, msgs []*imapclient.FetchMessageBuffer) []soakObs {
	var list []soakObs
	var prev uint32
	var prevSeq uint32
	for _, m := range msgs {
		id := soakParseID(m.FindBodySection(soakIDSection))
		uid := uint32(m.UID)
		if m.SeqNum <= prevSeq || uid <= prev {
			r.st.uidOrder.Add(1)
			r.st.note("uid order", "%s %s %s: seq %d UID %d after seq %d UID %d", who, u.name, folder, m.SeqNum, uid, prevSeq, prev)
		}
		prev, prevSeq = uid, m.SeqNum
		if id == "" {
			r.st.foreign.Add(1)
			r.st.note("foreign", "%s %s %s: UID %d has no X-Soak-ID", who, u.name, folder, uid)
			continue
		}
		fl := make([]string, len(m.Flags))
		for i, f := range m.Flags {
			fl[i] = string(f)
		}
		u.checkUID(r.st, who, folder, uv, uid, id)
		list = append(list, soakObs{uid: uid, id: id, flags: soakCanonFlags(fl)})
	}
	return list
}

// fetchCheck fetches the whole message uid and compares it with what was
// delivered or appended.
func (s *soakIMAP) fetchCheck(u *soakUser, sel *soakSel, uid uint32, id string) error {
	sec := &imap.FetchItemBodySection{Peek: true}
	s.begin(fmt.Sprintf("UID FETCH %d (BODY.PEEK[]) in %s", uid, sel.name))
	msgs, err := s.c.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
	if err != nil {
		return err
	}
	for _, m := range msgs { // none if it was expunged meanwhile
		if uint32(m.UID) != uid {
			continue
		}
		if got := m.FindBodySection(sec); !bytes.Equal(got, soakMessage(soakUserOf(id), id)) {
			s.r.st.corrupt.Add(1)
			s.r.st.note("corrupt", "%s %s %s UID %d (%s): FETCH BODY[] returned %d bytes that differ from what was stored (%.60q)",
				s.who, u.name, sel.name, uid, id, len(got), got)
		}
	}
	return nil
}

// appendMsg appends a new message to folder. It returns false when the
// session is broken.
func (s *soakIMAP) appendMsg(u *soakUser, folder string, rng *mrand.Rand) bool {
	id := s.r.newID(u, "a")
	raw := soakMessage(u.name, id)
	var flags []imap.Flag
	var names []string
	for _, f := range soakTracked {
		if rng.IntN(4) == 0 {
			flags = append(flags, imap.Flag(f))
			names = append(names, f)
		}
	}
	canon := soakCanonFlags(names)
	start := u.curGen()
	s.begin("APPEND " + folder)
	cmd := s.c.Append(folder, int64(len(raw)), &imap.AppendOptions{Flags: flags})
	_, werr := cmd.Write(raw)
	cerr := cmd.Close()
	data, err := cmd.Wait()
	if err == nil && (werr != nil || cerr != nil) {
		err = errors.Join(werr, cerr)
	}
	if err == nil {
		s.r.logf("%s %s: APPEND %s %s: UID %d", s.who, u.name, folder, id, data.UID)
	} else {
		s.r.logf("%s %s: APPEND %s %s: %v", s.who, u.name, folder, id, err)
	}
	switch {
	case err == nil:
		u.add(folder, id, canon, true, start, nil, true)
		if data.UID != 0 {
			u.checkUID(s.r.st, s.who, folder, data.UIDValidity, uint32(data.UID), id)
		}
		return true
	case soakDefinite(err):
		s.r.noted("APPEND", err)
		return true
	default:
		u.add(folder, id, canon, true, start, s.amb(), true)
		return false
	}
}

// reader reads random folders, checks bodies, and sometimes APPENDs to
// INBOX.
func (r *soakRun) reader(ctx context.Context, u *soakUser, n int, rng *mrand.Rand) {
	who := fmt.Sprintf("reader%d", n)
	for ctx.Err() == nil {
		s, err := r.dialIMAP(u, r.pickHost(rng), who, nil)
		if err != nil {
			r.pause(rng)
			continue
		}
		var sel *soakSel
		for i := 1 + rng.IntN(6); i > 0 && ctx.Err() == nil; i-- {
			r.pause(rng)
			ok := true
			switch p := rng.IntN(10); {
			case p < 2:
				ok = s.appendMsg(u, "INBOX", rng)
			case p < 5 || sel == nil:
				names := u.usable()
				sel, err = s.selectList(u, names[rng.IntN(len(names))], false)
				if err != nil {
					sel, ok = nil, soakDefinite(err)
				}
			default:
				if len(sel.list) == 0 {
					continue
				}
				o := sel.list[rng.IntN(len(sel.list))]
				if err := s.fetchCheck(u, sel, o.uid, o.id); err != nil {
					ok = soakDefinite(err)
				}
			}
			if !ok {
				break
			}
		}
		s.close()
	}
}

// soakDeliver writes content into maildir as an MTA would: tmp/, fsync,
// rename into new/.
func soakDeliver(maildir string, content []byte) error {
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(maildir, d), 0o700); err != nil {
			return err
		}
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	now := time.Now()
	key := fmt.Sprintf("%d.M%dP%dR%s.soakmx", now.Unix(), now.Nanosecond()/1000, os.Getpid(), hex.EncodeToString(rnd[:]))
	tmp := filepath.Join(maildir, "tmp", key)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(maildir, "new", key))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// deliverer is the outside MTA: it drops messages into users' INBOX new/.
func (r *soakRun) deliverer(ctx context.Context, rng *mrand.Rand, errs chan<- error) {
	for ctx.Err() == nil {
		time.Sleep(r.think / 8)
		u := r.users[rng.IntN(len(r.users))]
		if r.inboxSize(u) > 150 {
			continue
		}
		id := r.newID(u, "d")
		u.add("INBOX", id, "", true, u.curGen(), nil, false)
		if err := soakDeliver(filepath.Join(r.tree, u.name, "Maildir"), soakMessage(u.name, id)); err != nil {
			errs <- fmt.Errorf("deliver %s: %w", id, err)
			return
		}
		u.visible(id)
		r.deliveries.Add(1)
		r.logf("delivered %s", id)
	}
}

func (r *soakRun) inboxSize(u *soakUser) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, in := range u.folders["INBOX"].msgs {
		if in.state != soakAbsent {
			n++
		}
	}
	return n
}

// soakPOP3 is a minimal POP3 client that returns errors.
type soakPOP3 struct {
	nc  net.Conn
	br  *bufio.Reader
	r   *soakRun
	who string
}

func (p *soakPOP3) line() (string, error) {
	p.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	l, err := p.br.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(l, "\r\n"), nil
}

// errPOP3 is a -ERR answer: a definite "not done".
type errPOP3 struct{ line string }

func (e *errPOP3) Error() string { return e.line }

func (p *soakPOP3) cmd(c string) (string, error) {
	p.r.pop3Cmds.Add(1)
	p.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := p.nc.Write([]byte(c + "\r\n")); err != nil {
		return "", err
	}
	l, err := p.line()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		if strings.HasPrefix(c, "PASS ") {
			c = "PASS ..."
		}
		p.r.st.hung.Add(1)
		p.r.st.note("hung", "%s: POP3 %s unanswered for 30s", p.who, c)
	}
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(l, "+OK") {
		return l, &errPOP3{l}
	}
	return l, nil
}

func (p *soakPOP3) multi() ([]byte, error) {
	var b bytes.Buffer
	for {
		l, err := p.line()
		if err != nil {
			return nil, err
		}
		if l == "." {
			return b.Bytes(), nil
		}
		b.WriteString(strings.TrimPrefix(l, "."))
		b.WriteString("\r\n")
	}
}

// popper runs POP3 sessions: RETR a few messages, DELE some, QUIT.
func (r *soakRun) popper(ctx context.Context, u *soakUser, rng *mrand.Rand) {
	for ctx.Err() == nil {
		r.pause(rng)
		r.pause(rng)
		h := r.pickHost(rng)
		r.pop3Session(u, h, rng)
	}
}

func (r *soakRun) pop3Session(u *soakUser, h *soakHost, rng *mrand.Rand) {
	inc := h.inc.Load()
	nc, err := net.DialTimeout("tcp", h.pop3Addr, 3*time.Second)
	if err != nil {
		return
	}
	defer nc.Close()
	p := &soakPOP3{nc: nc, br: bufio.NewReader(nc), r: r, who: fmt.Sprintf("pop3@host%d %s", h.idx+1, u.name)}
	if l, err := p.line(); err != nil || !strings.HasPrefix(l, "+OK") {
		return
	}
	if _, err := p.cmd("USER " + u.name); err != nil {
		return
	}
	if _, err := p.cmd("PASS " + u.pass); err != nil {
		var e *errPOP3
		if errors.As(err, &e) && !strings.Contains(e.line, "IN-USE") {
			r.noted("POP3 PASS", err)
		}
		return
	}
	l, err := p.cmd("STAT")
	if err != nil {
		return
	}
	f := strings.Fields(l)
	n := 0
	if len(f) >= 2 {
		n, _ = strconv.Atoi(f[1])
	}
	var got []string // X-Soak-IDs retrieved, by position in nums
	var nums []int
	for _, i := range rng.Perm(n)[:min(n, 1+rng.IntN(3))] {
		if _, err := p.cmd(fmt.Sprintf("RETR %d", i+1)); err != nil {
			var e *errPOP3
			if errors.As(err, &e) {
				r.noted("POP3 RETR", err)
				continue
			}
			return
		}
		body, err := p.multi()
		if err != nil {
			return
		}
		id := soakParseID(body)
		if id == "" {
			r.st.foreign.Add(1)
			r.st.note("foreign", "pop3@host%d %s: RETR %d has no X-Soak-ID", h.idx+1, u.name, i+1)
			continue
		}
		if !bytes.Equal(body, soakMessage(soakUserOf(id), id)) {
			r.st.corrupt.Add(1)
			r.st.note("corrupt", "pop3@host%d %s: RETR %d (%s) returned %d bytes that differ from what was stored", h.idx+1, u.name, i+1, id, len(body))
		}
		got = append(got, id)
		nums = append(nums, i+1)
	}
	var deleted []string
	for k := range got {
		if rng.IntN(3) == 0 {
			continue
		}
		if _, err := p.cmd(fmt.Sprintf("DELE %d", nums[k])); err != nil {
			var e *errPOP3
			if errors.As(err, &e) {
				r.noted("POP3 DELE", err)
				continue
			}
			return // connection lost: a dropped session deletes nothing
		}
		deleted = append(deleted, got[k])
	}
	_, err = p.cmd("QUIT")
	r.logf("%s: QUIT after DELE of %v: %v", p.who, deleted, err)
	var e *errPOP3
	switch {
	case err == nil:
		for _, id := range deleted {
			u.remove("INBOX", id, nil)
		}
	default:
		// RFC 1939 §6: -ERR means some deleted messages were not removed;
		// a lost answer says nothing either.
		if errors.As(err, &e) {
			r.noted("POP3 QUIT", err)
		}
		for _, id := range deleted {
			r.ambiguous.Add(1)
			u.remove("INBOX", id, &soakAmb{host: h.idx, inc: inc, at: time.Now()})
		}
	}
}

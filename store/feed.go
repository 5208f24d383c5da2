package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"
)

// The change feed.
//
// Every transaction that changes a mailbox bumps its HIGHESTMODSEQ and
// stamps the changed message rows (tombstones for expunges) with it. After
// commit the writer "kicks" the mailbox: in-process directly, and through
// pg_notify to every other host. A kick is only a hint: the watched record
// then reads all rows with MODSEQ above what it has, so merged or lost
// notices lose nothing. Sessions never query for changes themselves; they
// compare their MODSEQ with the record's (an atomic load) and pull the
// differences from its in-memory log.

// maxLog bounds a record's change log; older sessions reload with List.
const maxLog = 8192

// watchRec is the one shared record per watched mailbox on this host.
type watchRec struct {
	s      *Store
	id     MailboxID
	refs   int // guarded by s.mu
	modseq atomic.Uint64
	gone   atomic.Bool

	mu   sync.Mutex
	ch   chan struct{} // guarded by mu; closed when modseq advances
	base uint64        // guarded by mu; log has every change with modseq > base
	log  []Change      // guarded by mu

	kickc chan struct{}
	syncc chan struct{}
	done  chan struct{}
	exit  chan struct{}
	wds   []int
}

// Watch is one subscriber's handle on a mailbox's change feed. Close it
// when done; the shared record stops with its last handle.
type Watch struct {
	rec  *watchRec
	once sync.Once
}

// Watch subscribes to a mailbox's changes. The first subscriber on this host
// starts a watcher that picks up outside deliveries (inotify, and a stat
// check every PollInterval for file systems inotify cannot see).
func (s *Store) Watch(ctx context.Context, id MailboxID) (*Watch, error) {
	s.mu.Lock()
	if rec := s.watches[id]; rec != nil && !rec.gone.Load() {
		rec.refs++
		s.mu.Unlock()
		return &Watch{rec: rec}, nil
	}
	s.mu.Unlock()
	b, err := s.box(ctx, id)
	if err != nil {
		return nil, err
	}
	var hm int64
	if err := s.db.queryRow(ctx, `SELECT highest_modseq FROM mailboxes WHERE id = $1`, id).Scan(&hm); err != nil {
		if errors.Is(err, errNoRows) {
			return nil, fmt.Errorf("%w: id %d", ErrNoMailbox, id)
		}
		return nil, fmt.Errorf("store: watch mailbox %d: %w", id, err)
	}
	rec := &watchRec{s: s, id: id, refs: 1, ch: make(chan struct{}), base: uint64(hm),
		kickc: make(chan struct{}, 1), syncc: make(chan struct{}, 1), done: make(chan struct{}), exit: make(chan struct{})}
	rec.modseq.Store(uint64(hm))
	s.mu.Lock()
	if old := s.watches[id]; old != nil && !old.gone.Load() {
		old.refs++
		s.mu.Unlock()
		return &Watch{rec: old}, nil
	}
	select {
	case <-s.closing:
		s.mu.Unlock()
		return nil, errors.New("store: closed")
	default:
	}
	s.watches[id] = rec
	s.wg.Add(1)
	s.mu.Unlock()
	rec.wds = s.ino.add(rec, filepath.Join(b.dir, "new"), filepath.Join(b.dir, "cur"))
	go rec.run()
	return &Watch{rec: rec}, nil
}

// ModSeq is the newest MODSEQ the record knows. It is an atomic load.
func (w *Watch) ModSeq() uint64 { return w.rec.modseq.Load() }

// Changed returns a channel that is closed when ModSeq next advances. Take
// the channel, then compare ModSeq, then wait.
func (w *Watch) Changed() <-chan struct{} {
	w.rec.mu.Lock()
	defer w.rec.mu.Unlock()
	return w.rec.ch
}

// Deleted reports whether the mailbox was deleted.
func (w *Watch) Deleted() bool { return w.rec.gone.Load() }

// ChangesSince returns the latest state of every message changed after
// modseq, in MODSEQ order, and the MODSEQ they bring the caller to. ok is
// false when the log no longer reaches back to modseq: reload with List.
func (w *Watch) ChangesSince(modseq uint64) ([]Change, uint64, bool) {
	r := w.rec
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.modseq.Load()
	if modseq < r.base {
		return nil, cur, false
	}
	if modseq >= cur {
		return nil, cur, true
	}
	// Entries are in MODSEQ order; find the first past modseq.
	i := len(r.log)
	for i > 0 && r.log[i-1].ModSeq > modseq {
		i--
	}
	tail := r.log[i:]
	last := make(map[UID]int, len(tail))
	for j, c := range tail {
		last[c.UID] = j
	}
	out := make([]Change, 0, len(last))
	for j, c := range tail {
		if last[c.UID] == j {
			out = append(out, c)
		}
	}
	return out, cur, true
}

// Close releases the handle.
func (w *Watch) Close() {
	w.once.Do(func() {
		s := w.rec.s
		s.mu.Lock()
		w.rec.refs--
		last := w.rec.refs == 0
		if last && s.watches[w.rec.id] == w.rec {
			delete(s.watches, w.rec.id)
		}
		s.mu.Unlock()
		if last {
			w.rec.stop()
		}
	})
}

func (r *watchRec) stop() {
	select {
	case <-r.done:
	default:
		close(r.done)
	}
	<-r.exit
}

func (r *watchRec) run() {
	defer r.s.wg.Done()
	defer close(r.exit)
	defer r.s.ino.remove(r.wds)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.done:
		case <-r.s.closing:
		}
		cancel()
	}()
	t := time.NewTicker(r.s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kickc:
			r.refresh(ctx)
		case <-r.syncc:
			r.sync(ctx)
		case <-t.C:
			r.sync(ctx)
		}
	}
}

func (r *watchRec) sync(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.s.Sync(sctx, r.id); err != nil && ctx.Err() == nil {
		if errors.Is(err, ErrNoMailbox) {
			r.refresh(ctx)
			return
		}
		r.s.log.Warn("sync watched mailbox", "mailbox", r.id, "err", err)
	}
}

// changesSince reads the mailbox's HIGHESTMODSEQ and the latest state of
// every message stamped with a MODSEQ above modseq (tombstones included),
// in MODSEQ order, in one statement. One statement is one snapshot, so the
// rows are exactly the changes up to that HIGHESTMODSEQ; reading the two in
// separate statements would let a transaction commit in between and its
// rows be skipped for good (see doc.go). ErrNoMailbox if the mailbox row is
// gone.
func (s *Store) changesSince(ctx context.Context, id MailboxID, modseq uint64) ([]Change, uint64, error) {
	rs, err := s.db.query(ctx, `SELECT b.highest_modseq, m.uid, m.flags, m.keywords, m.size, m.modseq, m.expunged
		FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id AND m.modseq > $2
		WHERE b.id = $1 ORDER BY m.modseq, m.uid`, id, int64(modseq))
	if err != nil {
		return nil, 0, err
	}
	defer rs.Close()
	var changes []Change
	var hm int64
	found := false
	for rs.Next() {
		var uid, fl, size, ms, exp *int64
		var kw *string
		if err := rs.Scan(&hm, &uid, &fl, &kw, &size, &ms, &exp); err != nil {
			return nil, 0, err
		}
		found = true
		if uid == nil {
			continue // no message changed: the LEFT JOIN's lone mailbox row
		}
		changes = append(changes, Change{UID: UID(*uid), Flags: Flags(*fl), Keywords: splitKeywords(*kw), Size: *size, ModSeq: uint64(*ms), Expunged: *exp != 0})
	}
	if err := rs.Err(); err != nil {
		return nil, 0, err
	}
	if !found {
		return nil, 0, fmt.Errorf("%w: id %d", ErrNoMailbox, id)
	}
	return changes, uint64(hm), nil
}

// refresh reads every change past the record's MODSEQ from the index
// (changesSince: one statement).
func (r *watchRec) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	have := r.modseq.Load()
	changes, hm, err := r.s.changesSince(ctx, r.id, have)
	if errors.Is(err, ErrNoMailbox) {
		r.gone.Store(true)
		r.signal(have + 1)
		return
	}
	if err != nil {
		r.s.log.Warn("read changes", "mailbox", r.id, "err", err)
		r.retryLater()
		return
	}
	if len(changes) == 0 {
		if hm > have {
			r.signal(hm)
		}
		return
	}
	r.mu.Lock()
	r.log = append(r.log, changes...)
	if len(r.log) > maxLog {
		drop := len(r.log) - maxLog/2
		r.base = r.log[drop-1].ModSeq
		r.log = append([]Change(nil), r.log[drop:]...)
		// Entries sharing the boundary MODSEQ must all stay or all go.
		for len(r.log) > 0 && r.log[0].ModSeq == r.base {
			r.log = r.log[1:]
		}
	}
	r.mu.Unlock()
	r.signal(max(hm, changes[len(changes)-1].ModSeq))
}

func (r *watchRec) retryLater() {
	go func() {
		select {
		case <-time.After(time.Second):
			r.kick()
		case <-r.done:
		}
	}()
}

func (r *watchRec) signal(modseq uint64) {
	r.mu.Lock()
	if modseq > r.modseq.Load() {
		r.modseq.Store(modseq)
	}
	close(r.ch)
	r.ch = make(chan struct{})
	r.mu.Unlock()
}

func (r *watchRec) kick() {
	select {
	case r.kickc <- struct{}{}:
	default:
	}
}

// kick tells this host's record of a mailbox that MODSEQ reached modseq.
func (s *Store) kick(id MailboxID, modseq uint64) {
	s.mu.Lock()
	rec := s.watches[id]
	s.mu.Unlock()
	if rec != nil && modseq > rec.modseq.Load() {
		rec.kick()
	}
}

func (s *Store) kickAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range s.watches {
		rec.kick()
	}
}

// listen holds a LISTEN connection to PostgreSQL and turns notices from
// other hosts into kicks. After a reconnect every watched mailbox is
// refreshed, so nothing missed while disconnected is lost.
func (s *Store) listen(pg *pgDB, listening chan<- struct{}) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-s.closing; cancel() }()
	backoff := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		conn, err := pgx.Connect(ctx, pg.url)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN postoffice")
		}
		if err != nil {
			if conn != nil {
				conn.Close(context.Background())
			}
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("change feed: connect for LISTEN", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if first {
			close(listening)
		}
		if !first {
			s.log.Info("change feed: reconnected")
			s.kickAll()
		}
		first = false
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("change feed: connection lost", "err", err)
				}
				break
			}
			if e, ok := s.events.fromNotice(n.Payload); ok {
				if e.Kind != MailboxCreated {
					s.forgetUser(e.User) // paths of renamed or deleted folders changed
				}
				s.events.publish(e)
				continue
			}
			if id, ms, at, ok := parseNotice(n.Payload); ok {
				if s.opts.OnNotify != nil && at > 0 {
					s.opts.OnNotify(time.Since(time.UnixMicro(at)))
				}
				s.kick(id, ms)
			}
		}
		conn.Close(context.Background())
	}
}

func parseNotice(p string) (id MailboxID, modseq uint64, atMicro int64, ok bool) {
	f := strings.Split(p, ":")
	if len(f) < 2 || f[0] == "m" {
		return 0, 0, 0, false
	}
	i, err1 := strconv.ParseInt(f[0], 10, 64)
	ms, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, 0, false
	}
	if len(f) > 2 {
		atMicro, _ = strconv.ParseInt(f[2], 10, 64)
	}
	return MailboxID(i), ms, atMicro, true
}

// inotifier shares one inotify instance among the watched mailboxes of a
// store. When watches cannot be added (kernel limits), the periodic stat
// check still finds deliveries.
type inotifier struct {
	s    *Store
	mu   sync.Mutex
	f    *os.File          // guarded by mu; nil until first use or after failure
	recs map[int]*watchRec // guarded by mu
	wg   sync.WaitGroup
}

func newInotifier(s *Store) *inotifier { return &inotifier{s: s, recs: map[int]*watchRec{}} }

func (in *inotifier) add(rec *watchRec, dirs ...string) []int {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.f == nil {
		fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
		if err != nil {
			in.s.log.Warn("inotify unavailable; relying on periodic checks", "err", err)
			return nil
		}
		in.f = os.NewFile(uintptr(fd), "inotify")
		in.wg.Add(1)
		go in.read(in.f)
	}
	var wds []int
	for _, d := range dirs {
		wd, err := unix.InotifyAddWatch(int(in.f.Fd()), d, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_MOVED_FROM|unix.IN_DELETE|unix.IN_ONLYDIR)
		if err != nil {
			in.s.log.Debug("inotify watch not added; relying on periodic checks", "dir", d, "err", err)
			continue
		}
		in.recs[wd] = rec
		wds = append(wds, wd)
	}
	return wds
}

func (in *inotifier) remove(wds []int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, wd := range wds {
		if in.recs[wd] != nil {
			delete(in.recs, wd)
			if in.f != nil {
				_, _ = unix.InotifyRmWatch(int(in.f.Fd()), uint32(wd))
			}
		}
	}
}

func (in *inotifier) read(f *os.File) {
	defer in.wg.Done()
	buf := make([]byte, 64*1024)
	for {
		n, err := f.Read(buf)
		if err != nil {
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafePointer(&buf[off]))
			in.mu.Lock()
			rec := in.recs[int(ev.Wd)]
			in.mu.Unlock()
			if rec != nil {
				select {
				case rec.syncc <- struct{}{}:
				default:
				}
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}

func (in *inotifier) close() {
	in.mu.Lock()
	f := in.f
	in.f = nil
	in.mu.Unlock()
	if f != nil {
		f.Close()
	}
	in.wg.Wait()
}

package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// maildropLocks implements the POP3 exclusive maildrop lock (RFC 1939 §8).
// Inside a host a map says who holds what. Across hosts, one dedicated
// PostgreSQL connection per host holds a session-level advisory lock per
// locked user: if the host dies, its connection drops and PostgreSQL frees
// every lock it held. The embedded index serves one host, so the map is all
// it needs.
type maildropLocks struct {
	s    *Store
	mu   sync.Mutex
	held map[UserID]bool // guarded by mu
	conn *pgx.Conn       // guarded by mu; PostgreSQL only, nil until needed
}

func newMaildropLocks(s *Store) *maildropLocks {
	return &maildropLocks{s: s, held: map[UserID]bool{}}
}

// lockKey is the advisory lock key of a user's maildrop: a fixed tag in the
// high half so other applications' keys do not collide with ours.
func lockKey(u UserID) int64 { return int64(0x706F7033)<<32 | int64(uint32(u)) }

// LockMaildrop takes the exclusive maildrop lock of a user, on this host
// and across all hosts sharing the database. ErrMailboxBusy if another
// session holds it. The returned function releases it; call it once.
func (s *Store) LockMaildrop(ctx context.Context, u UserID) (func(), error) {
	l := s.locks
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[u] {
		return nil, ErrMailboxBusy
	}
	if pg, ok := s.db.(*pgDB); ok {
		got, err := l.tryPG(ctx, pg, u)
		if err != nil {
			return nil, err
		}
		if !got {
			return nil, ErrMailboxBusy
		}
	}
	l.held[u] = true
	var once sync.Once
	return func() { once.Do(func() { l.unlock(u) }) }, nil
}

func (l *maildropLocks) tryPG(ctx context.Context, pg *pgDB, u UserID) (bool, error) {
	for attempt := 0; attempt < 2; attempt++ {
		if l.conn == nil || l.conn.IsClosed() {
			c, err := pgx.Connect(ctx, pg.url)
			if err != nil {
				return false, fmt.Errorf("%w: lock connection: %w", ErrUnavailable, err)
			}
			l.conn = c
			// A new connection holds none of our locks: take back those
			// that live sessions still hold.
			for held := range l.held {
				var ok bool
				if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey(held)).Scan(&ok); err != nil || !ok {
					l.s.log.Warn("maildrop lock lost after reconnect", "user", held, "err", err)
				}
			}
		}
		var ok bool
		err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey(u)).Scan(&ok)
		if err == nil {
			return ok, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		l.conn.Close(context.Background())
		l.conn = nil
		if attempt == 1 {
			return false, fmt.Errorf("%w: maildrop lock: %w", ErrUnavailable, err)
		}
	}
	return false, nil
}

func (l *maildropLocks) unlock(u UserID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.held, u)
	if l.conn == nil || l.conn.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockKey(u)); err != nil {
		l.s.log.Warn("release maildrop lock", "user", u, "err", err)
		// Dropping the connection releases every lock it held; re-taken
		// for the remaining sessions on the next LockMaildrop.
		l.conn.Close(context.Background())
		l.conn = nil
	}
}

func (l *maildropLocks) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		l.conn.Close(context.Background())
		l.conn = nil
	}
}

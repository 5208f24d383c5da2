package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options configures a Store. The zero value of every field but DataDir is
// safe.
type Options struct {
	// DataDir holds the embedded index (index.db) and, for a relative
	// MaildirTemplate, the Maildir tree. Required.
	DataDir string
	// DatabaseURL selects PostgreSQL ("postgres://..."). Empty: the embedded
	// SQLite index in DataDir.
	DatabaseURL string
	// MaildirTemplate maps a user to a Maildir path: %u user, %n local part,
	// %d domain, %% a percent sign. A relative result is under DataDir.
	// Empty: "%u/Maildir".
	MaildirTemplate string
	// PollInterval is how often watched mailboxes are stat-checked for
	// changes inotify cannot see (NFS). Zero: 3s.
	PollInterval time.Duration
	// Logger receives operational logs. Nil: discarded.
	Logger *slog.Logger
	// OnSync, if set, is called with the duration of every Sync that had
	// to look at a directory listing (metrics).
	OnSync func(time.Duration)
	// OnNotify, if set, is called with the time from another host's
	// commit to this host receiving its notice (metrics; includes clock
	// skew between hosts).
	OnNotify func(time.Duration)
	// ListCacheEntries bounds the List cache: snapshots of the listings
	// of mailboxes with at least 256 messages, kept up to date from the
	// index's MODSEQs, evicted least recently used first. It counts
	// messages (about 60 bytes each). Zero: 500,000; negative: no cache.
	ListCacheEntries int
}

// Store is the mail store: per-user Maildirs plus the index. It is safe for
// concurrent use. Close releases the database, watches and locks.
type Store struct {
	opts     Options
	db       indexDB
	log      *slog.Logger
	hostname string

	mu      sync.Mutex
	boxes   map[MailboxID]*boxState // guarded by mu
	watches map[MailboxID]*watchRec // guarded by mu
	kwMu    sync.Mutex              // serialises dovecot-keywords updates
	lists   listCache               // List snapshots of big mailboxes

	events  *eventHub
	locks   *maildropLocks
	ino     *inotifier
	closing chan struct{}
	wg      sync.WaitGroup
	closeMu sync.Once
}

// Open opens the index (creating and migrating it as needed) and starts the
// change feed.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.DataDir == "" {
		return nil, errors.New("store: Options.DataDir is required")
	}
	if o.MaildirTemplate == "" {
		o.MaildirTemplate = "%u/Maildir"
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 3 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := os.MkdirAll(o.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("store: create data dir: %w", err)
	}
	s := &Store{
		opts:    o,
		log:     o.Logger.With("component", "store"),
		boxes:   make(map[MailboxID]*boxState),
		watches: make(map[MailboxID]*watchRec),
		closing: make(chan struct{}),
		events:  newEventHub(),
	}
	s.hostname, _ = os.Hostname()
	if s.hostname == "" {
		s.hostname = "localhost"
	}
	s.hostname = strings.NewReplacer("/", `\057`, ":", `\072`, ".", `\056`).Replace(s.hostname)
	var err error
	if o.DatabaseURL != "" {
		s.db, err = openPG(ctx, o.DatabaseURL)
	} else {
		s.db, err = openSQLite(ctx, o.DataDir)
	}
	if err != nil {
		return nil, err
	}
	if _, err := s.db.migrate(ctx); err != nil {
		s.db.close()
		return nil, err
	}
	s.locks = newMaildropLocks(s)
	s.ino = newInotifier(s)
	if pg, ok := s.db.(*pgDB); ok {
		// Wait (briefly) for the LISTEN connection, so a store that Open
		// returned hears every change committed after that.
		listening := make(chan struct{})
		s.wg.Add(1)
		go s.listen(pg, listening)
		select {
		case <-listening:
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			s.log.Warn("change feed: LISTEN not up yet; continuing, it keeps trying")
		}
	}
	return s, nil
}

// Close stops the change feed, releases maildrop locks and closes the
// index. Watches still open stop receiving changes.
func (s *Store) Close() error {
	var err error
	s.closeMu.Do(func() {
		close(s.closing)
		s.mu.Lock()
		ws := make([]*watchRec, 0, len(s.watches))
		for _, w := range s.watches {
			ws = append(ws, w)
		}
		s.mu.Unlock()
		for _, w := range ws {
			w.stop()
		}
		s.ino.close()
		s.locks.close()
		s.wg.Wait()
		err = s.db.close()
	})
	return err
}

// Backend is "postgres" or "sqlite".
func (s *Store) Backend() string { return s.db.name() }

// Ping checks that the index database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.ping(ctx) }

// Migrate applies pending schema migrations (Open already does) and returns
// how many it applied.
func (s *Store) Migrate(ctx context.Context) (int, error) { return s.db.migrate(ctx) }

// MaildirRoot is the directory under which relative Maildir paths live.
func (s *Store) MaildirRoot() string { return s.opts.DataDir }

// MaildirPath is the Maildir (INBOX) directory of u.
func (s *Store) MaildirPath(u *User) string {
	p := u.MaildirOverride
	if p == "" {
		local, domain, _ := strings.Cut(u.Name, "@")
		var b strings.Builder
		t := s.opts.MaildirTemplate
		for i := 0; i < len(t); i++ {
			if t[i] != '%' || i+1 == len(t) {
				b.WriteByte(t[i])
				continue
			}
			i++
			switch t[i] {
			case 'u':
				b.WriteString(u.Name)
			case 'n':
				b.WriteString(local)
			case 'd':
				b.WriteString(domain)
			case '%':
				b.WriteByte('%')
			default:
				b.WriteByte('%')
				b.WriteByte(t[i])
			}
		}
		p = b.String()
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(s.opts.DataDir, p)
	}
	return filepath.Clean(p)
}

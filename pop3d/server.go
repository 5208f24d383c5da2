package pop3d

// Implementation notes (invariants of this file):
//   - Every connection goroutine is started by Serve and tracked in
//     Server.conns; Close and Shutdown wait for all of them.
//   - A Server may Serve several listeners (POP3 and POP3S) at once.
//   - shuttingDown is set before any connection is woken, so a connection
//     that re-arms its read deadline after the wake-up still sees the flag
//     (conn.readLine checks it after setting the deadline).

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postoffice/postoffice/store"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("pop3d: server closed")

// Store is the part of *store.Store the POP3 server uses.
type Store interface {
	User(ctx context.Context, name string) (*store.User, error)
	Mailbox(ctx context.Context, u store.UserID, name string) (*store.Mailbox, error)
	Sync(ctx context.Context, m store.MailboxID) error
	List(ctx context.Context, m store.MailboxID) ([]store.MessageInfo, uint64, error)
	Messages(ctx context.Context, m store.MailboxID, uids []store.UID, fields store.MessageFields) ([]store.Message, error)
	OpenLoaded(ctx context.Context, m store.MailboxID, msg *store.Message) (io.ReadCloser, error)
	Expunge(ctx context.Context, m store.MailboxID, uids []store.UID, onlyDeleted bool) ([]store.UID, error)
	SetFlags(ctx context.Context, m store.MailboxID, uids []store.UID, op store.FlagOp, flags store.Flags, keywords []string) ([]store.Change, error)
	LockMaildrop(ctx context.Context, u store.UserID) (func(), error)
	RecordLogin(ctx context.Context, id store.UserID) error
}

// Verifier checks credentials. *auth.Verifier satisfies it. Verify returns
// nil on success, an error matching auth.ErrInvalidCredentials for bad
// credentials, auth.ErrThrottled when logins are locked out, and any other
// error for internal failures.
type Verifier interface {
	Verify(ctx context.Context, name, password string, remote netip.Addr) error
}

// Options configures a Server. Zero values are safe except where noted.
type Options struct {
	// Store is the mail store. Required.
	Store Store
	// Auth verifies credentials. Required.
	Auth Verifier
	// TLSConfig enables STLS (RFC 2595) when non-nil. For POP3S (implicit
	// TLS) wrap the listener with tls.NewListener instead; connections that
	// are already *tls.Conn are handshaken before the greeting.
	TLSConfig *tls.Config
	// PlaintextAuthNets are client networks allowed to log in without TLS.
	// Empty: logins need TLS.
	PlaintextAuthNets []netip.Prefix
	// Logger receives connection logs. Nil: discard.
	Logger *slog.Logger
	// Hostname is shown in the greeting. Empty: no host name is shown.
	Hostname string
	// LoginTimeout is the idle timeout before login. Zero: 30s.
	LoginTimeout time.Duration
	// IdleTimeout is the idle timeout after login. Zero: 10 minutes, the
	// RFC 1939 §3 minimum.
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to the client. Zero: 60s.
	WriteTimeout time.Duration
	// StoreTimeout bounds each store call. Zero: 30s.
	StoreTimeout time.Duration
	// MaxBadCommands is how many bad or unknown commands are tolerated
	// before login before the connection is closed. Zero: 10.
	MaxBadCommands int
	// NoFlagUpdates keeps POP3 from setting \Seen. Zero (false): like
	// Dovecot's default (pop3_no_flag_updates = no), messages retrieved
	// with RETR are marked \Seen when the session QUITs.
	NoFlagUpdates bool

	// ObserveCommand, if set, is called after every known command with
	// its name and how long it took (metrics). Nil: nothing.
	ObserveCommand func(name string, d time.Duration)
	// MaxAuthFailures is how many failed logins a connection may make
	// before it is closed. Zero: 3.
	MaxAuthFailures int
}

// Server is a POP3 server. Create it with New.
type Server struct {
	opts Options
	log  *slog.Logger

	baseCtx    context.Context
	cancelBase context.CancelFunc

	shuttingDown atomic.Bool
	panics       atomic.Uint64
	nextID       atomic.Uint64

	mu        sync.Mutex
	listeners map[net.Listener]struct{} // guarded by mu
	conns     map[*conn]struct{}        // guarded by mu
	wg        sync.WaitGroup            // connection goroutines
}

// New checks the options and returns a Server.
func New(o Options) (*Server, error) {
	if o.Store == nil {
		return nil, errors.New("pop3d: Options.Store is required")
	}
	if o.Auth == nil {
		return nil, errors.New("pop3d: Options.Auth is required")
	}
	if o.LoginTimeout <= 0 {
		o.LoginTimeout = 30 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 60 * time.Second
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = 30 * time.Second
	}
	if o.MaxBadCommands <= 0 {
		o.MaxBadCommands = 10
	}
	if o.MaxAuthFailures <= 0 {
		o.MaxAuthFailures = 3
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts:       o,
		log:        log.With("proto", "pop3"),
		baseCtx:    ctx,
		cancelBase: cancel,
		listeners:  make(map[net.Listener]struct{}),
		conns:      make(map[*conn]struct{}),
	}, nil
}

// Panics returns how many connection goroutines recovered from a panic.
// Tests fail when it is not zero.
func (s *Server) Panics() uint64 { return s.panics.Load() }

// Serve accepts connections on ln until Shutdown or Close, and then returns
// ErrServerClosed. Other accept errors are retried with a capped backoff,
// unless ln was closed by someone else, in which case the error is returned.
// Serve takes ownership of ln and closes it.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shuttingDown.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shuttingDown.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("pop3d: accept: %w", err)
			}
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else {
				backoff = min(2*backoff, time.Second)
			}
			s.log.Warn("accept failed; retrying", "err", err, "dur", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.baseCtx.Done():
				t.Stop()
			}
			continue
		}
		backoff = 0
		c := s.newConn(nc)
		s.mu.Lock()
		if s.shuttingDown.Load() {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			c.serve()
		}()
	}
}

// Shutdown stops accepting connections, asks every session to end (idle
// sessions are told "-ERR [SYS/TEMP] server shutting down" and closed
// without entering UPDATE; busy ones finish their current command first) and
// waits for them until ctx is done. Then it closes what is left, like Close,
// and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginShutdown()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancelBase()
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// Close closes all listeners and connections at once and waits for the
// connection goroutines to end. Sessions end without UPDATE.
func (s *Server) Close() error {
	s.beginShutdown()
	s.cancelBase()
	s.mu.Lock()
	for c := range s.conns {
		c.closeNet()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) beginShutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shuttingDown.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.wake()
	}
}

// plaintextAllowed reports whether a client at addr may send a password
// without TLS.
func (s *Server) plaintextAllowed(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	for _, p := range s.opts.PlaintextAuthNets {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

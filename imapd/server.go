package imapd

// Implementation notes (invariants of the listener side):
//   - Every accepted connection gets its own imapserver.Server. It is only a
//     small options holder (the library keeps no other per-server state
//     than a listener and a connection set), and it is the one way to give
//     a connection its own InsecureAuth (PlaintextAuthNets), its own
//     STARTTLS config (none on IMAPS) and its own literal guard (guard.go).
//     Serve on a one-connection listener starts the library's connection
//     goroutine and returns at once.
//   - We accept, count (per IP), optionally TLS-handshake, and hand over.
//     A connection counts as live from Accept until session.Close (or until
//     we drop it before handing it over); wg counts live connections and
//     Shutdown waits for it.
//   - trackedConn sits under everything (under TLS too). Shutdown poisons
//     its reads: the library finishes the command in progress, fails to
//     read the next one, and ends the session; session.Close says BYE.
//   - mu guards listeners, conns, perIP, perUser, closed and drain.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postoffice/postoffice/store"
)

// ErrServerClosed is returned by Serve and ServeTLS after Shutdown or Close.
var ErrServerClosed = errors.New("imapd: server closed")

// Defaults for zero Options fields.
const (
	DefaultAppendLimit     = 64 << 20 // 64 MiB
	DefaultMaxConnsPerIP   = 50
	DefaultMaxConnsPerUser = 20
	handshakeTimeout       = 30 * time.Second
	byeTimeout             = 5 * time.Second
)

// DefaultSpecialFolders are the folders created at a user's first login,
// by special-use attribute (RFC 6154).
var DefaultSpecialFolders = map[string]string{
	`\Drafts`:  "Drafts",
	`\Sent`:    "Sent",
	`\Trash`:   "Trash",
	`\Junk`:    "Junk",
	`\Archive`: "Archive",
}

// Verifier checks a password; *auth.Verifier is one. It returns
// auth.ErrInvalidCredentials or auth.ErrThrottled for refused logins.
type Verifier interface {
	Verify(ctx context.Context, name, password string, remote netip.Addr) error
}

// Options configure a Server. Store and Auth are required; every other zero
// value is safe and means the documented default.
type Options struct {
	// Store is the mail store. Required. The Server does not close it.
	Store *store.Store
	// Auth checks passwords (and throttles failures); *auth.Verifier
	// satisfies it. Required.
	Auth Verifier
	// TLSConfig is used for STARTTLS on Serve listeners and for implicit
	// TLS on ServeTLS listeners. Nil: no STARTTLS, and ServeTLS fails.
	// MinVersion is raised to TLS 1.2 if lower. Certificate reloading is
	// the caller's business (GetCertificate).
	TLSConfig *tls.Config
	// PlaintextAuthNets are the client networks that may log in without
	// TLS. Elsewhere a cleartext connection advertises LOGINDISABLED and
	// refuses LOGIN/AUTHENTICATE until STARTTLS. Nil: nobody.
	PlaintextAuthNets []netip.Prefix
	// SpecialFolders maps a special-use attribute (`\Drafts`, `\Sent`,
	// `\Trash`, `\Junk`, `\Archive`) to the folder name created with it at
	// a user's first login. Nil: DefaultSpecialFolders. An empty name skips
	// that folder; an empty non-nil map creates none.
	SpecialFolders map[string]string
	// MaxConnsPerIP bounds simultaneous connections from one address
	// (IPv6: per address, not per prefix). Zero: DefaultMaxConnsPerIP;
	// negative: unlimited. Excess connections get "* BYE [LIMIT]".
	MaxConnsPerIP int
	// MaxConnsPerUser bounds simultaneous authenticated sessions of one
	// user. Zero: DefaultMaxConnsPerUser; negative: unlimited. An excess
	// login gets "NO [LIMIT]".
	MaxConnsPerUser int
	// AppendLimit is the largest message APPEND accepts (APPENDLIMIT=n).
	// Zero: DefaultAppendLimit. Values below 4096 are raised to 4096.
	AppendLimit uint32
	// Logger receives connection, login and error logs. Nil: discard.
	Logger *slog.Logger
	// ObserveCommand, if set, is called after every command the session
	// handles, with its name and duration (metrics). Nil: nothing.
	ObserveCommand func(name string, d time.Duration)
	// FetchCacheBytes bounds the cache of parsed ENVELOPE and BODYSTRUCTURE
	// values shared by all sessions (fetchcache.go). Zero:
	// DefaultFetchCacheBytes; negative: no cache.
	FetchCacheBytes int
	// Debug, if set, receives the raw protocol stream of every connection,
	// passwords included. For debugging only; New logs a warning.
	Debug io.Writer
}

// Server is an IMAP server. It is safe for concurrent use.
type Server struct {
	opts        Options
	log         *slog.Logger
	caps        imap.CapSet
	tlsConfig   *tls.Config // nil without TLS
	appendLimit uint32
	maxPerIP    int
	maxPerUser  int
	special     []specialFolder
	debugMu     sync.Mutex // serialises writes to opts.Debug
	fetchCache  *fetchCache

	ctx    context.Context // parent of every session context; cancelled by Close
	cancel context.CancelFunc

	nextID atomic.Uint64
	panics atomic.Uint64

	wg sync.WaitGroup // live connections

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*trackedConn]struct{}
	perIP     map[netip.Addr]int
	perUser   map[store.UserID]int
	closed    bool // Close or Shutdown called: refuse new connections
	drain     bool // Shutdown in progress: sessions say BYE
}

type specialFolder struct {
	use  string // `\Sent`
	name string
}

// capabilities lists what the server advertises beyond what the library
// adds by itself (SASL-IR, LITERAL-, STARTTLS, AUTH=, LOGINDISABLED,
// UNSELECT, ENABLE, IDLE, UTF8=ACCEPT, and APPENDLIMIT=n from
// SessionAppendLimit). Each entry needs its implementation and tests.
// Deliberately absent: LITERAL+ (see guard.go), CONDSTORE, QRESYNC, ID,
// QUOTA, SORT, THREAD, COMPRESS (the library has no support).
var capabilities = []imap.Cap{
	imap.CapIMAP4rev1,
	imap.CapIMAP4rev2,
	imap.CapNamespace,
	imap.CapUIDPlus,
	imap.CapESearch,
	imap.CapSearchRes,
	imap.CapListExtended,
	imap.CapListStatus,
	imap.CapMove,
	imap.CapStatusSize,
	imap.CapBinary,
	imap.CapChildren,
	imap.CapSpecialUse,
	imap.CapCreateSpecialUse,
	imap.CapUnauthenticate,
}

// New returns a Server. It starts no goroutines; Serve and ServeTLS do.
func New(o Options) (*Server, error) {
	if o.Store == nil {
		return nil, errors.New("imapd: Options.Store is required")
	}
	if o.Auth == nil {
		return nil, errors.New("imapd: Options.Auth is required")
	}
	s := &Server{
		opts:        o,
		log:         o.Logger,
		caps:        imap.CapSet{},
		appendLimit: o.AppendLimit,
		maxPerIP:    o.MaxConnsPerIP,
		maxPerUser:  o.MaxConnsPerUser,
		listeners:   map[net.Listener]struct{}{},
		conns:       map[*trackedConn]struct{}{},
		perIP:       map[netip.Addr]int{},
		perUser:     map[store.UserID]int{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, c := range capabilities {
		s.caps[c] = struct{}{}
	}
	if s.appendLimit == 0 {
		s.appendLimit = DefaultAppendLimit
	}
	if s.appendLimit < maxSmallLiteral {
		s.appendLimit = maxSmallLiteral
	}
	switch {
	case o.FetchCacheBytes == 0:
		s.fetchCache = newFetchCache(DefaultFetchCacheBytes)
	case o.FetchCacheBytes > 0:
		s.fetchCache = newFetchCache(o.FetchCacheBytes)
	default:
		s.fetchCache = newFetchCache(0)
	}
	if s.maxPerIP == 0 {
		s.maxPerIP = DefaultMaxConnsPerIP
	}
	if s.maxPerUser == 0 {
		s.maxPerUser = DefaultMaxConnsPerUser
	}
	if o.TLSConfig != nil {
		s.tlsConfig = o.TLSConfig.Clone()
		if s.tlsConfig.MinVersion < tls.VersionTLS12 {
			s.tlsConfig.MinVersion = tls.VersionTLS12
		}
	}
	special := o.SpecialFolders
	if special == nil {
		special = DefaultSpecialFolders
	}
	for _, use := range []string{`\Drafts`, `\Sent`, `\Trash`, `\Junk`, `\Archive`} {
		if name := special[use]; name != "" {
			s.special = append(s.special, specialFolder{use: use, name: name})
		}
	}
	for use := range special {
		if !creatableUse(use) {
			return nil, fmt.Errorf("imapd: SpecialFolders: unsupported special use %q", use)
		}
	}
	for _, p := range o.PlaintextAuthNets {
		if !p.IsValid() {
			return nil, fmt.Errorf("imapd: PlaintextAuthNets: invalid prefix %v", p)
		}
	}
	if o.Debug != nil {
		s.log.Warn("IMAP wire tracing is on: passwords and mail are written to the debug log")
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Panics returns how many panics the library recovered in connection
// goroutines (each ends its connection). Tests require zero.
func (s *Server) Panics() uint64 { return s.panics.Load() }

// Serve accepts cleartext connections on ln (port 143) and serves them,
// offering STARTTLS when Options.TLSConfig is set. It returns
// ErrServerClosed after Shutdown or Close, or the listener's error. It
// closes ln when it returns.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, false) }

// ServeTLS accepts connections on ln and serves them with implicit TLS
// (IMAPS, port 993) using Options.TLSConfig. ln must be a plain TCP
// listener: ServeTLS does the handshake itself, with a deadline.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.tlsConfig == nil {
		return errors.New("imapd: ServeTLS needs Options.TLSConfig")
	}
	return s.serve(ln, true)
}

func (s *Server) serve(ln net.Listener, implicitTLS bool) error {
	defer ln.Close()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			if !temporary(err) {
				return fmt.Errorf("imapd: accept: %w", err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed, retrying", "err", err, "delay", delay)
			select {
			case <-time.After(delay):
			case <-s.ctx.Done():
				return ErrServerClosed
			}
			continue
		}
		delay = 0
		s.accept(c, implicitTLS)
	}
}

// temporary reports whether an Accept error is worth retrying.
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// accept registers a new connection and starts its goroutine.
func (s *Server) accept(c net.Conn, implicitTLS bool) {
	tc := &trackedConn{Conn: c, id: s.nextID.Add(1), remote: remoteAddr(c)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.Close()
		return
	}
	s.conns[tc] = struct{}{}
	s.perIP[tc.remote]++
	overLimit := s.maxPerIP > 0 && s.perIP[tc.remote] > s.maxPerIP
	s.wg.Add(1)
	s.mu.Unlock()
	go s.start(tc, implicitTLS, overLimit)
}

// start finishes the handshake of one connection and hands it to the
// library. It returns as soon as the library's goroutine runs.
func (s *Server) start(tc *trackedConn, implicitTLS, overLimit bool) {
	log := s.log.With("proto", "imap", "conn", tc.id, "remote", tc.remote.String())
	// Write coalescing goes under TLS (here, and under the library's own
	// STARTTLS): the library tells a TLS session by its *tls.Conn.
	cc := newCoalescingConn(tc)
	var c net.Conn = cc
	if implicitTLS {
		tlsConn := tls.Server(cc, s.tlsConfig)
		_ = cc.SetDeadline(time.Now().Add(handshakeTimeout))
		err := tlsConn.Handshake()
		_ = cc.SetDeadline(time.Time{})
		if err != nil {
			log.Debug("TLS handshake failed", "err", err)
			_ = tc.Conn.Close()
			s.connDone(tc)
			return
		}
		c = tlsConn
	}
	if overLimit {
		log.Warn("too many connections from address", "limit", s.maxPerIP)
		_ = c.SetWriteDeadline(time.Now().Add(byeTimeout))
		_, _ = io.WriteString(c, "* BYE [LIMIT] Too many connections from your address\r\n")
		_ = c.Close()
		s.connDone(tc)
		return
	}
	trusted := !implicitTLS && s.plaintextAuthAllowed(tc.remote)
	log.Info("connection opened", "tls", implicitTLS, "plaintext_auth", trusted)

	sess := &session{srv: s, tc: tc, remote: tc.remote, log: log, baseLog: log}
	sess.ctx, sess.cancel = context.WithCancel(s.ctx)
	g := &guard{srv: s, tc: tc, log: log, sentBOL: true}
	lo := &imapserver.Options{
		NewSession: func(conn *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			sess.conn = conn
			if obs := s.opts.ObserveCommand; obs != nil {
				return &observed{session: sess, obs: obs}, nil, nil
			}
			return sess, nil, nil
		},
		Caps:         s.caps,
		Logger:       &libLogger{srv: s, log: log},
		InsecureAuth: trusted,
		DebugWriter:  g,
	}
	if !implicitTLS {
		lo.TLSConfig = s.tlsConfig // nil: no STARTTLS
	}
	if err := imapserver.New(lo).Serve(&oneConnListener{conn: c}); err != nil {
		// Unreachable: Serve only fails on a closed server or listener error.
		log.Error("handing connection to imapserver", "err", err)
		_ = tc.Conn.Close()
		s.connDone(tc)
	}
}

// plaintextAuthAllowed reports whether addr is in PlaintextAuthNets.
func (s *Server) plaintextAuthAllowed(addr netip.Addr) bool {
	for _, p := range s.opts.PlaintextAuthNets {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// remoteAddr returns the connection's remote IP (unmapped), or the zero
// Addr for non-IP connections.
func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// connDone forgets a connection that has ended. Called exactly once per
// accepted connection: by session.Close, or by start when the connection
// never reached the library.
func (s *Server) connDone(tc *trackedConn) {
	s.mu.Lock()
	delete(s.conns, tc)
	if s.perIP[tc.remote]--; s.perIP[tc.remote] <= 0 {
		delete(s.perIP, tc.remote)
	}
	s.mu.Unlock()
	s.wg.Done()
}

// acquireUser takes one of the user's session slots.
func (s *Server) acquireUser(id store.UserID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.maxPerUser > 0 && s.perUser[id] >= s.maxPerUser {
		return errConnLimit
	}
	s.perUser[id]++
	return nil
}

func (s *Server) releaseUserSlot(id store.UserID) {
	s.mu.Lock()
	if s.perUser[id]--; s.perUser[id] <= 0 {
		delete(s.perUser, id)
	}
	s.mu.Unlock()
}

// draining reports whether Shutdown is in progress.
func (s *Server) draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drain
}

// Shutdown stops the server gracefully: it closes the listeners, lets every
// session finish the command in progress, say BYE and end, and waits for
// that until ctx is done. Then it calls Close. It returns ctx's error if
// sessions were still running at the deadline.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.drain = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for tc := range s.conns {
		tc.fail(errShuttingDown)
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if cerr := s.Close(); err == nil && !errors.Is(cerr, ErrServerClosed) {
		err = cerr
	}
	<-done // Close ended every connection; session.Close follows quickly
	return err
}

// Close closes the listeners and every connection at once, cancels every
// session's context and waits for the sessions to end. It does not close
// Options.Store.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	var err error
	for ln := range s.listeners {
		if cerr := ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
			err = cerr
		}
	}
	for tc := range s.conns {
		_ = tc.Conn.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return err
}

// errShuttingDown is what reads return during Shutdown: io.EOF, which the
// library treats as the client having gone (between commands, and in IDLE),
// so it ends the session cleanly; session.Close then says BYE.
var errShuttingDown = io.EOF

// trackedConn is the accepted connection as the library (or the TLS layer
// under it) sees it. It lets the server stop reads: fail makes every
// pending and later Read return an error, whatever deadline the library
// sets afterwards.
type trackedConn struct {
	net.Conn
	id     uint64
	remote netip.Addr

	mu      sync.Mutex
	readErr error // non-nil: reads fail
}

// fail makes reads fail with err from now on and wakes a blocked Read.
func (c *trackedConn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readErr == nil {
		c.readErr = err
	}
	_ = c.Conn.SetReadDeadline(time.Now())
}

func (c *trackedConn) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readErr
}

func (c *trackedConn) Read(p []byte) (int, error) {
	if err := c.failed(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if err != nil {
		if ferr := c.failed(); ferr != nil {
			return n, ferr
		}
	}
	return n, err
}

// lingerMax bounds how long and how much Close drains after the literal
// guard cut a connection.
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 1 << 20
)

// Close closes the connection. After the literal guard cut the stream, the
// client has usually sent data the server never read; closing at once
// would make TCP reset the connection, and the client could lose the
// server's last response. So Close first shuts down the sending side, then
// reads and discards what arrives (bounded), and only then closes.
func (c *trackedConn) Close() error {
	err := c.failed()
	if !errors.Is(err, errLiteralRefused) && !errors.Is(err, errLiteralTooBig) {
		return c.Conn.Close()
	}
	if tcp, ok := c.Conn.(*net.TCPConn); ok {
		_ = tcp.CloseWrite()
		_ = tcp.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.Copy(io.Discard, io.LimitReader(tcp, lingerBytes))
	}
	return c.Conn.Close()
}

func (c *trackedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readErr != nil {
		t = time.Now()
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *trackedConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// oneConnListener hands one connection to imapserver.Server.Serve, then
// reports itself closed so Serve returns.
type oneConnListener struct {
	conn net.Conn
	used bool
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if l.used {
		return nil, net.ErrClosed
	}
	l.used = true
	return l.conn, nil
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }

// libLogger adapts the library's Printf logging to slog. The library logs
// the panics it recovers with formats starting with "panic" (conn.go,
// idle.go); those are counted for Panics.
type libLogger struct {
	srv *Server
	log *slog.Logger
}

func (l *libLogger) Printf(format string, args ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	switch {
	case strings.HasPrefix(format, "panic"):
		l.srv.panics.Add(1)
		l.log.Error("recovered panic in IMAP connection", "panic", msg)
	case strings.HasPrefix(format, "failed to read command"),
		strings.HasPrefix(format, "failed to write greeting"):
		// Disconnects, timeouts and unparsable input: expected.
		l.log.Debug("imapserver: " + msg)
	default:
		l.log.Warn("imapserver: " + msg)
	}
}

package pop3d

// Implementation notes (invariants of this file):
//   - One goroutine per connection runs conn.serve; it alone reads and writes
//     the connection. Other goroutines only call wake and closeNet.
//   - The state changes only in the handlers of USER/PASS/AUTH (to
//     TRANSACTION) and QUIT; the loop checks the state against the dispatch
//     table, so handlers never re-check it.
//   - While in TRANSACTION the connection holds the maildrop lock; serve
//     releases it on every exit path (QUIT, drop, timeout, shutdown, panic).
//   - Nothing is expunged unless QUIT runs in TRANSACTION (RFC 1939 §6).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/postoffice/postoffice/store"
)

// state is a POP3 session state (RFC 1939 §3). UPDATE is transient and
// happens inside QUIT, so it needs no constant.
type state uint8

const (
	stateAuthorization state = 1 << iota
	stateTransaction
)

type conn struct {
	srv *Server
	log *slog.Logger
	ctx context.Context // canceled when the connection ends

	netMu sync.Mutex
	nc    net.Conn // guarded by netMu; replaced by STLS

	br     *bufio.Reader
	bw     *bufio.Writer
	remote netip.Addr
	isTLS  bool

	state       state
	badCommands int
	authFails   int
	pendingUser string // from USER, until PASS

	// TRANSACTION state.
	user        *store.User
	mbox        *store.Mailbox
	msgs        []message // the snapshot; message number = index + 1
	unlock      func()    // releases the maildrop lock
	deletedN    int
	deletedSize int64
}

// message is one entry of the session's snapshot of the maildrop.
type message struct {
	uid       store.UID
	size      int64
	seen      bool // \Seen at the snapshot
	retrieved bool // sent whole by RETR in this session
	deleted   bool
	loaded    *store.Message // where its file is, once loaded (loadAhead)
}

func (s *Server) newConn(nc net.Conn) *conn {
	id := s.nextID.Add(1)
	var remote netip.Addr
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		remote = ta.AddrPort().Addr().Unmap()
	}
	c := &conn{
		srv:    s,
		nc:     nc,
		remote: remote,
		state:  stateAuthorization,
		log:    s.log.With("conn", id, "remote", nc.RemoteAddr().String()),
	}
	_, c.isTLS = nc.(*tls.Conn)
	c.setupIO(nc)
	return c
}

func (c *conn) setupIO(nc net.Conn) {
	c.br = bufio.NewReaderSize(nc, 4096)
	c.bw = bufio.NewWriterSize(deadlineWriter{nc, c.srv.opts.WriteTimeout}, 32<<10)
}

// deadlineWriter sets a write deadline before every write, so a client that
// stops reading cannot hold the connection (and the maildrop) forever.
type deadlineWriter struct {
	nc      net.Conn
	timeout time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	if err := w.nc.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
		return 0, err
	}
	return w.nc.Write(p)
}

// wake interrupts a blocked read so the connection notices a shutdown.
func (c *conn) wake() {
	c.netMu.Lock()
	defer c.netMu.Unlock()
	c.nc.SetReadDeadline(time.Now())
}

func (c *conn) closeNet() {
	c.netMu.Lock()
	defer c.netMu.Unlock()
	c.nc.Close()
}

var (
	// errClose asks the loop to close the connection after the reply.
	errClose = errors.New("close connection")
	// errShutdown is returned by readLine when the server shuts down.
	errShutdown = errors.New("server shutting down")
	// errLineTooLong is returned by readLine for an over-long line; the
	// rest of the line has been discarded.
	errLineTooLong = errors.New("line too long")
)

// respError is an expected failure: it becomes "-ERR [code] text".
type respError struct {
	code string // RFC 2449/3206 response code, or ""
	text string
}

func (e *respError) Error() string {
	if e.code == "" {
		return e.text
	}
	return "[" + e.code + "] " + e.text
}

func errResp(code, format string, args ...any) error {
	return &respError{code: code, text: fmt.Sprintf(format, args...)}
}

// fatalError is an error after a response was partly written: the
// connection cannot continue and is closed without a reply.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func (c *conn) serve() {
	ctx, cancel := context.WithCancel(c.srv.baseCtx)
	defer cancel()
	c.ctx = ctx
	defer func() {
		if v := recover(); v != nil {
			c.srv.panics.Add(1)
			c.log.Error("panic in connection", "err", v, "stack", string(debug.Stack()))
		}
		c.releaseMaildrop()
		c.closeNet()
		c.log.Info("connection closed")
	}()
	c.log.Info("connection opened", "tls", c.isTLS)

	if tc, ok := c.nc.(*tls.Conn); ok {
		// POP3S: handshake before the greeting, under the login timeout.
		tc.SetDeadline(time.Now().Add(c.srv.opts.LoginTimeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			c.log.Debug("tls handshake failed", "err", err)
			return
		}
		tc.SetDeadline(time.Time{})
	}

	greeting := "+OK POP3 server ready"
	if h := c.srv.opts.Hostname; h != "" {
		greeting = "+OK " + h + " POP3 server ready"
	}
	if c.writeLine(greeting) != nil || c.flush() != nil {
		return
	}
	for {
		line, err := c.readLine(maxLine)
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				if c.reply(c.badCommand("line too long")) != nil {
					return
				}
				continue
			}
			c.readFailed(err)
			return
		}
		if c.reply(c.dispatch(line)) != nil {
			return
		}
	}
}

// readFailed handles a failed read of a command line: it tells the client
// why, when the connection is still up, and logs.
func (c *conn) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, errShutdown):
		c.writeLine("-ERR [SYS/TEMP] server shutting down")
		c.flush()
		c.log.Info("closing for shutdown")
	case errors.As(err, &ne) && ne.Timeout():
		c.writeLine("-ERR disconnected for inactivity")
		c.flush()
		c.log.Debug("idle timeout")
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Debug("client went away", "err", err)
	default:
		c.log.Debug("read failed", "err", err)
	}
}

// reply turns the error of a command into the response (the one place where
// errors become "-ERR") and flushes when no further command is already
// waiting (RFC 2449 §6.6 PIPELINING). A non-nil result means: close.
func (c *conn) reply(err error) error {
	var re *respError
	var fe *fatalError
	switch {
	case err == nil:
	case errors.As(err, &fe):
		c.log.Info("aborting connection", "err", fe.err)
		return err
	case errors.Is(err, errClose):
		c.flush()
		return err
	case errors.As(err, &re):
		c.writeLine("-ERR " + re.Error())
	case errors.Is(err, store.ErrUnavailable):
		// The index database is down (login lookups, maildrop): tell the
		// client to come back, as storeError does for the maildrop.
		c.log.Warn("mail store unavailable", "err", err)
		c.writeLine("-ERR [SYS/TEMP] mail store temporarily unavailable")
	default:
		c.log.Error("internal error", "err", err)
		c.writeLine("-ERR [SYS/TEMP] internal server error")
	}
	if c.badCommands >= c.srv.opts.MaxBadCommands {
		c.writeLine("-ERR too many bad commands, closing connection")
		c.flush()
		c.log.Warn("too many bad commands")
		return errClose
	}
	if c.authFails >= c.srv.opts.MaxAuthFailures {
		c.writeLine("-ERR [AUTH] too many authentication failures, closing connection")
		c.flush()
		c.log.Warn("too many authentication failures")
		return errClose
	}
	if c.lineWaiting() {
		return nil
	}
	return c.flush()
}

// badCommand counts a protocol error. Only errors before login count towards
// MaxBadCommands: after login the client has proven who it is.
func (c *conn) badCommand(text string) error {
	if c.state == stateAuthorization {
		c.badCommands++
	}
	return &respError{text: text}
}

// lineWaiting reports whether a complete command line is already buffered.
func (c *conn) lineWaiting() bool {
	n := c.br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := c.br.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// readLine reads one line of at most max octets, without its terminator (CRLF
// or a bare LF). Longer lines are read to their end, discarded, and reported
// as errLineTooLong; the connection stays usable. The read deadline depends
// on the state.
func (c *conn) readLine(max int) (string, error) {
	if !c.lineWaiting() {
		if err := c.flush(); err != nil {
			return "", err
		}
	}
	timeout := c.srv.opts.LoginTimeout
	if c.state == stateTransaction {
		timeout = c.srv.opts.IdleTimeout
	}
	c.netMu.Lock()
	err := c.nc.SetReadDeadline(time.Now().Add(timeout))
	c.netMu.Unlock()
	if err != nil {
		return "", err
	}
	// Checked after arming the deadline: see the notes in server.go.
	if c.srv.shuttingDown.Load() {
		return "", errShutdown
	}
	var line []byte
	tooLong := false
	for {
		frag, err := c.br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(frag) > max+2 {
				tooLong = true
				line = nil
			} else {
				line = append(line, frag...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return "", errLineTooLong
			}
			line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
			if len(line) > max {
				return "", errLineTooLong
			}
			return string(line), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && c.srv.shuttingDown.Load() {
				return "", errShutdown
			}
			return "", err
		}
	}
}

func (c *conn) writeLine(s string) error {
	c.bw.WriteString(s)
	_, err := c.bw.WriteString("\r\n")
	return err
}

func (c *conn) flush() error { return c.bw.Flush() }

// storeCtx returns a context for one store call.
func (c *conn) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.srv.opts.StoreTimeout)
}

// releaseMaildrop leaves TRANSACTION without UPDATE: the lock is released
// and nothing is expunged.
func (c *conn) releaseMaildrop() {
	if c.unlock != nil {
		c.unlock()
		c.unlock = nil
	}
	c.msgs = nil
}

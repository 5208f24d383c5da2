package proxyproto

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// DefaultTimeout is the header deadline when Listener.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// Listener wraps a net.Listener and reads a PROXY protocol header from
// connections whose peer is in Trusted. Set the exported fields before the
// first Accept and do not change them afterwards. The zero values of the
// optional fields are safe: no Trusted networks means every connection is
// passed through untouched. A Listener must not be copied after first use.
type Listener struct {
	// Listener is the raw TCP listener. Required. Close closes it.
	Listener net.Listener
	// Trusted lists the balancers' networks. Only peers inside them may
	// (or must, see Required) send a header; every other peer is passed
	// through with its real address and no header parsing.
	Trusted []netip.Prefix
	// Required makes the header mandatory for trusted peers: a trusted
	// connection without a valid header is closed. When false, a trusted
	// peer whose first bytes are not a PROXY signature is passed through
	// with its real address. Note that for IMAP and POP3 the server
	// speaks first, so a direct client that sends nothing keeps waiting
	// for its greeting until Timeout expires: use Required=false only
	// while migrating a balancer.
	Required bool
	// Timeout bounds reading the header. Zero means DefaultTimeout.
	Timeout time.Duration
	// Logger receives header errors (Warn) and dropped health-check
	// connections (Debug). Nil: discard.
	Logger *slog.Logger

	start   sync.Once
	ready   chan net.Conn // connections for Accept
	acceptc chan error    // errors from the wrapped Accept
	stopped chan struct{} // closed when the wrapped listener is closed
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup

	mu        sync.Mutex
	closed    bool                  // guarded by mu
	acceptErr error                 // final Accept error; set before stopped is closed
	pending   map[net.Conn]struct{} // header being read; guarded by mu
}

// Conn is a connection from a trusted peer whose PROXY header has been
// read. RemoteAddr reports the client address from the header (the peer
// address for LOCAL and UNKNOWN headers); everything else is the
// underlying connection's.
type Conn struct {
	net.Conn
	header Header
	remote net.Addr
	rest   []byte // bytes read past the header; read before Conn
}

// Header returns the PROXY header the connection started with.
func (c *Conn) Header() Header { return c.header }

// RemoteAddr returns the client address from the header, or the peer's
// when the header carries none.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// Read returns the bytes that followed the header first.
func (c *Conn) Read(p []byte) (int, error) {
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		if len(c.rest) == 0 {
			c.rest = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// Addr returns the wrapped listener's address.
func (l *Listener) Addr() net.Addr { return l.Listener.Addr() }

// Accept returns the next connection: from a trusted peer, a *Conn whose
// header has been read; from any other peer, the raw connection.
// Connections whose header is missing or invalid are closed and never
// returned. After Close, Accept returns an error wrapping net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	l.start.Do(l.init)
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.acceptc:
		return nil, err
	case <-l.done:
		return nil, fmt.Errorf("proxyproto: accept: %w", net.ErrClosed)
	case <-l.stopped:
		l.mu.Lock()
		defer l.mu.Unlock()
		return nil, l.acceptErr
	}
}

// Close stops accepting, closes the wrapped listener and the connections
// whose header is still being read, and waits for the goroutines the
// Listener started. Connections already returned by Accept stay open.
func (l *Listener) Close() error {
	l.start.Do(l.init)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	for c := range l.pending {
		c.Close()
	}
	l.mu.Unlock()
	err := l.Listener.Close()
	l.wg.Wait()
	return err
}

func (l *Listener) init() {
	l.ready = make(chan net.Conn)
	l.acceptc = make(chan error)
	l.done = make(chan struct{})
	l.stopped = make(chan struct{})
	l.pending = map[net.Conn]struct{}{}
	if l.Logger == nil {
		l.Logger = slog.New(slog.DiscardHandler)
	}
	l.wg.Go(l.acceptLoop)
}

// acceptLoop accepts from the wrapped listener until it fails
// permanently or Close is called.
func (l *Listener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			// Hand the error to Accept (its caller decides about
			// temporary errors and backs off), then stop if it is final.
			if errors.Is(err, net.ErrClosed) {
				// Final: every later Accept returns it.
				l.mu.Lock()
				l.acceptErr = err
				l.mu.Unlock()
				close(l.stopped)
				return
			}
			select {
			case l.acceptc <- err:
			case <-l.done:
				return
			}
			continue
		}
		if !l.trusted(c.RemoteAddr()) {
			l.deliver(c)
			continue
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			return
		}
		l.pending[c] = struct{}{}
		l.mu.Unlock()
		l.wg.Go(func() { l.handshake(c) })
	}
}

// deliver hands c to Accept, or closes it when the listener is closed.
func (l *Listener) deliver(c net.Conn) {
	select {
	case l.ready <- c:
	case <-l.done:
		c.Close()
	}
}

// trusted reports whether the peer address is in one of l.Trusted.
func (l *Listener) trusted(a net.Addr) bool {
	if len(l.Trusted) == 0 {
		return false
	}
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip := ta.AddrPort().Addr().Unmap()
	for _, p := range l.Trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// handshake reads the header of a trusted connection and delivers it.
func (l *Listener) handshake(c net.Conn) {
	out, err := l.readHeader(c)
	l.mu.Lock()
	delete(l.pending, c)
	closed := l.closed
	l.mu.Unlock()
	if err != nil {
		log := l.Logger.With("remote", c.RemoteAddr().String(), "local", c.LocalAddr().String())
		switch {
		case closed:
		case errors.Is(err, io.EOF):
			// A balancer's TCP health check connects and closes.
			log.Debug("proxy protocol: connection closed before a header")
		default:
			log.Warn("proxy protocol: dropping connection from a trusted peer", "err", err)
		}
		c.Close()
		return
	}
	l.deliver(out)
}

// readHeader reads the header under the deadline and returns the
// connection to deliver: a *Conn, or (Required=false, no signature) c
// itself with the bytes read so far put back.
func (l *Listener) readHeader(c net.Conn) (net.Conn, error) {
	timeout := l.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, maxHeader)
	for {
		n, rerr := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		h, hn, err := parse(buf)
		switch {
		case err == nil:
			if err := c.SetReadDeadline(time.Time{}); err != nil {
				return nil, err
			}
			pc := &Conn{Conn: c, header: h, remote: c.RemoteAddr()}
			if h.Source.IsValid() {
				pc.remote = net.TCPAddrFromAddrPort(h.Source)
			}
			if hn < len(buf) {
				pc.rest = buf[hn:]
			}
			return pc, nil
		case errors.Is(err, ErrNoHeader) && !l.Required:
			return l.passThrough(c, buf)
		case !errors.Is(err, errIncomplete):
			return nil, err
		}
		if rerr != nil {
			var ne net.Error
			if !l.Required && len(buf) == 0 && errors.As(rerr, &ne) && ne.Timeout() {
				// The peer said nothing: a direct client waiting for
				// the greeting.
				return l.passThrough(c, buf)
			}
			if errors.Is(rerr, io.EOF) && len(buf) > 0 {
				rerr = fmt.Errorf("%w: truncated header", errInvalid)
			}
			return nil, fmt.Errorf("proxyproto: read header: %w", rerr)
		}
		if len(buf) == cap(buf) {
			return nil, fmt.Errorf("%w: longer than %d bytes", errInvalid, maxHeader)
		}
	}
}

// passThrough returns c with the bytes already read put back in front.
func (l *Listener) passThrough(c net.Conn, buf []byte) (net.Conn, error) {
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, err
	}
	if len(buf) == 0 {
		return c, nil
	}
	return &replayConn{Conn: c, rest: buf}, nil
}

// replayConn is a connection passed through without a header: the bytes
// read while looking for a signature come first.
type replayConn struct {
	net.Conn
	rest []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

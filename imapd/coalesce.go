package imapd

import (
	"net"
	"sync"
	"time"
)

// Write coalescing.
//
// The library flushes its buffer at the end of every response line, so a
// FETCH of 1000 messages costs 1000 write(2) calls (and TLS records), and a
// body fetch several per message. coalescingConn sits under the library and
// holds what it writes until the library next reads from the client, the
// buffer fills, or the connection closes. A server that answers only when
// asked has sent everything the client waits for by the time it reads
// again, so nothing is delayed that a client could be waiting on.
//
// The exception is output while a read is already in progress: IDLE updates
// (and the BYE of a shutdown) are written by another goroutine while the
// library waits for the client's DONE. Those go out at once.
//
// The buffer comes from a pool and goes back at every flush, so an idle
// connection holds none.

const (
	coalesceMax = 32 << 10 // flush when this much is waiting
	// flushTimeout bounds a flush that the library did not put a write
	// deadline on (flushes before reads and at close).
	flushTimeout = time.Minute
	// closeFlushTimeout bounds the flush at close.
	closeFlushTimeout = 5 * time.Second
)

var coalescePool = sync.Pool{New: func() any { b := make([]byte, 0, coalesceMax); return &b }}

type coalescingConn struct {
	net.Conn

	mu      sync.Mutex
	buf     *[]byte   // guarded by mu; nil when nothing waits
	reading int       // guarded by mu; Reads in progress
	wdl     time.Time // guarded by mu; the write deadline last set
	err     error     // guarded by mu; the first write error, returned from then on
}

func newCoalescingConn(c net.Conn) *coalescingConn { return &coalescingConn{Conn: c} }

func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	// While the library waits on the client this is unsolicited output,
	// and a big write with nothing waiting gains nothing from a copy:
	// both go out at once.
	if c.reading > 0 || c.buf == nil && len(p) >= coalesceMax {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		n, err := c.Conn.Write(p)
		if err != nil {
			c.err = err
		}
		return n, err
	}
	if c.buf == nil {
		c.buf = coalescePool.Get().(*[]byte)
	}
	if len(*c.buf)+len(p) > coalesceMax {
		// Send what waits and p together (writev on TCP).
		bufs := net.Buffers{*c.buf, p}
		_, err := bufs.WriteTo(c.Conn)
		c.release()
		if err != nil {
			c.err = err
			return 0, err
		}
		return len(p), nil
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// flushLocked writes out what waits.
func (c *coalescingConn) flushLocked() error {
	if c.buf == nil {
		return c.err
	}
	if c.err == nil {
		if c.wdl.IsZero() {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(flushTimeout))
		}
		_, c.err = c.Conn.Write(*c.buf)
		if c.wdl.IsZero() {
			_ = c.Conn.SetWriteDeadline(time.Time{})
		}
	}
	c.release()
	return c.err
}

func (c *coalescingConn) release() {
	*c.buf = (*c.buf)[:0]
	coalescePool.Put(c.buf)
	c.buf = nil
}

// Read sends what waits, then reads.
func (c *coalescingConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if err := c.flushLocked(); err != nil {
		c.mu.Unlock()
		return 0, err
	}
	c.reading++
	c.mu.Unlock()
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.reading--
	c.mu.Unlock()
	return n, err
}

// Close sends what waits (the last response, a BYE, TLS's close_notify),
// then closes. The flush gets its own short deadline: the TLS layer sets
// the write deadline to now once its close_notify is "written".
func (c *coalescingConn) Close() error {
	c.mu.Lock()
	if c.buf != nil {
		c.wdl = time.Now().Add(closeFlushTimeout)
		_ = c.Conn.SetWriteDeadline(c.wdl)
		_ = c.flushLocked()
	}
	if c.err == nil {
		c.err = net.ErrClosed
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

func (c *coalescingConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func (c *coalescingConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

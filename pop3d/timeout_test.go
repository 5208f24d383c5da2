package pop3d

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
)

// waitUnlocked waits (bounded) until the maildrop lock of e's user is free:
// the server releases it asynchronously after a connection ends.
func waitUnlocked(t *testing.T, e *testEnv) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		unlock, err := e.st.LockMaildrop(context.Background(), e.user.ID)
		if err == nil {
			unlock()
			return
		}
		if !errors.Is(err, store.ErrMailboxBusy) || time.Now().After(deadline) {
			t.Fatalf("LockMaildrop: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestIdleTimeout_afterLoginDeletesNothing(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.IdleTimeout = 200 * time.Millisecond })
	e.appendMsg(t, msgA)
	c := e.dial(t)
	c.login()
	c.cmd("DELE 1")
	if l := c.line(); l != "-ERR disconnected for inactivity" {
		t.Fatalf("got %q", l)
	}
	waitUnlocked(t, e)
	if n := len(e.list(t)); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

// A client that stops reading in the middle of a large RETR is cut off by
// the write timeout, and the maildrop is released.
func TestWriteTimeout_stuckReader(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.WriteTimeout = 200 * time.Millisecond })
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("y", 998)+"\r\n", 16<<10) // 16 MB
	e.appendMsg(t, big)
	c := e.dial(t)
	c.login()
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	if _, err := c.nc.Write([]byte("RETR 1\r\n")); err != nil {
		t.Fatal(err)
	}
	// Do not read: the server's writes block until the timeout.
	waitUnlocked(t, e)
	if n := len(e.list(t)); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

// flakyListener fails its first Accepts, as a listener out of file
// descriptors would.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, errors.New("accept: too many open files")
	}
	return l.Listener.Accept()
}

func TestServe_retriesAcceptErrors(t *testing.T) {
	e := newTestEnv(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: ln}
	fl.fails.Store(3)
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(fl) }()
	c := &testEnv{addr: ln.Addr().String()}
	cl := c.dial(t) // reads the greeting
	cl.login()
	cl.cmd("QUIT")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}

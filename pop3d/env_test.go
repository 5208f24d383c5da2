package pop3d

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/auth"
	"github.com/postoffice/postoffice/store"
)

// The tests of this package build a real store (embedded SQLite in a temp
// dir) directly: testsuite imports pop3d, so it cannot be used here.

// testEnv is a pop3d.Server on 127.0.0.1 over a real store.
type testEnv struct {
	st   *store.Store
	srv  *Server
	addr string
	user *store.User
	mbox *store.Mailbox
	// wantPanics is how many recovered panics the test expects.
	wantPanics uint64
}

var cheapParams = auth.Params{Time: 1, MemoryKiB: 8, Threads: 1}

// newTestEnv opens a store with user alice (password "secret") and starts a
// server. opts may change the server options.
func newTestEnv(t testing.TB, opts func(*Options)) *testEnv {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	hash, err := auth.Hash("secret", cheapParams)
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.CreateUser(ctx, store.User{Name: "alice", PasswordHash: hash})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := st.Mailbox(ctx, u.ID, store.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.New(auth.Options{
		Lookup: func(ctx context.Context, name string) (string, bool, bool, error) {
			h, disabled, err := st.PasswordHash(ctx, name)
			if errors.Is(err, store.ErrNoUser) {
				return "", false, false, nil
			}
			return h, disabled, err == nil, err
		},
		Argon2:   cheapParams,
		Throttle: auth.ThrottleOptions{BaseDelay: -1, UserLimit: -1, IPLimit: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Store:             st,
		Auth:              v,
		PlaintextAuthNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}
	if opts != nil {
		opts(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{st: st, srv: srv, addr: ln.Addr().String(), user: u, mbox: mb}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v, want ErrServerClosed", err)
		}
		if n := srv.Panics(); n != e.wantPanics {
			t.Errorf("%d connection goroutines panicked, want %d", n, e.wantPanics)
		}
	})
	return e
}

func (e *testEnv) appendMsg(t testing.TB, raw string) store.UID {
	t.Helper()
	res, err := e.st.Append(context.Background(), e.mbox.ID, strings.NewReader(raw), 0, nil, time.Now())
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res.UID
}

func (e *testEnv) list(t testing.TB) []store.MessageInfo {
	t.Helper()
	ctx := context.Background()
	if err := e.st.Sync(ctx, e.mbox.ID); err != nil {
		t.Fatal(err)
	}
	infos, _, err := e.st.List(ctx, e.mbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	return infos
}

// client is a minimal POP3 client.
type client struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func (e *testEnv) dial(t testing.TB) *client {
	t.Helper()
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &client{t: t, nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
	if l := c.line(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("greeting %q", l)
	}
	return c
}

func (c *client) line() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (%q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

func (c *client) cmd(s string) string {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s + "\r\n")); err != nil {
		c.t.Fatal(err)
	}
	return c.line()
}

func (c *client) login() {
	c.t.Helper()
	c.cmd("USER alice")
	if l := c.cmd("PASS secret"); !strings.HasPrefix(l, "+OK") {
		c.t.Fatalf("login: %q", l)
	}
}

package imapd_test

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postoffice/postoffice/auth"
	"github.com/postoffice/postoffice/imapd"
	"github.com/postoffice/postoffice/store"
	"github.com/postoffice/postoffice/testsuite"
)

// selEnv is an imapd.Server on 127.0.0.1 over a fresh store with the user
// alice (password "secret").
type selEnv struct {
	st    *store.Store
	srv   *imapd.Server
	addr  string
	user  *store.User
	inbox *store.Mailbox
}

// newSelEnv starts a server over a new store of backend.
func newSelEnv(t testing.TB, backend string) *selEnv {
	t.Helper()
	st := testsuite.NewStore(t, backend)
	return newSelEnvOn(t, st, true, testsuite.Logger(t))
}

// newSelEnvOn starts a server over st; with mkUser it creates alice.
func newSelEnvOn(t testing.TB, st *store.Store, mkUser bool, log *slog.Logger, opts ...func(*imapd.Options)) *selEnv {
	t.Helper()
	e := &selEnv{st: st}
	ctx := context.Background()
	if mkUser {
		e.user = testsuite.MustUser(t, st, "alice", "secret")
	} else {
		u, err := st.User(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		e.user = u
	}
	var err error
	if e.inbox, err = st.Mailbox(ctx, e.user.ID, "INBOX"); err != nil {
		t.Fatalf("inbox: %v", err)
	}
	o := imapd.Options{
		Store:             st,
		Auth:              testsuite.NewVerifier(t, st, auth.ThrottleOptions{}, log),
		PlaintextAuthNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Logger:            log,
		MaxConnsPerUser:   -1,
		MaxConnsPerIP:     -1,
	}
	for _, f := range opts {
		f(&o)
	}
	e.srv, err = imapd.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-done
		if p := e.srv.Panics(); p != 0 {
			t.Errorf("imapd: %d connection goroutines panicked", p)
		}
	})
	return e
}

// appendMsg appends raw to mailbox name through the store.
func (e *selEnv) appendMsg(t testing.TB, name, raw string, flags store.Flags, kws ...string) store.UID {
	t.Helper()
	ctx := context.Background()
	mb, err := e.st.Mailbox(ctx, e.user.ID, name)
	if err != nil {
		t.Fatalf("mailbox %s: %v", name, err)
	}
	res, err := e.st.Append(ctx, mb.ID, strings.NewReader(raw), flags, kws, time.Date(2024, 3, 5, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res.UID
}

// client returns a logged-in go-imap client.
func (e *selEnv) client(t testing.TB, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(e.addr, &imapclient.Options{UnilateralDataHandler: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login("alice", "secret").Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c
}

// raw dials and logs in as alice.
func (e *selEnv) raw(t testing.TB) *testsuite.RawIMAP {
	t.Helper()
	return testsuite.DialRawIMAP(t, e.addr, "alice", "secret")
}

// crlf converts LF line ends to CRLF.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// has reports whether one of lines equals want.
func has(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

package imapd_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strconv"
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

func selLookup(st *store.Store) func(ctx context.Context, name string) (string, bool, bool, error) {
	return func(ctx context.Context, name string) (string, bool, bool, error) {
		h, disabled, err := st.PasswordHash(ctx, name)
		if errors.Is(err, store.ErrNoUser) {
			return "", false, false, nil
		}
		if err != nil {
			return "", false, false, err
		}
		return h, disabled, true, nil
	}
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
	v, err := auth.New(auth.Options{Lookup: selLookup(st), Argon2: testsuite.CheapParams(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	o := imapd.Options{
		Store:             st,
		Auth:              v,
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

// rawConn is a line-level IMAP client for exact assertions.
type rawConn struct {
	t    testing.TB
	c    net.Conn
	br   *bufio.Reader
	next int
}

// raw dials and logs in.
func (e *selEnv) raw(t testing.TB) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &rawConn{t: t, c: c, br: bufio.NewReader(c)}
	if l := r.line(); !strings.HasPrefix(l, "* OK") {
		t.Fatalf("greeting: %q", l)
	}
	r.ok("LOGIN alice secret")
	return r
}

var literalRe = regexp.MustCompile(`~?\{(\d+)\}$`)

// line reads one response line; literals are inlined.
func (r *rawConn) line() string {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var sb strings.Builder
	for {
		l, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatalf("read: %v (have %q)", err, sb.String()+l)
		}
		l = strings.TrimSuffix(l, "\r\n")
		sb.WriteString(l)
		m := literalRe.FindStringSubmatch(l)
		if m == nil {
			return sb.String()
		}
		n, _ := strconv.Atoi(m[1])
		buf := make([]byte, n)
		if _, err := io.ReadFull(r.br, buf); err != nil {
			r.t.Fatalf("read literal: %v", err)
		}
		sb.WriteString("\r\n")
		sb.Write(buf)
	}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s+"\r\n"); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// cmd runs a command and returns the untagged lines and the tagged status
// line (without the tag).
func (r *rawConn) cmd(format string, args ...any) ([]string, string) {
	r.t.Helper()
	r.next++
	tag := fmt.Sprintf("t%d", r.next)
	r.send(tag + " " + fmt.Sprintf(format, args...))
	var untagged []string
	for {
		l := r.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

// ok runs a command that must succeed and returns its untagged lines.
func (r *rawConn) ok(format string, args ...any) []string {
	r.t.Helper()
	u, st := r.cmd(format, args...)
	if !strings.HasPrefix(st, "OK") {
		r.t.Fatalf("%s: %s (untagged %q)", fmt.Sprintf(format, args...), st, u)
	}
	return u
}

// idle starts IDLE.
func (r *rawConn) idle() {
	r.t.Helper()
	r.send("i1 IDLE")
	if l := r.line(); !strings.HasPrefix(l, "+") {
		r.t.Fatalf("IDLE: %q", l)
	}
}

// waitLine reads lines until one matches re (within d).
func (r *rawConn) waitLine(re string, d time.Duration) string {
	r.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(d)
	for {
		_ = r.c.SetReadDeadline(deadline)
		l, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatalf("waiting for %q: %v", re, err)
		}
		l = strings.TrimSuffix(l, "\r\n")
		if rx.MatchString(l) {
			return l
		}
	}
}

// done ends IDLE and returns the lines seen before the tagged OK.
func (r *rawConn) done() []string {
	r.t.Helper()
	r.send("DONE")
	var out []string
	for {
		l := r.line()
		if strings.HasPrefix(l, "i1 ") {
			if !strings.HasPrefix(l, "i1 OK") {
				r.t.Fatalf("IDLE ended with %q", l)
			}
			return out
		}
		out = append(out, l)
	}
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

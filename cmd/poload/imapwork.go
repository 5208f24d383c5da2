package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// patientConn stretches the deadlines imapclient sets (30 s for a
// response): a first SELECT of a 100,000-message mailbox may take longer,
// and that is a figure to report, not an error.
type patientConn struct{ net.Conn }

func (c patientConn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() {
		t = t.Add(10 * time.Minute)
	}
	return c.Conn.SetReadDeadline(t)
}

func (c patientConn) SetDeadline(t time.Time) error {
	if !t.IsZero() {
		t = t.Add(10 * time.Minute)
	}
	return c.Conn.SetDeadline(t)
}

// dialIMAP connects and logs in.
func dialIMAP(cfg *config, user string, opts *imapclient.Options) (*imapclient.Client, error) {
	conn, err := net.DialTimeout("tcp", cfg.addr, 30*time.Second)
	if err != nil {
		return nil, err
	}
	c := imapclient.New(patientConn{conn}, opts)
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if err := c.Login(user, cfg.password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	return c, nil
}

func dialSelect(cfg *config, user, mailbox string) (*imapclient.Client, *imap.SelectData, error) {
	c, err := dialIMAP(cfg, user, nil)
	if err != nil {
		return nil, nil, err
	}
	sd, err := c.Select(mailbox, nil).Wait()
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("select %s: %w", mailbox, err)
	}
	return c, sd, nil
}

func logoutClose(c *imapclient.Client) {
	_ = c.Logout().Wait()
	c.Close()
}

// drainFetch reads a FETCH command's responses, counting messages and
// literal bytes without keeping them.
func drainFetch(cmd *imapclient.FetchCommand) (msgs, bytes int64, err error) {
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		msgs++
		for {
			item := msg.Next()
			if item == nil {
				break
			}
			if b, ok := item.(imapclient.FetchItemDataBodySection); ok && b.Literal != nil {
				n, err := io.Copy(io.Discard, b.Literal)
				bytes += n
				if err != nil {
					cmd.Close()
					return msgs, bytes, err
				}
			}
		}
	}
	return msgs, bytes, cmd.Close()
}

var allUIDs = imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}

var headerItems = &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: false}}

var bodyItems = &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}

// fetchWorker repeats UID FETCH 1:* with the given items on INBOX.
type fetchWorker struct {
	c     *imapclient.Client
	items *imap.FetchOptions
}

func (w *fetchWorker) step(_ context.Context, m *meter) error {
	n, b, err := drainFetch(w.c.Fetch(allUIDs, w.items))
	m.done(n, b)
	return err
}

func (w *fetchWorker) close() { logoutClose(w.c) }

func newFetchWorker(cfg *config, items *imap.FetchOptions) func(context.Context, int) (worker, error) {
	return func(_ context.Context, i int) (worker, error) {
		c, _, err := dialSelect(cfg, cfg.user(i), "INBOX")
		if err != nil {
			return nil, err
		}
		return &fetchWorker{c: c, items: items}, nil
	}
}

func runIMAPHeaders(ctx context.Context, cfg *config) result {
	return runWorkers(ctx, cfg, "imap-headers", "msgs", newFetchWorker(cfg, headerItems))
}

func runIMAPBody(ctx context.Context, cfg *config) result {
	return runWorkers(ctx, cfg, "imap-body", "msgs", newFetchWorker(cfg, bodyItems))
}

// appendMessages is a fixed set of messages for APPEND, CRLF-terminated
// as a client sends them.
func appendMessages(seed uint64, n int) [][]byte {
	g := newGen(seed ^ 0xa99e4d)
	out := make([][]byte, n)
	for i := range out {
		lf := g.message(g.size(maxMsgSize), time.Unix(corpusEpoch, 0).UTC())
		crlf := make([]byte, 0, crlfSize(lf))
		for _, c := range lf {
			if c == '\n' {
				crlf = append(crlf, '\r')
			}
			crlf = append(crlf, c)
		}
		out[i] = crlf
	}
	return out
}

func appendOne(c *imapclient.Client, mailbox string, msg []byte, flags []imap.Flag) error {
	cmd := c.Append(mailbox, int64(len(msg)), &imap.AppendOptions{Flags: flags})
	if _, err := cmd.Write(msg); err != nil {
		cmd.Close()
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}

// appendWorker appends to the "Bench" folder (created if missing), so
// INBOX stays as the corpus made it.
type appendWorker struct {
	c    *imapclient.Client
	msgs [][]byte
	i    int
}

func (w *appendWorker) step(_ context.Context, m *meter) error {
	msg := w.msgs[w.i%len(w.msgs)]
	w.i++
	if err := appendOne(w.c, "Bench", msg, nil); err != nil {
		return err
	}
	m.done(1, int64(len(msg)))
	return nil
}

func (w *appendWorker) close() { logoutClose(w.c) }

func runAppend(ctx context.Context, cfg *config) result {
	msgs := appendMessages(cfg.seed, 64)
	return runWorkers(ctx, cfg, "append", "msgs", func(_ context.Context, i int) (worker, error) {
		c, err := dialIMAP(cfg, cfg.user(i), nil)
		if err != nil {
			return nil, err
		}
		_ = c.Create("Bench", nil).Wait() // may exist already
		return &appendWorker{c: c, msgs: msgs, i: i}, nil
	})
}

// loginWorker: connect, LOGIN, LOGOUT per op.
type loginWorker struct {
	cfg  *config
	i, k int
}

func (w *loginWorker) step(_ context.Context, m *meter) error {
	c, err := dialIMAP(w.cfg, w.cfg.nthUser(w.i, w.k), nil)
	if err != nil {
		return err
	}
	w.k++
	if err := c.Logout().Wait(); err != nil {
		c.Close()
		return fmt.Errorf("logout: %w", err)
	}
	c.Close()
	m.done(1, 0)
	return nil
}

func (w *loginWorker) close() {}

func runLogin(ctx context.Context, cfg *config) result {
	return runWorkers(ctx, cfg, "login", "logins", func(_ context.Context, i int) (worker, error) {
		return &loginWorker{cfg: cfg, i: i}, nil
	})
}

// pop3Worker downloads whole maildrops: login, STAT, RETR 1..n, QUIT (no
// DELE), then again. One op is one RETR.
type pop3Worker struct {
	cfg      *config
	i, k     int
	c        *pop3Client
	next, n  int
	sessions int64
}

func (w *pop3Worker) step(_ context.Context, m *meter) error {
	if w.c == nil {
		c, err := dialPOP3(w.cfg.addr, 30*time.Second)
		if err != nil {
			return err
		}
		user := w.cfg.nthUser(w.i, w.k)
		if err := c.login(user, w.cfg.password); err != nil {
			c.close()
			return fmt.Errorf("pop3 login %s: %w", user, err)
		}
		n, _, err := c.stat()
		if err != nil {
			c.close()
			return err
		}
		w.c, w.next, w.n = c, 1, n
		w.k++
	}
	if w.next <= w.n {
		b, err := w.c.retr(w.next)
		if err != nil {
			return err
		}
		w.next++
		m.done(1, b)
	}
	if w.next > w.n {
		err := w.c.quit()
		w.c = nil
		w.sessions++
		return err
	}
	return nil
}

func (w *pop3Worker) close() {
	if w.c != nil {
		_ = w.c.quit()
	}
}

func runPOP3Retr(ctx context.Context, cfg *config) result {
	return runWorkers(ctx, cfg, "pop3-retr", "msgs", func(_ context.Context, i int) (worker, error) {
		return &pop3Worker{cfg: cfg, i: i}, nil
	})
}

// pop3LoginWorker: connect, USER/PASS, STAT, QUIT per op.
type pop3LoginWorker struct {
	cfg  *config
	i, k int
}

func (w *pop3LoginWorker) step(_ context.Context, m *meter) error {
	c, err := dialPOP3(w.cfg.addr, 30*time.Second)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.login(w.cfg.nthUser(w.i, w.k), w.cfg.password); err != nil {
		return err
	}
	w.k++
	if _, _, err := c.stat(); err != nil {
		return err
	}
	if err := c.quit(); err != nil {
		return err
	}
	m.done(1, 0)
	return nil
}

func (w *pop3LoginWorker) close() {}

func runPOP3Login(ctx context.Context, cfg *config) result {
	return runWorkers(ctx, cfg, "pop3-login", "logins", func(_ context.Context, i int) (worker, error) {
		return &pop3LoginWorker{cfg: cfg, i: i}, nil
	})
}

// runSelectBig logs in as the big user and SELECTs INBOX --ops times (at
// least 2) on one connection. The first SELECT is "cold" when the server
// was just started; the median of the rest is "warm".
func runSelectBig(ctx context.Context, cfg *config) result {
	r := result{Workload: "select-big", Server: cfg.server, Conns: 1, OpUnit: "selects", Extra: map[string]float64{}}
	n := max(int(cfg.ops), 2)
	m := &meter{}
	// Log in first: the measured window is the SELECTs alone.
	c, err := dialIMAP(cfg, cfg.bigUser, nil)
	if err != nil {
		m.fail(err)
		r.Errors, r.FirstError = m.errs.Load(), m.firstErr
		return r
	}
	mo, err := startMonitor(cfg)
	if err != nil {
		logoutClose(c)
		m.fail(err)
		r.Errors, r.FirstError = m.errs.Load(), m.firstErr
		return r
	}
	var times []float64
	{
		for i := 0; i < n && ctx.Err() == nil; i++ {
			t0 := time.Now()
			sd, err := c.Select("INBOX", nil).Wait()
			if err != nil {
				m.fail(err)
				break
			}
			times = append(times, float64(time.Since(t0).Microseconds())/1000)
			r.Extra["messages"] = float64(sd.NumMessages)
			m.done(1, 0)
			if i+1 < n {
				if err := c.Unselect().Wait(); err != nil {
					m.fail(err)
					break
				}
			}
		}
	}
	r.Ops = m.ops.Load()
	mo.finish(&r)
	logoutClose(c)
	if len(times) > 0 {
		r.Extra["cold_ms"] = times[0]
		if len(times) > 1 {
			r.Extra["warm_ms"] = percentile(times[1:], 50)
		}
	}
	r.Errors, r.FirstError = m.errs.Load(), m.firstErr
	if r.Seconds > 0 {
		r.OpsPerS = float64(r.Ops) / r.Seconds
	}
	return r
}

// rng returns a per-worker random source derived from the seed.
func rng(seed uint64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(i)+1))
}

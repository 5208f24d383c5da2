package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// idleConn is one connection sitting in IDLE on INBOX.
type idleConn struct {
	user    string
	c       *imapclient.Client
	idle    *imapclient.IdleCommand
	initial atomic.Uint32
	got     atomic.Int64 // UnixNano when EXISTS above initial arrived
}

// runIdle opens --conns connections (users spread round-robin), each
// SELECT INBOX + IDLE. Once all are idle it measures the server's memory
// per connection (pss_per_conn_kb: the slope of PSS over the number of
// connections, sampled at each quarter or eighth; pss_total_per_conn_kb: the growth over the PSS before
// connecting, per connection) and the CPU an idle second costs, then
// delivers one message per user into new/ and measures, per connection,
// the time from that user's delivery until EXISTS arrives.
func runIdle(ctx context.Context, cfg *config) (r result) {
	r = result{Workload: "idle", Server: cfg.server, Conns: cfg.conns, OpUnit: "conns", Extra: map[string]float64{}}
	m := &meter{}
	defer func() { r.Errors, r.FirstError = m.errs.Load(), m.firstErr }()
	if cfg.maildir == "" {
		m.fail(errors.New("idle needs --maildir to deliver into"))
		return r
	}
	var base treeSample
	if cfg.serverPID > 0 {
		var err error
		if base, err = sampleTree(cfg.procDir, cfg.serverPID, true); err != nil {
			m.fail(err)
			return r
		}
	}
	conns := make([]*idleConn, cfg.conns)
	t0 := time.Now()
	// Connect in quarters (eighths from 400 on) and sample memory after each: the least-squares
	// slope of PSS over the connection count is the cost of one more idle
	// connection, mostly free of what the logins themselves leave behind
	// (argon2 buffers a garbage-collected server has not yet collected).
	steps := 4
	if cfg.conns >= 400 {
		steps = 8 // more points, less noise
	}
	r.CPUSeconds, r.CPUPer1000 = -1, -1
	var idleS treeSample
	var xs, ys []float64
	for k := 1; k <= steps; k++ {
		openIdle(ctx, cfg, m, conns, cfg.conns*(k-1)/steps, cfg.conns*k/steps)
		if cfg.serverPID <= 0 {
			continue
		}
		time.Sleep(cfg.settle) // let sessions and GC settle
		s, err := sampleTree(cfg.procDir, cfg.serverPID, true)
		if err != nil {
			m.fail(err)
			return r
		}
		xs = append(xs, float64(countLive(conns)))
		ys = append(ys, float64(s.PSSKB))
		idleS = s
	}
	live := conns[:0]
	for _, ic := range conns {
		if ic != nil {
			live = append(live, ic)
		}
	}
	defer func() {
		for _, ic := range live {
			ic.c.Close()
		}
	}()
	r.Ops = int64(len(live))
	r.Extra["setup_s"] = time.Since(t0).Seconds()
	if len(live) == 0 {
		return r
	}
	if cfg.serverPID > 0 {
		// The CPU an idle second costs.
		time.Sleep(cfg.settle)
		s2, err := sampleTree(cfg.procDir, cfg.serverPID, false)
		if err != nil {
			m.fail(err)
			return r
		}
		r.Extra["idle_cpu_ms_per_s"] = float64((s2.CPU - idleS.CPU).Milliseconds()) / s2.At.Sub(idleS.At).Seconds()
		r.PSSStartMB = float64(base.PSSKB) / 1024
		r.PSSEndMB = float64(idleS.PSSKB) / 1024
		r.PSSMaxMB = r.PSSEndMB
		r.Procs = idleS.Procs
		if slope, ok := slopeOf(xs, ys); ok {
			r.Extra["pss_per_conn_kb"] = slope
		}
		r.Extra["pss_total_per_conn_kb"] = (float64(idleS.PSSKB) - float64(base.PSSKB)) / float64(len(live))
		idleS = s2
	}
	// Deliver one message per user, remembering when each became visible.
	users := map[string]time.Time{}
	for _, ic := range live {
		users[ic.user] = time.Time{}
	}
	msg := newGen(cfg.seed^0x1d1e).message(4000, time.Now().UTC())
	startDeliver := time.Now()
	for u := range users {
		t, err := deliver(cfg.maildir, u, msg)
		if err != nil {
			m.fail(fmt.Errorf("deliver to %s: %w", u, err))
			return r
		}
		users[u] = t
	}
	deadline := time.Now().Add(cfg.timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		all := true
		for _, ic := range live {
			if ic.got.Load() == 0 {
				all = false
				break
			}
		}
		if all {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	var lat []float64
	missed := 0
	for _, ic := range live {
		g := ic.got.Load()
		if g == 0 {
			missed++
			continue
		}
		lat = append(lat, float64(g-users[ic.user].UnixNano())/1e6)
	}
	r.Seconds = time.Since(startDeliver).Seconds()
	if cfg.serverPID > 0 {
		if s, err := sampleTree(cfg.procDir, cfg.serverPID, false); err == nil {
			r.CPUSeconds = (s.CPU - idleS.CPU).Seconds()
			r.CPUPer1000 = r.CPUSeconds * 1000 / float64(len(live))
		}
	}
	r.Extra["missed"] = float64(missed)
	if len(lat) > 0 {
		r.Extra["p50_ms"] = percentile(lat, 50)
		r.Extra["p99_ms"] = percentile(lat, 99)
		r.Extra["max_ms"] = percentile(lat, 100)
	}
	if missed > 0 {
		m.fail(fmt.Errorf("%d of %d connections saw no EXISTS within %s", missed, len(live), cfg.timeout))
	}
	return r
}

func countLive(conns []*idleConn) int {
	n := 0
	for _, ic := range conns {
		if ic != nil {
			n++
		}
	}
	return n
}

// openIdle fills conns[from:to] with connections in IDLE; failures are
// counted in m and leave nil entries.
func openIdle(ctx context.Context, cfg *config, m *meter, conns []*idleConn, from, to int) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, cfg.dialParallel)
	for i := from; i < to && ctx.Err() == nil; i++ {
		ic := &idleConn{user: cfg.user(i)}
		opts := &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil && *d.NumMessages > ic.initial.Load() {
					ic.got.CompareAndSwap(0, time.Now().UnixNano())
				}
			},
		}}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialIMAP(cfg, ic.user, opts)
			if err != nil {
				m.fail(err)
				return
			}
			sd, err := c.Select("INBOX", nil).Wait()
			if err != nil {
				c.Close()
				m.fail(fmt.Errorf("select: %w", err))
				return
			}
			ic.initial.Store(sd.NumMessages)
			idle, err := c.Idle()
			if err != nil {
				c.Close()
				m.fail(fmt.Errorf("idle: %w", err))
				return
			}
			ic.c, ic.idle = c, idle
			conns[i] = ic
		}()
	}
	wg.Wait()
}

// slopeOf is the least-squares slope of ys over xs.
func slopeOf(xs, ys []float64) (float64, bool) {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if len(xs) < 2 || d == 0 {
		return 0, false
	}
	return (n*sxy - sx*sy) / d, true
}

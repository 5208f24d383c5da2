package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// result is one workload's figures against one server.
type result struct {
	Workload string  `json:"workload"`
	Server   string  `json:"server"`
	Conns    int     `json:"conns"`
	Ops      int64   `json:"ops"`
	OpUnit   string  `json:"op_unit"`
	Seconds  float64 `json:"seconds"`
	OpsPerS  float64 `json:"ops_per_s"`
	Bytes    int64   `json:"bytes,omitempty"`
	MBPerS   float64 `json:"mb_per_s,omitempty"`
	// CPUSeconds is the server tree's CPU time during the measured window;
	// CPUPer1000 is that per 1000 ops. Both -1 without --server-pid.
	CPUSeconds float64 `json:"cpu_s"`
	CPUPer1000 float64 `json:"cpu_s_per_1000_ops"`
	PSSStartMB float64 `json:"pss_start_mb,omitempty"`
	PSSEndMB   float64 `json:"pss_end_mb,omitempty"`
	PSSMaxMB   float64 `json:"pss_max_mb,omitempty"`
	Procs      int     `json:"procs,omitempty"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	// Extra holds workload-specific figures (latencies in ms, memory per
	// connection in KB, ...).
	Extra map[string]float64 `json:"extra,omitempty"`
}

// meter counts a workload's operations, bytes and errors.
type meter struct {
	limit    int64 // 0: no limit
	reserved atomic.Int64
	ops      atomic.Int64
	bytes    atomic.Int64
	errs     atomic.Int64
	errMu    sync.Mutex
	firstErr string
}

// reserve claims one operation; false once the limit is reached.
func (m *meter) reserve() bool {
	return m.limit <= 0 || m.reserved.Add(1) <= m.limit
}

func (m *meter) done(n int64, bytes int64) {
	m.ops.Add(n)
	m.bytes.Add(bytes)
}

func (m *meter) fail(err error) {
	m.errs.Add(1)
	m.errMu.Lock()
	if m.firstErr == "" {
		m.firstErr = err.Error()
	}
	m.errMu.Unlock()
}

// worker is one connection's loop body. step does one operation (or a few,
// reported through the meter); an error ends this worker.
type worker interface {
	step(ctx context.Context, m *meter) error
	close()
}

// monitor samples the server tree while a workload runs.
type monitor struct {
	cfg    *config
	start  treeSample
	maxPSS uint64
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startMonitor(cfg *config) (*monitor, error) {
	mo := &monitor{cfg: cfg, stop: make(chan struct{})}
	if cfg.serverPID <= 0 {
		mo.start = treeSample{At: time.Now()}
		return mo, nil
	}
	s, err := sampleTree(cfg.procDir, cfg.serverPID, true)
	if err != nil {
		return nil, err
	}
	mo.start, mo.maxPSS = s, s.PSSKB
	mo.start.At = time.Now()
	mo.wg.Add(1)
	go func() {
		defer mo.wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-mo.stop:
				return
			case <-t.C:
				if s, err := sampleTree(cfg.procDir, cfg.serverPID, true); err == nil {
					mo.maxPSS = max(mo.maxPSS, s.PSSKB)
				}
			}
		}
	}()
	return mo, nil
}

// finish stops sampling and fills r's time, CPU and memory figures.
func (mo *monitor) finish(r *result) {
	end := time.Now()
	close(mo.stop)
	mo.wg.Wait()
	r.Seconds = end.Sub(mo.start.At).Seconds()
	r.CPUSeconds, r.CPUPer1000 = -1, -1
	if mo.cfg.serverPID <= 0 {
		return
	}
	s, err := sampleTree(mo.cfg.procDir, mo.cfg.serverPID, true)
	if err != nil {
		return
	}
	r.CPUSeconds = (s.CPU - mo.start.CPU).Seconds()
	if r.Ops > 0 {
		r.CPUPer1000 = r.CPUSeconds * 1000 / float64(r.Ops)
	}
	r.PSSStartMB = float64(mo.start.PSSKB) / 1024
	r.PSSEndMB = float64(s.PSSKB) / 1024
	r.PSSMaxMB = float64(max(mo.maxPSS, s.PSSKB)) / 1024
	r.Procs = s.Procs
}

// runWorkers connects cfg.conns workers (unmeasured), then runs them until
// the duration or op limit is reached, measuring only that window.
func runWorkers(ctx context.Context, cfg *config, name, unit string, newWorker func(ctx context.Context, i int) (worker, error)) result {
	r := result{Workload: name, Server: cfg.server, Conns: cfg.conns, OpUnit: unit}
	m := &meter{limit: cfg.ops}
	workers := make([]worker, cfg.conns)
	var wg sync.WaitGroup
	sem := make(chan struct{}, cfg.dialParallel)
	for i := range workers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			w, err := newWorker(ctx, i)
			if err != nil {
				m.fail(fmt.Errorf("setup: %w", err))
				return
			}
			workers[i] = w
		}()
	}
	wg.Wait()
	mo, err := startMonitor(cfg)
	if err != nil {
		m.fail(err)
		r.Errors, r.FirstError = m.errs.Load(), m.firstErr
		return r
	}
	deadline := time.Now().Add(cfg.duration)
	if cfg.ops > 0 {
		deadline = time.Now().Add(24 * time.Hour)
	}
	for _, w := range workers {
		if w == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil && m.reserve() {
				if err := w.step(ctx, m); err != nil {
					m.fail(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	r.Ops, r.Bytes = m.ops.Load(), m.bytes.Load()
	mo.finish(&r)
	r.Errors, r.FirstError = m.errs.Load(), m.firstErr
	if r.Seconds > 0 {
		r.OpsPerS = float64(r.Ops) / r.Seconds
		if r.Bytes > 0 {
			r.MBPerS = float64(r.Bytes) / r.Seconds / 1e6
		}
	}
	for _, w := range workers {
		if w != nil {
			w.close()
		}
	}
	return r
}

// percentile returns the p-th percentile (0..100) of sorted-in-place xs.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	i := int(float64(len(xs)-1)*p/100 + 0.5)
	return xs[min(i, len(xs)-1)]
}

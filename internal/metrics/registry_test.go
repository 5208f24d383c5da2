package metrics

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestExposition_golden(t *testing.T) {
	reg := NewRegistry()
	c := reg.Counter("test_requests_total", "Requests by method.\nSecond line with \\ backslash.", "method", "code")
	c.With("GET", "200").Add(3)
	c.With("POST", "500").Inc()
	c.With("GET", "404").Inc()
	c.With(`we"ird`+"\n", `back\slash`).Inc()
	g := reg.Gauge("test_open", "Open things.", "kind")
	g.With("b").Set(-2)
	g.With("a").Add(5)
	plain := reg.Counter("test_plain_total", "No labels.")
	plain.With().Add(7)
	reg.Counter("test_zero_total", "Registered, never incremented.")
	reg.Counter("test_unused_total", "Labels, no series: omitted.", "x")
	h := reg.Histogram("test_latency_seconds", "Latency.", []float64{0.001, 0.5, 2}, "op")
	for _, v := range []float64{0.0005, 0.001, 0.3, 1, 100} {
		h.With("read").Observe(v)
	}
	h.With("write").ObserveDuration(250 * time.Millisecond)
	var fnv uint64 = 41
	reg.Counter("test_func_total", "Read at scrape time.", "src").Func(func() uint64 { return fnv + 1 }, "other")
	reg.Gauge("test_func_gauge", "Gauge read at scrape time.").Func(func() int64 { return -9 })

	var buf bytes.Buffer
	n, err := reg.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("WriteTo returned %d, wrote %d", n, buf.Len())
	}
	golden := filepath.Join("testdata", "exposition.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != string(want) {
		t.Errorf("exposition differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
}

func TestRegister_panicsOnMistakes(t *testing.T) {
	reg := NewRegistry()
	reg.Counter("ok_total", "x", "a")
	for name, fn := range map[string]func(){
		"duplicate":      func() { reg.Counter("ok_total", "x") },
		"bad name":       func() { reg.Counter("bad-name", "x") },
		"bad label":      func() { reg.Counter("x_total", "x", "1a") },
		"reserved label": func() { reg.Counter("y_total", "x", "__a") },
		"dup label":      func() { reg.Counter("z_total", "x", "a", "a") },
		"le label":       func() { reg.Histogram("h", "x", []float64{1}, "le") },
		"no buckets":     func() { reg.Histogram("h2", "x", nil) },
		"unsorted":       func() { reg.Histogram("h3", "x", []float64{2, 1}) },
		"arity":          func() { reg.Counter("w_total", "x", "a", "b").With("only") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			fn()
		})
	}
}

// Series are created once: With returns the same value every time.
func TestWith_cached(t *testing.T) {
	reg := NewRegistry()
	v := reg.Counter("c_total", "x", "a", "b")
	if v.With("1", "2") != v.With("1", "2") {
		t.Error("With returned different counters for the same labels")
	}
	// The key must not be ambiguous.
	if v.With("ab", "c") == v.With("a", "bc") {
		t.Error("label values collided")
	}
}

func TestMaxSeries_overflow(t *testing.T) {
	reg := NewRegistry()
	v := reg.Counter("cmds_total", "x", "command")
	for i := range MaxSeries + 10 {
		v.With(strings.Repeat("x", i%7) + string(rune('A'+i%26)) + strconv.Itoa(i)).Inc()
	}
	if n := len(v.f.series); n != MaxSeries+1 {
		t.Errorf("%d series, want %d", n, MaxSeries+1)
	}
	if got := v.With(overflowValue).Value(); got != 10 {
		t.Errorf("overflow series = %d, want 10", got)
	}
}

// Concurrent updates, series creation and scrapes; run with -race.
func TestConcurrent(t *testing.T) {
	reg := NewRegistry()
	s := NewServer(reg)
	const workers, n = 8, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			p := s.Proto([]string{"imap", "pop3"}[w%2])
			for i := range n {
				p.ConnOpened()
				p.Command([]string{"FETCH", "STORE", "NOOP"}[i%3], time.Millisecond)
				p.Login(LoginOK)
				p.BytesSent(10)
				s.IndexSync.Observe(0.01)
				p.ConnClosed()
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			reg.WriteTo(&bytes.Buffer{})
		}
	})
	wg.Wait()
	var cmds uint64
	for _, proto := range []string{"imap", "pop3"} {
		for _, c := range []string{"FETCH", "STORE", "NOOP"} {
			cmds += s.Commands.With(proto, c).Value()
		}
		if got := s.Connections.With(proto).Value(); got != 0 {
			t.Errorf("%s open connections = %d, want 0", proto, got)
		}
	}
	if cmds != workers*n {
		t.Errorf("commands = %d, want %d", cmds, workers*n)
	}
	if got := s.Logins.With("imap", "ok").Value() + s.Logins.With("pop3", "ok").Value(); got != workers*n {
		t.Errorf("logins = %d", got)
	}
	cum, sum := s.IndexSync.snapshot()
	if cum[len(cum)-1] != workers*n {
		t.Errorf("index sync count = %d", cum[len(cum)-1])
	}
	if want := 0.01 * workers * n; sum < want*0.999 || sum > want*1.001 {
		t.Errorf("index sync sum = %v, want %v", sum, want)
	}
	h := s.CommandDuration.With("imap", "FETCH")
	if cum, _ := h.snapshot(); cum[len(cum)-1] != s.Commands.With("imap", "FETCH").Value() {
		t.Errorf("histogram count %d != counter", cum[len(cum)-1])
	}
}

func TestNilServer(t *testing.T) {
	var s *Server
	p := s.Proto("imap")
	p.ConnOpened()
	p.ConnClosed()
	p.Login(LoginFailed)
	p.Command("NOOP", time.Second)
	p.Since("NOOP", time.Now())
	p.BytesSent(3)
	p.Panic()
	if ln := p.Listener(nil); ln != nil {
		t.Error("nil Proto wrapped the listener")
	}
}

func TestProto_since(t *testing.T) {
	s := NewServer(NewRegistry())
	p := s.Proto("imap")
	if s.Proto("imap") != p {
		t.Error("Proto not cached")
	}
	func() { defer p.Since("SELECT", time.Now().Add(-2*time.Second)) }()
	if got := s.Commands.With("imap", "SELECT").Value(); got != 1 {
		t.Errorf("SELECT count = %d", got)
	}
	cum, sum := s.CommandDuration.With("imap", "SELECT").snapshot()
	if sum < 2 || cum[len(cum)-1] != 1 {
		t.Errorf("duration sum %v count %d", sum, cum[len(cum)-1])
	}
}

func TestHistogram_buckets(t *testing.T) {
	reg := NewRegistry()
	h := reg.Histogram("h", "x", []float64{1, 2}).With()
	for _, v := range []float64{0, 1, 1.5, 2, 3} {
		h.Observe(v)
	}
	h.Observe(0.0 / zero()) // NaN: ignored
	cum, sum := h.snapshot()
	if want := []uint64{2, 4, 5}; !equal(cum, want) {
		t.Errorf("cumulative = %v, want %v (le is inclusive)", cum, want)
	}
	if sum != 7.5 {
		t.Errorf("sum = %v", sum)
	}
}

func zero() float64 { return 0 }

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The metric names and buckets of postofficed are an interface for
// dashboards: pin them.
func TestServer_golden(t *testing.T) {
	reg := NewRegistry()
	s := NewServer(reg)
	imap, pop3 := s.Proto("imap"), s.Proto("pop3")
	imap.ConnOpened()
	pop3.ConnOpened()
	pop3.ConnClosed()
	imap.Login(LoginOK)
	imap.Login(LoginFailed)
	pop3.Login(LoginThrottled)
	imap.Command("FETCH", 3*time.Millisecond)
	pop3.Command("RETR", 20*time.Millisecond)
	imap.BytesSent(1234)
	s.IndexSync.Observe(0.002)
	s.NotificationLag.Observe(0.05)
	s.Panics.Func(func() uint64 { return 0 }, "imap")
	var buf bytes.Buffer
	if _, err := reg.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "server.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != string(want) {
		t.Errorf("exposition differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
}

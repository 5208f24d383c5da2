package main

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// comm with spaces and a ')' inside, as a process can name itself.
	line := "1234 (imap: bob (x) [idle]) S 17 1234 1234 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 100 1000 10 18446744073709551615\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != 1234 || st.PPID != 17 {
		t.Fatalf("pid/ppid = %d/%d", st.PID, st.PPID)
	}
	if want := 310 * time.Second / 100; st.CPU != want {
		t.Fatalf("CPU = %v, want %v", st.CPU, want)
	}
	for _, bad := range []string{"", "12 (x", "x (a) S 1", "1 (a) S 1 2 3"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func TestParsePSS(t *testing.T) {
	in := "55f3c-7ffd [rollup]\nRss:                3000 kB\nPss:                1234 kB\nPss_Anon:            800 kB\n"
	kb, err := parsePSS([]byte(in))
	if err != nil || kb != 1234 {
		t.Fatalf("parsePSS = %d, %v", kb, err)
	}
	if _, err := parsePSS([]byte("Rss: 1 kB\n")); err == nil {
		t.Fatal("no error without a Pss line")
	}
}

func TestSampleTree_self(t *testing.T) {
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		t.Skip("no /proc/self/smaps_rollup")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep:", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	// Burn some CPU so the reading is non-zero.
	x := 0
	for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
		x++
	}
	s, err := sampleTree("/proc", os.Getpid(), true)
	if err != nil {
		t.Fatal(err)
	}
	if s.Procs < 2 {
		t.Errorf("tree has %d processes, want us and the child", s.Procs)
	}
	if s.CPU <= 0 || s.PSSKB == 0 {
		t.Errorf("CPU %v, PSS %d KB: want both positive", s.CPU, s.PSSKB)
	}
	if _, err := sampleTree("/proc", 0x7ffffff0, false); err == nil {
		t.Error("no error for a missing process")
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	if p := percentile(xs, 50); p != 3 {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(xs, 100); p != 5 {
		t.Errorf("max = %v", p)
	}
	if p := percentile(nil, 99); p != 0 {
		t.Errorf("empty = %v", p)
	}
}

func TestSlopeOf(t *testing.T) {
	if s, ok := slopeOf([]float64{10, 20, 30, 40}, []float64{1000, 1500, 2000, 2500}); !ok || s != 50 {
		t.Fatalf("slope = %v, %v; want 50", s, ok)
	}
	if _, ok := slopeOf([]float64{5}, []float64{1}); ok {
		t.Fatal("one point has no slope")
	}
	if _, ok := slopeOf([]float64{5, 5}, []float64{1, 2}); ok {
		t.Fatal("vertical line has no slope")
	}
}

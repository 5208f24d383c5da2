package testsuite

// A load comparison of pop3d with another POP3 server (Dovecot, from
// ../shared/peers/dovecot-peer.sh) on the same messages: RETR throughput and
// server CPU seconds per 1000 RETRs. It only runs when POP3_LOAD=1:
//
//	POP3_LOAD=1 [POP3_PEER_ADDR=127.0.0.1:11110 POP3_PEER_USER=bench50 \
//	  POP3_PEER_PASS=benchpw POP3_PEER_MAILDIR=/tmp/dovecot-peer/mail/bench50/Maildir \
//	  POP3_PEER_PROC=pop3] go test -run TestPOP3_loadCompare -v ./testsuite/
//
// pop3d runs in a child process (this test binary re-executed), so its CPU
// time can be read from /proc without the client's. For the peer, the CPU
// of all processes named POP3_PEER_PROC is summed (Dovecot runs one "pop3"
// process per session).

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-maildir"

	"github.com/postoffice/postoffice/store"
)

const (
	loadMessages = 100
	loadRounds   = 20 // RETRs = loadMessages * loadRounds
)

func loadMessage(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: load@example.org\r\nSubject: load %d\r\n\r\n", i)
	for j := 0; b.Len() < 50<<10; j++ {
		if j%10 == 0 {
			b.WriteString(".a line that needs stuffing\r\n")
		}
		fmt.Fprintf(&b, "line %05d of message %d, filler text to make it fifty kilobytes.\r\n", j, i)
	}
	return b.String()
}

// TestPOP3LoadServerHelper is the child process of TestPOP3_loadCompare.
func TestPOP3LoadServerHelper(t *testing.T) {
	dir := os.Getenv("POP3_LOAD_SERVER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	os.Setenv("TEST_LOG", "0")
	st := NewStoreAt(t, store.Options{DataDir: dir})
	MustUser(t, st, "load", "loadpw")
	for i := range loadMessages {
		appendMsg(t, st, "load", loadMessage(i))
	}
	ps := startPOP3(t, st, pop3Config{})
	if p := os.Getenv("POP3_LOAD_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("ADDR %s\n", ps.addr)
	// Serve until the parent closes stdin.
	bufio.NewReader(os.Stdin).ReadString('\n')
}

// procCPU returns utime+stime of pid in seconds.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised comm: state is field 3; utime 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	stm, _ := strconv.ParseFloat(f[12], 64)
	return (ut + stm) / 100, nil // USER_HZ is 100 on Linux
}

// cpuOfProcs sums the CPU seconds of all processes whose comm is name.
func cpuOfProcs(name string) float64 {
	ents, _ := os.ReadDir("/proc")
	var sum float64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(comm)) != name {
			continue
		}
		c, err := procCPU(pid)
		if err == nil {
			sum += c
		}
	}
	return sum
}

// loadRun logs in and RETRs every message loadRounds times, returning the
// bytes received and the wall time of the RETR loop. cpu is read right
// after login and right before QUIT.
func loadRun(t *testing.T, addr, user, pass string, cpu func() float64) (bytesIn int64, wall time.Duration, cpuSec float64) {
	t.Helper()
	c := dialPOP3(t, addr)
	if l := c.login(user, pass); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("login to %s: %q", addr, l)
	}
	l := c.cmd("+OK", "STAT")
	n, _ := strconv.Atoi(strings.Fields(l)[1])
	if n < loadMessages {
		t.Fatalf("%s has %d messages, want %d", addr, n, loadMessages)
	}
	r := bufio.NewReaderSize(c.r, 64<<10)
	c0 := cpu()
	start := time.Now()
	for range loadRounds {
		for i := 1; i <= loadMessages; i++ {
			fmt.Fprintf(c.nc, "RETR %d\r\n", i)
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					t.Fatal(err)
				}
				bytesIn += int64(len(line))
				if bytes.Equal(line, []byte(".\r\n")) {
					break
				}
			}
		}
	}
	wall = time.Since(start)
	cpuSec = cpu() - c0
	fmt.Fprintf(c.nc, "QUIT\r\n")
	return bytesIn, wall, cpuSec
}

func TestPOP3_loadCompare(t *testing.T) {
	if os.Getenv("POP3_LOAD") != "1" {
		t.Skip("set POP3_LOAD=1 to run the load comparison")
	}
	// pop3d in a child process.
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestPOP3LoadServerHelper$")
	cmd.Env = append(os.Environ(), "POP3_LOAD_SERVER_DIR="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	sc := bufio.NewScanner(stdout)
	var addr string
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatal("helper did not start")
	}
	go func() { // drain the rest
		for sc.Scan() {
		}
	}()
	pid := cmd.Process.Pid
	report := func(name string, n int64, wall time.Duration, cpu float64) {
		t.Logf("%-8s %d RETRs, %.1f MB in %v: %.1f MB/s, server CPU %.3f s = %.3f s per 1000 RETRs",
			name, loadMessages*loadRounds, float64(n)/1e6, wall.Round(time.Millisecond),
			float64(n)/1e6/wall.Seconds(), cpu, cpu*1000/float64(loadMessages*loadRounds))
	}
	n, wall, cpu := loadRun(t, addr, "load", "loadpw", func() float64 {
		c, err := procCPU(pid)
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
	report("pop3d", n, wall, cpu)

	peer := os.Getenv("POP3_PEER_ADDR")
	if peer == "" {
		return
	}
	md := os.Getenv("POP3_PEER_MAILDIR")
	if md == "" {
		t.Fatal("POP3_PEER_MAILDIR is required with POP3_PEER_ADDR")
	}
	// Fill the peer's Maildir once, as an MTA would, owned by its mail user.
	if _, err := os.Stat(filepath.Join(md, "cur")); err != nil {
		if err := os.MkdirAll(filepath.Dir(md), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := maildir.Dir(md).Init(); err != nil {
			t.Fatal(err)
		}
		for i := range loadMessages {
			d, err := maildir.NewDelivery(md)
			if err != nil {
				t.Fatal(err)
			}
			d.Write([]byte(loadMessage(i)))
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if u, err := user.Lookup("vmail"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			filepath.Walk(filepath.Dir(md), func(p string, _ os.FileInfo, _ error) error {
				return os.Lchown(p, uid, gid)
			})
		}
	}
	proc := os.Getenv("POP3_PEER_PROC")
	if proc == "" {
		proc = "pop3"
	}
	n, wall, cpu = loadRun(t, peer, os.Getenv("POP3_PEER_USER"), os.Getenv("POP3_PEER_PASS"), func() float64 {
		return cpuOfProcs(proc)
	})
	report("peer", n, wall, cpu)
}

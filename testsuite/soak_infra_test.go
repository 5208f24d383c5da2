package testsuite

// Infrastructure of the chaos soak (soak_test.go): a throwaway PostgreSQL
// cluster the soak may restart without disturbing other tests, the
// postofficed binaries, and the front-end processes it kills and restarts.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// soakPG is a PostgreSQL cluster of the soak's own, in a temporary
// directory, on a free port of 127.0.0.1, with trust authentication.
type soakPG struct {
	bin      string // directory of initdb, pg_ctl
	dir      string // owned by the postgres OS user when we run as root
	port     int
	url      string // the soak's database
	adminURL string // the postgres database
	statStmt bool   // pg_stat_statements is loaded and created
}

// soakFindPGBin returns the directory holding initdb and pg_ctl, or "".
func soakFindPGBin() string {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real // /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(m))) // newest major first
	dirs = append(dirs, m...)
	for _, d := range dirs {
		if soakExecutable(filepath.Join(d, "initdb")) && soakExecutable(filepath.Join(d, "pg_ctl")) {
			return d
		}
	}
	return ""
}

func soakExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// soakFreePort returns a port that was free on ip a moment ago.
func soakFreePort(t testing.TB, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("soak: free port on %s: %v", ip, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// pgCmd runs a PostgreSQL tool, as the postgres OS user when we are root
// (initdb refuses root).
func (pg *soakPG) pgCmd(ctx context.Context, tool string, args ...string) *exec.Cmd {
	bin := filepath.Join(pg.bin, tool)
	if os.Geteuid() == 0 {
		return exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	}
	return exec.CommandContext(ctx, bin, args...)
}

func (pg *soakPG) run(t testing.TB, timeout time.Duration, tool string, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := pg.pgCmd(ctx, tool, args...).CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(pg.dir, "server.log"))
		return fmt.Errorf("%s %s: %v\n%s\nserver.log:\n%s", tool, strings.Join(args, " "), err, out, soakTail(log, 3000))
	}
	return nil
}

func soakTail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// startSoakPG starts the cluster; it is stopped (pg_ctl stop) and removed
// when t ends. Without initdb it skips t loudly, or fails it when
// REQUIRE_POSTGRES or CI is set.
func startSoakPG(t *testing.T) *soakPG {
	t.Helper()
	pg := &soakPG{bin: soakFindPGBin()}
	if pg.bin == "" {
		msg := "soak: initdb/pg_ctl not found (PATH, /usr/lib/postgresql/*/bin): the chaos soak needs a PostgreSQL cluster of its own"
		if requirePostgres() || os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		fmt.Fprintf(os.Stderr, "\n!!! %s: SKIPPING TestSoak; set REQUIRE_POSTGRES=1 to fail instead.\n\n", msg)
		t.Skip(msg)
	}
	dir, err := os.MkdirTemp("", "postoffice-soak-pg-")
	if err != nil {
		t.Fatal(err)
	}
	pg.dir = dir
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			t.Fatalf("soak: running as root needs a postgres OS user for initdb: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	if err := pg.run(t, 2*time.Minute, "initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("soak: %v", err)
	}
	pg.port = soakFreePort(t, "127.0.0.1")
	lib := filepath.Join(filepath.Dir(pg.bin), "lib", "pg_stat_statements.so")
	_, statErr := os.Stat(lib)
	conf := fmt.Sprintf("\n# postoffice soak\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n"+
		"fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n", pg.port, dir)
	if statErr == nil {
		conf += "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n"
	}
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("soak: write postgresql.conf: %v", err)
	}
	if err := pg.run(t, 2*time.Minute, "pg_ctl", "-D", data, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "90", "start"); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("soak: %v", err)
	}
	t.Cleanup(func() {
		if err := pg.run(t, time.Minute, "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"); err != nil {
			t.Errorf("soak: stop PostgreSQL: %v", err)
		}
		os.RemoveAll(dir)
	})
	pg.adminURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
	pg.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postoffice?sslmode=disable", pg.port)
	if err := soakExec(pg.adminURL, "CREATE DATABASE postoffice"); err != nil {
		t.Fatalf("soak: create database: %v", err)
	}
	if statErr == nil {
		if err := soakExec(pg.url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
			t.Logf("soak: pg_stat_statements unavailable: %v", err)
		} else {
			pg.statStmt = true
		}
	} else {
		t.Logf("soak: %s missing: no PostgreSQL query counts", lib)
	}
	return pg
}

// restart restarts the cluster (pg_ctl restart -m fast): every connection
// of every front-end is dropped.
func (pg *soakPG) restart(t testing.TB) error {
	return pg.run(t, 2*time.Minute, "pg_ctl", "-D", filepath.Join(pg.dir, "data"), "-l", filepath.Join(pg.dir, "server.log"), "-m", "fast", "-w", "-t", "90", "restart")
}

func soakExec(url, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// soakStatements is a snapshot of pg_stat_statements in the soak database.
type soakStatements struct {
	total int64
	top   []soakStatement
}

type soakStatement struct {
	calls int64
	query string
}

func (pg *soakPG) resetStatements() error {
	if !pg.statStmt {
		return nil
	}
	return soakExec(pg.url, "SELECT pg_stat_statements_reset()")
}

// statements reads the query counts, without the soak's own queries
// against pg_stat_statements.
func (pg *soakPG) statements() (*soakStatements, error) {
	if !pg.statStmt {
		return nil, errors.New("pg_stat_statements not loaded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT s.calls, s.query FROM pg_stat_statements s
		JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname = current_database() AND s.query NOT ILIKE '%pg_stat_statements%'
		ORDER BY s.calls DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	st := &soakStatements{}
	for rows.Next() {
		var s soakStatement
		if err := rows.Scan(&s.calls, &s.query); err != nil {
			return nil, err
		}
		st.total += s.calls
		st.top = append(st.top, s)
	}
	return st, rows.Err()
}

// soakBuild builds postofficed and postoffice into dir; with race, the
// daemon has the race detector (the soak then counts its reports).
func soakBuild(t testing.TB, dir string, race bool) (daemon, admin string) {
	t.Helper()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if race {
		args = append(args, "-race")
	}
	args = append(args, module+"/cmd/postofficed", module+"/cmd/postoffice")
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("soak: go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return filepath.Join(dir, "postofficed"), filepath.Join(dir, "postoffice")
}

// soakHost is one postofficed front-end on its own loopback address.
type soakHost struct {
	idx      int
	ip       string
	imapAddr string
	pop3Addr string
	args     []string
	bin      string
	env      []string
	logPath  string

	mu      sync.Mutex // guards the fields below
	cmd     *exec.Cmd
	waited  chan struct{} // closed when cmd has been waited for
	deadCPU float64       // CPU seconds of earlier, dead processes
	starts  int

	// inc counts the processes that died (kills); an ambiguous command sent
	// to incarnation n is settled once inc > n.
	inc atomic.Int64
	up  atomic.Bool

	killing atomic.Bool  // an exit now is ours (kill, stop)
	crashes atomic.Int64 // exits we did not cause
	lastErr atomic.Value // string: how the last unexpected exit ended
}

func newSoakHost(t testing.TB, idx int, bin, dbURL, maildirTmpl, dir string, extraEnv []string) *soakHost {
	t.Helper()
	ip := fmt.Sprintf("127.0.0.%d", idx+1)
	h := &soakHost{idx: idx, ip: ip, bin: bin, env: extraEnv}
	h.imapAddr = net.JoinHostPort(ip, strconv.Itoa(soakFreePort(t, ip)))
	h.pop3Addr = net.JoinHostPort(ip, strconv.Itoa(soakFreePort(t, ip)))
	data := filepath.Join(dir, fmt.Sprintf("host%d", idx+1))
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	h.logPath = filepath.Join(dir, fmt.Sprintf("host%d.log", idx+1))
	level := os.Getenv("SOAK_LOG_LEVEL")
	if level == "" {
		level = "warn"
	}
	h.args = []string{"--data", data, "--db", dbURL, "--maildir", maildirTmpl,
		"--imap", h.imapAddr, "--pop3", h.pop3Addr, "--imaps", "", "--pop3s", "",
		"--plaintext-auth-nets", "127.0.0.0/8", "--poll-interval", "1s", "--http", "",
		"--max-conns-per-ip", "0", "--max-conns-per-user", "0",
		"--argon2-memory", "8", "--argon2-time", "1", "--shutdown-timeout", "2s",
		"--hostname", fmt.Sprintf("soak%d", idx+1), "--log-level", level}
	return h
}

// start starts the process and waits until both listeners accept.
// PostgreSQL may be restarting: a process that exits is started again.
func (h *soakHost) start(t testing.TB) error {
	deadline := time.Now().Add(2 * time.Minute)
	for attempt := 0; ; attempt++ {
		err := h.startOnce()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("host %d: %v", h.idx+1, err)
		}
		time.Sleep(time.Duration(200+100*attempt) * time.Millisecond)
	}
}

func (h *soakHost) startOnce() error {
	logf, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	h.killing.Store(false)
	cmd := exec.Command(h.bin, h.args...)
	cmd.Env = append(os.Environ(), h.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	h.mu.Lock()
	h.starts++
	fmt.Fprintf(logf, "=== soak: start #%d at %s\n", h.starts, time.Now().Format(time.RFC3339Nano))
	err = cmd.Start()
	logf.Close()
	if err != nil {
		h.mu.Unlock()
		return err
	}
	waited := make(chan struct{})
	h.cmd, h.waited = cmd, waited
	h.mu.Unlock()
	go func() {
		cmd.Wait()
		if !h.killing.Load() {
			h.crashes.Add(1)
			h.lastErr.Store(fmt.Sprintf("%v at %s", cmd.ProcessState, time.Now().Format("15:04:05.000")))
			h.up.Store(false)
		}
		close(waited)
	}()
	for {
		select {
		case <-waited:
			h.crashes.Add(-1) // not up yet: a failed start (PostgreSQL down), retried
			h.reap(cmd)
			return fmt.Errorf("postofficed exited at start: %v (see %s)", cmd.ProcessState, h.logPath)
		case <-time.After(50 * time.Millisecond):
		}
		if soakAccepts(h.imapAddr) && soakAccepts(h.pop3Addr) {
			h.up.Store(true)
			return nil
		}
	}
}

func soakAccepts(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// ensureUp restarts the host if its process is gone.
func (h *soakHost) ensureUp(t testing.TB) error {
	h.mu.Lock()
	cmd, waited := h.cmd, h.waited
	h.mu.Unlock()
	if cmd != nil {
		select {
		case <-waited:
			h.reap(cmd)
		default:
			return nil
		}
	}
	return h.start(t)
}

// reap books the CPU of a process that has been waited for.
func (h *soakHost) reap(cmd *exec.Cmd) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cmd.ProcessState != nil {
		h.deadCPU += (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	}
	if h.cmd == cmd {
		h.cmd = nil
	}
}

// kill SIGKILLs the process and waits for it.
func (h *soakHost) kill() {
	h.mu.Lock()
	cmd, waited := h.cmd, h.waited
	h.mu.Unlock()
	if cmd == nil {
		return
	}
	h.up.Store(false)
	h.killing.Store(true)
	cmd.Process.Signal(syscall.SIGKILL)
	<-waited
	h.inc.Add(1)
	h.reap(cmd)
}

// cpu returns the CPU seconds (user+system) of all processes of the host
// so far, dead and alive.
func (h *soakHost) cpu() float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.deadCPU
	if h.cmd != nil && h.cmd.Process != nil {
		if v, err := procCPU(h.cmd.Process.Pid); err == nil {
			c += v
		}
	}
	return c
}

// logScan counts lines of the host's log containing any of the needles.
func (h *soakHost) logScan(needles ...string) map[string]int {
	b, _ := os.ReadFile(h.logPath)
	n := map[string]int{}
	for _, l := range bytes.Split(b, []byte("\n")) {
		for _, s := range needles {
			if bytes.Contains(l, []byte(s)) {
				n[s]++
			}
		}
	}
	return n
}

// logLines returns up to max lines of the host's log containing needle.
func (h *soakHost) logLines(needle string, max int) []string {
	b, _ := os.ReadFile(h.logPath)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, needle) {
			out = append(out, l)
			if len(out) == max {
				break
			}
		}
	}
	return out
}

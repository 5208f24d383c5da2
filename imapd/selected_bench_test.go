package imapd_test

// Benchmarks for issue 3's "Performance" figures:
//
//	go test ./imapd -run '^$' -bench 'Selected' -benchtime 5x
//	BENCH_MESSAGES=100000 go test ./imapd -run '^$' -bench 'Selected/.*/select|uid-fetch' -benchtime 3x
//	IDLE_CONNS=5000 go test ./imapd -run '^$' -bench 'IdleConnMemory' -benchtime 1x
//
// The mailbox is populated fast: files written straight into cur/ and one
// store.Sync. BENCH_BACKEND selects "sqlite" (default) or "postgres".

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
	"github.com/postoffice/postoffice/testsuite"
)

func benchEnv(b *testing.B) *selEnv {
	b.Helper()
	quiet := slog.New(slog.DiscardHandler)
	o := store.Options{Logger: quiet}
	if os.Getenv("BENCH_BACKEND") == testsuite.Postgres {
		o.DatabaseURL = testsuite.NewDatabaseURL(b)
	}
	st := testsuite.NewStoreAt(b, o)
	return newSelEnvOn(b, st, true, quiet)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// populate writes n messages into alice's INBOX cur/ and indexes them with
// one Sync.
func populate(b *testing.B, e *selEnv, n int) {
	b.Helper()
	md := testsuite.Maildir(b, e.st, "alice")
	if err := os.MkdirAll(filepath.Join(md, "cur"), 0o700); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		raw := fmt.Sprintf("From: Sender %d <s%d@example.org>\r\nTo: alice@example.org\r\nSubject: benchmark message %d\r\n"+
			"Date: Tue, 05 Mar 2024 10:00:00 +0100\r\nMessage-ID: <b%d@example.org>\r\nContent-Type: text/plain\r\n\r\nbody of message %d\r\n", i, i, i, i, i)
		flags := ""
		if i%3 == 0 {
			flags = "S"
		}
		name := fmt.Sprintf("1700000000.M%dP1Q%d.bench:2,%s", i, i, flags)
		if err := os.WriteFile(filepath.Join(md, "cur", name), []byte(raw), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := e.st.Sync(ctx, e.inbox.ID); err != nil {
		b.Fatal(err)
	}
	b.Logf("indexed %d messages in %v", n, time.Since(start).Round(time.Millisecond))
}

// drain sends a command and reads to its tagged response; it returns the
// number of untagged lines.
func drain(b *testing.B, c net.Conn, br *bufio.Reader, tag, cmd string) int {
	if _, err := io.WriteString(c, tag+" "+cmd+"\r\n"); err != nil {
		b.Fatal(err)
	}
	n := 0
	for {
		l, err := br.ReadSlice('\n')
		if err != nil {
			b.Fatalf("%s: %v", cmd, err)
		}
		if strings.HasPrefix(string(l), tag+" ") {
			if !strings.HasPrefix(string(l), tag+" OK") {
				b.Fatalf("%s: %s", cmd, l)
			}
			return n
		}
		if l[0] == '*' {
			n++
		}
		for bytes.HasSuffix(l, []byte("}\r\n")) {
			lit := testsuite.LiteralRe.FindSubmatch(bytes.TrimRight(l, "\r\n"))
			if lit == nil {
				break
			}
			k, _ := strconv.Atoi(string(lit[1]))
			if _, err := io.CopyN(io.Discard, br, int64(k)); err != nil {
				b.Fatal(err)
			}
			// The rest of the response line follows the literal.
			if l, err = br.ReadSlice('\n'); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func benchConn(b *testing.B, e *selEnv) (net.Conn, *bufio.Reader) {
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	br := bufio.NewReaderSize(c, 64<<10)
	if _, err := br.ReadString('\n'); err != nil {
		b.Fatal(err)
	}
	drain(b, c, br, "l", "LOGIN alice secret")
	return c, br
}

// BenchmarkSelected measures SELECT and FETCH on a large mailbox.
func BenchmarkSelected(b *testing.B) {
	n := envInt("BENCH_MESSAGES", 100000)
	e := benchEnv(b)
	populate(b, e, n)
	b.Run(fmt.Sprintf("select/%d", n), func(b *testing.B) {
		c, br := benchConn(b, e)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			drain(b, c, br, "s", "SELECT INBOX")
		}
	})
	b.Run(fmt.Sprintf("uid-fetch-uid-flags/%d", n), func(b *testing.B) {
		c, br := benchConn(b, e)
		drain(b, c, br, "s", "SELECT INBOX")
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if got := drain(b, c, br, "f", "UID FETCH 1:* (UID FLAGS)"); got != n {
				b.Fatalf("%d responses", got)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run(fmt.Sprintf("uid-fetch-headers/%d", n), func(b *testing.B) {
		// A desktop client's first sync of the message list, from the
		// index cache (no file opened).
		c, br := benchConn(b, e)
		drain(b, c, br, "s", "EXAMINE INBOX")
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if got := drain(b, c, br, "f", "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODY.PEEK[HEADER.FIELDS (From To Subject Date Message-ID)])"); got != n {
				b.Fatalf("%d responses", got)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("fetch-body-1000", func(b *testing.B) {
		c, br := benchConn(b, e)
		drain(b, c, br, "s", "EXAMINE INBOX")
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			drain(b, c, br, "f", "FETCH 1:1000 (BODY.PEEK[])")
		}
		b.ReportMetric(1000*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("search-unseen", func(b *testing.B) {
		c, br := benchConn(b, e)
		drain(b, c, br, "s", "EXAMINE INBOX")
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			drain(b, c, br, "q", "UID SEARCH RETURN (COUNT) UNSEEN")
		}
	})
	b.Run("noop-poll", func(b *testing.B) {
		c, br := benchConn(b, e)
		drain(b, c, br, "s", "EXAMINE INBOX")
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			drain(b, c, br, "n", "NOOP")
		}
	})
}

// idleClientScript opens N connections that log in, select INBOX and IDLE,
// prints "ready", and holds them until stdin closes. A separate process, so
// that client-side memory does not count.
const idleClientScript = `
import socket, sys
addr, n, users = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
host, port = addr.rsplit(":", 1)
conns = []
def expect(f, tag):
    while True:
        l = f.readline()
        if not l:
            raise SystemExit("closed")
        if l.startswith(tag):
            if not l.startswith(tag + " OK") and tag != "+":
                raise SystemExit(l)
            return
for i in range(n):
    s = socket.create_connection((host, int(port)))
    f = s.makefile("r", encoding="latin-1", newline="\r\n")
    f.readline()
    s.sendall(("a LOGIN u%d secret\r\nb SELECT INBOX\r\nc IDLE\r\n" % (i % users)).encode())
    expect(f, "a"); expect(f, "b"); expect(f, "+")
    conns.append((s, f))
print("ready", flush=True)
sys.stdin.read()
`

func heapAndStack() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// BenchmarkIdleConnMemory reports server memory per idle connection: logged
// in, INBOX selected, in IDLE. IDLE_CONNS connections (default 2000) of
// IDLE_USERS users (default: one user each).
func BenchmarkIdleConnMemory(b *testing.B) {
	if _, err := exec.LookPath("python3"); err != nil {
		b.Skip("python3 not installed")
	}
	n := envInt("IDLE_CONNS", 2000)
	users := envInt("IDLE_USERS", n)
	quiet := slog.New(slog.DiscardHandler)
	o := store.Options{Logger: quiet}
	if os.Getenv("BENCH_BACKEND") == testsuite.Postgres {
		o.DatabaseURL = testsuite.NewDatabaseURL(b)
	}
	st := testsuite.NewStoreAt(b, o)
	for i := 0; i < users; i++ {
		u := testsuite.MustUser(b, st, fmt.Sprintf("u%d", i), "secret")
		if _, err := st.Append(context.Background(), mustInbox(b, st, u.ID), strings.NewReader(msg(1)), 0, nil, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	testsuite.MustUser(b, st, "alice", "secret")
	e := newSelEnvOn(b, st, false, quiet)
	for i := 0; i < b.N; i++ {
		before := heapAndStack()
		cmd := exec.Command("python3", "-c", idleClientScript, e.addr, strconv.Itoa(n), strconv.Itoa(users))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "ready\n" {
			b.Fatalf("clients: %q %v", line, err)
		}
		// Let every session's Idle goroutine reach its wait.
		time.Sleep(500 * time.Millisecond)
		after := heapAndStack()
		per := float64(after-before) / float64(n) / 1024
		b.ReportMetric(per, "KiB/conn")
		b.Logf("%d idle connections (%d users): %.1f KiB each (heap+stack %d -> %d)", n, users, per, before, after)
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
	}
}

func mustInbox(b *testing.B, st *store.Store, u store.UserID) store.MailboxID {
	mb, err := st.Mailbox(context.Background(), u, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	return mb.ID
}

package testsuite

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RawIMAP is a line-level IMAP client for exact assertions on responses.
// Lines are returned without CRLF, literals inlined; any error fails the
// test. Commands are tagged t1, t2, … in order (the LOGIN of DialRawIMAP is
// t1), IDLE is tagged i1.
type RawIMAP struct {
	t   testing.TB
	c   net.Conn
	br  *bufio.Reader
	tag int
}

// LiteralRe matches an IMAP line that ends in a literal's announcement
// ({n} or ~{n}); the first group is the length.
var LiteralRe = regexp.MustCompile(`~?\{(\d+)\}$`)

// DialRawIMAP connects to the IMAP server at addr, reads the greeting and
// logs in. The connection is closed when t ends.
func DialRawIMAP(t testing.TB, addr, user, pass string) *RawIMAP {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &RawIMAP{t: t, c: c, br: bufio.NewReader(c)}
	if l := r.Line(); !strings.HasPrefix(l, "* OK") {
		t.Fatalf("greeting: %q", l)
	}
	r.OK("LOGIN %s %s", user, pass)
	return r
}

// Line reads one response line within 10 seconds.
func (r *RawIMAP) Line() string {
	r.t.Helper()
	return r.LineBy(time.Now().Add(10 * time.Second))
}

// LineBy reads one response line by deadline.
func (r *RawIMAP) LineBy(deadline time.Time) string {
	r.t.Helper()
	l, err := r.readLine(deadline)
	if err != nil {
		r.t.Fatal(err)
	}
	return l
}

// readLine reads one response line by deadline, inlining literals.
func (r *RawIMAP) readLine(deadline time.Time) (string, error) {
	_ = r.c.SetReadDeadline(deadline)
	var sb strings.Builder
	for {
		l, err := r.br.ReadString('\n')
		if err != nil {
			return "", fmt.Errorf("read: %w (have %q)", err, sb.String()+l)
		}
		l = strings.TrimSuffix(l, "\r\n")
		sb.WriteString(l)
		m := LiteralRe.FindStringSubmatch(l)
		if m == nil {
			return sb.String(), nil
		}
		n, _ := strconv.Atoi(m[1])
		buf := make([]byte, n)
		if _, err := io.ReadFull(r.br, buf); err != nil {
			return "", fmt.Errorf("read literal: %w", err)
		}
		sb.WriteString("\r\n")
		sb.Write(buf)
	}
}

// Send writes s and CRLF.
func (r *RawIMAP) Send(s string) {
	r.t.Helper()
	_ = r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(r.c, s+"\r\n"); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// Cmd runs a command (formatted with args) and returns the untagged lines
// and the tagged status line without the tag. It waits up to 30 seconds for
// each line.
func (r *RawIMAP) Cmd(format string, args ...any) ([]string, string) {
	r.t.Helper()
	r.tag++
	tag := fmt.Sprintf("t%d", r.tag)
	r.Send(tag + " " + fmt.Sprintf(format, args...))
	var untagged []string
	for {
		l := r.LineBy(time.Now().Add(30 * time.Second))
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

// OK runs a command that must succeed and returns its untagged lines.
func (r *RawIMAP) OK(format string, args ...any) []string {
	r.t.Helper()
	u, st := r.Cmd(format, args...)
	if !strings.HasPrefix(st, "OK") {
		r.t.Fatalf("%s: %s (untagged %q)", fmt.Sprintf(format, args...), st, u)
	}
	return u
}

// Idle starts IDLE and waits for the continuation.
func (r *RawIMAP) Idle() {
	r.t.Helper()
	r.Send("i1 IDLE")
	if l := r.Line(); !strings.HasPrefix(l, "+") {
		r.t.Fatalf("IDLE: %q", l)
	}
}

// WaitLine reads lines until one matches the regular expression re, for at
// most d, and returns it.
func (r *RawIMAP) WaitLine(re string, d time.Duration) string {
	r.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(d)
	for {
		l, err := r.readLine(deadline)
		if err != nil {
			r.t.Fatalf("waiting for %q: %v", re, err)
		}
		if rx.MatchString(l) {
			return l
		}
	}
}

// Done ends IDLE and returns the lines seen before its tagged OK.
func (r *RawIMAP) Done() []string {
	r.t.Helper()
	r.Send("DONE")
	var out []string
	for {
		l := r.Line()
		if strings.HasPrefix(l, "i1 ") {
			if !strings.HasPrefix(l, "i1 OK") {
				r.t.Fatalf("IDLE ended with %q", l)
			}
			return out
		}
		out = append(out, l)
	}
}

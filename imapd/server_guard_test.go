package imapd

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
)

func TestLiteralHeader(t *testing.T) {
	tests := []struct {
		line    string
		size    int64
		nonSync bool
		ok      bool
	}{
		{"a APPEND INBOX {12}\r", 12, false, true},
		{"a APPEND INBOX {12+}\r", 12, true, true},
		{"a APPEND INBOX {12+}", 12, true, true},
		{"a APPEND INBOX ~{7}\r", 7, false, true},
		{"{0}\r", 0, false, true},
		{"x {99999999999999999999999+}\r", 1 << 62, true, true},
		{"a NOOP\r", 0, false, false},
		{"a {}\r", 0, false, false},
		{"a {+}\r", 0, false, false},
		{"a {1a}\r", 0, false, false},
		{"a 12}\r", 0, false, false},
		{"}", 0, false, false},
		{"", 0, false, false},
	}
	for _, tc := range tests {
		size, nonSync, ok := literalHeader([]byte(tc.line))
		if size != tc.size || nonSync != tc.nonSync || ok != tc.ok {
			t.Errorf("%q: %d %v %v, want %d %v %v", tc.line, size, nonSync, ok, tc.size, tc.nonSync, tc.ok)
		}
	}
}

// TestGuardScan drives the guard's state machine directly: data written by
// a test function (not io.TeeReader) counts as sent, so received data goes
// through received.
func TestGuardScan(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	newGuard := func() *guard {
		return &guard{srv: &Server{}, tc: &trackedConn{Conn: a}, log: slog.New(slog.DiscardHandler), sentBOL: true}
	}
	t.Run("small nonsync literal skipped", func(t *testing.T) {
		g := newGuard()
		in := "a LOGIN {3+}\r\n{9999+}\r\nb NOOP\r\n"
		n, err := g.received([]byte(in))
		if err != nil || n != len(in) {
			t.Fatalf("%d %v", n, err)
		}
	})
	t.Run("big nonsync cut after the header", func(t *testing.T) {
		g := newGuard()
		hdr := "a APPEND INBOX {5000+}\r\n"
		n, err := g.received([]byte(hdr + "b DELETE x\r\n"))
		if err == nil || n != len(hdr) {
			t.Fatalf("%d %v", n, err)
		}
		if n, err := g.received([]byte("more")); err == nil || n != 0 {
			t.Fatalf("after trip: %d %v", n, err)
		}
	})
	t.Run("header split across reads", func(t *testing.T) {
		g := newGuard()
		if _, err := g.received([]byte("a APPEND INBOX {50")); err != nil {
			t.Fatal(err)
		}
		if n, err := g.received([]byte("00+}\r\nxx")); err == nil || n != 6 {
			t.Fatalf("%d %v", n, err)
		}
	})
	t.Run("sync literal accepted then skipped", func(t *testing.T) {
		g := newGuard()
		mustRecv(t, g, "a CREATE {8}\r\n")
		g.sent([]byte("+ Ready for literal data\r\n"))
		mustRecv(t, g, "{99999+}\r\n") // literal data, not a header
		mustRecv(t, g, "b NOOP\r\n")
	})
	t.Run("sync literal refused", func(t *testing.T) {
		g := newGuard()
		mustRecv(t, g, "a APPEND INBOX {99999999}\r\n")
		g.sent([]byte("a NO [TOOBIG] too big\r\n"))
		// What follows is a command line again, and is checked.
		if _, err := g.received([]byte("b LOGIN {5000+}\r\n")); err == nil {
			t.Fatal("oversized literal after a refused one not caught")
		}
	})
	t.Run("ingress detection", func(t *testing.T) {
		g := newGuard()
		// Through io.TeeReader the guard sees received data.
		r := io.TeeReader(strings.NewReader("a LOGIN {5000+}\r\nb DELETE x\r\n"), g)
		buf := make([]byte, 100)
		n, err := r.Read(buf)
		if err == nil || string(buf[:n]) != "a LOGIN {5000+}\r\n" {
			t.Fatalf("TeeReader read %q, %v", buf[:n], err)
		}
		// Through io.MultiWriter it sees sent data and never fails.
		g2 := newGuard()
		if _, err := io.MultiWriter(io.Discard, g2).Write([]byte("* 1 FETCH (BODY[] {5000+}\r\n")); err != nil {
			t.Fatal(err)
		}
		mustRecv(t, g2, "b NOOP\r\n")
	})
}

func mustRecv(t *testing.T, g *guard, s string) {
	t.Helper()
	if n, err := g.received([]byte(s)); err != nil || n != len(s) {
		t.Fatalf("received %q: %d %v", s, n, err)
	}
}

// TestLibLogger_countsPanics: the library reports the panics it recovers
// through its logger ("panic handling command: ...", "panic idling: ...");
// Panics counts them and nothing else.
func TestLibLogger_countsPanics(t *testing.T) {
	s := &Server{}
	l := &libLogger{srv: s, log: slog.New(slog.DiscardHandler)}
	l.Printf("panic handling command: %v\n%s", "boom", "stack")
	l.Printf("panic idling: %v\n%s", "boom", "stack")
	l.Printf("failed to read command: %v", "EOF")
	l.Printf("handling %v command: %v", "LIST", "oops")
	if n := s.Panics(); n != 2 {
		t.Fatalf("Panics() = %d, want 2", n)
	}
}

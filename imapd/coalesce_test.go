package imapd

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// TestCoalescingConn checks when buffered output reaches the peer: not at
// Write, but before the next Read, at once while a Read waits (IDLE
// updates), when the buffer fills, and at Close.
func TestCoalescingConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := newCoalescingConn(raw)

	// expect reads exactly want from the peer, or fails after a while.
	expect := func(want string) {
		t.Helper()
		_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, len(want))
		if _, err := io.ReadFull(peer, got); err != nil || string(got) != want {
			t.Fatalf("peer read %q, %v; want %q", got, err, want)
		}
	}
	// nothing checks that the peer has nothing to read yet.
	nothing := func() {
		t.Helper()
		_ = peer.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		var b [1]byte
		if n, err := peer.Read(b[:]); n != 0 || err == nil {
			t.Fatalf("peer got %q early", b[:n])
		}
	}

	c.Write([]byte("* 1 FETCH (UID 1)\r\n"))
	c.Write([]byte("* 2 FETCH (UID 2)\r\n"))
	c.Write([]byte("a OK done\r\n"))
	nothing()

	// A Read sends what waits first.
	readDone := make(chan string)
	go func() {
		b := make([]byte, 64)
		n, _ := c.Read(b)
		readDone <- string(b[:n])
	}()
	expect("* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 2)\r\na OK done\r\n")

	// While the Read waits, output is unsolicited and goes at once.
	time.Sleep(20 * time.Millisecond)
	c.Write([]byte("* 3 EXISTS\r\n"))
	expect("* 3 EXISTS\r\n")
	peer.Write([]byte("DONE\r\n"))
	if got := <-readDone; got != "DONE\r\n" {
		t.Fatalf("read %q", got)
	}

	// A full buffer goes out without a Read, in order.
	line := bytes.Repeat([]byte("x"), 1000)
	var want []byte
	for len(want) <= coalesceMax {
		c.Write(line)
		want = append(want, line...)
	}
	expect(string(want[:coalesceMax]))

	// Close sends the rest.
	c.Write([]byte("* BYE\r\n"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	rest := string(want[coalesceMax:]) + "* BYE\r\n"
	expect(rest)
	if _, err := c.Write([]byte("late")); err == nil {
		t.Error("write after close succeeded")
	}
}

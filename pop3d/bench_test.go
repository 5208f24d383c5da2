package pop3d

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkRETR measures RETR throughput over loopback: each iteration
// retrieves 100 messages of 50 KB (with some dot-stuffed lines) in one
// session. Bytes/op is the message data.
func BenchmarkRETR(b *testing.B) {
	e := newTestEnv(b, nil)
	var msg strings.Builder
	msg.WriteString("From: bench@example.org\r\nSubject: bench\r\n\r\n")
	for i := 0; msg.Len() < 50<<10; i++ {
		if i%10 == 0 {
			msg.WriteString(".a line that needs stuffing\r\n")
		}
		fmt.Fprintf(&msg, "line %05d of the benchmark message body, some filler text here.\r\n", i)
	}
	const n = 100
	for range n {
		e.appendMsg(b, msg.String())
	}
	c := e.dial(b)
	c.login()
	b.SetBytes(int64(n * msg.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := 1; i <= n; i++ {
			if l := c.cmd(fmt.Sprintf("RETR %d", i)); !strings.HasPrefix(l, "+OK") {
				b.Fatalf("RETR %d: %q", i, l)
			}
			for {
				l, err := c.r.ReadSlice('\n')
				if err != nil {
					b.Fatal(err)
				}
				if bytes.Equal(l, []byte(".\r\n")) {
					break
				}
			}
		}
	}
}

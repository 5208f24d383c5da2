package proxyproto

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse checks that parse never panics, never claims more bytes than
// it was given or than a header may have, that a complete header parses
// the same with any payload after it, and that every prefix of it is
// reported incomplete rather than wrong.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 192.0.2.1 198.51.100.2 56324 993\r\n",
		"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\nhello",
		"PROXY UNKNOWN\r\n",
		string(v2(0x21, 0x11, inet4Body("192.0.2.1", "192.0.2.2", 40000, 995))),
		string(v2(0x21, 0x21, inet6Body("2001:db8::1", "2001:db8::2", 1, 2))) + "x",
		string(v2(0x20, 0x00, nil)),
		string(v2(0x21, 0x31, make([]byte, 216))),
		"a001 CAPABILITY\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		h, n, err := parse(b)
		if !bytes.Equal(in, b) {
			t.Fatal("parse modified its input")
		}
		if err != nil {
			if n != 0 {
				t.Fatalf("error %v with length %d", err, n)
			}
			return
		}
		if n <= 0 || n > len(b) || n > maxHeader {
			t.Fatalf("length %d for %d input bytes", n, len(b))
		}
		if h.Version == 1 && n > maxV1 {
			t.Fatalf("v1 header of %d bytes", n)
		}
		// The header alone parses the same: parse read nothing past it.
		h2, n2, err := parse(b[:n])
		if err != nil || h2 != h || n2 != n {
			t.Fatalf("header alone: %+v %d %v; with payload: %+v %d", h2, n2, err, h, n)
		}
		// Every proper prefix is incomplete, so the listener keeps reading.
		for i := 1; i < n; i++ {
			if _, _, err := parse(b[:i]); !errors.Is(err, errIncomplete) {
				t.Fatalf("prefix of %d/%d bytes: %v", i, n, err)
			}
		}
	})
}

package pop3d

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func dotStuff(t testing.TB, chunks ...string) string {
	t.Helper()
	var out bytes.Buffer
	bw := bufio.NewWriterSize(&out, 16)
	dw := newDotWriter(bw)
	for _, c := range chunks {
		if n, err := dw.Write([]byte(c)); err != nil || n != len(c) {
			t.Fatalf("Write(%q) = %d, %v", c, n, err)
		}
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestDotWriter(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   string
	}{
		{"empty", nil, ".\r\n"},
		{"plain", []string{"a\r\nb\r\n"}, "a\r\nb\r\n.\r\n"},
		{"no final newline", []string{"a\r\nb"}, "a\r\nb\r\n.\r\n"},
		{"final bare CR", []string{"a\r"}, "a\r\n.\r\n"},
		{"leading dot", []string{".hidden\r\n..two\r\n.\r\n"}, "..hidden\r\n...two\r\n..\r\n.\r\n"},
		{"dot mid line", []string{"a.b\r\n"}, "a.b\r\n.\r\n"},
		{"bare LF", []string{"a\nb\n"}, "a\r\nb\r\n.\r\n"},
		{"CR split from LF", []string{"a\r", "\n.b\r\n"}, "a\r\n..b\r\n.\r\n"},
		{"dot at chunk start", []string{"a\r\n", ".", "b\r\n"}, "a\r\n..b\r\n.\r\n"},
		{"dot after chunk mid line", []string{"a", ".b\r\n"}, "a.b\r\n.\r\n"},
		{"only dot", []string{"."}, "..\r\n.\r\n"},
		{"bare CR mid line", []string{"a\rb\r\n"}, "a\rb\r\n.\r\n"},
		{"empty lines", []string{"\r\n\n\r\n"}, "\r\n\r\n\r\n.\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dotStuff(t, tt.chunks...); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// unstuff reverses a multi-line response body: it checks the terminator,
// strips it and removes one leading dot from each line.
func unstuff(t testing.TB, s string) string {
	t.Helper()
	if !strings.HasSuffix(s, ".\r\n") || !(len(s) == 3 || strings.HasSuffix(s, "\r\n.\r\n")) {
		t.Fatalf("bad terminator: %q", s)
	}
	body := s[:len(s)-3]
	var out strings.Builder
	for _, line := range strings.SplitAfter(body, "\r\n") {
		if line == "" {
			continue
		}
		if line == ".\r\n" {
			t.Fatalf("unstuffed terminator inside body: %q", s)
		}
		out.WriteString(strings.TrimPrefix(line, "."))
	}
	return out.String()
}

// normalize is what the client should see: CRLF line ends (bare LF becomes
// CRLF) and a final CRLF.
func normalize(s string) string {
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' && (i == 0 || s[i-1] != '\r') {
			out.WriteByte('\r')
		}
		out.WriteByte(s[i])
	}
	r := out.String()
	if r != "" && !strings.HasSuffix(r, "\r\n") {
		if strings.HasSuffix(r, "\r") {
			r += "\n"
		} else {
			r += "\r\n"
		}
	}
	return r
}

func FuzzDotWriter(f *testing.F) {
	f.Add("a\r\n.b\r\n", uint8(3))
	f.Add(".\r\n", uint8(1))
	f.Add("x\ny\r\n\r\n.", uint8(2))
	f.Add("a\r", uint8(1))
	f.Fuzz(func(t *testing.T, msg string, split uint8) {
		var chunks []string
		step := int(split%16) + 1
		for i := 0; i < len(msg); i += step {
			chunks = append(chunks, msg[i:min(i+step, len(msg))])
		}
		got := dotStuff(t, chunks...)
		if want := normalize(msg); unstuff(t, got) != want {
			t.Fatalf("round trip of %q: got %q, want %q", msg, unstuff(t, got), want)
		}
	})
}

func TestCopyTop(t *testing.T) {
	msg := "From: a\r\nSubject: s\r\n\r\nl1\r\nl2\r\nl3\r\n"
	tests := []struct {
		name  string
		msg   string
		lines int
		want  string
	}{
		{"zero lines", msg, 0, "From: a\r\nSubject: s\r\n\r\n"},
		{"two lines", msg, 2, "From: a\r\nSubject: s\r\n\r\nl1\r\nl2\r\n"},
		{"more than body", msg, 10, msg},
		{"header only", "From: a\r\nSubject: s\r\n", 5, "From: a\r\nSubject: s\r\n"},
		{"LF message", "From: a\n\nb1\nb2\n", 1, "From: a\n\nb1\n"},
		{"no final newline", "From: a\r\n\r\nbody", 3, "From: a\r\n\r\nbody"},
		{"empty body line", "H: v\r\n\r\n\r\nx\r\n", 1, "H: v\r\n\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			// A tiny buffer splits lines into fragments.
			br := bufio.NewReaderSize(strings.NewReader(tt.msg), 16)
			if err := copyTop(&out, br, tt.lines); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Fatalf("got %q, want %q", out.String(), tt.want)
			}
		})
	}
	t.Run("long lines", func(t *testing.T) {
		long := strings.Repeat("x", 100)
		m := "H: " + long + "\r\n\r\n" + long + "\r\n" + long + "\r\n"
		var out bytes.Buffer
		if err := copyTop(&out, bufio.NewReaderSize(strings.NewReader(m), 16), 1); err != nil {
			t.Fatal(err)
		}
		if want := "H: " + long + "\r\n\r\n" + long + "\r\n"; out.String() != want {
			t.Fatalf("got %q, want %q", out.String(), want)
		}
	})
}

package store

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

var crlfTests = []struct{ name, in, want string }{
	{"empty", "", ""},
	{"no newline", "abc", "abc"},
	{"lf", "a\nb\n", "a\r\nb\r\n"},
	{"crlf untouched", "a\r\nb\r\n", "a\r\nb\r\n"},
	{"lone cr", "a\rb\r", "a\rb\r"},
	{"cr cr lf", "a\r\r\n", "a\r\r\n"},
	{"lf lf", "\n\n", "\r\n\r\n"},
	{"cr then lf lf", "\r\n\n", "\r\n\r\n"},
	{"lf cr", "\n\r", "\r\n\r"},
	{"mixed", "h: v\n\r\nbody\rx\n", "h: v\r\n\r\nbody\rx\r\n"},
}

func TestCRLF_reader(t *testing.T) {
	for _, tt := range crlfTests {
		t.Run(tt.name, func(t *testing.T) {
			readers := map[string]func() io.Reader{
				"plain":   func() io.Reader { return strings.NewReader(tt.in) },
				"onebyte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(tt.in)) },
				"half":    func() io.Reader { return iotest.HalfReader(strings.NewReader(tt.in)) },
				"dataerr": func() io.Reader { return iotest.DataErrReader(strings.NewReader(tt.in)) },
			}
			for rn, mk := range readers {
				got, err := io.ReadAll(newCRLFReader(mk()))
				if err != nil || string(got) != tt.want {
					t.Fatalf("%s: got %q, %v; want %q", rn, got, err, tt.want)
				}
				// Tiny destination buffers split CRLF pairs across Reads.
				for _, n := range []int{1, 2, 3} {
					got, err := readAllWith(newCRLFReader(mk()), n)
					if err != nil || string(got) != tt.want {
						t.Fatalf("%s, %d-byte reads: got %q, %v; want %q", rn, n, got, err, tt.want)
					}
				}
				size, err := crlfSize(mk())
				if err != nil || size != int64(len(tt.want)) {
					t.Fatalf("%s: crlfSize = %d, %v; want %d", rn, size, err, len(tt.want))
				}
			}
		})
	}
}

func readAllWith(r io.Reader, n int) ([]byte, error) {
	var out []byte
	buf := make([]byte, n)
	for {
		m, err := r.Read(buf)
		out = append(out, buf[:m]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func TestCRLF_readerError(t *testing.T) {
	boom := io.ErrClosedPipe
	r := newCRLFReader(io.MultiReader(strings.NewReader("a\n"), iotest.ErrReader(boom)))
	got, err := io.ReadAll(r)
	if err != boom || string(got) != "a\r\n" {
		t.Fatalf("got %q, %v; want %q, %v", got, err, "a\r\n", boom)
	}
	if _, err := crlfSize(io.MultiReader(strings.NewReader("a\n"), iotest.ErrReader(boom))); err != boom {
		t.Fatalf("crlfSize error = %v, want %v", err, boom)
	}
}

func TestCRLF_large(t *testing.T) {
	// Larger than the internal buffer, with a CR at every buffer edge.
	var in, want bytes.Buffer
	for i := 0; i < 20000; i++ {
		line := strings.Repeat("x", i%97)
		if i%3 == 0 {
			in.WriteString(line + "\r\n")
		} else {
			in.WriteString(line + "\n")
		}
		want.WriteString(line + "\r\n")
	}
	got, err := io.ReadAll(newCRLFReader(bytes.NewReader(in.Bytes())))
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("large conversion differs (err %v, %d vs %d bytes)", err, len(got), want.Len())
	}
	size, err := crlfSize(iotest.HalfReader(bytes.NewReader(in.Bytes())))
	if err != nil || size != int64(want.Len()) {
		t.Fatalf("crlfSize = %d, %v; want %d", size, err, want.Len())
	}
}

func TestCRLF_parseSizesFromKey(t *testing.T) {
	tests := []struct {
		key  string
		s, w int64
		ok   bool
	}{
		{"1700000000.M1P2.host,S=1234,W=1260", 1234, 1260, true},
		{"1700000000.M1P2.host,S=1234,W=1260:2,S", 1234, 1260, true},
		{"1700000000.M1P2.host,W=1260,S=1234:2,", 1234, 1260, true},
		{"1700000000.M1P2.host,S=0:2,", 0, -1, true},
		{"1700000000.M1P2.host,W=7", -1, 7, true},
		{"1700000000.M1P2.host", -1, -1, false},
		{"1700000000.M1P2.host:2,S", -1, -1, false},
		{"1700000000.M1P2.host:2,S=5", -1, -1, false}, // after ':' does not count
		{"1700000000.M1P2.host,S=,W=x", -1, -1, false},
		{"1700000000.M1P2.host,S=-5,W=+6", -1, -1, false},
		{"1700000000.M1P2.host,S=99999999999999999999", -1, -1, false},
		{"1700000000.M1P2.host,S=1,S=2", 1, -1, true},
		{"1700000000.M1P2.host,s=1,w=2", -1, -1, false},
		{"S=1,W=2", -1, 2, true}, // the base name is not a field
		{"", -1, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			s, w, ok := parseSizesFromKey(tt.key)
			if s != tt.s || w != tt.w || ok != tt.ok {
				t.Fatalf("parseSizesFromKey(%q) = %d, %d, %v; want %d, %d, %v", tt.key, s, w, ok, tt.s, tt.w, tt.ok)
			}
		})
	}
}

func FuzzCRLF(f *testing.F) {
	for _, tt := range crlfTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := readAllWith(newCRLFReader(iotest.HalfReader(bytes.NewReader(in))), 3)
		if err != nil {
			t.Fatal(err)
		}
		// Reference: replace every LF not preceded by CR.
		var want []byte
		for i, c := range in {
			if c == '\n' && (i == 0 || in[i-1] != '\r') {
				want = append(want, '\r')
			}
			want = append(want, c)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("newCRLFReader(%q) = %q, want %q", in, got, want)
		}
		size, err := crlfSize(iotest.OneByteReader(bytes.NewReader(in)))
		if err != nil || size != int64(len(want)) {
			t.Fatalf("crlfSize(%q) = %d, %v; want %d", in, size, err, len(want))
		}
		parseSizesFromKey(string(in))
	})
}

func BenchmarkCRLFReader(b *testing.B) {
	var in bytes.Buffer
	for in.Len() < 4<<20 {
		in.WriteString("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor\n")
	}
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(in.Len()))
	b.ReportAllocs()
	for b.Loop() {
		r := newCRLFReader(bytes.NewReader(in.Bytes()))
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCRLFSize(b *testing.B) {
	var in bytes.Buffer
	for in.Len() < 4<<20 {
		in.WriteString("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor\n")
	}
	b.SetBytes(int64(in.Len()))
	for b.Loop() {
		if _, err := crlfSize(bytes.NewReader(in.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}

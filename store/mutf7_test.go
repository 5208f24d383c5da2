package store

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMUTF7_encode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"INBOX", "INBOX"},
		{"Entwürfe", "Entw&APw-rfe"},
		{"&", "&-"},
		{"A&B", "A&-B"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"}, // RFC 3501 §5.1.3 example
		{"😀", "&2D3eAA-"},
		{"a😀€b", "a&2D3eACCs-b"}, {"a😀b€", "a&2D3eAA-b&IKw-"},
		{"\x00", "&AAA-"},
		{"\t", "&AAk-"},
		{"é&é", "&AOk-&-&AOk-"},
		{"ÄÖÜ", "&AMQA1gDc-"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := encodeMUTF7(tt.in); got != tt.want {
				t.Fatalf("encodeMUTF7(%q) = %q, want %q", tt.in, got, tt.want)
			}
			got, err := decodeMUTF7(tt.want)
			if err != nil || got != tt.in {
				t.Fatalf("decodeMUTF7(%q) = %q, %v; want %q", tt.want, got, err, tt.in)
			}
		})
	}
}

func TestMUTF7_decodeInvalid(t *testing.T) {
	tests := []struct{ name, in string }{
		{"unterminated", "Entw&APw"},
		{"unterminated empty", "&"},
		{"bad base64 char", "&AP*-"},
		{"standard base64 slash", "&U/BTFw-"},
		{"padding", "&APw=-"},
		{"ascii in base64", "&AGE-"},     // "a"
		{"ampersand in base64", "&ACY-"}, // "&"
		{"non-zero pad bits", "&APx-"},   // ü with junk low bits
		{"too few bits", "&AP-"},         // 12 bits
		{"extra char", "&APwA-"},         // 24 bits: 16 + 8 extra
		{"lone high surrogate", "&2D0-"}, // U+D83D
		{"lone low surrogate", "&3gA-"},  // U+DE00
		{"high then bmp", "&2D0AYQ-"},    // U+D83D 'a'
		{"high at end then ascii", "&2D0-a"},
		{"split surrogate pair", "&2D0-&3gA-"},
		{"adjacent sections", "&AOQ-&APY-"},
		{"raw 8bit", "Entw\xc3\xbcrfe"},
		{"raw control", "a\tb"},
		{"raw DEL", "a\x7fb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := decodeMUTF7(tt.in); err == nil {
				t.Fatalf("decodeMUTF7(%q) = %q, want error", tt.in, got)
			}
		})
	}
}

func FuzzMUTF7(f *testing.F) {
	for _, s := range []string{"", "INBOX", "Entwürfe", "&", "&-", "&APw-", "😀", "a&b", "&2D3eAA-", "\x00", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := decodeMUTF7(s); err == nil {
			if !utf8.ValidString(d) {
				t.Fatalf("decodeMUTF7(%q) = %q: not UTF-8", s, d)
			}
			// Only canonical input decodes, so encoding gives it back.
			if e := encodeMUTF7(d); e != s {
				t.Fatalf("encodeMUTF7(decodeMUTF7(%q)) = %q", s, e)
			}
		}
		if !utf8.ValidString(s) {
			return
		}
		e := encodeMUTF7(s)
		for i := 0; i < len(e); i++ {
			if e[i] < 0x20 || e[i] > 0x7e {
				t.Fatalf("encodeMUTF7(%q) = %q: not printable ASCII", s, e)
			}
		}
		d, err := decodeMUTF7(e)
		if err != nil || d != s {
			t.Fatalf("decodeMUTF7(encodeMUTF7(%q)) = %q, %v", s, d, err)
		}
		if strings.Contains(s, "&") != strings.Contains(e, "&-") && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
			t.Fatalf("encodeMUTF7(%q) = %q: '&' not escaped", s, e)
		}
	})
}

package imapd

import (
	"strings"
	"testing"
	"time"
)

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		ref, pattern, name string
		want               bool
	}{
		{"", "*", "INBOX", true},
		{"", "*", "a.b.c", true},
		{"", "%", "a", true},
		{"", "%", "a.b", false},
		{"", "a.%", "a.b", true},
		{"", "a.%", "a.b.c", false},
		{"", "a.*", "a.b.c", true},
		{"", "a*", "a", true},
		{"", "a*", "ab.c", true},
		{"", "a%", "ab.c", false},
		{"", "%.%", "a.b", true},
		{"", "*b", "a.b", true},
		{"", "inbox", "INBOX", true},
		{"", "Inbox.%", "INBOX.x", true},
		{"", "inboxes", "INBOXES", false},
		{"", "x", "X", false},
		{"a", "%", "a.b", true},
		{"a.", "%", "a.b", true},
		{"a", ".b", "b", true}, // a pattern starting with the delimiter ignores the reference
		{"", "**%%", "a.b", true},
		{"", "%%", "a.b", false},
		{"", "日本*", "日本語", true},
		{"", "", "", true},
	}
	for _, tc := range tests {
		got := matchPattern(canonicalPattern(tc.ref, tc.pattern), tc.name)
		if got != tc.want {
			t.Errorf("ref %q pattern %q name %q: %v, want %v", tc.ref, tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestMatchPattern_noBlowUp(t *testing.T) {
	p := canonicalPattern("", strings.Repeat("*a%", 85)+"b")
	name := strings.Repeat("a", 250)
	start := time.Now()
	for range 10 {
		if matchPattern(p, name) {
			t.Fatal("matched")
		}
	}
	// A backtracking matcher would take longer than the universe's age;
	// the bound only needs to tell the two apart, even under -race.
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("10 pathological matches took %v", d)
	}
}

func FuzzMatchPattern(f *testing.F) {
	f.Add("a.*", "a.b.c")
	f.Add("%.%", "a.b")
	f.Add("*%x", "yyyx")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 64 || len(name) > 64 {
			return
		}
		got := matchPattern(pattern, name)
		if want := matchNaive(pattern, name); got != want {
			t.Fatalf("pattern %q name %q: %v, naive %v", pattern, name, got, want)
		}
	})
}

// matchNaive is the obvious backtracking matcher, as an oracle.
func matchNaive(p, n string) bool {
	if p == "" {
		return n == ""
	}
	switch p[0] {
	case '*':
		for i := 0; i <= len(n); i++ {
			if matchNaive(p[1:], n[i:]) {
				return true
			}
		}
		return false
	case '%':
		for i := 0; i <= len(n); i++ {
			if i > 0 && n[i-1] == delim {
				break
			}
			if matchNaive(p[1:], n[i:]) {
				return true
			}
		}
		return false
	}
	return n != "" && n[0] == p[0] && matchNaive(p[1:], n[1:])
}

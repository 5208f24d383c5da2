package pop3d

import (
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line    string
		name    string
		rest    string
		wantErr bool
	}{
		{line: "STAT", name: "STAT"},
		{line: "stat", name: "STAT"},
		{line: "StAt ", name: "STAT"},
		{line: "TOP 1 10", name: "TOP", rest: "1 10"},
		{line: "PASS secret with spaces ", name: "PASS", rest: "secret with spaces "},
		{line: "PASS tab\there", name: "PASS", rest: "tab\there"},
		{line: "USER alice@example.org", name: "USER", rest: "alice@example.org"},
		{line: "AUTH PLAIN AGFsaWNlAHNlY3JldA==", name: "AUTH", rest: "PLAIN AGFsaWNlAHNlY3JldA=="},
		{line: "XYZZ", name: "XYZZ"},
		{line: "", wantErr: true},
		{line: " STAT", wantErr: true},
		{line: "ST", wantErr: true},
		{line: "STATS", wantErr: true},
		{line: "ST4T", wantErr: true},
		{line: "RETR\x001", wantErr: true},
		{line: "RETR 1\x00", wantErr: true},
		{line: "RETR 1\x7f", wantErr: true},
		{line: "\xff\xfe\xfd", wantErr: true},
		{line: "LIST\t1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			cmd, err := parseCommand(tt.line)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseCommand(%q) = %+v, want error", tt.line, cmd)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseCommand(%q): %v", tt.line, err)
			}
			if cmd.name != tt.name || cmd.rest != tt.rest {
				t.Fatalf("parseCommand(%q) = %q %q, want %q %q", tt.line, cmd.name, cmd.rest, tt.name, tt.rest)
			}
		})
	}
}

func TestCommandArgs(t *testing.T) {
	tests := []struct {
		rest    string
		want    []string
		wantErr bool
	}{
		{rest: "", want: nil},
		{rest: "1", want: []string{"1"}},
		{rest: "1 2", want: []string{"1", "2"}},
		{rest: "1  2", wantErr: true},
		{rest: "1 ", wantErr: true},
		{rest: " 1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.rest, func(t *testing.T) {
			got, err := command{name: "LIST", rest: tt.rest}.args()
			if (err != nil) != tt.wantErr {
				t.Fatalf("args(%q) error = %v, wantErr %v", tt.rest, err, tt.wantErr)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Fatalf("args(%q) = %q, want %q", tt.rest, got, tt.want)
			}
		})
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"1", 1, true},
		{"0", 0, true},
		{"007", 7, true},
		{"4294967295", 4294967295 & (1<<31 - 1), false},
		{"2147483647", 2147483647, true},
		{"2147483648", 0, false},
		{"99999999999999999999", 0, false},
		{"", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1a", 0, false},
		{" 1", 0, false},
		{strings.Repeat("0", 41), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseNumber(tt.in)
			if ok != tt.ok || ok && got != tt.want {
				t.Fatalf("parseNumber(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestLooksForeign(t *testing.T) {
	for _, l := range []string{"GET / HTTP/1.1", "POST /x HTTP/1.0", "EHLO example.org", "helo x", "MAIL FROM:<a@b>"} {
		if !looksForeign(l) {
			t.Errorf("looksForeign(%q) = false", l)
		}
	}
	for _, l := range []string{"USER get", "CAPA", "QUIT", "AUTH PLAIN"} {
		if looksForeign(l) {
			t.Errorf("looksForeign(%q) = true", l)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"STAT", "LIST 1", "TOP 1 0", "PASS a b c", "USER alice", "AUTH PLAIN =", "uidl", "", " ", "RETR \x00", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := parseCommand(line)
		if err != nil {
			return
		}
		// Invariants: the keyword is 3-4 upper-case letters, and keyword
		// plus rest reproduce the line (modulo case and a trailing space).
		if n := len(cmd.name); n < 3 || n > 4 || strings.ToUpper(cmd.name) != cmd.name {
			t.Fatalf("bad keyword %q from %q", cmd.name, line)
		}
		rebuilt := cmd.name
		if cmd.rest != "" {
			rebuilt += " " + cmd.rest
		}
		if !strings.EqualFold(rebuilt, strings.TrimSuffix(line, " ")) && !strings.EqualFold(rebuilt, line) {
			t.Fatalf("round trip: %q -> %q", line, rebuilt)
		}
		if strings.ContainsAny(cmd.rest, "\r\n\x00") {
			t.Fatalf("control characters in rest %q", cmd.rest)
		}
		args, err := cmd.args()
		if err == nil && strings.Join(args, " ") != cmd.rest {
			t.Fatalf("args %q do not rebuild %q", args, cmd.rest)
		}
		for _, a := range args {
			if n, ok := parseNumber(a); ok && n < 0 {
				t.Fatalf("negative number from %q", a)
			}
		}
	})
}

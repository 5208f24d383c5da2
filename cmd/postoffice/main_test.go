package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

// newTestCLI returns an in-process CLI whose terminal "types" the given
// passwords in turn.
func newTestCLI(typed ...string) (*cli, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	c := &cli{
		stdin: strings.NewReader(""), stdout: &out, stderr: &errOut,
		lookupEnv: func(k string) (string, bool) {
			switch k {
			case "POSTOFFICE_ARGON2_MEMORY":
				return "8", true
			case "POSTOFFICE_ARGON2_TIME":
				return "1", true
			}
			return "", false
		},
		tty: true,
		readPassword: func() ([]byte, error) {
			if len(typed) == 0 {
				return nil, errors.New("EOF")
			}
			p := typed[0]
			typed = typed[1:]
			return []byte(p), nil
		},
	}
	return c, &out, &errOut
}

func TestUserAdd_prompt(t *testing.T) {
	data := t.TempDir()
	ctx := context.Background()
	tests := []struct {
		name     string
		typed    []string
		wantCode int
		wantErr  string
	}{
		{"mismatch", []string{"one", "two"}, exitError, "passwords do not match"},
		{"empty", []string{""}, exitError, "empty password"},
		{"terminal closed", nil, exitError, "read password"},
		{"match", []string{"pw", "pw"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, out, errOut := newTestCLI(tt.typed...)
			code := c.main(ctx, []string{"--data", data, "user", "add", "alice"})
			if code != tt.wantCode || !strings.Contains(errOut.String(), tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tt.wantCode, tt.wantErr)
			}
			if !strings.Contains(errOut.String(), "New password: ") {
				t.Errorf("no prompt: %q", errOut)
			}
			if code == 0 && !strings.Contains(out.String(), "created user alice") {
				t.Errorf("stdout %q", out)
			}
		})
	}
	c, _, errOut := newTestCLI("a", "a")
	if code := c.main(ctx, []string{"--data", data, "user", "passwd", "alice"}); code != 0 {
		t.Errorf("passwd: exit %d: %s", code, errOut)
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, tt := range []struct {
		args []string
		pos  string
		b    bool
	}{
		{[]string{"a", "--b", "c"}, "a c", true},
		{[]string{"--b", "a"}, "a", true},
		{[]string{"a", "--", "--b"}, "a --b", false},
		{[]string{"-b=false", "x", "y"}, "x y", false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		b := fs.Bool("b", false, "")
		pos, err := parseInterspersed(fs, tt.args)
		if err != nil || strings.Join(pos, " ") != tt.pos || *b != tt.b {
			t.Errorf("parseInterspersed(%q) = %q, b=%v, %v", tt.args, pos, *b, err)
		}
	}
}

func TestProgress(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, true, 4)
	p.update(0, "alice/INBOX")
	p.update(2, "a/Sent")
	p.clear()
	p.update(4, "")
	p.done()
	got := b.String()
	for _, want := range []string{
		"\r[..............................] 0/4 alice/INBOX",
		"\r[###############...............] 2/4 a/Sent     ", // padded over the longer line
		"\r[##############################] 4/4 \n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("progress output %q lacks %q", got, want)
		}
	}
	b.Reset()
	p = newProgress(&b, false, 4)
	p.update(1, "x")
	p.done()
	if b.Len() != 0 {
		t.Errorf("progress wrote %q without a terminal", b.String())
	}
}

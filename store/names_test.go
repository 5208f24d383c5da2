package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestName_validate(t *testing.T) {
	tests := []struct{ in, want string }{
		{"INBOX", "INBOX"},
		{"inbox", "INBOX"},
		{"InBoX", "INBOX"},
		{"inbox.Sub", "INBOX.Sub"},
		{"INBOX.inbox", "INBOX.inbox"},
		{"Sent", "Sent"},
		{"Archive.2024", "Archive.2024"},
		{"Entwürfe", "Entwürfe"},
		{"cur", "cur"},
		{"new.tmp", "new.tmp"},
		{"a b", "a b"},
		{" lead", " lead"},
		{"&", "&"},
		{"x~", "x~"},
		{"a.~b", "a.~b"},
		{"😀.日本語", "😀.日本語"},
		{"Inboxes", "Inboxes"},
		{strings.Repeat("a", 254), strings.Repeat("a", 254)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := validateName(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("validateName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestName_validateHostile(t *testing.T) {
	tests := []string{
		"",
		".",
		"..",
		"../x",
		"a/../../b",
		"/etc/passwd",
		"..\\x",
		"a..b",
		".a",
		"a.",
		"a.b.",
		"a\x00b",
		"a\r\nb",
		"a\tb",
		"a\x7fb",
		"a\u0085b",
		"a*",
		"~x",
		"~",
		"a%",
		"\xff\xfe",
		"a\xc3",
		"a\uFFFDb",
		strings.Repeat("a", 255),        // ".aaa…" is 256 bytes
		strings.Repeat("ü", 100),        // 100 UTF-16 units: 268 bytes of mUTF-7
		strings.Repeat("a.", 500) + "a", // 1001 bytes
		strings.Repeat("x", 2000),
	}
	for _, in := range tests {
		t.Run(in, func(t *testing.T) {
			got, err := validateName(in)
			if !errors.Is(err, ErrBadMailboxName) {
				t.Fatalf("validateName(%q) = %q, %v; want ErrBadMailboxName", in, got, err)
			}
		})
	}
}

func TestName_dirName(t *testing.T) {
	tests := []struct{ name, dir string }{
		{"INBOX", ""},
		{"Sent", ".Sent"},
		{"Archive.2024", ".Archive.2024"},
		{"Entwürfe", ".Entw&APw-rfe"},
		{"Entwürfe.Alt & Neu", ".Entw&APw-rfe.Alt &- Neu"},
		{"INBOX.child", ".INBOX.child"},
		{"cur", ".cur"},
		{"😀", ".&2D3eAA-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dirName(tt.name); got != tt.dir {
				t.Fatalf("dirName(%q) = %q, want %q", tt.name, got, tt.dir)
			}
			if tt.dir == "" {
				return
			}
			got, ok := nameFromDir(tt.dir)
			if !ok || got != tt.name {
				t.Fatalf("nameFromDir(%q) = %q, %v; want %q", tt.dir, got, ok, tt.name)
			}
		})
	}
}

func TestName_nameFromDirRejects(t *testing.T) {
	tests := []string{
		"", ".", "..", "...", "cur", "new", "tmp", "dovecot-uidlist", "maildirfolder",
		"Sent",       // no leading dot
		".Sent.",     // empty level
		".a..b",      // empty level
		".INBOX",     // would be INBOX itself
		".inbox",     // would be INBOX itself
		".inbox.Sub", // not canonical: ".INBOX.Sub"
		".Entwürfe",  // raw 8-bit: not modified UTF-7
		".Entw&APw",  // unterminated
		".&AGE-",     // "a" in base64
		".a&AC8-b",   // "/" in base64
		".&AAA-",     // NUL
		".&AA0ACg-",  // CR LF
		".a*b",       // wildcard
		".a/b",
		"." + strings.Repeat("a", 255),
	}
	for _, in := range tests {
		t.Run(in, func(t *testing.T) {
			if got, ok := nameFromDir(in); ok {
				t.Fatalf("nameFromDir(%q) = %q, true; want false", in, got)
			}
		})
	}
}

func FuzzName(f *testing.F) {
	for _, s := range []string{"INBOX", "inbox.x", "Sent", "Archive.2024", "Entwürfe", "../x", "a/../../b", "/etc/passwd", "a\x00b", "a\r\nb", "&", "😀", "a..b", ".Sent"} {
		f.Add(s)
	}
	root := filepath.Join("/", "srv", "mail", "u", "Maildir")
	f.Fuzz(func(t *testing.T, in string) {
		if n, ok := nameFromDir(in); ok && dirName(n) != in {
			t.Fatalf("dirName(nameFromDir(%q)) = %q", in, dirName(n))
		}
		name, err := validateName(in)
		if err != nil {
			if !errors.Is(err, ErrBadMailboxName) {
				t.Fatalf("validateName(%q): %v is not ErrBadMailboxName", in, err)
			}
			return
		}
		if again, err := validateName(name); err != nil || again != name {
			t.Fatalf("validateName not idempotent on %q: %q, %v", name, again, err)
		}
		dir := dirName(name)
		p := filepath.Join(root, dir)
		if name == Inbox {
			if p != root {
				t.Fatalf("INBOX maps to %q", p)
			}
			return
		}
		if filepath.Dir(p) != root || filepath.Base(p) != dir || strings.ContainsAny(dir, "/\x00") || len(dir) > 255 {
			t.Fatalf("dirName(%q) = %q escapes or is not one path element", name, dir)
		}
		back, ok := nameFromDir(dir)
		if !ok || back != name {
			t.Fatalf("nameFromDir(dirName(%q)) = %q, %v", name, back, ok)
		}
	})
}

package config

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.DataDir != "/var/lib/postoffice" || c.MaildirTemplate != "%u/Maildir" || c.DatabaseURL != "" {
		t.Errorf("paths: %+v", c)
	}
	if c.IMAP != ":143" || c.POP3 != ":110" || c.IMAPS != "" || c.POP3S != "" || c.HTTP != "" {
		t.Errorf("listeners: %+v", c)
	}
	if c.PollInterval != 3*time.Second || c.LogLevel != slog.LevelInfo || c.LogFormat != "text" {
		t.Errorf("misc: %+v", c)
	}
	want := []SpecialFolder{{"Drafts", `\Drafts`}, {"Sent", `\Sent`}, {"Trash", `\Trash`}, {"Junk", `\Junk`}, {"Archive", `\Archive`}}
	if !reflect.DeepEqual(c.SpecialFolders, want) {
		t.Errorf("special folders %v", c.SpecialFolders)
	}
	if len(c.PlaintextAuthNets) != 0 {
		t.Errorf("plaintext nets %v", c.PlaintextAuthNets)
	}
}

func TestSet(t *testing.T) {
	tests := []struct {
		key, value string
		check      func(c Config) bool
		wantErr    string
	}{
		{"imap", "127.0.0.1:1143", func(c Config) bool { return c.IMAP == "127.0.0.1:1143" }, ""},
		{"imap", "", func(c Config) bool { return c.IMAP == "" }, ""},
		{"imaps", "[::1]:993", func(c Config) bool { return c.IMAPS == "[::1]:993" }, ""},
		{"imap", "localhost", nil, "missing port"},
		{"pop3", "x:99999", nil, "bad port"},
		{"plaintext-auth-nets", "127.0.0.0/8, ::1/128", func(c Config) bool {
			return reflect.DeepEqual(c.PlaintextAuthNets, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")})
		}, ""},
		{"plaintext-auth-nets", "10.1.2.3", func(c Config) bool {
			return reflect.DeepEqual(c.PlaintextAuthNets, []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32")})
		}, ""},
		{"plaintext-auth-nets", "10.1.2.3/8", func(c Config) bool {
			return c.PlaintextAuthNets[0] == netip.MustParsePrefix("10.0.0.0/8")
		}, ""},
		{"plaintext-auth-nets", "localnet", nil, "bad network"},
		{"log-level", "debug", func(c Config) bool { return c.LogLevel == slog.LevelDebug }, ""},
		{"log-level", "WARN", func(c Config) bool { return c.LogLevel == slog.LevelWarn }, ""},
		{"log-level", "loud", nil, "log-level"},
		{"log-format", "json", func(c Config) bool { return c.LogFormat == "json" }, ""},
		{"log-format", "xml", nil, "text or json"},
		{"poll-interval", "250ms", func(c Config) bool { return c.PollInterval == 250*time.Millisecond }, ""},
		{"poll-interval", "0s", nil, "positive"},
		{"poll-interval", "3", nil, "missing unit"},
		{"max-conns-per-ip", "0", func(c Config) bool { return c.MaxConnsPerIP == 0 }, ""},
		{"max_conns_per_user", "7", func(c Config) bool { return c.MaxConnsPerUser == 7 }, ""},
		{"max-conns-per-ip", "-1", nil, "number >= 0"},
		{"special-folders", "Sent Messages=\\Sent,Spam=\\junk, trash", func(c Config) bool {
			return reflect.DeepEqual(c.SpecialFolders, []SpecialFolder{{"Sent Messages", `\Sent`}, {"Spam", `\Junk`}, {"trash", `\Trash`}}) &&
				reflect.DeepEqual(c.SpecialFolderMap(), map[string]string{`\Sent`: "Sent Messages", `\Junk`: "Spam", `\Trash`: "trash"})
		}, ""},
		{"special-folders", "", func(c Config) bool { return c.SpecialFolders != nil && len(c.SpecialFolders) == 0 }, ""},
		{"special-folders", "Stuff", nil, "no special-use name"},
		{"special-folders", "X=\\Flagged", nil, "unknown special-use"},
		{"special-folders", "Notes=", nil, "unknown special-use"},
		{"special-folders", "INBOX=\\Sent", nil, "bad folder name"},
		{"special-folders", "Sent,Outbox=\\Sent", nil, "twice"},
		{"pop3-no-flag-updates", "true", func(c Config) bool { return c.POP3NoFlagUpdates }, ""},
		{"pop3-no-flag-updates", "maybe", nil, "true or false"},
		{"db", "postgres://u@h/db", func(c Config) bool { return c.DatabaseURL == "postgres://u@h/db" }, ""},
		{"db", "mysql://u@h/db", nil, "postgres://"},
		{"data", "", nil, "empty"},
		{"nope", "x", nil, "unknown setting"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			c := Default()
			err := c.Set(tt.key, tt.value)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Set error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	tests := []struct {
		name, file string
		check      func(c Config) bool
		wantErr    string
	}{
		{"basic", "# comment\n\n  imap = 127.0.0.1:1 \ndata=/d\n", func(c Config) bool { return c.IMAP == "127.0.0.1:1" && c.DataDir == "/d" }, ""},
		{"underscore keys", "tls_cert = /c\ntls_key=/k\n", func(c Config) bool { return c.TLSCert == "/c" && c.TLSKey == "/k" }, ""},
		{"trailing comment", "imap = :1 # plain\n", func(c Config) bool { return c.IMAP == ":1" }, ""},
		{"quoted", `maildir = "/m/%d/%n # x" # c` + "\n", func(c Config) bool { return c.MaildirTemplate == "/m/%d/%n # x" }, ""},
		{"empty switches off", "imap =\npop3 = \"\"\n", func(c Config) bool { return c.IMAP == "" && c.POP3 == "" }, ""},
		{"no equals", "imap\n", nil, "f:1: want key = value"},
		{"unknown", "\nfoo = 1\n", nil, `f:2: unknown setting "foo"`},
		{"bad value", "poll-interval = x\n", nil, "f:1: poll-interval"},
		{"duplicate", "imap = :1\nimap = :2\n", nil, "f:2: imap already set on line 1"},
		{"bad quote", "data = \"x\n", nil, "bad quoted"},
		{"text after quote", "data = \"x\" y\n", nil, "text after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			err := c.ReadFile(strings.NewReader(tt.file), "f")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

func TestLoad_priority(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "po.conf")
	os.WriteFile(file, []byte("imap = :1\npop3 = :2\nimaps = :3\nlog-level = warn\n"), 0o600)
	l := Loader{Program: "x", Output: io.Discard, LookupEnv: envMap(map[string]string{
		"POSTOFFICE_POP3":  ":20",
		"POSTOFFICE_IMAPS": "",
		"POSTOFFICE_HTTP":  "127.0.0.1:8080",
	})}
	c, rest, err := l.Load([]string{"--config", file, "--pop3", ":200", "-log-level=debug", "user", "add", "--imap", "x"})
	if err != nil {
		t.Fatal(err)
	}
	if c.IMAP != ":1" || c.POP3 != ":200" || c.IMAPS != "" || c.HTTP != "127.0.0.1:8080" || c.LogLevel != slog.LevelDebug || c.Source != file {
		t.Errorf("got %+v", c)
	}
	if want := []string{"user", "add", "--imap", "x"}; !reflect.DeepEqual(rest, want) {
		t.Errorf("rest = %q, want %q", rest, want)
	}
}

func TestLoad_defaultFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(DefaultFile(dir), []byte("maildir = /srv/%u\n"), 0o600)
	l := Loader{Output: io.Discard, LookupEnv: envMap(nil)}
	c, _, err := l.Load([]string{"--data", dir})
	if err != nil {
		t.Fatal(err)
	}
	if c.MaildirTemplate != "/srv/%u" || c.Source != DefaultFile(dir) {
		t.Errorf("default file not read: %+v", c)
	}
	// Data dir from the environment locates the file too.
	l.LookupEnv = envMap(map[string]string{"POSTOFFICE_DATA": dir})
	if c, _, err = l.Load(nil); err != nil || c.MaildirTemplate != "/srv/%u" {
		t.Errorf("env data dir: %+v, %v", c, err)
	}
	// No file: fine.
	if c, _, err = l.Load([]string{"--data", t.TempDir()}); err != nil || c.Source != "" {
		t.Errorf("no file: %+v, %v", c, err)
	}
}

func TestLoad_errors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("imap = nope\n"), 0o600)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		flags   []string
		wantErr string
	}{
		{"bad flag value", []string{"--imap", "nope"}, nil, nil, "invalid value"},
		{"unknown flag", []string{"--bogus"}, nil, nil, "not defined"},
		{"flag not offered", []string{"--imap", ":1"}, nil, []string{"data", "db"}, "not defined"},
		{"missing file", []string{"--config", filepath.Join(dir, "none")}, nil, nil, "config file"},
		{"bad file", []string{"--config", bad}, nil, nil, "bad.conf:1: imap"},
		{"bad env", nil, map[string]string{"POSTOFFICE_POLL_INTERVAL": "soon"}, nil, "POSTOFFICE_POLL_INTERVAL"},
		{"cert without key", []string{"--tls-cert", "/c"}, nil, nil, "together"},
		{"help", []string{"-h"}, nil, nil, "help requested"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := Loader{Output: io.Discard, LookupEnv: envMap(tt.env), Flags: tt.flags}
			_, _, err := l.Load(tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if _, _, err := (Loader{Output: io.Discard}).Load([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
}

func TestDatabaseURLWithPassword(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("s3cr/t\nignored\n"), 0o600)
	tests := []struct {
		url, file string
		env       map[string]string
		want      string
	}{
		{"", "", nil, ""},
		{"postgres://u@h/db", "", nil, "postgres://u@h/db"},
		{"postgres://u@h/db", "", map[string]string{"POSTOFFICE_DB_PASSWORD": "p w"}, "postgres://u:p%20w@h/db"},
		{"postgres://u@h/db", pwFile, map[string]string{"POSTOFFICE_DB_PASSWORD": "env"}, "postgres://u:s3cr%2Ft@h/db"},
		{"postgres://u:x@h/db", pwFile, nil, "postgres://u:x@h/db"},
		{"postgres://h/db", pwFile, nil, "postgres://postgres:s3cr%2Ft@h/db"},
	}
	for _, tt := range tests {
		c := Default()
		c.DatabaseURL, c.DatabasePasswordFS = tt.url, tt.file
		got, err := c.DatabaseURLWithPassword(envMap(tt.env))
		if err != nil || got != tt.want {
			t.Errorf("%s with %s/%v = %q, %v; want %q", tt.url, tt.file, tt.env, got, err, tt.want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	if got := RedactURL("postgres://u:secret@h/db"); strings.Contains(got, "secret") {
		t.Errorf("RedactURL leaks: %s", got)
	}
	c := Default()
	c.DatabaseURL = "postgres://u:secret@h/db"
	if !c.DatabaseURLHasPassword() || strings.Contains(c.RedactedDatabaseURL(), "secret") {
		t.Errorf("password not detected or not redacted: %s", c.RedactedDatabaseURL())
	}
	c.DatabaseURL = "postgres://u@h/db"
	if c.DatabaseURLHasPassword() {
		t.Error("password detected in a URL without one")
	}
	err := c.Set("db", "postgres://u:sec ret@h:x/db")
	if err == nil || strings.Contains(err.Error(), "sec ret") {
		t.Errorf("db error leaks password or is nil: %v", err)
	}
}

func TestWriteExample_roundTrip(t *testing.T) {
	var b bytes.Buffer
	if err := WriteExample(&b); err != nil {
		t.Fatal(err)
	}
	// Uncommenting every setting must give the defaults.
	var un strings.Builder
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, "# ") && strings.Contains(line, " = ") {
			if _, ok := Lookup(strings.Fields(line)[1]); ok {
				line = strings.TrimPrefix(line, "# ")
			}
		}
		un.WriteString(line + "\n")
	}
	c := Default()
	if err := c.ReadFile(strings.NewReader(un.String()), "example"); err != nil {
		t.Fatalf("%v\n%s", err, un.String())
	}
	if d := Default(); !reflect.DeepEqual(c, d) {
		t.Errorf("example file gives\n%+v\nwant\n%+v", c, d)
	}
}

// TestDocs checks that docs/config.md documents every key.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !bytes.Contains(b, []byte("| `"+k.Name+"` | `"+k.Env()+"` |")) {
			t.Errorf("docs/config.md lacks a table row for %s", k.Name)
		}
	}
}

// FuzzReadFile: no input makes the file parser panic, and whatever it
// accepts leaves a Config that Check can judge.
func FuzzReadFile(f *testing.F) {
	for _, s := range []string{
		"imap = :1\n", "# c\nmaildir = \"/m/%u # x\"\n", "special-folders = Sent,Spam=\\Junk\n",
		"plaintext-auth-nets = 127.0.0.0/8, ::1\n", "data = \"\\x00\"\n", "a\n=\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Default()
		if err := c.ReadFile(strings.NewReader(s), "fuzz"); err == nil {
			_ = c.Check()
		}
	})
}

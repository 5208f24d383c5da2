package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/postoffice/postoffice/auth"
)

// Config is the union of the daemon's and the admin CLI's settings.
type Config struct {
	DataDir            string          // data
	DatabaseURL        string          // db; empty: embedded SQLite in DataDir
	DatabasePasswordFS string          // db-password-file
	MaildirTemplate    string          // maildir
	IMAP               string          // imap; empty: off
	IMAPS              string          // imaps; empty: off
	POP3               string          // pop3; empty: off
	POP3S              string          // pop3s; empty: off
	HTTP               string          // http; empty: off
	TLSCert            string          // tls-cert; empty: self-signed in DataDir
	TLSKey             string          // tls-key
	PlaintextAuthNets  []netip.Prefix  // plaintext-auth-nets
	Hostname           string          // hostname
	LogLevel           slog.Level      // log-level
	LogFormat          string          // log-format: "text" or "json"
	PollInterval       time.Duration   // poll-interval
	ShutdownTimeout    time.Duration   // shutdown-timeout
	SpecialFolders     []SpecialFolder // special-folders
	MaxConnsPerIP      int             // max-conns-per-ip; 0: unlimited
	MaxConnsPerUser    int             // max-conns-per-user; 0: unlimited
	POP3NoFlagUpdates  bool            // pop3-no-flag-updates
	ProxyProtocolNets  []netip.Prefix  // proxy-protocol-nets
	ProxyIMAP          bool            // proxy-imap
	ProxyIMAPS         bool            // proxy-imaps
	ProxyPOP3          bool            // proxy-pop3
	ProxyPOP3S         bool            // proxy-pop3s
	Argon2Time         int             // argon2-time
	Argon2MemoryKiB    int             // argon2-memory (KiB)
	Argon2Threads      int             // argon2-threads
	AuthCacheTTL       time.Duration   // auth-cache-ttl; 0: off
	IMAPFetchCacheMB   int             // imap-fetch-cache-mb; 0: off
	ListCacheEntries   int             // list-cache-entries; 0: off

	// Source is the config file that was read; empty if none.
	Source string
}

// SpecialFolder is a folder created at a user's first login, with its
// RFC 6154 special-use attribute.
type SpecialFolder struct {
	Name string // mailbox name, e.g. "Sent"
	Use  string // `\Drafts`, `\Sent`, `\Trash`, `\Junk` or `\Archive`
}

// Key describes one setting.
type Key struct {
	Name    string // flag name and file key
	Default string // the default in the syntax of the file
	Help    string
	set     func(c *Config, v string) error
}

// Env is the environment variable that sets k.
func (k Key) Env() string {
	return "POSTOFFICE_" + strings.ToUpper(strings.ReplaceAll(k.Name, "-", "_"))
}

// specialUses are the RFC 6154 attributes special-folders may name: those
// of folders that hold messages of their own.
var specialUses = []string{`\Drafts`, `\Sent`, `\Trash`, `\Junk`, `\Archive`}

// Keys returns every setting in documentation order.
func Keys() []Key {
	return []Key{
		{"data", "/var/lib/postoffice", "data directory: embedded index, relative Maildirs, generated TLS certificate, default config file",
			func(c *Config, v string) error { c.DataDir = v; return nonEmpty(v) }},
		{"db", "", "PostgreSQL URL (postgres://user@host/db); empty: embedded SQLite index in the data directory. Put a password in db-password-file or POSTOFFICE_DB_PASSWORD, not here",
			func(c *Config, v string) error { return c.setDB(v) }},
		{"db-password-file", "", "file holding the PostgreSQL password (first line)",
			func(c *Config, v string) error { c.DatabasePasswordFS = v; return nil }},
		{"maildir", "%u/Maildir", "Maildir path template: %u user, %n local part, %d domain, %% percent; relative to the data directory",
			func(c *Config, v string) error { c.MaildirTemplate = v; return nonEmpty(v) }},
		{"imap", ":143", "IMAP listen address (STARTTLS); empty: off",
			addr(func(c *Config) *string { return &c.IMAP })},
		{"imaps", "", "IMAP over implicit TLS listen address, e.g. :993; empty: off",
			addr(func(c *Config) *string { return &c.IMAPS })},
		{"pop3", ":110", "POP3 listen address (STLS); empty: off",
			addr(func(c *Config) *string { return &c.POP3 })},
		{"pop3s", "", "POP3 over implicit TLS listen address, e.g. :995; empty: off",
			addr(func(c *Config) *string { return &c.POP3S })},
		{"http", "", "HTTP listen address for /healthz and /metrics; empty: off",
			addr(func(c *Config) *string { return &c.HTTP })},
		{"tls-cert", "", "TLS certificate chain (PEM); empty: a self-signed one is generated into the data directory",
			func(c *Config, v string) error { c.TLSCert = v; return nil }},
		{"tls-key", "", "TLS private key (PEM) for tls-cert",
			func(c *Config, v string) error { c.TLSKey = v; return nil }},
		{"plaintext-auth-nets", "", "comma-separated client networks (CIDR) allowed to log in without TLS, e.g. 127.0.0.0/8,::1/128; empty: TLS required",
			func(c *Config, v string) error { return c.setNets(v) }},
		{"hostname", "", "host name shown in greetings; empty: none shown",
			func(c *Config, v string) error { c.Hostname = v; return nil }},
		{"log-level", "info", "debug, info, warn or error",
			func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
		{"log-format", "text", "text or json",
			func(c *Config, v string) error { return c.setLogFormat(v) }},
		{"poll-interval", "3s", "how often watched mailboxes are stat-checked for deliveries inotify misses (NFS)",
			duration(func(c *Config) *time.Duration { return &c.PollInterval })},
		{"shutdown-timeout", "10s", "how long a graceful shutdown waits for sessions before closing them",
			duration(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
		{"special-folders", "Drafts,Sent,Trash,Junk,Archive", `folders created at a user's first IMAP login, comma-separated: NAME (one of Drafts, Sent, Trash, Junk, Archive) or NAME=\Use (e.g. Sent Messages=\Sent); empty: none`,
			func(c *Config, v string) error { return c.setSpecialFolders(v) }},
		{"max-conns-per-ip", "50", "concurrent connections per client address; 0: unlimited",
			count(func(c *Config) *int { return &c.MaxConnsPerIP })},
		{"max-conns-per-user", "20", "concurrent logged-in sessions per user; 0: unlimited",
			count(func(c *Config) *int { return &c.MaxConnsPerUser })},
		{"pop3-no-flag-updates", "false", `true: POP3 RETR does not mark messages \Seen (Dovecot's pop3_no_flag_updates)`,
			boolean(func(c *Config) *bool { return &c.POP3NoFlagUpdates })},
		{"proxy-protocol-nets", "", "comma-separated networks (CIDR) of load balancers allowed to send a PROXY protocol header on listeners with proxy-* on",
			func(c *Config, v string) error {
				nets, err := parseNets(v)
				c.ProxyProtocolNets = nets
				return err
			}},
		{"proxy-imap", "false", "true: the imap listener expects a PROXY protocol (v1 or v2) header from proxy-protocol-nets",
			boolean(func(c *Config) *bool { return &c.ProxyIMAP })},
		{"proxy-imaps", "false", "true: the imaps listener expects a PROXY protocol header from proxy-protocol-nets",
			boolean(func(c *Config) *bool { return &c.ProxyIMAPS })},
		{"proxy-pop3", "false", "true: the pop3 listener expects a PROXY protocol header from proxy-protocol-nets",
			boolean(func(c *Config) *bool { return &c.ProxyPOP3 })},
		{"proxy-pop3s", "false", "true: the pop3s listener expects a PROXY protocol header from proxy-protocol-nets",
			boolean(func(c *Config) *bool { return &c.ProxyPOP3S })},
		{"argon2-time", "2", "argon2id passes for new password hashes",
			positive(func(c *Config) *int { return &c.Argon2Time })},
		{"argon2-memory", "19456", "argon2id memory in KiB for new password hashes",
			positive(func(c *Config) *int { return &c.Argon2MemoryKiB })},
		{"argon2-threads", "1", "argon2id lanes for new password hashes (1-255)",
			positive(func(c *Config) *int { return &c.Argon2Threads })},
		{"auth-cache-ttl", "1h", "how long a successful login is remembered so the same password skips the slow hash check (like Dovecot's auth_cache_ttl); a changed password misses at once; 0 turns the cache off",
			duration(func(c *Config) *time.Duration { return &c.AuthCacheTTL })},
		{"imap-fetch-cache-mb", "64", "memory (MB) for parsed ENVELOPE and BODYSTRUCTURE values shared by all IMAP sessions, so repeated header fetches skip parsing; 0 turns the cache off",
			count(func(c *Config) *int { return &c.IMAPFetchCacheMB })},
		{"list-cache-entries", "500000", "messages kept in memory, over all mailboxes of 256 messages or more, so a repeated SELECT or POP3 login reads only what changed since (about 50 bytes each); 0 turns the cache off",
			count(func(c *Config) *int { return &c.ListCacheEntries })},
	}
}

// Lookup returns the key named name; the file form with underscores is
// accepted.
func Lookup(name string) (Key, bool) {
	name = strings.ReplaceAll(strings.ToLower(name), "_", "-")
	for _, k := range Keys() {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

// Default returns the configuration with every key at its default.
func Default() Config {
	var c Config
	for _, k := range Keys() {
		if err := k.set(&c, k.Default); err != nil {
			panic(fmt.Sprintf("config: default of %s: %v", k.Name, err)) // programmer error
		}
	}
	return c
}

// Set sets key name to the string value v, as the file, environment and
// flags do.
func (c *Config) Set(name, v string) error {
	k, ok := Lookup(name)
	if !ok {
		return fmt.Errorf("unknown setting %q", name)
	}
	if err := k.set(c, v); err != nil {
		return fmt.Errorf("%s: %w", k.Name, err)
	}
	return nil
}

func nonEmpty(v string) error {
	if v == "" {
		return fmt.Errorf("must not be empty")
	}
	return nil
}

func addr(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v != "" {
			_, port, err := net.SplitHostPort(v)
			if err != nil {
				return err
			}
			if _, err := strconv.ParseUint(port, 10, 16); err != nil {
				return fmt.Errorf("bad port %q in %q", port, v)
			}
		}
		*field(c) = v
		return nil
	}
}

func duration(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		if d <= 0 {
			return fmt.Errorf("must be positive, got %s", v)
		}
		*field(c) = d
		return nil
	}
}

func count(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("want a number >= 0, got %q", v)
		}
		*field(c) = n
		return nil
	}
}

func positive(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return fmt.Errorf("want a number > 0, got %q", v)
		}
		*field(c) = int(n)
		return nil
	}
}

func (c *Config) setDB(v string) error {
	if v != "" {
		u, err := url.Parse(v)
		if err != nil {
			return fmt.Errorf("bad URL: %v", redactErr(err, v))
		}
		if u.Scheme != "postgres" && u.Scheme != "postgresql" {
			return fmt.Errorf("want a postgres:// URL, got scheme %q", u.Scheme)
		}
	}
	c.DatabaseURL = v
	return nil
}

// redactErr keeps a password in a URL from showing in an error message.
func redactErr(err error, rawURL string) string {
	s := err.Error()
	if i := strings.Index(rawURL, "://"); i >= 0 {
		if at := strings.LastIndex(rawURL, "@"); at > i {
			s = strings.ReplaceAll(s, rawURL[i+3:at], "xxxxx")
		}
	}
	return s
}

func (c *Config) setNets(v string) error {
	nets, err := parseNets(v)
	c.PlaintextAuthNets = nets
	return err
}

// parseNets parses a comma-separated list of CIDR networks (a bare address
// is its own /32 or /128).
func parseNets(v string) ([]netip.Prefix, error) {
	var nets []netip.Prefix
	for _, f := range splitList(v) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("bad network %q (want CIDR like 127.0.0.0/8)", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		nets = append(nets, p.Masked())
	}
	return nets, nil
}

func boolean(field func(c *Config) *bool) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		*field(c) = b
		return nil
	}
}

func (c *Config) setLogFormat(v string) error {
	switch v {
	case "text", "json":
		c.LogFormat = v
		return nil
	}
	return fmt.Errorf("want text or json, got %q", v)
}

func (c *Config) setSpecialFolders(v string) error {
	c.SpecialFolders = []SpecialFolder{} // non-nil: an empty list creates none
	names, uses := map[string]bool{}, map[string]bool{}
	for _, f := range splitList(v) {
		name, use, hasUse := strings.Cut(f, "=")
		name = strings.TrimSpace(name)
		if name == "" || strings.EqualFold(name, "INBOX") || strings.ContainsAny(name, "/\x00\r\n") {
			return fmt.Errorf("bad folder name %q", name)
		}
		if !hasUse {
			use = `\` + name
		}
		canon := ""
		for _, u := range specialUses {
			if strings.EqualFold(u, strings.TrimSpace(use)) {
				canon = u
			}
		}
		if canon == "" {
			if !hasUse {
				return fmt.Errorf("%q is no special-use name; write %s=\\Use with one of %s", name, name, strings.Join(specialUses, " "))
			}
			return fmt.Errorf("unknown special-use %q for %q (want one of %s)", use, name, strings.Join(specialUses, " "))
		}
		if names[strings.ToLower(name)] || uses[canon] {
			return fmt.Errorf("folder %q or special-use %s listed twice", name, canon)
		}
		names[strings.ToLower(name)], uses[canon] = true, true
		c.SpecialFolders = append(c.SpecialFolders, SpecialFolder{Name: name, Use: canon})
	}
	return nil
}

// SpecialFolderMap returns SpecialFolders keyed by special-use attribute,
// never nil.
func (c *Config) SpecialFolderMap() map[string]string {
	m := make(map[string]string, len(c.SpecialFolders))
	for _, f := range c.SpecialFolders {
		m[f.Use] = f.Name
	}
	return m
}

func splitList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Check verifies settings that depend on each other.
func (c *Config) Check() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("tls-cert and tls-key must be given together")
	}
	if c.Argon2Threads > 255 {
		return fmt.Errorf("argon2-threads: at most 255")
	}
	return nil
}

// DatabaseURLWithPassword returns DatabaseURL with the password from
// db-password-file or POSTOFFICE_DB_PASSWORD (getenv) filled in when the URL
// has none. Never log the result; log RedactedDatabaseURL.
func (c *Config) DatabaseURLWithPassword(lookupEnv func(string) (string, bool)) (string, error) {
	if c.DatabaseURL == "" {
		return "", nil
	}
	pw, _ := lookupEnv("POSTOFFICE_DB_PASSWORD")
	if c.DatabasePasswordFS != "" {
		b, err := os.ReadFile(c.DatabasePasswordFS)
		if err != nil {
			return "", fmt.Errorf("read db-password-file: %w", err)
		}
		pw, _, _ = strings.Cut(string(b), "\n")
		pw = strings.TrimRight(pw, "\r")
	}
	if pw == "" {
		return c.DatabaseURL, nil
	}
	u, err := url.Parse(c.DatabaseURL)
	if err != nil {
		return "", fmt.Errorf("db: bad URL")
	}
	if _, has := u.User.Password(); has {
		return c.DatabaseURL, nil
	}
	name := "postgres"
	if u.User != nil {
		name = u.User.Username()
	}
	u.User = url.UserPassword(name, pw)
	return u.String(), nil
}

// DatabaseURLHasPassword reports whether the db setting itself carries a
// password (which belongs in db-password-file or POSTOFFICE_DB_PASSWORD).
func (c *Config) DatabaseURLHasPassword() bool {
	u, err := url.Parse(c.DatabaseURL)
	if err != nil || u.User == nil {
		return false
	}
	_, has := u.User.Password()
	return has
}

// RedactedDatabaseURL is DatabaseURL with any password replaced, for logs.
func (c *Config) RedactedDatabaseURL() string {
	return RedactURL(c.DatabaseURL)
}

// RedactURL replaces the password in a URL with "xxxxx".
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// DefaultFile is the config file read when none is named: postoffice.conf in
// the data directory.
func DefaultFile(dataDir string) string {
	return filepath.Join(dataDir, "postoffice.conf")
}

// Argon2 returns the argon2id parameters for new password hashes.
func (c *Config) Argon2() auth.Params {
	return auth.Params{Time: uint32(c.Argon2Time), MemoryKiB: uint32(c.Argon2MemoryKiB), Threads: uint8(c.Argon2Threads)}
}

package testsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postoffice/postoffice/auth"
	"github.com/postoffice/postoffice/store"
)

// TestMain is the package's TestMain: it removes the binaries built by
// binaries() after the run. Add other package-wide setup here.
func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// bins holds the postofficed and postoffice binaries, built once per test
// binary.
var bins struct {
	once   sync.Once
	dir    string
	err    error
	daemon string
	admin  string
}

// binaries builds cmd/postofficed and cmd/postoffice (once) and returns
// their paths.
func binaries(t testing.TB) (daemon, admin string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	bins.once.Do(func() {
		bins.dir, bins.err = os.MkdirTemp("", "postoffice-bin-")
		if bins.err != nil {
			return
		}
		bins.daemon = filepath.Join(bins.dir, "postofficed")
		bins.admin = filepath.Join(bins.dir, "postoffice")
		cmd := exec.Command("go", "build", "-o", bins.dir+string(filepath.Separator), module+"/cmd/postofficed", module+"/cmd/postoffice")
		out, err := cmd.CombinedOutput()
		if err != nil {
			bins.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if bins.err != nil {
		t.Fatalf("testsuite: %v", bins.err)
	}
	return bins.daemon, bins.admin
}

// adminEnv is how a test runs the admin CLI against one installation.
type adminEnv struct {
	t     *testing.T
	bin   string
	data  string
	dbURL string // empty: embedded SQLite
	stdin string
}

func newAdminEnv(t *testing.T, backend string) *adminEnv {
	_, admin := binaries(t)
	e := &adminEnv{t: t, bin: admin, data: t.TempDir()}
	if backend == Postgres {
		e.dbURL = NewDatabaseURL(t)
	}
	return e
}

// run runs postoffice with the installation's global flags and args and
// returns stdout, stderr and the exit status.
func (e *adminEnv) run(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := []string{"--data", e.data}
	if e.dbURL != "" {
		full = append(full, "--db", e.dbURL)
	}
	cmd := exec.CommandContext(ctx, e.bin, append(full, args...)...)
	cmd.Env = cliEnv()
	cmd.Stdin = strings.NewReader(e.stdin)
	e.stdin = ""
	var o, x bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &x
	err := cmd.Run()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			e.t.Fatalf("run postoffice %q: %v", args, err)
		}
	}
	return o.String(), x.String(), code
}

// ok runs postoffice and fails the test unless it exits 0.
func (e *adminEnv) ok(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("postoffice %q: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

// fail runs postoffice and checks its exit status and that stderr contains
// want.
func (e *adminEnv) fail(wantCode int, want string, args ...string) {
	e.t.Helper()
	out, errOut, code := e.run(args...)
	if code != wantCode || !strings.Contains(errOut, want) {
		e.t.Fatalf("postoffice %q: exit %d, stderr %q (stdout %q); want exit %d and %q", args, code, errOut, out, wantCode, want)
	}
}

// cliEnv is the environment for the binaries: ours, without POSTOFFICE_*
// settings of the developer's shell and with cheap password hashing.
func cliEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "POSTOFFICE_") {
			env = append(env, kv)
		}
	}
	p := CheapParams()
	return append(env,
		fmt.Sprintf("POSTOFFICE_ARGON2_TIME=%d", p.Time),
		fmt.Sprintf("POSTOFFICE_ARGON2_MEMORY=%d", p.MemoryKiB),
	)
}

// openStore opens the installation's index in the test process.
func (e *adminEnv) openStore() *store.Store {
	return NewStoreAt(e.t, store.Options{DataDir: e.data, DatabaseURL: e.dbURL})
}

func TestCLI_users(t *testing.T) {
	Backends(t, func(t *testing.T, backend string) {
		e := newAdminEnv(t, backend)

		e.stdin = "s3cret pass\n"
		if out := e.ok("user", "add", "alice@example.org", "--password-stdin", "--quota", "2G", "--quota-messages", "1000"); !strings.Contains(out, "created user alice@example.org") {
			t.Errorf("user add output %q", out)
		}
		e.stdin = "x\n"
		e.fail(1, `user "alice@example.org" already exists`, "user", "add", "alice@example.org", "--password-stdin")
		e.stdin = "pw\n"
		e.fail(2, `bad size "2Q"`, "user", "add", "bob", "--password-stdin", "--quota", "2Q")
		e.fail(2, "use --password-stdin", "user", "add", "bob") // stdin is no terminal
		e.stdin = "\n"
		e.fail(1, "empty password", "user", "add", "bob", "--password-stdin")
		e.stdin = "pw\n"
		e.fail(2, "bad user name", "user", "add", "bad name", "--password-stdin")
		e.stdin = "bobpw"
		e.ok("user", "add", "bob", "--password-stdin") // no newline at EOF is fine

		st := e.openStore()
		ctx := context.Background()
		hash, disabled, err := st.PasswordHash(ctx, "alice@example.org")
		if err != nil || disabled {
			t.Fatalf("PasswordHash = %v, %v", disabled, err)
		}
		if err := auth.Compare(hash, "s3cret pass"); err != nil {
			t.Errorf("stored hash does not verify the password: %v", err)
		}
		if !strings.HasPrefix(hash, "{ARGON2ID}") {
			t.Errorf("hash scheme: %.12s", hash)
		}

		// passwd, disable, enable.
		e.stdin = "n3w\n"
		e.ok("user", "passwd", "alice@example.org", "--password-stdin")
		hash, _, _ = st.PasswordHash(ctx, "alice@example.org")
		if err := auth.Compare(hash, "n3w"); err != nil {
			t.Errorf("new password does not verify: %v", err)
		}
		e.ok("user", "disable", "bob")
		if _, disabled, _ := st.PasswordHash(ctx, "bob"); !disabled {
			t.Error("bob not disabled")
		}
		out := e.ok("user", "list")
		if !regexpLine(out, `^bob\s+0\s+0\s+-\s+yes\s+never$`) {
			t.Errorf("user list does not show bob disabled:\n%s", out)
		}
		e.ok("user", "enable", "bob")
		if _, disabled, _ := st.PasswordHash(ctx, "bob"); disabled {
			t.Error("bob still disabled")
		}

		// Usage shows in list and show after a delivery and reindex.
		Deliver(t, Maildir(t, st, "alice@example.org"), []byte("Subject: hi\n\nhello\n"))
		if out := e.ok("reindex", "alice@example.org"); !strings.Contains(out, "1 messages") {
			t.Errorf("reindex output %q", out)
		}
		out = e.ok("user", "list")
		if !regexpLine(out, `^NAME\s+MESSAGES\s+SIZE\s+QUOTA USE\s+DISABLED\s+LAST LOGIN$`) ||
			!regexpLine(out, `^alice@example.org\s+1\s+\d+\s+0% of 2.0G, 0% of 1000 msgs\s+no\s+never$`) {
			t.Errorf("user list:\n%s", out)
		}
		var list []struct {
			Name          string     `json:"name"`
			Messages      int64      `json:"messages"`
			Bytes         int64      `json:"bytes"`
			QuotaBytes    int64      `json:"quota_bytes"`
			QuotaMessages int64      `json:"quota_messages"`
			Disabled      bool       `json:"disabled"`
			LastLoginAt   *time.Time `json:"last_login_at"`
		}
		if err := json.Unmarshal([]byte(e.ok("user", "list", "--json")), &list); err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].Name != "alice@example.org" || list[0].Messages != 1 || list[0].Bytes != int64(len("Subject: hi\r\n\r\nhello\r\n")) ||
			list[0].QuotaBytes != 2<<30 || list[0].QuotaMessages != 1000 || list[0].LastLoginAt != nil {
			t.Errorf("user list --json = %+v", list)
		}
		out = e.ok("user", "show", "alice@example.org")
		for _, want := range []string{"ARGON2ID", "messages:", "2.0G storage, 1000 messages", Maildir(t, st, "alice@example.org")} {
			if !strings.Contains(out, want) {
				t.Errorf("user show lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, hash[10:30]) {
			t.Error("user show prints the password hash")
		}

		// Quota.
		e.ok("quota", "set", "alice@example.org", "500M")
		u, _ := st.User(ctx, "alice@example.org")
		if u.QuotaBytes != 500<<20 || u.QuotaMessages != 1000 {
			t.Errorf("quota = %d/%d", u.QuotaBytes, u.QuotaMessages)
		}
		e.ok("quota", "set", "alice@example.org", "1024K", "--messages", "0")
		u, _ = st.User(ctx, "alice@example.org")
		if u.QuotaBytes != 1<<20 || u.QuotaMessages != 0 {
			t.Errorf("quota = %d/%d", u.QuotaBytes, u.QuotaMessages)
		}
		e.fail(2, `bad size "lots"`, "quota", "set", "alice@example.org", "lots")
		e.fail(1, `no such user "carol"`, "quota", "set", "carol", "1G")

		// Unknown users.
		for _, args := range [][]string{
			{"user", "show", "carol"}, {"user", "del", "carol"}, {"user", "disable", "carol"},
			{"mailbox", "list", "carol"}, {"reindex", "carol"},
		} {
			e.fail(1, `no such user "carol"`, args...)
		}
		e.stdin = "x\n"
		e.fail(1, `no such user "carol"`, "user", "passwd", "carol", "--password-stdin")

		// Delete: the Maildir stays unless purged.
		bobDir := Maildir(t, st, "bob")
		aliceDir := Maildir(t, st, "alice@example.org")
		e.ok("user", "del", "bob")
		e.ok("user", "del", "alice@example.org", "--purge-mail")
		if _, err := st.User(ctx, "bob"); err == nil {
			t.Error("bob still exists")
		}
		if _, err := os.Stat(aliceDir); !os.IsNotExist(err) {
			t.Errorf("alice's Maildir after --purge-mail: %v", err)
		}
		if _, err := os.Stat(bobDir); err != nil {
			t.Errorf("bob's Maildir after del without purge: %v", err)
		}
		if out := e.ok("user", "list", "--json"); strings.TrimSpace(out) != "[]" {
			t.Errorf("user list --json after deleting everyone = %q", out)
		}
	})
}

func TestCLI_mailboxes(t *testing.T) {
	Backends(t, func(t *testing.T, backend string) {
		e := newAdminEnv(t, backend)
		e.stdin = "pw\n"
		e.ok("user", "add", "alice", "--password-stdin")
		e.ok("mailbox", "create", "alice", "Work.Projects", "Lists")
		e.ok("mailbox", "create", "alice", "Outbox", "--special-use", `\Sent`)
		e.fail(1, `mailbox "Lists" already exists`, "mailbox", "create", "alice", "Lists")
		e.ok("mailbox", "rename", "alice", "Lists", "Mailing Lists")
		e.fail(1, `no mailbox "Nope"`, "mailbox", "rename", "alice", "Nope", "X")
		e.fail(1, "has children", "mailbox", "delete", "alice", "Work")
		e.ok("mailbox", "delete", "alice", "Work.Projects", "Work")
		e.fail(1, `not permitted on mailbox "INBOX"`, "mailbox", "delete", "alice", "INBOX")
		e.fail(2, "usage: postoffice mailbox rename", "mailbox", "rename", "alice", "x")

		st := e.openStore()
		Deliver(t, Folder(Maildir(t, st, "alice"), "Outbox"), []byte("Subject: a\n\nb\n"))
		out := e.ok("mailbox", "list", "alice")
		if !regexpLine(out, `^INBOX\s+0\s+0\s+0\s+-\s+yes$`) ||
			!regexpLine(out, `^Mailing Lists\s+0\s+0\s+0\s+-\s+no$`) ||
			!regexpLine(out, `^Outbox\s+1\s+1\s+\d+\s+\\Sent\s+no$`) ||
			strings.Contains(out, "Work") {
			t.Errorf("mailbox list:\n%s", out)
		}
		if out := e.ok("reindex", "--all"); !strings.Contains(out, "reindexed 1 users, 3 mailboxes, 1 messages") {
			t.Errorf("reindex --all: %q", out)
		}
		e.fail(2, "not both", "reindex", "--all", "alice")
		e.fail(2, "not both", "reindex")
		if out := e.ok("migrate"); !strings.Contains(out, "up to date") {
			t.Errorf("migrate: %q", out)
		}
	})
}

func TestCLI_usage(t *testing.T) {
	_, admin := binaries(t)
	data := t.TempDir()
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "no command given"},
		{[]string{"frob"}, 2, `unknown command "frob"`},
		{[]string{"user"}, 2, "missing subcommand"},
		{[]string{"user", "frob", "x"}, 2, `unknown subcommand "frob"`},
		{[]string{"user", "add"}, 2, "usage: postoffice user add NAME"},
		{[]string{"user", "list", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"help"}, 0, "mailbox rename"},
		{[]string{"--db", "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=5", "user", "list"}, 1, "cannot open the database postgres://postgres@127.0.0.1:1/none"},
		{[]string{"--db", "mysql://x", "user", "list"}, 2, "postgres://"},
		{[]string{"--config", filepath.Join(data, "missing.conf"), "user", "list"}, 1, "config file"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, "_"), func(t *testing.T) {
			cmd := exec.Command(admin, append([]string{"--data", data}, tt.args...)...)
			cmd.Env = cliEnv()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr.String(), tt.code, tt.want)
			}
		})
	}
}

// TestCLI_configFile checks that the admin CLI reads the daemon's config
// file from the data directory and that flags and environment override it.
func TestCLI_configFile(t *testing.T) {
	_, admin := binaries(t)
	data := t.TempDir()
	other := t.TempDir()
	conf := "# shared with postofficed\nmaildir = /nonexistent-root/%d/%n\nimap = 127.0.0.1:1143\n"
	if err := os.WriteFile(filepath.Join(data, "postoffice.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(admin, args...)
		cmd.Env = append(cliEnv(), env...)
		cmd.Stdin = strings.NewReader("pw\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("postoffice %q: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := run(nil, "--data", data, "--maildir", filepath.Join(other, "%n"), "user", "add", "a@b.example", "--password-stdin")
	if !strings.Contains(out, filepath.Join(other, "a")) {
		t.Errorf("flag --maildir did not override the file: %s", out)
	}
	out = run([]string{"POSTOFFICE_DATA=" + data}, "user", "show", "a@b.example")
	if !strings.Contains(out, "/nonexistent-root/b.example/a") {
		t.Errorf("POSTOFFICE_DATA did not locate the config file: %s", out)
	}
	out = run([]string{"POSTOFFICE_MAILDIR=/env/%u"}, "--data", data, "user", "show", "a@b.example")
	if !strings.Contains(out, "/env/a@b.example") {
		t.Errorf("POSTOFFICE_MAILDIR did not override the file: %s", out)
	}
	out = run(nil, "config", "example")
	if !strings.Contains(out, `# maildir = "%u/Maildir"`) || !strings.Contains(out, `# plaintext-auth-nets = ""`) {
		t.Errorf("config example:\n%s", out)
	}
}

// regexpLine reports whether some line of s matches the regular
// expression (^ and $ match at line boundaries).
func regexpLine(s, expr string) bool {
	return regexp.MustCompile("(?m)" + expr).MatchString(s)
}

package testsuite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/postoffice/postoffice/auth"
	"github.com/postoffice/postoffice/store"
)

// Backend names accepted by NewStore and passed to Backends callbacks.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DefaultDatabaseURL is the PostgreSQL server used when TEST_DATABASE_URL is
// unset: the local server with trust authentication.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// adminURL is the URL of the maintenance database new test databases are
// created from.
func adminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

// requirePostgres reports whether an unreachable PostgreSQL fails tests
// instead of skipping them (CI sets REQUIRE_POSTGRES=1).
func requirePostgres() bool {
	v := os.Getenv("REQUIRE_POSTGRES")
	return v != "" && v != "0" && v != "false"
}

// pgProbe remembers, per test binary, whether PostgreSQL answered, so an
// unreachable server costs one connection timeout, not one per test.
var pgProbe struct {
	once sync.Once
	err  error
}

// postgresAvailable skips (or fails, with REQUIRE_POSTGRES=1) t when the
// test PostgreSQL server cannot be reached.
func postgresAvailable(t testing.TB) {
	t.Helper()
	pgProbe.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminURL())
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		pgProbe.err = err
		if err != nil && !requirePostgres() {
			fmt.Fprintf(os.Stderr, "\n"+
				"!!! testsuite: PostgreSQL at %s is unreachable: %v\n"+
				"!!! testsuite: SKIPPING every PostgreSQL test variant; set REQUIRE_POSTGRES=1 to fail instead.\n\n",
				redactURL(adminURL()), err)
		}
	})
	if pgProbe.err == nil {
		return
	}
	if requirePostgres() {
		t.Fatalf("testsuite: PostgreSQL at %s is unreachable (REQUIRE_POSTGRES=1): %v", redactURL(adminURL()), pgProbe.err)
	}
	t.Skipf("testsuite: PostgreSQL unreachable, skipping: %v", pgProbe.err)
}

// redactURL hides a password in a database URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// withDatabase returns the admin URL pointed at database name.
func withDatabase(admin, name string) string {
	if strings.Contains(admin, "://") {
		u, err := url.Parse(admin)
		if err == nil {
			u.Path = "/" + name
			u.RawPath = ""
			return u.String()
		}
	}
	// keyword/value form: a later dbname wins.
	return admin + " dbname=" + name
}

func randomSuffix(t testing.TB) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testsuite: random: %v", err)
	}
	return hex.EncodeToString(b[:])
}

// NewDatabaseURL creates a fresh, empty PostgreSQL database for t and returns
// its URL. The database is dropped WITH (FORCE) when t ends, after the
// cleanups registered later (such as closing stores opened on it) have run.
// Use it when a test needs several stores or processes on one database.
// Skips t when PostgreSQL is unreachable unless REQUIRE_POSTGRES=1.
func NewDatabaseURL(t testing.TB) string {
	t.Helper()
	postgresAvailable(t)
	name := "po_test_" + randomSuffix(t)
	admin := adminURL()
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("testsuite: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("testsuite: drop database %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// stores remembers the options every harness-opened store was opened with,
// so Options can answer for a *store.Store.
var stores sync.Map // *store.Store -> store.Options

// NewStore opens a store for backend ("sqlite" or "postgres") on a fresh
// index (for PostgreSQL a new database, dropped on cleanup) and a temporary
// DataDir. The store is closed when t ends.
func NewStore(t testing.TB, backend string) *store.Store {
	t.Helper()
	return NewStoreAt(t, BackendOptions(t, backend, store.Options{}))
}

// BackendOptions returns o for a store of backend ("sqlite" or "postgres"):
// for PostgreSQL with DatabaseURL set to a fresh database (NewDatabaseURL).
// Open the store with NewStoreAt.
func BackendOptions(t testing.TB, backend string, o store.Options) store.Options {
	t.Helper()
	switch backend {
	case SQLite:
	case Postgres:
		o.DatabaseURL = NewDatabaseURL(t)
	default:
		t.Fatalf("testsuite: unknown backend %q (want %q or %q)", backend, SQLite, Postgres)
	}
	return o
}

// NewStoreAt opens a store with o and closes it when t ends. An empty
// DataDir becomes a fresh t.TempDir(); a nil Logger logs to t (see Logger).
// Open runs the migrations.
func NewStoreAt(t testing.TB, o store.Options) *store.Store {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.Logger == nil {
		o.Logger = Logger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := store.Open(ctx, o)
	if err != nil {
		t.Fatalf("testsuite: open store (data %s, db %s): %v", o.DataDir, redactURL(o.DatabaseURL), err)
	}
	stores.Store(st, o)
	t.Cleanup(func() {
		stores.Delete(st)
		if err := st.Close(); err != nil {
			t.Errorf("testsuite: close store: %v", err)
		}
	})
	return st
}

// Options returns the options a harness-opened store was opened with
// (DataDir filled in).
func Options(t testing.TB, st *store.Store) store.Options {
	t.Helper()
	v, ok := stores.Load(st)
	if !ok {
		t.Fatalf("testsuite: store was not opened by NewStore/NewStoreAt")
	}
	return v.(store.Options)
}

// Backends runs fn as the parallel subtests "sqlite" and "postgres". The
// postgres subtest skips when PostgreSQL is unreachable (fails with
// REQUIRE_POSTGRES=1). Because the subtests call t.Parallel, fn must not use
// t.Setenv or t.Chdir.
func Backends(t *testing.T, fn func(t *testing.T, backend string)) {
	t.Helper()
	for _, b := range []string{SQLite, Postgres} {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			if b == Postgres {
				postgresAvailable(t)
			}
			fn(t, b)
		})
	}
}

// MustUser creates user name with password and returns it. The hash uses
// cheap parameters so tests stay fast.
func MustUser(t testing.TB, st *store.Store, name, password string) *store.User {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := st.CreateUser(ctx, store.User{Name: name, PasswordHash: testHash(t, password)})
	if err != nil {
		t.Fatalf("testsuite: create user %q: %v", name, err)
	}
	return u
}

// CheapParams returns argon2id parameters that make hashing nearly free, for
// tests only (also as auth.Options.Argon2, so logins do not rehash).
func CheapParams() auth.Params { return auth.Params{Time: 1, MemoryKiB: 8, Threads: 1} }

// testHash hashes password for a test user with CheapParams.
func testHash(t testing.TB, password string) string {
	t.Helper()
	h, err := auth.Hash(password, CheapParams())
	if err != nil {
		t.Fatalf("testsuite: hash password: %v", err)
	}
	return h
}

// Maildir returns the Maildir root (the INBOX directory) of user name in
// st, as the store resolves it (path template or the user's override).
func Maildir(t testing.TB, st *store.Store, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := st.User(ctx, name)
	if err != nil {
		t.Fatalf("testsuite: maildir of %q: %v", name, err)
	}
	return st.MaildirPath(u)
}

// Folder returns the Maildir++ directory of a folder below a Maildir root
// (".Name"); name must be ASCII without the delimiter's special cases, as in
// fixtures ("Sent", "Archive.2024"). INBOX is the root itself.
func Folder(maildir, name string) string {
	if strings.EqualFold(name, store.Inbox) {
		return maildir
	}
	return filepath.Join(maildir, "."+name)
}

// Logger returns a logger that writes to t's log at debug level; it goes
// quiet once t has finished, so late log lines of background goroutines
// cannot crash the test binary. Set TEST_LOG=0 to discard.
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("TEST_LOG") == "0" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	w := &testWriter{t: t}
	t.Cleanup(w.stop) // registered first among a test's cleanups, so runs late
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool // t has finished: drop output
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Helper()
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

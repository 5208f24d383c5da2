// Package testsuite is the test harness and the end-to-end tests of
// postoffice.
//
// The harness (harness.go, deliver.go) gives tests real dependencies: a
// store on a temporary DataDir with either index backend (NewStore,
// Backends), a fresh PostgreSQL database per test (NewDatabaseURL), users
// (MustUser) and MTA-style deliveries into Maildirs (Deliver).
//
// PostgreSQL is found at TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable). Each test gets
// its own database, created from that connection and dropped WITH (FORCE) on
// cleanup, so tests may run in parallel. When the server is unreachable the
// PostgreSQL variants are skipped with one loud message on stderr; with
// REQUIRE_POSTGRES=1 (CI) they fail instead. `make test` (via
// .ci/with-postgres) starts a throwaway cluster when no server answers and
// initdb is installed.
//
// Stores opened by the harness log at debug level to the test's log (shown
// for failing tests and with -v); TEST_LOG=0 discards it. The end-to-end
// CLI tests (cli_test.go) build cmd/postofficed and cmd/postoffice once per
// test binary; TestMain removes them.
//
// Boundary: only _test.go files import this package; it may import every
// package of ours, nothing of ours imports it outside tests.
//
// Concurrency: every helper is safe to call from parallel tests. Stores and
// databases belong to the test that created them and are closed/dropped by
// its cleanups (stores first, then their database).
package testsuite

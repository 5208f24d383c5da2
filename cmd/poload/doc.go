// Command poload is the load tool behind `make bench-vs-dovecot` (see
// bench/bench-vs-dovecot.sh and docs/performance.md). It drives any IMAP
// or POP3 server on loopback with one workload at a time (pop3-retr,
// pop3-login, imap-headers, imap-body, append, login, mixed, select-big,
// idle) and reports operations, throughput, and, given --server-pid, the
// server's CPU seconds per 1000 operations and its PSS, both summed over
// the server's whole process tree from /proc (Dovecot forks a process per
// session; CPU of sessions that ended counts through their parent's
// cutime/cstime).
//
// Subcommands: `poload corpus` writes the deterministic benchmark corpus
// (Maildirs with Dovecot-style ,S=,W= file names), `poload hash` prints an
// argon2id hash in Dovecot's format made by package auth (so both servers
// can be given the same stored hash), and `poload report` turns --json
// output into the comparison table.
//
// Boundary: a client only. It speaks IMAP through go-imap's imapclient and
// POP3 through its own small client; of this module it imports only auth
// (for `poload hash`). It writes into Maildirs only as an MTA would
// (tmp/ then rename into new/), for the mixed and idle workloads.
//
// Concurrency: one goroutine per simulated connection, all owned and
// waited for by the workload runner; a monitor goroutine samples the
// server tree's PSS once a second while a workload runs. Counters are
// atomics.
package main

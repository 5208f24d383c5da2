// Package pop3d is postoffice's POP3 server: RFC 1939 with CAPA (RFC 2449),
// STLS (RFC 2595), AUTH (RFC 5034, SASL PLAIN and LOGIN) and the extended
// response codes of RFC 2449 and RFC 3206. It is our own code; no POP3
// library is used.
//
// # Boundary
//
// pop3d serves a user's maildrop through the store (a small consumer
// interface, Store, that *store.Store satisfies) and checks passwords
// through a Verifier (*auth.Verifier). It knows nothing about SQL, pgx or
// Maildir paths. Listeners are the caller's: POP3S (implicit TLS) is a
// listener wrapped with tls.NewListener; STLS needs Options.TLSConfig.
//
// # Concurrency
//
// One goroutine per connection owns its net.Conn, a bounded line reader and
// a buffered writer, and is tracked by the Server: Shutdown and Close wait
// for all of them. A connection goroutine recovers panics, logs the stack,
// closes the connection, releases the maildrop lock and counts the panic
// (Server.Panics). Each store call gets its own context with
// Options.StoreTimeout, derived from the connection's context, which ends
// with the connection or with Close.
//
// # States
//
//	command  AUTHORIZATION  TRANSACTION  notes
//	CAPA     yes            yes          RFC 2449
//	QUIT     yes            yes          in TRANSACTION: UPDATE, then close
//	USER     yes            -            needs TLS or PlaintextAuthNets
//	PASS     yes            -            after USER; rest of line is the password
//	AUTH     yes            -            PLAIN, LOGIN; no argument: list mechanisms
//	STLS     yes            -            only without TLS and with TLSConfig
//	STAT     -              yes
//	LIST     -              yes          LIST [msg]
//	RETR     -              yes
//	DELE     -              yes          only marks
//	NOOP     -              yes
//	RSET     -              yes          unmarks all
//	TOP      -              yes          TOP msg lines
//	UIDL     -              yes          UIDL [msg]
//
// A command in the wrong state gets "-ERR command not valid in this state".
// UPDATE is not a state of its own: it is the tail of QUIT.
//
// # Behaviour we chose
//
//   - The maildrop is the user's INBOX. On entering TRANSACTION the session
//     takes the store's exclusive maildrop lock (LockMaildrop; a PostgreSQL
//     advisory lock across hosts, in-process with SQLite), syncs INBOX with
//     the disk and snapshots its list: message numbers, UIDs and CRLF sizes
//     stay fixed for the session. Mail delivered meanwhile shows up in the
//     next session. A second session for the same user gets
//     "-ERR [IN-USE] ..." and stays in AUTHORIZATION; the first is unharmed.
//   - DELE only marks; RSET unmarks. Marked messages are invisible: LIST,
//     RETR, TOP, UIDL and DELE on them say "-ERR message N already deleted",
//     STAT and LIST without argument leave them out.
//   - Only QUIT in TRANSACTION expunges (one store.Expunge call with the
//     marked UIDs, whatever their flags). A dropped connection, a timeout,
//     Shutdown or Close expunge nothing and release the lock. If the
//     expunge fails the reply is "-ERR [SYS/TEMP] some deleted messages not
//     removed" (RFC 1939 §6) and the connection closes.
//   - Flags: like Dovecot's default (pop3_no_flag_updates = no), messages
//     sent whole by RETR are marked \Seen at QUIT (one store.SetFlags call
//     before the expunge; a failure there is logged and does not fail the
//     QUIT). TOP marks nothing, and nothing is marked when the session
//     ends without QUIT. Options.NoFlagUpdates turns the marking off.
//   - Octet counts (STAT, LIST, "+OK n octets" of RETR) are of the CRLF
//     form, from the store's index. RETR and TOP stream the message from
//     store.OpenLoaded (files located 64 at a time) through a dot-stuffing writer with a fixed buffer
//     (never the whole message in memory) and always end with CRLF "."
//     CRLF, adding a CRLF when the file lacks a final newline.
//   - A message that vanished after the snapshot (expunged through IMAP)
//     gets "-ERR message N no longer exists"; the session continues.
//   - UIDL is Dovecot's default pop3_uidl_format "%08Xu%08Xv": the UID and
//     then UIDVALIDITY, each as 8 upper-case hex digits. It is stable for
//     the life of the message, so users moved from Dovecot do not download
//     their mail again.
//   - No APOP: passwords are stored hashed, and APOP needs the plaintext
//     secret on the server. APOP is an unknown command.
//   - Plaintext logins: USER, PASS and AUTH need TLS (POP3S or after STLS)
//     or a client address in Options.PlaintextAuthNets. Otherwise they get
//     "-ERR [AUTH] plaintext authentication disallowed ..." (Dovecot's
//     choice of code), and CAPA does not list USER and SASL (RFC 2449 §6.8
//     allows that; Dovecot does the same), so clients try STLS first.
//     "AUTH" without arguments lists the mechanisms (none when plaintext is
//     refused).
//   - Failed logins: bad credentials answer "-ERR [AUTH] authentication
//     failed" (RFC 3206 AUTH-RESP-CODE); auth.ErrThrottled answers
//     "-ERR [SYS/TEMP] ..." (RFC 3206 §4): the lockout is temporary and the
//     client should retry later, not ask the user for a new password. After
//     Options.MaxAuthFailures failures (3) the connection is closed. The
//     Verifier applies the growing delay.
//   - AUTH PLAIN with an authorization identity different from the user
//     name fails: we do not let users act as others.
//   - Line limits: command lines may have 255 octets without the line
//     terminator (RFC 2449 §4); longer lines are read to their end and
//     discarded, answered "-ERR line too long", and the session goes on.
//     SASL responses inside AUTH may have 8192 octets (RFC 5034 §4 lifts
//     the command-line limit for them). A bare LF ends a line as CRLF does.
//   - Before login, Options.MaxBadCommands (10) unknown, malformed or
//     misplaced commands close the connection, and a line that looks like
//     HTTP or SMTP closes it at once (cross-protocol attacks).
//   - Timeouts: Options.LoginTimeout (30s) before login, IdleTimeout
//     (10 min, RFC 1939 §3) after; the client is told "-ERR disconnected
//     for inactivity". Every write has Options.WriteTimeout.
//   - PIPELINING (RFC 2449 §6.6): responses are buffered and flushed only
//     when no complete command line is waiting. Data pipelined after STLS
//     is discarded before the TLS handshake (command injection).
//   - CAPA lists TOP, UIDL, RESP-CODES, AUTH-RESP-CODE, PIPELINING,
//     EXPIRE NEVER (we never delete mail on our own), USER and
//     SASL PLAIN LOGIN (when plaintext is allowed), STLS (before TLS, in
//     AUTHORIZATION, with TLSConfig) and IMPLEMENTATION postoffice.
//     deviation: RFC 2449 §5 wants AUTHORIZATION capabilities listed in
//     TRANSACTION too; like Dovecot we drop STLS there, as it can no longer
//     be used.
//   - Store errors: store.ErrUnavailable is "-ERR [SYS/TEMP] mail store
//     temporarily unavailable"; other internal errors are logged and the
//     client sees "-ERR [SYS/TEMP] internal server error".
//   - Logs carry proto, conn, remote and, after login, user. Command
//     arguments are never logged: passwords and SASL payloads stay out.
//
// # Measuring
//
// BenchmarkRETR measures RETR throughput over loopback (100 messages of
// 50 KB). testsuite's TestPOP3_loadCompare (POP3_LOAD=1) runs pop3d in a
// child process and compares its RETR throughput and CPU seconds per 1000
// RETRs with a peer server such as Dovecot on the same messages. Most of
// the per-RETR CPU that is not socket I/O is opening the file and the
// store's CRLF-converting reader; the index is asked once per 64 messages.
package pop3d

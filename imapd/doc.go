// Package imapd is the IMAP server: an imapserver.Session (go-imap v2
// beta.8) over the mail store and the credential verifier.
//
// The library parses commands and writes responses; this package turns
// each command into store and auth calls, converts the results to imap.*
// values, and maps errors to responses in one function (imapError). It
// knows nothing of SQL, pgx or Maildir paths: it speaks to store.Store in
// user, mailbox and UID terms.
//
// # Listeners and authentication
//
// Serve takes a cleartext listener (port 143, STARTTLS when
// Options.TLSConfig is set); ServeTLS an implicit-TLS one (993), doing the
// handshake itself with a 30 s deadline. TLS 1.2 is the minimum. On a
// cleartext connection from outside Options.PlaintextAuthNets the server
// advertises LOGINDISABLED and answers LOGIN and AUTHENTICATE with
// NO [PRIVACYREQUIRED] until STARTTLS. AUTHENTICATE offers PLAIN and LOGIN,
// with SASL-IR. A throttled login (auth.ErrThrottled) is answered
// NO [UNAVAILABLE], so that clients retry later rather than ask for a new
// password. Connections per IP address (BYE [LIMIT] at connect) and
// sessions per user (NO [LIMIT] at login) are bounded.
//
// The special-use folders (Drafts, Sent, Trash, Junk, Archive; names
// configurable) are created, subscribed, at a user's first login.
//
// # Mailbox names
//
// The hierarchy delimiter is "." (store.Delimiter, as Dovecot's Maildir++).
// Clients may send names in UTF-8 or modified UTF-7; the library decodes
// both, and encodes names as modified UTF-7 unless the client enabled
// UTF8=ACCEPT or IMAP4rev2. One personal namespace with an empty prefix.
//
// # Concurrency
//
// One goroutine per connection (the library's), plus a short-lived one per
// accepted connection for the TLS handshake, plus the library's second
// goroutine during IDLE. Each connection has its own imapserver.Server
// (see server.go). Shutdown poisons the connections' reads: each session
// finishes its command, says BYE and ends; Close cuts them at once.
//
// # Cost per FETCH
//
// Two things keep a header fetch cheap. The parsed ENVELOPE/BODYSTRUCTURE
// cache (fetchcache.go) is shared by all sessions and needs no
// invalidation, because what it holds never changes for a UID. Write
// coalescing (coalesce.go) sits under the library, which flushes after
// every response line, and sends output when the library reads again.
//
// # Known limits (fixed in the library)
//
//   - Timeouts: 30 s to read a command line before login, and to finish a
//     command line once its first byte came; 35 min idle between commands
//     after login (RFC 9051 §5.4 asks for at least 30) and while in IDLE;
//     5 min to read a literal; 30 s to write a response, 5 min to write a
//     literal. A TLS handshake on IMAPS has 30 s (ours).
//   - A command line may be at most 50 KiB, literals excluded (RFC 2683
//     asks servers for at least 8 KiB). A longer one is a protocol error
//     and closes the connection.
//   - An APPEND message may be at most Options.AppendLimit octets: a larger
//     synchronising literal is refused with NO [TOOBIG] before the client
//     sends it. Any other literal (including an APPEND mailbox name) may be
//     at most 4096 octets: a larger one is answered BAD [TOOBIG] and the
//     connection is closed (guard.go; the library would otherwise wait for
//     more input while the client waits for "+").
//   - LITERAL+ is not offered, only LITERAL- (non-synchronising literals up
//     to 4096 octets). A larger non-synchronising literal is answered
//     NO/BAD and the connection is closed (guard.go): go-imap would read
//     its data as commands otherwise.
//   - A mailbox name that is neither valid UTF-8 nor valid modified UTF-7
//     (control characters, NUL, a broken "&...-" sequence), and an
//     AUTHENTICATE initial response that is not base64, are answered
//     NO [SERVERBUG] by the library before our code runs; after a bad
//     name it may also close the connection.
//   - Mailbox names containing "&" must be sent as "&-" even after ENABLE
//     UTF8=ACCEPT: the library decodes modified UTF-7 unconditionally.
//   - The library cannot carry CONDSTORE, QRESYNC, ID, QUOTA, SORT,
//     THREAD, COMPRESS, METADATA, NOTIFY or MULTIAPPEND; none is
//     advertised. STATUS DELETED-STORAGE (QUOTA) is answered BAD.
//   - \Recent is not kept: SELECT reports 0 RECENT to IMAP4rev1 clients.
package imapd

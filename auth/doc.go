// Package auth checks user names and passwords for the IMAP and POP3
// servers: password hashing (argon2id by default), verification of the
// hash formats Dovecot writes so imported users keep their passwords, login
// throttling, and the SASL PLAIN and LOGIN server mechanisms.
//
// # Pieces
//
//   - Hash, Compare and NeedsRehash work on stored hash strings. New hashes
//     are "{ARGON2ID}$argon2id$v=19$m=..,t=..,p=..$salt$hash" as Dovecot's
//     doveadm pw writes them; Compare also reads Dovecot's ARGON2I,
//     BLF-CRYPT, SHA512-CRYPT, SHA256-CRYPT, CRYPT, SHA*/SSHA* and PLAIN
//     schemes (see Compare). SHA-crypt is implemented here from Drepper's
//     specification; the rest comes from golang.org/x/crypto.
//   - Verifier.Verify is the one entry point for logins. An unknown user, a
//     wrong password and a disabled account all give ErrInvalidCredentials
//     after one hash verification each (unknown users are checked against a
//     dummy argon2id hash made with the current parameters), so neither the
//     answer nor its timing tells them apart. The exception is a user whose
//     stored hash uses a cheaper scheme than the dummy: that login is
//     faster, until it is rehashed on the next successful login.
//   - The throttle counts recent failures per user name and per remote
//     address (IPv6 per /64), delays answers after a few failures and locks
//     out (ErrThrottled) after many. See ThrottleOptions.
//   - NewPlainServer and NewLoginServer are go-sasl server mechanisms; the
//     protocol packages bind them to Verify with the connection's address.
//
// # Boundary
//
// auth imports no package of this module and knows nothing of the store,
// SQL or the protocols. It declares what it needs from the outside as
// functions in Options (Lookup, Rehash), which cmd/ wires to the store.
//
// # Concurrency
//
// A Verifier is safe for concurrent use and starts no goroutines. Its
// throttle tables sit behind one mutex, held only for map updates, never
// while hashing or sleeping. Hash computations are bounded by a semaphore
// (Options.MaxConcurrent), because each argon2 one holds its memory cost.
// Counters are atomics. There is no package-level mutable state.
//
// # Secrets
//
// Passwords are never logged. Failed logins are logged at Info with the
// user name and remote address only; Password redacts itself in slog and
// fmt output.
package auth

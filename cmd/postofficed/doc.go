// Command postofficed is the postoffice IMAP and POP3 server.
//
// It loads the configuration (internal/config: defaults, config file,
// POSTOFFICE_* environment, flags; see docs/config.md), sets up slog,
// opens the store, builds the auth.Verifier over it (Lookup and Rehash
// adapt the store; store.ErrNoUser becomes "not found"), loads or
// generates the TLS certificate and starts imapd and pop3d on the
// configured listeners, plus /healthz when http is set.
//
// Boundary: this command only wires packages together. Protocol, storage
// and password logic live in imapd, pop3d, store and auth; nothing here is
// imported by them.
//
// Concurrency: run owns every goroutine it starts: one per listener
// (Serve), waited for before it returns. The TLS certificate sits behind an
// atomic pointer read by tls.Config.GetCertificate and replaced on SIGHUP.
// SIGTERM/SIGINT cancel the root context (signal.NotifyContext); run then
// shuts the servers down with shutdown-timeout, closes what is left, and
// closes the store last.
package main

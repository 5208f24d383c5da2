package pop3d

import (
	"crypto/tls"
	"errors"
	"strings"
	"time"

	"github.com/postoffice/postoffice/auth"
	"github.com/postoffice/postoffice/store"
)

// handler is one POP3 command: the states it is allowed in and its function.
// Handlers write their own positive responses and return errors for the
// negative ones (see conn.reply).
type handler struct {
	allowed state
	run     func(c *conn, cmd command) error
}

const anyState = stateAuthorization | stateTransaction

// commands is the dispatch table. APOP is deliberately absent: passwords are
// stored hashed, and APOP needs the plaintext secret on the server.
var commands = map[string]handler{
	"CAPA": {anyState, (*conn).cmdCapa},
	"QUIT": {anyState, (*conn).cmdQuit},
	"USER": {stateAuthorization, (*conn).cmdUser},
	"PASS": {stateAuthorization, (*conn).cmdPass},
	"AUTH": {stateAuthorization, (*conn).cmdAuth},
	"STLS": {stateAuthorization, (*conn).cmdStls},
	"STAT": {stateTransaction, (*conn).cmdStat},
	"LIST": {stateTransaction, (*conn).cmdList},
	"RETR": {stateTransaction, (*conn).cmdRetr},
	"DELE": {stateTransaction, (*conn).cmdDele},
	"NOOP": {stateTransaction, (*conn).cmdNoop},
	"RSET": {stateTransaction, (*conn).cmdRset},
	"TOP":  {stateTransaction, (*conn).cmdTop},
	"UIDL": {stateTransaction, (*conn).cmdUidl},
}

// dispatch parses a command line and runs its handler if the state allows.
func (c *conn) dispatch(line string) error {
	if c.state == stateAuthorization && looksForeign(line) {
		// Cross-protocol attack mitigation: do not keep talking to a
		// client that speaks HTTP or SMTP.
		c.log.Warn("foreign protocol, closing")
		c.writeLine("-ERR this is a POP3 server")
		return errClose
	}
	cmd, err := parseCommand(line)
	if err != nil {
		if errors.Is(err, errBadArgument) {
			return c.badCommand("invalid characters in command")
		}
		return c.badCommand("unknown command")
	}
	h, ok := commands[cmd.name]
	if !ok {
		return c.badCommand("unknown command")
	}
	if h.allowed&c.state == 0 {
		return c.badCommand("command not valid in this state")
	}
	c.log.Debug("command", "cmd", cmd.name) // never the arguments: PASS, AUTH
	if obs := c.srv.opts.ObserveCommand; obs != nil {
		defer func(start time.Time) { obs(cmd.name, time.Since(start)) }(time.Now())
	}
	return h.run(c, cmd)
}

// plaintextOK reports whether this connection may carry a password.
// RFC 2595 §2.2 lets servers refuse plaintext logins on unprotected links.
func (c *conn) plaintextOK() bool {
	return c.isTLS || c.srv.plaintextAllowed(c.remote)
}

// stlsAvailable reports whether STLS can be offered.
func (c *conn) stlsAvailable() bool {
	return !c.isTLS && c.srv.opts.TLSConfig != nil && c.state == stateAuthorization
}

var errPlaintextRefused = &respError{code: "AUTH", text: "plaintext authentication disallowed on non-secure connections, use STLS"}

// cmdCapa implements CAPA (RFC 2449 §5).
func (c *conn) cmdCapa(cmd command) error {
	if cmd.rest != "" {
		return c.badCommand("CAPA takes no arguments")
	}
	c.writeLine("+OK capability list follows")
	c.writeLine("TOP")
	c.writeLine("UIDL")
	c.writeLine("RESP-CODES")
	c.writeLine("AUTH-RESP-CODE")
	c.writeLine("PIPELINING")
	c.writeLine("EXPIRE NEVER")
	// deviation: RFC 2449 §5 wants AUTHORIZATION-state capabilities listed
	// in both states; like Dovecot we list USER/SASL/STLS only where they
	// can be used: USER and SASL when a password may be sent, STLS before
	// TLS and before login.
	if c.plaintextOK() {
		c.writeLine("USER")
		c.writeLine("SASL PLAIN LOGIN")
	}
	if c.stlsAvailable() {
		c.writeLine("STLS")
	}
	c.writeLine("IMPLEMENTATION postoffice")
	return c.writeLine(".")
}

// cmdQuit implements QUIT (RFC 1939 §5, §6). In TRANSACTION it enters the
// UPDATE state: the messages marked deleted are expunged.
func (c *conn) cmdQuit(cmd command) error {
	if cmd.rest != "" {
		return c.badCommand("QUIT takes no arguments")
	}
	if c.state == stateAuthorization {
		c.writeLine("+OK bye")
		return errClose
	}
	err := c.update()
	if err != nil {
		c.log.Error("update failed", "err", err)
		c.writeLine("-ERR [SYS/TEMP] some deleted messages not removed")
		return errClose
	}
	c.writeLine("+OK bye")
	return errClose
}

// cmdUser implements USER (RFC 1939 §7).
func (c *conn) cmdUser(cmd command) error {
	if !c.plaintextOK() {
		return errPlaintextRefused
	}
	if cmd.rest == "" || strings.ContainsAny(cmd.rest, "\t") {
		return c.badCommand("USER needs a user name")
	}
	c.pendingUser = cmd.rest
	// The reply does not tell whether the user exists (RFC 1939 §13).
	return c.writeLine("+OK send PASS")
}

// cmdPass implements PASS (RFC 1939 §7). The whole rest of the line is the
// password, spaces included.
func (c *conn) cmdPass(cmd command) error {
	if !c.plaintextOK() {
		return errPlaintextRefused
	}
	name := c.pendingUser
	c.pendingUser = ""
	if name == "" {
		return c.badCommand("USER first")
	}
	if cmd.rest == "" {
		return c.badCommand("PASS needs a password")
	}
	return c.authenticate(name, cmd.rest)
}

// authenticate checks credentials and, on success, opens the maildrop.
func (c *conn) authenticate(name, password string) error {
	ctx, cancel := c.storeCtx()
	err := c.srv.opts.Auth.Verify(ctx, name, password, c.remote)
	cancel()
	if err != nil {
		return c.authFailed(name, err)
	}
	return c.login(name)
}

// authFailed maps a Verify error (RFC 3206 codes) and counts the failure.
func (c *conn) authFailed(name string, err error) error {
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, errAuthzid):
		c.authFails++
		c.log.Info("login failed", "user", name)
		return &respError{code: "AUTH", text: "authentication failed"}
	case errors.Is(err, auth.ErrThrottled):
		// RFC 3206 §4: SYS/TEMP tells the client to retry later rather
		// than to ask the user for a new password.
		c.authFails++
		c.log.Warn("login throttled", "user", name)
		return &respError{code: "SYS/TEMP", text: "too many failed logins, try again later"}
	default:
		return err
	}
}

// login opens the maildrop of an authenticated user: it takes the maildrop
// lock, syncs INBOX and snapshots its message list (RFC 1939 §4). On failure
// the session stays in AUTHORIZATION.
func (c *conn) login(name string) error {
	ctx, cancel := c.storeCtx()
	defer cancel()
	u, err := c.srv.opts.Store.User(ctx, name)
	if err != nil {
		return storeError(err)
	}
	unlock, err := c.srv.opts.Store.LockMaildrop(ctx, u.ID)
	if err != nil {
		if errors.Is(err, store.ErrMailboxBusy) {
			c.log.Info("maildrop busy", "user", u.Name)
			return &respError{code: "IN-USE", text: "maildrop is locked by another session"}
		}
		return storeError(err)
	}
	c.unlock = unlock // released by serve on every exit path, even a panic
	mbox, msgs, err := c.snapshot(ctx, u.ID)
	if err != nil {
		c.releaseMaildrop()
		return storeError(err)
	}
	if err := c.srv.opts.Store.RecordLogin(ctx, u.ID); err != nil {
		c.log.Warn("recording login time", "user", u.Name, "err", err)
	}
	c.user, c.mbox, c.msgs = u, mbox, msgs
	c.deletedN, c.deletedSize = 0, 0
	c.state = stateTransaction
	c.authFails, c.badCommands = 0, 0
	c.log = c.log.With("user", u.Name)
	c.log.Info("logged in", "messages", len(msgs))
	n, size := c.stat()
	return c.writeLinef("+OK maildrop has %d messages (%d octets)", n, size)
}

// storeError maps store errors met while opening the maildrop.
func storeError(err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return &respError{code: "SYS/TEMP", text: "mail store temporarily unavailable"}
	}
	return err
}

// cmdStls implements STLS (RFC 2595 §4).
func (c *conn) cmdStls(cmd command) error {
	if cmd.rest != "" {
		return c.badCommand("STLS takes no arguments")
	}
	if c.srv.opts.TLSConfig == nil {
		return c.badCommand("STLS not available")
	}
	if c.isTLS {
		return c.badCommand("already using TLS")
	}
	if n := c.br.Buffered(); n > 0 {
		// Plaintext pipelined after STLS must not be taken as if it came
		// over TLS (command injection, CVE-2011-0411 class): discard it.
		c.log.Warn("discarding data pipelined after STLS", "bytes", n)
		c.br.Discard(n)
	}
	c.writeLine("+OK begin TLS negotiation")
	if err := c.flush(); err != nil {
		return &fatalError{err}
	}
	c.netMu.Lock()
	tc := tls.Server(c.nc, c.srv.opts.TLSConfig)
	c.nc = tc
	c.netMu.Unlock()
	tc.SetDeadline(time.Now().Add(c.srv.opts.LoginTimeout))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		return &fatalError{err}
	}
	tc.SetDeadline(time.Time{})
	c.isTLS = true
	c.setupIO(tc)
	// RFC 2595 §4: forget what the client said before TLS.
	c.pendingUser = ""
	c.log.Debug("tls started")
	return nil
}

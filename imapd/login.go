package imapd

import (
	"context"
	"errors"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/postoffice/postoffice/auth"
	"github.com/postoffice/postoffice/store"
)

// SASL mechanisms offered (RFC 4616 PLAIN; draft-murchison-sasl-login
// LOGIN). The library advertises them as AUTH=... only where it allows
// authentication (TLS or PlaintextAuthNets), and LOGINDISABLED elsewhere.
var saslMechanisms = []string{sasl.Plain, sasl.Login}

// Login implements imapserver.Session (LOGIN, and the SASL mechanisms).
// The library has already refused it with NO [PRIVACYREQUIRED] on a
// cleartext connection outside PlaintextAuthNets (LOGINDISABLED).
func (s *session) Login(username, password string) error {
	ctx, cancel := context.WithTimeout(s.ctx, authTimeout)
	defer cancel()
	if err := s.srv.opts.Auth.Verify(ctx, username, password, s.remote); err != nil {
		switch {
		case errors.Is(err, auth.ErrInvalidCredentials):
			s.log.Info("login failed", "user", username)
		case errors.Is(err, auth.ErrThrottled):
			s.log.Warn("login throttled", "user", username)
		}
		return s.imapError(err)
	}
	return s.startUser(username)
}

// startUser enters the authenticated state for a verified user name.
func (s *session) startUser(name string) error {
	ctx, cancel := s.opCtx()
	defer cancel()
	st := s.mailStore()
	u, err := st.User(ctx, name)
	if err != nil {
		// Verified but gone (deleted in between) or store down.
		if errors.Is(err, store.ErrNoUser) {
			return s.imapError(auth.ErrInvalidCredentials)
		}
		return s.imapError(err)
	}
	if err := s.srv.acquireUser(u.ID); err != nil {
		s.log.Warn("login refused: connection limit", "user", u.Name)
		return s.imapError(err)
	}
	s.user, s.userSlot = u, true
	s.log = s.baseLog.With("user", u.Name)

	if u.LastLoginAt.IsZero() {
		s.createSpecialFolders(ctx)
	}
	if err := st.RecordLogin(ctx, u.ID); err != nil {
		s.log.Warn("recording login", "err", err)
	}
	s.log.Info("logged in")
	return nil
}

// createSpecialFolders creates the configured special-use folders that the
// user lacks (RFC 6154), subscribed. It runs at the first login; failures
// are logged, not fatal: the user can still read mail.
func (s *session) createSpecialFolders(ctx context.Context) {
	st := s.mailStore()
	mboxes, err := st.Mailboxes(ctx, s.user.ID)
	if err != nil {
		s.log.Warn("listing mailboxes for special folders", "err", err)
		return
	}
	have := map[string]bool{}
	for _, mb := range mboxes {
		if mb.SpecialUse != "" {
			have[strings.ToLower(mb.SpecialUse)] = true
		}
	}
	for _, f := range s.srv.special {
		if have[strings.ToLower(f.use)] {
			continue
		}
		if _, err := st.CreateMailbox(ctx, s.user.ID, f.name, f.use); err != nil {
			if errors.Is(err, store.ErrMailboxExists) {
				// A folder of that name exists without the attribute:
				// leave it as the user made it.
				continue
			}
			s.log.Warn("creating special folder", "mailbox", f.name, "use", f.use, "err", err)
			continue
		}
		if err := st.SetSubscribed(ctx, s.user.ID, f.name, true); err != nil {
			s.log.Warn("subscribing special folder", "mailbox", f.name, "err", err)
		}
	}
}

// releaseUser gives back the user's session slot.
func (s *session) releaseUser() {
	if s.userSlot {
		s.srv.releaseUserSlot(s.user.ID)
		s.userSlot = false
	}
}

// AuthenticateMechanisms implements imapserver.SessionSASL.
func (s *session) AuthenticateMechanisms() []string { return saslMechanisms }

// Authenticate implements imapserver.SessionSASL (AUTHENTICATE, with the
// SASL-IR initial response handled by the library, RFC 4959).
func (s *session) Authenticate(mech string) (sasl.Server, error) {
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return saslErrors{s, auth.NewPlainServer(func(identity, username, password string) error {
			// RFC 4616 §2: we do not let one user act as another.
			if identity != "" && identity != username {
				return no(imap.ResponseCodeAuthorizationFailed, "Authorization identity must be the user name")
			}
			return s.Login(username, password)
		})}, nil
	case sasl.Login:
		return saslErrors{s, auth.NewLoginServer(s.Login)}, nil
	}
	return nil, no(imap.ResponseCodeCannot, "Unsupported SASL mechanism")
}

// saslErrors passes a mechanism's own errors (malformed responses) through
// imapError; the library would otherwise answer them as internal errors.
// It also sends empty challenges as such.
type saslErrors struct {
	s *session
	sasl.Server
}

func (w saslErrors) Next(response []byte) ([]byte, bool, error) {
	challenge, done, err := w.Server.Next(response)
	if challenge != nil && len(challenge) == 0 {
		// An empty challenge goes out as "+ " (RFC 9051 §7.5); the
		// library would send "+ =", which is the client-side (SASL-IR)
		// spelling of an empty response.
		challenge = nil
	}
	return challenge, done, w.s.imapError(err)
}

// Unauthenticate implements imapserver.SessionUnauthenticate (RFC 8437):
// back to the not-authenticated state, with everything of the user
// released. The library resets the enabled extensions.
func (s *session) Unauthenticate() error {
	if s.sel != nil {
		if err := s.Unselect(); err != nil {
			return err
		}
	}
	s.releaseUser()
	s.log.Info("unauthenticated")
	s.user = nil
	s.log = s.baseLog
	return nil
}

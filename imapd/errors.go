package imapd

import (
	"context"
	"errors"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"

	"github.com/postoffice/postoffice/auth"
	"github.com/postoffice/postoffice/store"
)

// Response codes the library does not name.
const (
	// codeExpungeIssued is RFC 9051 §7.1's EXPUNGEISSUED.
	codeExpungeIssued imap.ResponseCode = "EXPUNGEISSUED"
	// codeUseAttr is RFC 6154 §3's USEATTR (CREATE-SPECIAL-USE).
	codeUseAttr imap.ResponseCode = "USEATTR"
)

// errConnLimit is returned when a user already has MaxConnsPerUser sessions.
var errConnLimit = errors.New("imapd: too many connections for this user")

// no returns a tagged NO response with a response code.
func no(code imap.ResponseCode, text string) *imap.Error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
}

// bad returns a tagged BAD response (a client error).
func bad(code imap.ResponseCode, text string) *imap.Error {
	return &imap.Error{Type: imap.StatusResponseTypeBad, Code: code, Text: text}
}

// imapError is the only place store and auth errors become IMAP responses.
// Expected failures become NO with an RFC 5530 / RFC 9051 response code;
// anything else is an internal error: logged with the session's attributes
// and shown to the client only as "internal server error". An *imap.Error
// passes through unchanged, so helpers can return ready-made responses.
func (s *session) imapError(err error) error {
	if err == nil {
		return nil
	}
	var ie *imap.Error
	switch {
	case errors.As(err, &ie):
		return ie
	case errors.Is(err, auth.ErrInvalidCredentials):
		return imapserver.ErrAuthFailed // NO [AUTHENTICATIONFAILED]
	case errors.Is(err, auth.ErrMalformedResponse), errors.Is(err, sasl.ErrUnexpectedClientResponse):
		return bad(imap.ResponseCodeClientBug, "Malformed SASL response")
	case errors.Is(err, auth.ErrThrottled):
		// deviation: Dovecot answers a throttled login with
		// AUTHENTICATIONFAILED; UNAVAILABLE (RFC 5530: temporary failure)
		// makes clients retry later instead of asking their user for a new
		// password while an attacker keeps the account locked.
		return no(imap.ResponseCodeUnavailable, "Too many failed logins, try again later")
	case errors.Is(err, errConnLimit):
		return no(imap.ResponseCodeLimit, "Too many connections for this user")
	case errors.Is(err, store.ErrNoMailbox):
		return no(imap.ResponseCodeNonExistent, "No such mailbox")
	case errors.Is(err, store.ErrMailboxExists):
		return no(imap.ResponseCodeAlreadyExists, "Mailbox already exists")
	case errors.Is(err, store.ErrBadMailboxName):
		return no(imap.ResponseCodeCannot, "Invalid mailbox name")
	case errors.Is(err, store.ErrMailboxHasChild):
		// RFC 9051 §7.1 HASCHILDREN; Dovecot answers the same.
		return no(imap.ResponseCodeHasChildren, "Mailbox has children, delete them first")
	case errors.Is(err, store.ErrCannot):
		return no(imap.ResponseCodeCannot, "Operation not permitted on this mailbox")
	case errors.Is(err, store.ErrOverQuota):
		return no(imap.ResponseCodeOverQuota, "Quota exceeded")
	case errors.Is(err, store.ErrMailboxBusy):
		return no(imap.ResponseCodeInUse, "Mailbox is in use by another session")
	case errors.Is(err, store.ErrNoMessage):
		return no(codeExpungeIssued, "Message has been expunged")
	case errors.Is(err, store.ErrUnavailable):
		s.log.Warn("store unavailable", "err", err)
		return no(imap.ResponseCodeUnavailable, "Mail store temporarily unavailable, try again later")
	case errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("store call timed out", "err", err)
		return no(imap.ResponseCodeUnavailable, "Mail store timed out, try again later")
	case errors.Is(err, context.Canceled) && s.ctx.Err() != nil:
		// The connection is going away; nobody will read the answer.
		return no(imap.ResponseCodeUnavailable, "Connection closing")
	}
	s.log.Error("internal error", "err", err)
	return no(imap.ResponseCodeServerBug, "internal server error")
}

// imapErrorTarget is imapError for commands whose target mailbox must exist
// (APPEND, COPY, MOVE): a missing target is NO [TRYCREATE], RFC 9051 §6.3.12.
func (s *session) imapErrorTarget(err error) error {
	if errors.Is(err, store.ErrNoMailbox) {
		return no(imap.ResponseCodeTryCreate, "Mailbox does not exist")
	}
	return s.imapError(err)
}

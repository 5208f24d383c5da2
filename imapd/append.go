package imapd

// APPEND (RFC 9051 §6.3.12) with flags and date, APPENDUID (RFC 4315),
// TRYCREATE for a missing mailbox, and APPENDLIMIT (RFC 7889) through
// imapserver.SessionAppendLimit: the library refuses bigger literals with
// NO [TOOBIG] before reading them.

import (
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/postoffice/postoffice/store"
)

// Append implements imapserver.Session.
func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	var (
		flags store.Flags
		kws   []string
		date  = time.Now()
	)
	if options != nil {
		var err error
		if flags, kws, err = storeFlags(options.Flags); err != nil {
			return nil, err
		}
		if !options.Time.IsZero() {
			date = options.Time
		}
	}
	mb, err := s.destMailbox(mailbox)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.selCtx()
	res, err := s.mailStore().Append(ctx, mb.ID, r, flags, kws, date)
	cancel()
	if err != nil {
		return nil, s.imapErrorTarget(err)
	}
	if sel := s.sel; sel != nil && sel.mbox.ID == mb.ID {
		// RFC 9051 §6.3.12: the selected mailbox shows the new message
		// (EXISTS) right away; the library polls after APPEND.
		s.awaitOwnChange(sel, res.UID)
	}
	return &imap.AppendData{UID: imap.UID(res.UID), UIDValidity: res.UIDValidity}, nil
}

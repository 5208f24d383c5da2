package imapd

// EXPUNGE, UID EXPUNGE (RFC 9051 §6.4.3, §6.4.9) and CLOSE (§6.4.1). The
// library implements CLOSE as Expunge with a zero ExpungeWriter (its writes
// go nowhere) followed by Unselect; RFC 9051 §6.4.1 wants CLOSE in a
// read-only mailbox to expunge nothing and not fail.

import (
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postoffice/postoffice/store"
)

// Expunge implements imapserver.Session.
func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	sel := s.sel
	if sel == nil {
		return errNotSelected
	}
	isClose := w == nil || *w == (imapserver.ExpungeWriter{})
	if sel.readOnly {
		if isClose {
			return nil
		}
		return errReadOnly
	}
	var list []store.UID // nil: every \Deleted message
	if uids != nil {
		rs, err := sel.resolve(*uids, false)
		if err != nil {
			return err
		}
		if len(rs) == 0 {
			return nil
		}
		list = sel.rangeUIDs(rs)
	}
	ctx, cancel := s.selCtx()
	expunged, err := s.mailStore().Expunge(ctx, sel.mbox.ID, list, true)
	cancel()
	if err != nil {
		return s.imapError(err)
	}
	gone := make(map[store.UID]struct{}, len(expunged))
	for _, uid := range expunged {
		if _, ok := sel.find(uid); ok {
			gone[uid] = struct{}{}
		}
	}
	report := func(seq uint32) error { return nil }
	if !isClose {
		report = w.WriteExpunge
	}
	sel.mu.Lock()
	defer sel.mu.Unlock()
	return sel.removeExpunged(gone, report)
}

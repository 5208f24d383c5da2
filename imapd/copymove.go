package imapd

// COPY and MOVE (RFC 9051 §6.4.7, §6.4.8; UIDPLUS COPYUID, RFC 4315). A
// missing destination answers NO [TRYCREATE]. Messages expunged by another
// session meanwhile are skipped (RFC 2180 §4.4.1).

import (
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postoffice/postoffice/store"
)

// destMailbox looks up the destination of COPY, MOVE or APPEND.
func (s *session) destMailbox(name string) (*store.Mailbox, error) {
	ctx, cancel := s.selCtx()
	defer cancel()
	mb, err := s.mailStore().Mailbox(ctx, s.user.ID, name)
	if err != nil {
		return nil, s.imapErrorTarget(err)
	}
	return mb, nil
}

// copyData builds COPYUID data; nil when nothing was copied.
func (s *session) copyData(res *store.CopyResult) *imap.CopyData {
	if res == nil || len(res.Pairs) == 0 {
		return nil
	}
	pairs := slices.Clone(res.Pairs)
	slices.SortFunc(pairs, func(a, b store.UIDPair) int { return int(int64(a.Src) - int64(b.Src)) })
	src := make([]store.UID, len(pairs))
	dst := make([]store.UID, len(pairs))
	for i, p := range pairs {
		src[i], dst[i] = p.Src, p.Dst
	}
	if !slices.IsSorted(dst) {
		// RFC 4315 §3 pairs the sets in order; the store assigns in order,
		// so this is a store bug. Leave COPYUID out rather than lie.
		s.log.Error("copy: destination UIDs out of source order", "pairs", len(pairs))
		return nil
	}
	return &imap.CopyData{UIDValidity: res.UIDValidity, SourceUIDs: uidSet(src), DestUIDs: uidSet(dst)}
}

// copyUIDs resolves the messages of a COPY or MOVE.
func (sel *selected) copyUIDs(numSet imap.NumSet) ([]store.UID, error) {
	rs, err := sel.resolve(numSet, true)
	if err != nil {
		return nil, err
	}
	uids := sel.rangeUIDs(rs)
	return slices.DeleteFunc(uids, func(u store.UID) bool {
		_, gone := sel.pendingExpunge[u]
		return gone
	}), nil
}

// Copy implements imapserver.Session.
func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	sel := s.sel
	if sel == nil {
		return nil, errNotSelected
	}
	uids, err := sel.copyUIDs(numSet)
	if err != nil {
		return nil, err
	}
	dst, err := s.destMailbox(dest)
	if err != nil {
		return nil, err
	}
	if len(uids) == 0 {
		return nil, nil
	}
	ctx, cancel := s.selCtx()
	res, err := s.mailStore().Copy(ctx, sel.mbox.ID, uids, dst.ID)
	cancel()
	if err != nil {
		return nil, s.imapErrorTarget(err)
	}
	if dst.ID == sel.mbox.ID {
		s.awaitOwnChange(sel, maxPairDst(res))
	}
	return s.copyData(res), nil
}

// Move implements imapserver.SessionMove.
func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	sel := s.sel
	if sel == nil {
		return errNotSelected
	}
	if sel.readOnly {
		return errReadOnly
	}
	uids, err := sel.copyUIDs(numSet)
	if err != nil {
		return err
	}
	dst, err := s.destMailbox(dest)
	if err != nil {
		return err
	}
	if len(uids) == 0 {
		return nil
	}
	ctx, cancel := s.selCtx()
	res, err := s.mailStore().Move(ctx, sel.mbox.ID, uids, dst.ID)
	cancel()
	if err != nil {
		return s.imapErrorTarget(err)
	}
	// RFC 6851 §4.3: the COPYUID comes first, then the EXPUNGEs.
	if data := s.copyData(res); data != nil {
		if err := w.WriteCopyData(data); err != nil {
			return err
		}
	}
	gone := make(map[store.UID]struct{}, len(res.Pairs))
	for _, p := range res.Pairs {
		gone[p.Src] = struct{}{}
	}
	sel.mu.Lock()
	err = sel.removeExpunged(gone, w.WriteExpunge)
	sel.mu.Unlock()
	if err != nil {
		return err
	}
	if dst.ID == sel.mbox.ID {
		s.awaitOwnChange(sel, maxPairDst(res))
	}
	return nil
}

func maxPairDst(res *store.CopyResult) store.UID {
	var m store.UID
	if res != nil {
		for _, p := range res.Pairs {
			m = max(m, p.Dst)
		}
	}
	return m
}

package imapd

// Implementation notes (invariants of the selected state):
//   - A selected session owns one *selected: its view of the mailbox. The view
//     is the UID list the client knows (sequence number = index + 1), the
//     flags and keywords the client was last told for each message, and the
//     change-feed position (modseq) the view reflects.
//   - The view only changes when the client is told: EXISTS appends, EXPUNGE
//     removes, FETCH FLAGS updates. Expunges learned while EXPUNGE responses
//     are forbidden (FETCH, STORE, SEARCH; RFC 9051 §7.5.1) wait in
//     pendingExpunge and keep their sequence numbers until a later poll.
//   - Poll is an atomic load and a compare when nothing changed: no DB query.
//     Changes come from the shared store.Watch (in memory); only when the
//     watch's log no longer reaches back to the view's modseq is the mailbox
//     re-listed.
//   - Every session method runs on the connection goroutine except Idle, which
//     the library runs on a second goroutine while the first reads "DONE".
//     mu serialises the view between the two (and against Close when the
//     connection drops mid-IDLE); the other commands never overlap with Idle.

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postoffice/postoffice/store"
)

// selStoreTimeout bounds each store call made for the selected state.
const selStoreTimeout = 30 * time.Second

// selected is the view of the selected mailbox (see the notes above).
type selected struct {
	mu     sync.Mutex // guards everything below against Idle/Close overlap
	closed bool

	mbox     store.Mailbox
	readOnly bool
	watch    *store.Watch

	uids  []store.UID            // sorted ascending; sequence number = index + 1
	flags []store.Flags          // flags reported, parallel to uids
	kw    map[store.UID][]string // keywords reported; only messages that have some
	// kwSeen are the keywords announced in the mailbox FLAGS response.
	kwSeen map[string]struct{}

	modseq  uint64    // change-feed position the view reflects
	uidNext store.UID // UIDNEXT announced at SELECT (at least max UID + 1)

	// pendingExpunge are UIDs still in the view that the store has expunged;
	// they are reported at the next poll that allows EXPUNGE.
	pendingExpunge map[store.UID]struct{}

	// ownMod is the MODSEQ of flag changes this session made and applied
	// to the view before the shared record caught up: older states of those
	// messages in the record's log are stale and must not be reported.
	ownMod map[store.UID]uint64

	// flagsDirty asks the next poll to send the mailbox FLAGS response
	// (this session's STORE introduced a keyword).
	flagsDirty bool

	// saved is the SEARCHRES result ("$", RFC 5182), sorted UIDs.
	saved []store.UID
}

// systemFlags are the flags every mailbox supports.
var systemFlags = []imap.Flag{imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagSeen, imap.FlagDraft}

// errNotSelected should not happen: the library checks the state.
var errNotSelected = &imap.Error{Type: imap.StatusResponseTypeBad, Text: "No mailbox selected"}

// errReadOnly refuses changes in a mailbox selected with EXAMINE.
var errReadOnly = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeCannot,
	Text: "Mailbox is read-only (EXAMINE)",
}

// selCtx returns a context for one store call of the selected state.
func (s *session) selCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, selStoreTimeout)
}

// Select implements imapserver.Session (SELECT and EXAMINE).
func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	if s.sel != nil {
		if err := s.Unselect(); err != nil {
			return nil, err
		}
	}
	readOnly := options != nil && options.ReadOnly
	st := s.mailStore()

	ctx, cancel := s.selCtx()
	defer cancel()
	mb, err := st.Mailbox(ctx, s.user.ID, name)
	if err != nil {
		return nil, s.imapError(err)
	}
	// Watch before listing, so the watch's log covers everything after the
	// listing's modseq.
	w, err := st.Watch(s.ctx, mb.ID)
	if err != nil {
		return nil, s.imapError(err)
	}
	if err := st.Sync(ctx, mb.ID); err != nil {
		w.Close()
		return nil, s.imapError(err)
	}
	infos, modseq, err := st.List(ctx, mb.ID)
	if err != nil {
		w.Close()
		return nil, s.imapError(err)
	}
	sel := newSelected(*mb, readOnly, w, infos, modseq)
	s.sel = sel

	data := &imap.SelectData{
		Flags:       sel.mailboxFlags(),
		NumMessages: uint32(len(sel.uids)),
		UIDNext:     imap.UID(sel.uidNext),
		UIDValidity: mb.UIDValidity,
	}
	if readOnly {
		data.PermanentFlags = []imap.Flag{}
	} else {
		data.PermanentFlags = append(slices.Clone(systemFlags), imap.FlagWildcard)
	}
	for i, f := range sel.flags {
		if f&store.FlagSeen == 0 {
			data.FirstUnseenSeqNum = uint32(i + 1)
			break
		}
	}
	// RFC 9051 §6.3.2: an IMAP4rev2 server returns the mailbox's LIST data.
	if s.conn != nil && s.conn.EnabledCaps().Has(imap.CapIMAP4rev2) {
		data.List = s.selectListData(mb)
	}
	return data, nil
}

// selectListData is the LIST response of SELECT for IMAP4rev2 clients, with
// the attributes LIST would show (children, special use).
func (s *session) selectListData(mb *store.Mailbox) *imap.ListData {
	name := mb.Name
	if strings.EqualFold(name, store.Inbox) {
		name = store.Inbox
	}
	l := &imap.ListData{Delim: store.Delimiter, Mailbox: name}
	ctx, cancel := s.selCtx()
	defer cancel()
	mboxes, err := s.mailStore().Mailboxes(ctx, s.user.ID)
	if err == nil {
		for _, e := range listEntries(mboxes) {
			if e.name == name {
				if e.hasChildren {
					l.Attrs = append(l.Attrs, imap.MailboxAttrHasChildren)
				} else {
					l.Attrs = append(l.Attrs, imap.MailboxAttrHasNoChildren)
				}
				break
			}
		}
	}
	if mb.SpecialUse != "" {
		l.Attrs = append(l.Attrs, imap.MailboxAttr(mb.SpecialUse))
	}
	return l
}

// newSelected builds a view from a listing.
func newSelected(mb store.Mailbox, readOnly bool, w *store.Watch, infos []store.MessageInfo, modseq uint64) *selected {
	sel := &selected{
		mbox:     mb,
		readOnly: readOnly,
		watch:    w,
		uids:     make([]store.UID, len(infos)),
		flags:    make([]store.Flags, len(infos)),
		modseq:   modseq,
		kwSeen:   make(map[string]struct{}),
	}
	for i := range infos {
		sel.uids[i] = infos[i].UID
		sel.flags[i] = infos[i].Flags
		if len(infos[i].Keywords) > 0 {
			sel.setKeywords(infos[i].UID, infos[i].Keywords)
			sel.noteKeywords(infos[i].Keywords)
		}
	}
	sel.uidNext = mb.UIDNext
	if n := len(sel.uids); n > 0 && sel.uids[n-1] >= sel.uidNext {
		sel.uidNext = sel.uids[n-1] + 1
	}
	return sel
}

// Unselect implements imapserver.Session (UNSELECT, CLOSE, and SELECT while
// selected). It is also safe to call from Close while Idle still runs.
func (s *session) Unselect() error {
	sel := s.sel
	s.sel = nil
	if sel != nil {
		sel.close()
	}
	return nil
}

func (sel *selected) close() {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	if !sel.closed {
		sel.closed = true
		sel.watch.Close()
	}
}

// mailboxFlags is the FLAGS response: system flags and the keywords in use.
func (sel *selected) mailboxFlags() []imap.Flag {
	fl := slices.Clone(systemFlags)
	kws := make([]string, 0, len(sel.kwSeen))
	for k := range sel.kwSeen {
		kws = append(kws, k)
	}
	sort.Strings(kws)
	for _, k := range kws {
		fl = append(fl, imap.Flag(k))
	}
	return fl
}

// find returns the index of uid in the view.
func (sel *selected) find(uid store.UID) (int, bool) {
	return slices.BinarySearch(sel.uids, uid)
}

func (sel *selected) keywords(uid store.UID) []string {
	if sel.kw == nil {
		return nil
	}
	return sel.kw[uid]
}

func (sel *selected) setKeywords(uid store.UID, kws []string) {
	if len(kws) == 0 {
		if sel.kw != nil {
			delete(sel.kw, uid)
		}
		return
	}
	if sel.kw == nil {
		sel.kw = make(map[store.UID][]string)
	}
	sel.kw[uid] = slices.Clone(kws)
}

// imapFlags converts a message's state to IMAP flags.
func imapFlags(f store.Flags, kws []string) []imap.Flag {
	l := make([]imap.Flag, 0, 5+len(kws))
	if f&store.FlagSeen != 0 {
		l = append(l, imap.FlagSeen)
	}
	if f&store.FlagAnswered != 0 {
		l = append(l, imap.FlagAnswered)
	}
	if f&store.FlagFlagged != 0 {
		l = append(l, imap.FlagFlagged)
	}
	if f&store.FlagDeleted != 0 {
		l = append(l, imap.FlagDeleted)
	}
	if f&store.FlagDraft != 0 {
		l = append(l, imap.FlagDraft)
	}
	for _, k := range kws {
		l = append(l, imap.Flag(k))
	}
	return l
}

// sysFlagLists holds the flag list of every system-flag combination, so
// FETCH FLAGS of messages without keywords allocates nothing. Read-only.
var sysFlagLists = func() (t [32][]imap.Flag) {
	for f := range t {
		t[f] = imapFlags(store.Flags(f), nil)
	}
	return t
}()

// msgFlags returns the IMAP flags of the message at index i as reported.
// The result must not be modified.
func (sel *selected) msgFlags(i int) []imap.Flag {
	kws := sel.keywords(sel.uids[i])
	if len(kws) == 0 && sel.flags[i] < 32 {
		return sysFlagLists[sel.flags[i]]
	}
	return imapFlags(sel.flags[i], kws)
}

// Poll implements imapserver.Session: it sends the changes since the view's
// modseq. It costs an atomic load when nothing changed.
//
// A store failure is not the client's: the library would drop the
// connection on a Poll error, so it is logged (by imapError) and the updates
// wait for the next poll. Write errors are returned.
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	sel := s.sel
	if sel == nil {
		return nil
	}
	err := s.pollView(sel, w, allowExpunge)
	var ie *imap.Error
	if errors.As(err, &ie) {
		return nil
	}
	return err
}

func (s *session) pollView(sel *selected, w *imapserver.UpdateWriter, allowExpunge bool) error {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	if sel.closed {
		return nil
	}
	if !sel.due(allowExpunge) {
		return nil
	}
	return s.pollLocked(sel, w, allowExpunge)
}

// due reports whether the view has updates to bring in or report: the
// shared record is past the view's MODSEQ (the view may also be ahead of
// it right after SELECT, when the listing read a newer MODSEQ than the
// record has caught up with), flags to announce, or, where EXPUNGE may be
// sent, expunges held back. sel.mu must be held.
func (sel *selected) due(allowExpunge bool) bool {
	return sel.watch.ModSeq() > sel.modseq || sel.flagsDirty || allowExpunge && len(sel.pendingExpunge) > 0
}

// pollLocked brings the view up to date and writes the updates.
func (s *session) pollLocked(sel *selected, w *imapserver.UpdateWriter, allowExpunge bool) error {
	var changes []store.Change
	cur := sel.watch.ModSeq()
	if sel.watch.Deleted() {
		// The mailbox was deleted (or renamed away) under us: it is empty
		// now. Every message goes at the next chance to say EXPUNGE.
		for _, uid := range sel.uids {
			changes = append(changes, store.Change{UID: uid, Expunged: true})
		}
	} else if cur > sel.modseq {
		var ok bool
		changes, cur, ok = sel.watch.ChangesSince(sel.modseq)
		if !ok {
			var err error
			changes, cur, err = s.relist(sel)
			if err != nil {
				return s.imapError(err)
			}
		}
	}
	return s.applyChanges(sel, w, changes, max(cur, sel.modseq), allowExpunge)
}

// relist turns a fresh listing into changes against the view, for when the
// change log no longer reaches back far enough.
func (s *session) relist(sel *selected) ([]store.Change, uint64, error) {
	ctx, cancel := s.selCtx()
	defer cancel()
	infos, modseq, err := s.mailStore().List(ctx, sel.mbox.ID)
	if err != nil {
		return nil, 0, err
	}
	changes := make([]store.Change, 0, len(infos))
	present := make(map[store.UID]struct{}, len(infos))
	for _, in := range infos {
		present[in.UID] = struct{}{}
		changes = append(changes, store.Change{UID: in.UID, Flags: in.Flags, Keywords: in.Keywords, Size: in.Size, ModSeq: in.ModSeq})
	}
	for _, uid := range sel.uids {
		if _, ok := present[uid]; !ok {
			changes = append(changes, store.Change{UID: uid, Expunged: true})
		}
	}
	return changes, modseq, nil
}

// applyChanges applies changes (the latest state per message) to the view and
// writes EXPUNGE (if allowed), FLAGS, FETCH FLAGS and EXISTS responses.
func (s *session) applyChanges(sel *selected, w *imapserver.UpdateWriter, changes []store.Change, modseq uint64, allowExpunge bool) error {
	slices.SortFunc(changes, func(a, b store.Change) int {
		switch {
		case a.UID < b.UID:
			return -1
		case a.UID > b.UID:
			return 1
		}
		return 0
	})
	var (
		newMsgs  []store.Change
		flagUIDs []store.UID
		newKW    = sel.flagsDirty
	)
	sel.flagsDirty = false
	for _, c := range changes {
		i, inView := sel.find(c.UID)
		if c.Expunged {
			if inView {
				if sel.pendingExpunge == nil {
					sel.pendingExpunge = make(map[store.UID]struct{})
				}
				sel.pendingExpunge[c.UID] = struct{}{}
			}
			continue
		}
		if !inView {
			// New iff at or above UIDNEXT: UIDs below it that the view lacks
			// were expunged from the view already (the record may still
			// report their older states).
			if c.UID >= sel.uidNext {
				newMsgs = append(newMsgs, c)
				newKW = sel.noteKeywords(c.Keywords) || newKW
			}
			continue
		}
		if _, gone := sel.pendingExpunge[c.UID]; gone {
			continue
		}
		if m, ok := sel.ownMod[c.UID]; ok && c.ModSeq < m {
			continue // older than what this session already set
		}
		if sel.flags[i] != c.Flags || !slices.Equal(sel.keywords(c.UID), c.Keywords) {
			sel.flags[i] = c.Flags
			sel.setKeywords(c.UID, c.Keywords)
			newKW = sel.noteKeywords(c.Keywords) || newKW
			flagUIDs = append(flagUIDs, c.UID)
		}
	}
	sel.modseq = modseq
	for uid, m := range sel.ownMod {
		if m <= modseq {
			delete(sel.ownMod, uid)
		}
	}

	if allowExpunge && len(sel.pendingExpunge) > 0 {
		if err := sel.removeExpunged(sel.pendingExpunge, w.WriteExpunge); err != nil {
			return err
		}
		sel.pendingExpunge = nil
	}
	if newKW {
		if err := w.WriteMailboxFlags(sel.mailboxFlags()); err != nil {
			return err
		}
	}
	for _, uid := range flagUIDs {
		i, ok := sel.find(uid)
		if !ok {
			continue
		}
		if err := w.WriteMessageFlags(uint32(i+1), imap.UID(uid), sel.msgFlags(i)); err != nil {
			return err
		}
	}
	if len(newMsgs) > 0 {
		for _, c := range newMsgs {
			sel.uids = append(sel.uids, c.UID)
			sel.flags = append(sel.flags, c.Flags)
			sel.setKeywords(c.UID, c.Keywords)
		}
		if last := sel.uids[len(sel.uids)-1]; last >= sel.uidNext {
			sel.uidNext = last + 1
		}
		if err := w.WriteNumMessages(uint32(len(sel.uids))); err != nil {
			return err
		}
	}
	return nil
}

// noteKeywords records keywords for the FLAGS response; it reports whether
// one was new.
func (sel *selected) noteKeywords(kws []string) bool {
	added := false
	for _, k := range kws {
		if _, ok := sel.kwSeen[k]; !ok {
			sel.kwSeen[k] = struct{}{}
			added = true
		}
	}
	return added
}

// removeExpunged removes the given UIDs from the view in one pass and calls
// report with each sequence number, in the order RFC 9051 §7.5.1 needs
// (each number valid after the previous removals).
func (sel *selected) removeExpunged(gone map[store.UID]struct{}, report func(uint32) error) error {
	if len(gone) == 0 {
		return nil
	}
	j := 0
	removed := 0
	var seqs []uint32
	for i, uid := range sel.uids {
		if _, ok := gone[uid]; ok {
			seqs = append(seqs, uint32(i-removed+1))
			removed++
			if sel.kw != nil {
				delete(sel.kw, uid)
			}
			continue
		}
		sel.uids[j] = sel.uids[i]
		sel.flags[j] = sel.flags[i]
		j++
	}
	sel.uids = sel.uids[:j:j]
	sel.flags = sel.flags[:j:j]
	if len(sel.saved) > 0 {
		sel.saved = slices.DeleteFunc(sel.saved, func(u store.UID) bool { _, ok := gone[u]; return ok })
	}
	for uid := range gone {
		delete(sel.pendingExpunge, uid)
	}
	for _, seq := range seqs {
		if err := report(seq); err != nil {
			return err
		}
	}
	return nil
}

// Idle implements imapserver.Session: it pushes changes until stop is
// closed. It runs on its own goroutine (see the notes above).
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	sel := s.sel
	done := s.ctx.Done()
	if sel == nil {
		select {
		case <-stop:
		case <-done:
		}
		return nil
	}
	for {
		sel.mu.Lock()
		if sel.closed {
			sel.mu.Unlock()
			return nil
		}
		changed := sel.watch.Changed() // grab the channel before checking
		var err error
		if sel.due(true) {
			err = s.pollLocked(sel, w, true)
		}
		sel.mu.Unlock()
		var retry <-chan time.Time
		if err != nil {
			var ie *imap.Error
			if !errors.As(err, &ie) {
				return err // writing to the client failed
			}
			// The store failed (re-listing after a long gap): keep idling
			// and try again shortly rather than going silent.
			s.log.Warn("idle: updating the view", "mailbox", sel.mbox.Name, "err", err)
			retry = time.After(idleRetry)
		}
		select {
		case <-changed:
		case <-retry:
		case <-stop:
			return nil
		case <-done:
			return nil
		}
	}
}

// idleRetry is how soon IDLE retries after a store error.
const idleRetry = 5 * time.Second

// awaitOwnChange waits (briefly) until the mailbox's watch has seen a
// message this session added to the selected mailbox (APPEND, COPY, MOVE),
// so the poll after the command announces it with EXISTS. The wait ends
// early if the watch's log no longer reaches the view (the poll re-lists).
func (s *session) awaitOwnChange(sel *selected, uid store.UID) {
	if uid == 0 {
		return
	}
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	for {
		sel.mu.Lock()
		if sel.closed {
			sel.mu.Unlock()
			return
		}
		changed := sel.watch.Changed()
		seen := false
		if sel.watch.ModSeq() > sel.modseq {
			changes, _, ok := sel.watch.ChangesSince(sel.modseq)
			seen = !ok || slices.ContainsFunc(changes, func(c store.Change) bool { return c.UID >= uid })
		}
		sel.mu.Unlock()
		if seen {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			s.log.Warn("change feed did not show our own change in time", "mailbox", sel.mbox.Name, "uid", uid)
			return
		case <-s.ctx.Done():
			return
		}
	}
}

package imapd

// SEARCH (RFC 9051 §6.4.4), ESEARCH return options and SEARCHRES (RFC 5182).
// The library parses the criteria, picks SEARCH or ESEARCH for the answer
// and defaults the return options to ALL. This file evaluates the criteria
// over the view: sequence numbers, UIDs, flags and keywords from the view;
// sizes, dates and header keys from the index (store.Messages, one call per
// batch, only when a key needs it); BODY and TEXT by reading the files
// (searchtext.go). Saving "$" and using it are ours.

import (
	"slices"
	"strings"
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postoffice/postoffice/store"
)

// searchBatch is how many messages one store.Messages call loads.
const searchBatch = 512

// Search implements imapserver.Session.
func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	sel := s.sel
	if sel == nil {
		return nil, errNotSelected
	}
	matched, err := s.searchView(sel, criteria)
	if err != nil {
		if options != nil && options.ReturnSave {
			sel.saved = nil // RFC 5182 §2.1: a failed SEARCH empties $
		}
		return nil, err
	}

	data := &imap.SearchData{}
	if kind == imapserver.NumKindUID {
		uids := make([]store.UID, len(matched))
		for i, idx := range matched {
			uids[i] = sel.uids[idx]
		}
		set := uidSet(uids)
		if set == nil {
			set = imap.UIDSet{}
		}
		data.All = set
		if len(uids) > 0 {
			data.Min, data.Max = uint32(uids[0]), uint32(uids[len(uids)-1])
		}
	} else {
		set := imap.SeqSet{}
		for i := 0; i < len(matched); {
			j := i
			for j+1 < len(matched) && matched[j+1] == matched[j]+1 {
				j++
			}
			set.AddRange(uint32(matched[i]+1), uint32(matched[j]+1))
			i = j + 1
		}
		data.All = set
		if len(matched) > 0 {
			data.Min, data.Max = uint32(matched[0]+1), uint32(matched[len(matched)-1]+1)
		}
	}
	data.Count = uint32(len(matched))

	if options != nil && options.ReturnSave {
		// RFC 5182 §2.4: with MIN and/or MAX but neither ALL nor COUNT,
		// only those are saved.
		var saved []store.UID
		if (options.ReturnMin || options.ReturnMax) && !options.ReturnAll && !options.ReturnCount {
			if len(matched) > 0 {
				if options.ReturnMin {
					saved = append(saved, sel.uids[matched[0]])
				}
				if options.ReturnMax && (!options.ReturnMin || len(matched) > 1) {
					saved = append(saved, sel.uids[matched[len(matched)-1]])
				}
			}
		} else {
			saved = make([]store.UID, len(matched))
			for i, idx := range matched {
				saved[i] = sel.uids[idx]
			}
		}
		sel.saved = saved
	}
	return data, nil
}

// searchNeeds is what evaluating a criteria tree reads.
type searchNeeds struct {
	info   bool // size, internal date
	header bool
	text   bool // BODY or TEXT
}

func (n *searchNeeds) of(c *imap.SearchCriteria) {
	if c.Larger > 0 || c.Smaller > 0 || !c.Since.IsZero() || !c.Before.IsZero() {
		n.info = true
	}
	if len(c.Header) > 0 || !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		n.info, n.header = true, true
	}
	if len(c.Body) > 0 || len(c.Text) > 0 {
		n.info, n.text = true, true
	}
	for i := range c.Not {
		n.of(&c.Not[i])
	}
	for i := range c.Or {
		n.of(&c.Or[i][0])
		n.of(&c.Or[i][1])
	}
}

// searchMsg is one message under evaluation; parsed data is cached.
type searchMsg struct {
	idx   int
	uid   store.UID
	flags store.Flags
	kws   []string
	m     *store.Message // nil when nothing from the index is needed

	hdr    *textproto.Header
	text   *msgText
	failed error // store error while reading the text
}

// searchView returns the matching view indexes, ascending.
func (s *session) searchView(sel *selected, c *imap.SearchCriteria) ([]int, error) {
	var needs searchNeeds
	needs.of(c)

	candidates := []idxRange{{0, len(sel.uids) - 1}}
	if len(sel.uids) == 0 {
		return nil, nil
	}
	// Top-level sequence and UID keys narrow the scan before any store call.
	for _, set := range c.SeqNum {
		rs, err := sel.resolve(set, false)
		if err != nil {
			return nil, err
		}
		candidates = intersectRanges(candidates, rs)
	}
	for _, set := range c.UID {
		rs, err := sel.resolve(set, false)
		if err != nil {
			return nil, err
		}
		candidates = intersectRanges(candidates, rs)
	}

	var fields store.MessageFields
	if needs.header {
		fields |= store.WithHeader
	}
	var matched []int
	batch := make([]int, 0, searchBatch)
	flush := func() error {
		var byUID map[store.UID]*store.Message
		if needs.info {
			var err error
			if byUID, err = s.cachedMessages(sel, batch, fields); err != nil {
				return err
			}
		}
		for _, idx := range batch {
			if _, gone := sel.pendingExpunge[sel.uids[idx]]; gone {
				continue // expunged, not yet reported: matches nothing
			}
			sm := &searchMsg{idx: idx, uid: sel.uids[idx], flags: sel.flags[idx], kws: sel.keywords(sel.uids[idx])}
			if needs.info {
				if sm.m = byUID[sm.uid]; sm.m == nil {
					continue // expunged meanwhile: matches nothing
				}
			}
			ok := s.matches(sel, c, sm)
			if sm.failed != nil {
				return s.imapError(sm.failed)
			}
			if ok {
				matched = append(matched, idx)
			}
		}
		batch = batch[:0]
		return nil
	}
	for _, r := range candidates {
		for idx := r.lo; idx <= r.hi; idx++ {
			batch = append(batch, idx)
			if len(batch) == searchBatch {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(batch) > 0 {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	return matched, nil
}

// intersectRanges intersects two ascending, merged range lists.
func intersectRanges(a, b []idxRange) []idxRange {
	var out []idxRange
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		lo, hi := max(a[i].lo, b[j].lo), min(a[i].hi, b[j].hi)
		if lo <= hi {
			out = append(out, idxRange{lo, hi})
		}
		if a[i].hi < b[j].hi {
			i++
		} else {
			j++
		}
	}
	return out
}

// matches evaluates c for one message; cheap keys first.
func (s *session) matches(sel *selected, c *imap.SearchCriteria, sm *searchMsg) bool {
	n := uint32(len(sel.uids))
	seq := uint32(sm.idx + 1)
	for _, set := range c.SeqNum {
		if !seqSetContains(set, seq, n) {
			return false
		}
	}
	for _, set := range c.UID {
		if !sel.uidSetContains(set, sm.uid) {
			return false
		}
	}
	for _, f := range c.Flag {
		if !sm.hasFlag(f) {
			return false
		}
	}
	for _, f := range c.NotFlag {
		if sm.hasFlag(f) {
			return false
		}
	}
	if sm.m != nil {
		if c.Larger > 0 && sm.m.Size <= c.Larger {
			return false
		}
		if c.Smaller > 0 && sm.m.Size >= c.Smaller {
			return false
		}
		if !dateInRange(sm.m.InternalDate, c.Since, c.Before) {
			return false
		}
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		if !dateInRange(sm.sentDate(), c.SentSince, c.SentBefore) {
			return false
		}
	}
	for _, hf := range c.Header {
		if !sm.headerContains(hf.Key, hf.Value) {
			return false
		}
	}
	for _, b := range c.Body {
		t := s.textOf(sel, sm)
		if t == nil || !strings.Contains(t.body, foldCase(b)) {
			return false
		}
	}
	for _, b := range c.Text {
		t := s.textOf(sel, sm)
		if t == nil {
			return false
		}
		needle := foldCase(b)
		if !strings.Contains(t.header, needle) && !strings.Contains(t.body, needle) {
			return false
		}
	}
	for i := range c.Not {
		if s.matches(sel, &c.Not[i], sm) {
			return false
		}
	}
	for i := range c.Or {
		if !s.matches(sel, &c.Or[i][0], sm) && !s.matches(sel, &c.Or[i][1], sm) {
			return false
		}
	}
	return true
}

func seqSetContains(set imap.SeqSet, seq, n uint32) bool {
	for _, r := range set {
		lo, hi := r.Start, r.Stop
		if lo == 0 {
			lo = n
		}
		if hi == 0 {
			hi = n
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if seq >= lo && seq <= hi {
			return true
		}
	}
	return false
}

func (sel *selected) uidSetContains(set imap.UIDSet, uid store.UID) bool {
	if imap.IsSearchRes(set) {
		_, ok := slices.BinarySearch(sel.saved, uid)
		return ok
	}
	var maxUID uint32
	if n := len(sel.uids); n > 0 {
		maxUID = uint32(sel.uids[n-1])
	}
	for _, r := range set {
		lo, hi := uint32(r.Start), uint32(r.Stop)
		if lo == 0 {
			lo = maxUID
		}
		if hi == 0 {
			hi = maxUID
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if uint32(uid) >= lo && uint32(uid) <= hi {
			return true
		}
	}
	return false
}

func (sm *searchMsg) hasFlag(f imap.Flag) bool {
	switch strings.ToLower(string(f)) {
	case `\seen`:
		return sm.flags&store.FlagSeen != 0
	case `\answered`:
		return sm.flags&store.FlagAnswered != 0
	case `\flagged`:
		return sm.flags&store.FlagFlagged != 0
	case `\deleted`:
		return sm.flags&store.FlagDeleted != 0
	case `\draft`:
		return sm.flags&store.FlagDraft != 0
	case `\recent`:
		return false // deviation: no \Recent (IMAP4rev2 dropped it); NEW matches nothing, OLD all
	}
	for _, k := range sm.kws {
		if strings.EqualFold(k, string(f)) {
			return true
		}
	}
	return false
}

// dateInRange compares the calendar date of t (in its own zone; RFC 9051
// §6.4.4 disregards time and timezone) with since (inclusive) and before
// (exclusive).
func dateInRange(t, since, before time.Time) bool {
	if since.IsZero() && before.IsZero() {
		return true
	}
	if t.IsZero() {
		return false
	}
	y, m, d := t.Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	if !since.IsZero() {
		sy, sm, sd := since.Date()
		if day.Before(time.Date(sy, sm, sd, 0, 0, 0, 0, time.UTC)) {
			return false
		}
	}
	if !before.IsZero() {
		by, bm, bd := before.Date()
		if !day.Before(time.Date(by, bm, bd, 0, 0, 0, 0, time.UTC)) {
			return false
		}
	}
	return true
}

func (sm *searchMsg) header() *textproto.Header {
	if sm.hdr == nil {
		h := textproto.Header{}
		if sm.m != nil && len(sm.m.Header) > 0 {
			if parsed, err := readHeader(terminatedHeader(sm.m.Header)); err == nil {
				h = parsed
			}
		}
		sm.hdr = &h
	}
	return sm.hdr
}

// sentDate is the Date header's date, or the internal date without one
// (deviation, as Dovecot).
func (sm *searchMsg) sentDate() time.Time {
	mh := mail.Header{Header: gomessage.Header{Header: *sm.header()}}
	if t, err := mh.Date(); err == nil && !t.IsZero() {
		return t
	}
	if sm.m != nil {
		return sm.m.InternalDate
	}
	return time.Time{}
}

// headerContains is HEADER key value: a field named key whose value, with
// encoded words decoded, contains value case-insensitively; an empty value
// matches any such field.
func (sm *searchMsg) headerContains(key, value string) bool {
	needle := foldCase(value)
	mh := gomessage.Header{Header: *sm.header()}
	fields := mh.FieldsByKey(key)
	for fields.Next() {
		if needle == "" {
			return true
		}
		v, err := fields.Text()
		if err != nil {
			v = fields.Value()
		}
		if strings.Contains(foldCase(v), needle) || strings.Contains(foldCase(fields.Value()), needle) {
			return true
		}
	}
	return false
}

// foldCase is the case folding used for SEARCH's substring matches.
func foldCase(s string) string { return strings.ToLower(s) }

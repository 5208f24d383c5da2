package imapd

// Message numbers of the selected state: sequence sets, UID sets and "$"
// (RFC 5182) resolved against the view, as ranges of view indexes.

import (
	"errors"
	"slices"

	"github.com/emersion/go-imap/v2"

	"github.com/postoffice/postoffice/store"
)

// idxRange is an inclusive range of view indexes.
type idxRange struct{ lo, hi int }

// errBadSeqNum is returned for a static sequence number beyond the view.
var errBadSeqNum = &imap.Error{
	Type: imap.StatusResponseTypeBad,
	Code: imap.ResponseCodeClientBug,
	Text: "Message sequence number out of range",
}

// resolve turns a sequence set, UID set or "$" into view index ranges,
// ascending and merged. With strict, a static sequence number beyond the
// view is an error (RFC 9051 §6.4.5 and §9); UIDs never are, whatever
// strict says.
func (sel *selected) resolve(set imap.NumSet, strict bool) ([]idxRange, error) {
	var out []idxRange
	n := len(sel.uids)
	switch set := set.(type) {
	case imap.UIDSet:
		if imap.IsSearchRes(set) {
			for _, uid := range sel.saved {
				if i, ok := sel.find(uid); ok {
					out = append(out, idxRange{i, i})
				}
			}
			return mergeRanges(out), nil
		}
		if n == 0 {
			return nil, nil
		}
		maxUID := uint32(sel.uids[n-1])
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
			i, _ := slices.BinarySearch(sel.uids, store.UID(lo))
			j, found := slices.BinarySearch(sel.uids, store.UID(hi))
			if !found {
				j--
			}
			if i <= j {
				out = append(out, idxRange{i, j})
			}
		}
	case imap.SeqSet:
		for _, r := range set {
			lo, hi := r.Start, r.Stop
			if strict && ((lo != 0 && lo > uint32(n) && hi != 0) || (hi != 0 && hi > uint32(n))) {
				return nil, errBadSeqNum
			}
			if n == 0 {
				continue
			}
			if lo == 0 || lo > uint32(n) {
				lo = uint32(n)
			}
			if hi == 0 || hi > uint32(n) {
				hi = uint32(n)
			}
			if lo > hi {
				lo, hi = hi, lo
			}
			out = append(out, idxRange{int(lo) - 1, int(hi) - 1})
		}
	default:
		return nil, errors.New("imapd: unknown number set type")
	}
	return mergeRanges(out), nil
}

func mergeRanges(rs []idxRange) []idxRange {
	if len(rs) < 2 {
		return rs
	}
	slices.SortFunc(rs, func(a, b idxRange) int { return a.lo - b.lo })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.lo <= last.hi+1 {
			if r.hi > last.hi {
				last.hi = r.hi
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// rangeCount is the number of indexes in rs.
func rangeCount(rs []idxRange) int {
	n := 0
	for _, r := range rs {
		n += r.hi - r.lo + 1
	}
	return n
}

// rangeUIDs lists the UIDs of rs.
func (sel *selected) rangeUIDs(rs []idxRange) []store.UID {
	out := make([]store.UID, 0, rangeCount(rs))
	for _, r := range rs {
		out = append(out, sel.uids[r.lo:r.hi+1]...)
	}
	return out
}

// uidSet builds an imap.UIDSet from ascending UIDs.
func uidSet(uids []store.UID) imap.UIDSet {
	var set imap.UIDSet
	for i := 0; i < len(uids); {
		j := i
		for j+1 < len(uids) && uids[j+1] == uids[j]+1 {
			j++
		}
		set.AddRange(imap.UID(uids[i]), imap.UID(uids[j]))
		i = j + 1
	}
	return set
}

package store

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// The List cache.
//
// List of a big mailbox used to re-read every message row, every time
// (SELECT, POP3 login). The store keeps an immutable snapshot per mailbox
// instead: the listing and the HIGHESTMODSEQ it is current to. A List with
// a snapshot reads, in one statement, only the rows stamped with a MODSEQ
// above the snapshot's, and builds a new snapshot from the old one plus
// those changes (copy-on-write: a slice once handed out is never written
// again). Because the changes come from the index, changes made by other
// hosts are seen as well as this host's; nothing has to invalidate the
// cache.
//
// This relies on expunged messages staying in the messages table as
// tombstones (expunged = 1, stamped with the MODSEQ of the expunge). Rows
// are never deleted today except with their whole mailbox (DELETE FROM
// mailboxes cascades), and mailbox ids are never reused. If tombstones are
// ever purged, purging must leave a mark (say a per-mailbox "purged up to"
// MODSEQ) that List checks, or a snapshot older than the purge would keep
// messages that are gone.

const (
	// listCacheMin is the smallest mailbox worth caching: smaller ones
	// list fast from the index anyway.
	listCacheMin = 256
	// listCacheDefault is the default entry budget (about 30 MB).
	listCacheDefault = 500_000
)

// listSnap is one cached listing. modseq and infos are replaced together
// under listCache.mu; the slice itself is never modified once stored.
type listSnap struct {
	id     MailboxID
	modseq uint64
	infos  []MessageInfo
	elem   *list.Element
}

// listCache holds snapshots in least-recently-used order, within a budget
// of total entries (messages). The zero value is ready for use.
type listCache struct {
	mu    sync.Mutex
	snaps map[MailboxID]*listSnap // guarded by mu
	lru   list.List               // guarded by mu; front is most recent; values *listSnap
	total int                     // guarded by mu; sum of len(infos)
}

// get returns the snapshot of id, if any, and marks it recently used.
func (c *listCache) get(id MailboxID) ([]MessageInfo, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sn := c.snaps[id]
	if sn == nil {
		return nil, 0, false
	}
	c.lru.MoveToFront(sn.elem)
	return sn.infos, sn.modseq, true
}

// put stores infos as the snapshot of id at modseq, unless a snapshot with
// a higher MODSEQ is there already, then evicts least recently used
// snapshots until the total fits budget. Listings below listCacheMin or
// above the whole budget are not kept (and drop an older snapshot).
func (c *listCache) put(id MailboxID, modseq uint64, infos []MessageInfo, budget int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sn := c.snaps[id]
	if sn != nil && sn.modseq > modseq {
		return
	}
	if len(infos) < listCacheMin || len(infos) > budget {
		if sn != nil {
			c.removeLocked(sn)
		}
		return
	}
	if sn == nil {
		if c.snaps == nil {
			c.snaps = make(map[MailboxID]*listSnap)
		}
		sn = &listSnap{id: id}
		sn.elem = c.lru.PushFront(sn)
		c.snaps[id] = sn
	} else {
		c.lru.MoveToFront(sn.elem)
		c.total -= len(sn.infos)
	}
	sn.modseq, sn.infos = modseq, infos
	c.total += len(infos)
	for c.total > budget {
		// The newest snapshot alone fits (checked above), so this stops
		// before reaching it.
		c.removeLocked(c.lru.Back().Value.(*listSnap))
	}
}

// drop forgets the snapshot of id.
func (c *listCache) drop(id MailboxID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sn := c.snaps[id]; sn != nil {
		c.removeLocked(sn)
	}
}

func (c *listCache) removeLocked(sn *listSnap) {
	c.lru.Remove(sn.elem)
	delete(c.snaps, sn.id)
	c.total -= len(sn.infos)
}

// listBudget is the entry budget of the List cache; 0 means off.
func (s *Store) listBudget() int {
	switch n := s.opts.ListCacheEntries; {
	case n < 0:
		return 0
	case n == 0:
		return listCacheDefault
	default:
		return n
	}
}

// listSince brings the snapshot (infos at modseq) of mailbox id up to date
// with the rows changed after modseq (changesSince: one statement, one
// snapshot). Expunges show up as tombstones, which are never purged (see
// the top of this file). It returns infos itself when nothing changed, else
// a new slice.
func (s *Store) listSince(ctx context.Context, id MailboxID, infos []MessageInfo, modseq uint64) ([]MessageInfo, uint64, error) {
	changes, hm, err := s.changesSince(ctx, id, modseq)
	if errors.Is(err, ErrNoMailbox) {
		return nil, 0, err
	}
	if err != nil {
		return nil, 0, fmt.Errorf("store: list mailbox %d: %w", id, err)
	}
	if hm < modseq {
		// Cannot happen while MODSEQs only grow (ids are not reused); do
		// not trust the snapshot if it does.
		return nil, 0, errStaleSnapshot
	}
	return mergeChanges(infos, changes), hm, nil
}

// errStaleSnapshot makes List fall back to a full listing.
var errStaleSnapshot = errors.New("store: list snapshot newer than the index")

// mergeChanges returns infos with changes applied: the latest state of
// each changed message (one per UID), expunged ones removed, new ones
// inserted in UID order. infos is not modified; with no changes it is
// returned as is.
func mergeChanges(infos []MessageInfo, changes []Change) []MessageInfo {
	if len(changes) == 0 {
		return infos
	}
	slices.SortFunc(changes, func(a, b Change) int { return cmp.Compare(a.UID, b.UID) })
	adds := 0
	for _, c := range changes {
		if !c.Expunged {
			adds++
		}
	}
	out := make([]MessageInfo, 0, len(infos)+adds)
	pos := 0
	for _, c := range changes {
		// Copy the unchanged run before this UID in one go; new messages
		// usually sort after everything, so this is mostly one copy.
		i, ok := slices.BinarySearchFunc(infos[pos:], c.UID, func(m MessageInfo, u UID) int { return cmp.Compare(m.UID, u) })
		out = append(out, infos[pos:pos+i]...)
		pos += i
		if ok {
			pos++ // replaced or removed below
		}
		if !c.Expunged {
			out = append(out, MessageInfo{UID: c.UID, Flags: c.Flags, Keywords: c.Keywords, Size: c.Size, ModSeq: c.ModSeq})
		}
	}
	out = append(out, infos[pos:]...)
	return slices.Clip(out)
}

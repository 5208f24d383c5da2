package imapd

import (
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/postoffice/postoffice/store"
)

// The parsed-structure cache.
//
// ENVELOPE and BODYSTRUCTURE come from the index (the raw header and the
// structure, cached at first indexing), but turning them into the library's
// structures costs a header parse and a decode on every FETCH, which is most
// of a header fetch's CPU, and loading them from the index most of the
// rest. A message's header, structure, size and internal date never change
// for its (mailbox, UIDVALIDITY, UID), so they are cached here, parsed,
// shared by every session of the server, and never go stale: an expunged
// message's entry is simply never asked for again and ages out. A FETCH of
// only cached items (no body sections) does not ask the index at all.
//
// The cache has two generations. Entries go into the current one; when its
// estimated size passes half the budget it becomes the old one and the old
// one is dropped. A hit in the old generation moves the entry back. This is
// LRU-like at the cost of one map operation, with no per-entry links.
//
// The library only reads the structures it is given, so one value can be
// written by many sessions at once.

// DefaultFetchCacheBytes is the parsed-structure cache's default budget.
const DefaultFetchCacheBytes = 64 << 20

type fetchKey struct {
	mbox     store.MailboxID
	validity uint32
	uid      store.UID
}

type fetchEntry struct {
	env     *imap.Envelope     // nil: not parsed yet
	bs      imap.BodyStructure // nil: not converted yet
	size    int64              // RFC822.SIZE
	date    time.Time          // INTERNALDATE
	envCost int                // estimated bytes of env
	bsCost  int                // estimated bytes of bs
}

func (e *fetchEntry) cost() int { return e.envCost + e.bsCost }

type fetchCache struct {
	half int // bytes per generation; 0: the cache is off

	mu       sync.Mutex
	cur, old map[fetchKey]*fetchEntry // guarded by mu
	curCost  int                      // guarded by mu
}

func newFetchCache(budget int) *fetchCache {
	c := &fetchCache{half: budget / 2}
	if c.half > 0 {
		c.cur = map[fetchKey]*fetchEntry{}
	}
	return c
}

// get returns the cached entry of a message, or nil.
func (c *fetchCache) get(k fetchKey) *fetchEntry {
	if c.half <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.cur[k]; e != nil {
		return e
	}
	if e := c.old[k]; e != nil {
		delete(c.old, k)
		c.addLocked(k, e)
		return e
	}
	return nil
}

// put stores the parsed forms of a message. Either may be nil; a later put
// for the same key fills in what the earlier one lacked (and replaces what
// two sessions parsed at once, counting it once). Entries are never
// modified after they are published: put replaces them.
func (c *fetchCache) put(k fetchKey, env *imap.Envelope, envCost int, bs imap.BodyStructure, bsCost int, size int64, date time.Time) {
	if c.half <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &fetchEntry{env: env, bs: bs, size: size, date: date, envCost: envCost, bsCost: bsCost}
	if prev := c.cur[k]; prev != nil {
		c.curCost -= prev.cost()
		if e.env == nil {
			e.env, e.envCost = prev.env, prev.envCost
		}
		if e.bs == nil {
			e.bs, e.bsCost = prev.bs, prev.bsCost
		}
	}
	c.addLocked(k, e)
}

func (c *fetchCache) addLocked(k fetchKey, e *fetchEntry) {
	c.cur[k] = e
	c.curCost += e.cost()
	if c.curCost > c.half {
		c.old, c.cur, c.curCost = c.cur, map[fetchKey]*fetchEntry{}, 0
	}
}

// envelopeCost estimates the memory of an envelope parsed from a header of
// n bytes: its strings are a subset of the header, plus the structs.
func envelopeCost(headerLen int) int { return 256 + headerLen/2 }

// structureCost estimates the memory of a converted body structure.
func structureCost(p *store.BodyPart) int {
	if p == nil {
		return 128
	}
	n := 256 + len(p.MessageHeader)/2
	for _, c := range p.Children {
		n += structureCost(c)
	}
	if p.Message != nil {
		n += structureCost(p.Message)
	}
	return n
}

// resolve returns what o asks of a message: ENVELOPE and BODYSTRUCTURE
// from cached when it has them, else built from m (the index's data) and
// cached for next time; size and date from m, or from cached when the
// index was not asked (m == nil).
func (c *fetchCache) resolve(k fetchKey, m *store.Message, cached *fetchEntry, o *imap.FetchOptions) (env *imap.Envelope, bs imap.BodyStructure, size int64, date time.Time) {
	if cached != nil {
		size, date = cached.size, cached.date
		if o.Envelope {
			env = cached.env
		}
		if o.BodyStructure != nil {
			bs = cached.bs
		}
	}
	if m == nil {
		return env, bs, size, date
	}
	size, date = m.Size, m.InternalDate
	var newEnv *imap.Envelope
	var newBS imap.BodyStructure
	if o.Envelope && env == nil {
		env = envelopeOf(m.Header)
		if len(m.Header) > 0 { // not a message whose file vanished
			newEnv = env
		}
	}
	if o.BodyStructure != nil && bs == nil {
		bs = bodyStructureOf(m.BodyStructure, m.Size)
		if m.BodyStructure != nil {
			newBS = bs
		}
	}
	if newEnv != nil || newBS != nil {
		c.put(k, newEnv, envelopeCost(len(m.Header)), newBS, structureCost(m.BodyStructure), m.Size, m.InternalDate)
	}
	return env, bs, size, date
}

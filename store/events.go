package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// MailboxEventKind says what happened to a mailbox.
type MailboxEventKind int

// Mailbox event kinds.
const (
	MailboxCreated MailboxEventKind = iota + 1
	MailboxRenamed
	MailboxDeleted
)

func (k MailboxEventKind) String() string {
	switch k {
	case MailboxCreated:
		return "created"
	case MailboxRenamed:
		return "renamed"
	case MailboxDeleted:
		return "deleted"
	}
	return "unknown"
}

// MailboxEvent is a change to a user's set of mailboxes. Message changes
// travel through Watch; these complete the feed.
type MailboxEvent struct {
	Kind    MailboxEventKind
	User    UserID
	Mailbox MailboxID
	Name    string // the name after the change (the old one for deletions)
}

// eventHub fans mailbox events out to subscribers on this host. Events from
// this host are delivered directly; the listener delivers other hosts'
// events and drops our own echoes by origin.
type eventHub struct {
	origin string
	mu     sync.Mutex
	next   int
	subs   map[int]func(MailboxEvent) // guarded by mu
}

func newEventHub() *eventHub {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &eventHub{origin: hex.EncodeToString(b[:]), subs: map[int]func(MailboxEvent){}}
}

// SubscribeMailboxes calls fn for every mailbox created, renamed or deleted
// on any host sharing the index. fn must not block. The returned function
// unsubscribes.
func (s *Store) SubscribeMailboxes(fn func(MailboxEvent)) func() {
	h := s.events
	h.mu.Lock()
	id := h.next
	h.next++
	h.subs[id] = fn
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		delete(h.subs, id)
		h.mu.Unlock()
	}
}

func (h *eventHub) publish(e MailboxEvent) {
	h.mu.Lock()
	fns := make([]func(MailboxEvent), 0, len(h.subs))
	for _, fn := range h.subs {
		fns = append(fns, fn)
	}
	h.mu.Unlock()
	for _, fn := range fns {
		fn(e)
	}
}

// mailboxNotice encodes an event for pg_notify: "m:<origin>:<kind>:<user>:<mailbox>:<name>".
func (h *eventHub) notice(e MailboxEvent) string {
	return fmt.Sprintf("m:%s:%d:%d:%d:%s", h.origin, e.Kind, e.User, e.Mailbox, e.Name)
}

// fromNotice decodes another host's event notice.
func (h *eventHub) fromNotice(p string) (MailboxEvent, bool) {
	parts := strings.SplitN(p, ":", 6)
	if len(parts) != 6 || parts[0] != "m" || parts[1] == h.origin {
		return MailboxEvent{}, false
	}
	k, err1 := strconv.Atoi(parts[2])
	u, err2 := strconv.ParseInt(parts[3], 10, 64)
	m, err3 := strconv.ParseInt(parts[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return MailboxEvent{}, false
	}
	return MailboxEvent{Kind: MailboxEventKind(k), User: UserID(u), Mailbox: MailboxID(m), Name: parts[5]}, true
}

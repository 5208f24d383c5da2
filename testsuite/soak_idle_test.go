package testsuite

// The chaos soak's IDLE watcher: one per user, on a random host, keeping a
// view of INBOX (sequence number → UID, X-Soak-ID) from the EXISTS and
// EXPUNGE responses it gets while idling. It counts
//   - changes announced out of order (EXPUNGE beyond the view, EXISTS
//     shrinking the mailbox, UIDs not ascending);
//   - changes missed: a message that appeared in INBOX (delivery or APPEND
//     acknowledged) while it idled, at least the margin before it stopped,
//     and was not announced; a message whose deletion was acknowledged that
//     long before it stopped and is still in the view; a message that
//     vanished across a reconnect though the model holds it; and at the
//     end, after everything settled, any difference between its view and a
//     fresh listing.

import (
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

type soakWEntry struct {
	uid    uint32
	id     string
	at     time.Time // when its EXISTS came
	known  bool
	idle   bool // announced by EXISTS while idling
	missed bool // counted as a missed EXPUNGE already
}

type soakWatcher struct {
	r      *soakRun
	u      *soakUser
	who    string
	margin time.Duration
	idling atomic.Bool

	mu         sync.Mutex // guards view, announced, roundStart (the handler runs on the client's reader)
	view       []soakWEntry
	announced  map[string]bool // in the view before the round began, or announced while idling
	roundStart time.Time

	rounds, reconnects int
	vanished           []soakAdd // gone across a reconnect: checked once acknowledgements had time to arrive
}

func (w *soakWatcher) handler() *imapclient.UnilateralDataHandler {
	return &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages == nil {
				return
			}
			n := int(*d.NumMessages)
			w.mu.Lock()
			defer w.mu.Unlock()
			if n < len(w.view) {
				w.r.st.idleOrder.Add(1)
				w.r.st.note("idle order", "%s %s: * %d EXISTS with %d messages in view and no EXPUNGE", w.who, w.u.name, n, len(w.view))
				return
			}
			for len(w.view) < n {
				w.view = append(w.view, soakWEntry{idle: w.idling.Load(), at: time.Now()})
			}
		},
		Expunge: func(seq uint32) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if seq == 0 || int(seq) > len(w.view) {
				w.r.st.idleOrder.Add(1)
				w.r.st.note("idle order", "%s %s: * %d EXPUNGE with %d messages in view", w.who, w.u.name, seq, len(w.view))
				return
			}
			w.view = append(w.view[:seq-1], w.view[seq:]...)
		},
	}
}

// fill fetches UID and X-Soak-ID of the view's unknown entries, checking
// that UIDs ascend.
func (w *soakWatcher) fill(s *soakIMAP) error {
	w.mu.Lock()
	var set imap.SeqSet
	for i, e := range w.view {
		if !e.known {
			set.AddNum(uint32(i + 1))
		}
	}
	w.mu.Unlock()
	if len(set) == 0 {
		return nil
	}
	s.begin("FETCH " + set.String() + " (UID BODY.PEEK[HEADER.FIELDS (X-Soak-ID)])")
	msgs, err := s.c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{soakIDSection}}).Collect()
	if err != nil {
		return err
	}
	uv := w.u.uidvalidityOf("INBOX")
	w.mu.Lock()
	defer w.mu.Unlock()
	var filled []int
	for _, m := range msgs {
		i := int(m.SeqNum) - 1
		if i < 0 || i >= len(w.view) || w.view[i].known {
			continue
		}
		e := &w.view[i]
		e.uid, e.id, e.known = uint32(m.UID), soakParseID(m.FindBodySection(soakIDSection)), true
		// Announced by IDLE, or before the round's IDLE began (an APPEND's
		// answer may come after the EXISTS that announced it).
		if e.idle || e.at.Before(w.roundStart) {
			w.announced[e.id] = true
		}
		w.u.checkUID(w.r.st, w.who, "INBOX", uv, e.uid, e.id)
		filled = append(filled, i)
	}
	for _, i := range filled {
		for j := i - 1; j >= 0; j-- {
			if w.view[j].known {
				if w.view[j].uid >= w.view[i].uid {
					w.r.st.idleOrder.Add(1)
					w.r.st.note("idle order", "%s %s: seq %d has UID %d, after seq %d with UID %d", w.who, w.u.name, i+1, w.view[i].uid, j+1, w.view[j].uid)
				}
				break
			}
		}
	}
	return nil
}

func (u *soakUser) uidvalidityOf(folder string) uint32 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.uidvalidity[folder]
}

// checkVanished counts messages that vanished across a reconnect though
// no removal was acknowledged within the margin after.
func (w *soakWatcher) checkVanished(all bool) {
	var keep []soakAdd
	for _, v := range w.vanished {
		if !all && time.Since(v.at) < w.margin {
			keep = append(keep, v)
			continue
		}
		if w.u.inst("INBOX", v.id).state == soakPresent {
			w.r.st.idleMissed.Add(1)
			w.r.st.note("idle missed", "%s %s: %s was in the view before a reconnect at %s, is not after it, and was not deleted",
				w.who, w.u.name, v.id, v.at.Format("15:04:05.000"))
		}
	}
	w.vanished = keep
}

// checkRound counts what a round of IDLE from start to end missed.
func (w *soakWatcher) checkRound(start, end time.Time) {
	w.checkVanished(false)
	u := w.u
	u.mu.Lock()
	defer u.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	inbox := u.folders["INBOX"]
	for _, a := range u.inboxAdds {
		if a.at.Before(start) || a.at.After(end.Add(-w.margin)) || w.announced[a.id] {
			continue
		}
		in := inbox.msgs[a.id]
		if in == nil || in.state != soakPresent && !in.goneAt.IsZero() && in.goneAt.Before(end.Add(2*time.Second)) {
			continue // removed meanwhile: it may never have been announced
		}
		w.announced[a.id] = true // count once
		w.r.st.idleMissed.Add(1)
		w.r.st.note("idle missed", "%s %s: %s appeared in INBOX at %s, IDLE ran %s–%s, no EXISTS announced it",
			w.who, u.name, a.id, a.at.Format("15:04:05.000"), start.Format("15:04:05.000"), end.Format("15:04:05.000"))
	}
	for i := range w.view {
		e := &w.view[i]
		if !e.known || e.missed {
			continue
		}
		in := inbox.msgs[e.id]
		if in != nil && in.state == soakAbsent && !in.goneAt.IsZero() && in.goneAt.Before(end.Add(-w.margin)) && in.goneAt.After(time.Time{}) {
			e.missed = true
			w.r.st.idleMissed.Add(1)
			w.r.st.note("idle missed", "%s %s: %s (UID %d) was removed at %s (acknowledged), IDLE ran %s–%s, no EXPUNGE announced it",
				w.who, u.name, e.id, e.uid, in.goneAt.Format("15:04:05.000"), start.Format("15:04:05.000"), end.Format("15:04:05.000"))
		}
	}
}

// watch runs the watcher until final is closed, then compares its view
// with a fresh listing.
func (r *soakRun) watch(u *soakUser, rng *mrand.Rand, margin time.Duration, final <-chan struct{}) {
	w := &soakWatcher{r: r, u: u, margin: margin}
	var prev map[string]bool // ids in the view when the last session broke
	for late := 0; ; {
		select {
		case <-final:
			if late++; late > 30 {
				r.st.idleMissed.Add(1)
				r.st.note("idle missed", "%s: no session for the final check", u.name)
				return
			}
		default:
		}
		h := r.pickHost(rng)
		w.who = fmt.Sprintf("idle@host%d", h.idx+1)
		w.mu.Lock()
		w.view, w.announced, w.roundStart = nil, map[string]bool{}, time.Time{}
		w.mu.Unlock()
		s, err := r.dialIMAP(u, h, "idle", w.handler())
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		done := w.session(s, u, rng, final, prev)
		s.close()
		if done {
			return
		}
		w.reconnects++
		w.mu.Lock()
		prev = map[string]bool{}
		for _, e := range w.view {
			if e.known {
				prev[e.id] = true
			}
		}
		w.mu.Unlock()
	}
}

// session runs one connection; true when the final check was done.
func (w *soakWatcher) session(s *soakIMAP, u *soakUser, rng *mrand.Rand, final <-chan struct{}, prev map[string]bool) bool {
	r := w.r
	s.begin("EXAMINE INBOX")
	data, err := s.c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return false
	}
	u.checkUIDValidity(r.st, w.who, "INBOX", data.UIDValidity)
	w.mu.Lock()
	w.view = make([]soakWEntry, data.NumMessages)
	w.mu.Unlock()
	if err := w.fill(s); err != nil {
		return false
	}
	w.mu.Lock()
	for _, e := range w.view {
		w.announced[e.id] = true
	}
	for id := range prev {
		if !w.announced[id] {
			w.vanished = append(w.vanished, soakAdd{id, time.Now()})
		}
	}
	w.mu.Unlock()
	for {
		start := time.Now()
		w.mu.Lock()
		w.roundStart = start
		w.mu.Unlock()
		w.idling.Store(true)
		s.begin("IDLE")
		cmd, err := s.c.Idle()
		if err != nil {
			w.idling.Store(false)
			return false
		}
		last := false
		select {
		case <-time.After(4*time.Second + time.Duration(rng.Int64N(int64(6*time.Second)))):
		case <-final:
			last = true
		case <-s.c.Closed():
		}
		end := time.Now()
		s.begin("DONE")
		err = cmd.Close()
		if err == nil {
			err = cmd.Wait()
		}
		w.idling.Store(false)
		if err != nil {
			return false
		}
		w.rounds++
		if err := w.fill(s); err != nil {
			return false
		}
		if last {
			return w.finalCheck(s, u)
		}
		w.checkRound(start, end)
	}
}

// finalCheck compares the view with a fresh listing, after everything
// settled.
func (w *soakWatcher) finalCheck(s *soakIMAP, u *soakUser) bool {
	w.checkVanished(true)
	w.mu.Lock()
	view := append([]soakWEntry(nil), w.view...)
	w.mu.Unlock()
	s.begin("UID FETCH 1:* (UID)")
	msgs, err := s.c.Fetch(soakAllUIDs, &imap.FetchOptions{UID: true}).Collect()
	if err != nil && len(view) > 0 {
		return false
	}
	fresh := map[uint32]bool{}
	for _, m := range msgs {
		fresh[uint32(m.UID)] = true
	}
	have := map[uint32]bool{}
	for _, e := range view {
		have[e.uid] = true
		if !fresh[e.uid] {
			w.r.st.idleMissed.Add(1)
			w.r.st.note("idle missed", "%s %s: final: UID %d (%s) still in the IDLE view but gone from INBOX (no EXPUNGE)", w.who, u.name, e.uid, e.id)
		}
	}
	for uid := range fresh {
		if !have[uid] {
			w.r.st.idleMissed.Add(1)
			w.r.st.note("idle missed", "%s %s: final: UID %d in INBOX but never announced to the IDLE view", w.who, u.name, uid)
		}
	}
	return true
}

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

var deliverSeq atomic.Int64

// deliver writes msg into user's Maildir new/ as an MTA does: a unique
// name in tmp/, then rename into new/. The file gets the owner of the
// Maildir directory (Dovecot's vmail). It returns when the file is visible.
func deliver(template, user string, msg []byte) (time.Time, error) {
	dir := strings.ReplaceAll(template, "%u", user)
	now := time.Now()
	name := fmt.Sprintf("%d.M%dP%dQ%d.%s,S=%d,W=%d", now.Unix(), now.Nanosecond()/1000, os.Getpid(),
		deliverSeq.Add(1), corpusHost, len(msg), crlfSize(msg))
	tmp := filepath.Join(dir, "tmp", name)
	if err := os.WriteFile(tmp, msg, 0o600); err != nil {
		return time.Time{}, err
	}
	if fi, err := os.Stat(dir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			_ = os.Chown(tmp, int(st.Uid), int(st.Gid))
		}
	}
	if err := os.Rename(tmp, filepath.Join(dir, "new", name)); err != nil {
		os.Remove(tmp)
		return time.Time{}, err
	}
	return time.Now(), nil
}

// mixedWorker is a desktop client on INBOX: poll with NOOP, fetch headers
// of new mail, read a couple of messages, mark them \Seen, now and then
// file a sent message, move one to Trash, delete+expunge one, IDLE
// briefly. Every 10 cycles a new message is delivered to its Maildir (when
// --maildir is set), so the next NOOP finds new mail. One op is one
// IMAP command.
type mixedWorker struct {
	cfg    *config
	c      *imapclient.Client
	user   string
	r      *rand.Rand
	uids   []imap.UID
	maxUID imap.UID
	cycle  int
	sent   [][]byte
	mail   [][]byte
}

func newMixedWorker(cfg *config, sent [][]byte) func(context.Context, int) (worker, error) {
	return func(_ context.Context, i int) (worker, error) {
		user := cfg.user(i)
		c, _, err := dialSelect(cfg, user, "INBOX")
		if err != nil {
			return nil, err
		}
		_ = c.Create("Sent", nil).Wait() // usually exists
		_ = c.Create("Trash", nil).Wait()
		w := &mixedWorker{cfg: cfg, c: c, user: user, r: rng(cfg.seed, i), sent: sent}
		g := newGen(cfg.seed*7 + uint64(i))
		for range 8 {
			w.mail = append(w.mail, g.message(g.size(64<<10), time.Now().UTC()))
		}
		if err := w.fetchNew(imap.UID(1), &imap.FetchOptions{UID: true, Flags: true}); err != nil {
			c.Close()
			return nil, err
		}
		return w, nil
	}
}

// fetchNew fetches items for UIDs from first up and records new UIDs.
func (w *mixedWorker) fetchNew(first imap.UID, items *imap.FetchOptions) error {
	set := imap.UIDSet{imap.UIDRange{Start: first, Stop: 0}}
	msgs, err := w.c.Fetch(set, items).Collect()
	if err != nil {
		return err
	}
	for _, m := range msgs {
		// "first:*" also returns the last message when first is past it.
		if m.UID >= first {
			w.uids = append(w.uids, m.UID)
			w.maxUID = max(w.maxUID, m.UID)
		}
	}
	return nil
}

func (w *mixedWorker) pick() imap.UID { return w.uids[w.r.IntN(len(w.uids))] }

func (w *mixedWorker) drop(uid imap.UID) {
	for i, u := range w.uids {
		if u == uid {
			w.uids = append(w.uids[:i], w.uids[i+1:]...)
			return
		}
	}
}

func (w *mixedWorker) step(_ context.Context, m *meter) error {
	w.cycle++
	ops := int64(0)
	var bytes int64
	defer func() { m.done(ops, bytes) }()
	if err := w.c.Noop().Wait(); err != nil {
		return fmt.Errorf("noop: %w", err)
	}
	ops++
	if mb := w.c.Mailbox(); mb != nil && int(mb.NumMessages) > len(w.uids) {
		if err := w.fetchNew(w.maxUID+1, headerItems); err != nil {
			return fmt.Errorf("fetch new: %w", err)
		}
		ops++
	}
	if len(w.uids) == 0 {
		return nil
	}
	var read imap.UIDSet
	read.AddNum(w.pick(), w.pick())
	_, b, err := drainFetch(w.c.Fetch(read, bodyItems))
	if err != nil {
		return fmt.Errorf("fetch body: %w", err)
	}
	bytes += b
	ops++
	seen := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}
	if err := w.c.Store(read, seen, nil).Close(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	ops++
	if w.cycle%5 == 0 {
		msg := w.sent[w.r.IntN(len(w.sent))]
		if err := appendOne(w.c, "Sent", msg, []imap.Flag{imap.FlagSeen}); err != nil {
			return fmt.Errorf("append: %w", err)
		}
		bytes += int64(len(msg))
		ops++
	}
	if w.cycle%7 == 0 && len(w.uids) > 20 {
		u := w.pick()
		if _, err := w.c.Move(imap.UIDSetNum(u), "Trash").Wait(); err != nil {
			return fmt.Errorf("move: %w", err)
		}
		w.drop(u)
		ops++
	}
	if w.cycle%10 == 0 && len(w.uids) > 20 {
		u := w.pick()
		del := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
		if err := w.c.Store(imap.UIDSetNum(u), del, nil).Close(); err != nil {
			return fmt.Errorf("store deleted: %w", err)
		}
		if err := w.c.Expunge().Close(); err != nil {
			return fmt.Errorf("expunge: %w", err)
		}
		w.drop(u)
		ops += 2
	}
	if w.cycle%10 == 5 && w.cfg.maildir != "" {
		if _, err := deliver(w.cfg.maildir, w.user, w.mail[w.r.IntN(len(w.mail))]); err != nil {
			return fmt.Errorf("deliver: %w", err)
		}
	}
	if w.cycle%4 == 0 {
		idle, err := w.c.Idle()
		if err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		if err := idle.Close(); err != nil {
			return fmt.Errorf("idle done: %w", err)
		}
		if err := idle.Wait(); err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		ops++
	}
	return nil
}

func (w *mixedWorker) close() { logoutClose(w.c) }

func runMixed(ctx context.Context, cfg *config) result {
	return runWorkers(ctx, cfg, "mixed", "cmds", newMixedWorker(cfg, appendMessages(cfg.seed+1, 16)))
}

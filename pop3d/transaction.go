package pop3d

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/postoffice/postoffice/store"
)

// snapshot syncs INBOX with the disk and numbers its messages for the
// session (RFC 1939 §4: numbers stay fixed for the whole session).
func (c *conn) snapshot(ctx context.Context, u store.UserID) (*store.Mailbox, []message, error) {
	mbox, err := c.srv.opts.Store.Mailbox(ctx, u, store.Inbox)
	if err != nil {
		return nil, nil, fmt.Errorf("open inbox: %w", err)
	}
	if err := c.srv.opts.Store.Sync(ctx, mbox.ID); err != nil {
		return nil, nil, fmt.Errorf("sync inbox: %w", err)
	}
	infos, _, err := c.srv.opts.Store.List(ctx, mbox.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("list inbox: %w", err)
	}
	msgs := make([]message, len(infos))
	for i, m := range infos {
		msgs[i] = message{uid: m.UID, size: m.Size, seen: m.Flags&store.FlagSeen != 0}
	}
	return mbox, msgs, nil
}

func (c *conn) writeLinef(format string, args ...any) error {
	fmt.Fprintf(c.bw, format, args...)
	_, err := c.bw.WriteString("\r\n")
	return err
}

// stat returns the number and total size of the messages not marked deleted.
func (c *conn) stat() (int, int64) {
	var size int64
	for _, m := range c.msgs {
		size += m.size
	}
	return len(c.msgs) - c.deletedN, size - c.deletedSize
}

// message returns message number arg, which must be a valid message number
// not marked deleted (RFC 1939 §5).
func (c *conn) message(arg string) (int, *message, error) {
	n, ok := parseNumber(arg)
	if !ok {
		return 0, nil, c.badCommand("invalid message number")
	}
	if n < 1 || n > len(c.msgs) {
		return 0, nil, &respError{text: "no such message"}
	}
	m := &c.msgs[n-1]
	if m.deleted {
		return 0, nil, errResp("", "message %d already deleted", n)
	}
	return n, m, nil
}

// oneArg returns the single argument of cmd, or ok=false if there is none.
func (c *conn) oneArg(cmd command) (arg string, ok bool, err error) {
	args, err := cmd.args()
	if err != nil || len(args) > 1 {
		return "", false, c.badCommand("syntax error in arguments")
	}
	if len(args) == 0 {
		return "", false, nil
	}
	return args[0], true, nil
}

// cmdStat implements STAT (RFC 1939 §5).
func (c *conn) cmdStat(cmd command) error {
	if cmd.rest != "" {
		return c.badCommand("STAT takes no arguments")
	}
	n, size := c.stat()
	return c.writeLinef("+OK %d %d", n, size)
}

// cmdList implements LIST [msg] (RFC 1939 §5).
func (c *conn) cmdList(cmd command) error {
	arg, ok, err := c.oneArg(cmd)
	if err != nil {
		return err
	}
	if ok {
		n, m, err := c.message(arg)
		if err != nil {
			return err
		}
		return c.writeLinef("+OK %d %d", n, m.size)
	}
	n, size := c.stat()
	c.writeLinef("+OK %d messages (%d octets)", n, size)
	for i, m := range c.msgs {
		if !m.deleted {
			c.writeLinef("%d %d", i+1, m.size)
		}
	}
	return c.writeLine(".")
}

// uidl is the unique-id of a message: Dovecot's default pop3_uidl_format
// %08Xu%08Xv, so users moved from Dovecot do not download everything again.
func (c *conn) uidl(m *message) string {
	return fmt.Sprintf("%08X%08X", uint32(m.uid), c.mbox.UIDValidity)
}

// cmdUidl implements UIDL [msg] (RFC 1939 §7).
func (c *conn) cmdUidl(cmd command) error {
	arg, ok, err := c.oneArg(cmd)
	if err != nil {
		return err
	}
	if ok {
		n, m, err := c.message(arg)
		if err != nil {
			return err
		}
		return c.writeLinef("+OK %d %s", n, c.uidl(m))
	}
	c.writeLine("+OK unique-id listing follows")
	for i := range c.msgs {
		if m := &c.msgs[i]; !m.deleted {
			c.writeLinef("%d %s", i+1, c.uidl(m))
		}
	}
	return c.writeLine(".")
}

// cmdDele implements DELE (RFC 1939 §5): it only marks the message.
func (c *conn) cmdDele(cmd command) error {
	arg, ok, err := c.oneArg(cmd)
	if err != nil {
		return err
	}
	if !ok {
		return c.badCommand("DELE needs a message number")
	}
	n, m, err := c.message(arg)
	if err != nil {
		return err
	}
	m.deleted = true
	c.deletedN++
	c.deletedSize += m.size
	return c.writeLinef("+OK message %d deleted", n)
}

// cmdRset implements RSET (RFC 1939 §5).
func (c *conn) cmdRset(cmd command) error {
	if cmd.rest != "" {
		return c.badCommand("RSET takes no arguments")
	}
	for i := range c.msgs {
		c.msgs[i].deleted = false
	}
	c.deletedN, c.deletedSize = 0, 0
	n, size := c.stat()
	return c.writeLinef("+OK maildrop has %d messages (%d octets)", n, size)
}

// cmdNoop implements NOOP (RFC 1939 §5).
func (c *conn) cmdNoop(cmd command) error {
	if cmd.rest != "" {
		return c.badCommand("NOOP takes no arguments")
	}
	return c.writeLine("+OK")
}

// cmdRetr implements RETR (RFC 1939 §5).
func (c *conn) cmdRetr(cmd command) error {
	arg, ok, err := c.oneArg(cmd)
	if err != nil {
		return err
	}
	if !ok {
		return c.badCommand("RETR needs a message number")
	}
	return c.sendMessage(arg, -1)
}

// cmdTop implements TOP msg n (RFC 1939 §7).
func (c *conn) cmdTop(cmd command) error {
	args, err := cmd.args()
	if err != nil || len(args) != 2 {
		return c.badCommand("syntax: TOP msg lines")
	}
	lines, ok := parseNumber(args[1])
	if !ok {
		return c.badCommand("invalid line count")
	}
	return c.sendMessage(args[0], lines)
}

// loadAhead is how many messages one index query locates for RETR/TOP.
const loadAhead = 64

// loadAhead makes sure message i (0-based) knows where its file is: when it
// does not, it and up to loadAhead-1 following messages are located with one
// index query, so a client fetching the maildrop in order costs one query
// per loadAhead messages, not one per message. A message missing from the
// answer was expunged meanwhile and stays unloaded.
func (c *conn) loadAhead(ctx context.Context, i int) error {
	if c.msgs[i].loaded != nil {
		return nil
	}
	var idx []int
	var uids []store.UID
	for j := i; j < len(c.msgs) && len(uids) < loadAhead; j++ {
		if m := &c.msgs[j]; m.loaded == nil && !m.deleted {
			idx = append(idx, j)
			uids = append(uids, m.uid)
		}
	}
	if len(uids) == 0 { // i itself is marked deleted; callers check that first
		return nil
	}
	ms, err := c.srv.opts.Store.Messages(ctx, c.mbox.ID, uids, 0)
	if err != nil {
		return err
	}
	byUID := make(map[store.UID]*store.Message, len(ms))
	for k := range ms {
		byUID[ms[k].UID] = &ms[k]
	}
	for _, j := range idx {
		c.msgs[j].loaded = byUID[c.msgs[j].uid]
	}
	return nil
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}
	// 64 KiB: the store's CRLF reader fills half of what it is given.
	bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}
)

// sendMessage streams message arg as a multi-line response: all of it when
// lines < 0 (RETR), else its header and that many body lines (TOP). The
// message is opened before the status line, so a message that vanished
// (expunged by IMAP meanwhile) gets a plain -ERR.
func (c *conn) sendMessage(arg string, lines int) error {
	n, m, err := c.message(arg)
	if err != nil {
		return err
	}
	ctx, cancel := c.storeCtx()
	var rc io.ReadCloser
	if err = c.loadAhead(ctx, n-1); err == nil {
		if m.loaded != nil {
			rc, err = c.srv.opts.Store.OpenLoaded(ctx, c.mbox.ID, m.loaded)
		} else {
			err = fmt.Errorf("%w: uid %d", store.ErrNoMessage, m.uid)
		}
	}
	cancel()
	if err != nil {
		if errors.Is(err, store.ErrNoMessage) {
			c.log.Info("message vanished", "msg", n, "uid", m.uid)
			return errResp("", "message %d no longer exists", n)
		}
		return storeError(err)
	}
	defer rc.Close()

	if lines < 0 {
		// RFC 1939 §5: the octet count is the size before byte-stuffing;
		// ours is the CRLF size from the snapshot.
		c.writeLinef("+OK %d octets", m.size)
	} else {
		c.writeLine("+OK top of message follows")
	}
	dw := newDotWriter(c.bw)
	if lines < 0 {
		buf := bufPool.Get().(*[]byte)
		// Hide any WriterTo of rc: we want our buffer and our writer.
		_, err = io.CopyBuffer(dw, struct{ io.Reader }{rc}, *buf)
		bufPool.Put(buf)
	} else {
		br := readerPool.Get().(*bufio.Reader)
		br.Reset(rc)
		err = copyTop(dw, br, lines)
		br.Reset(nil)
		readerPool.Put(br)
	}
	if err != nil {
		// The response is half written: the client cannot resync.
		return &fatalError{fmt.Errorf("send message %d (uid %d): %w", n, m.uid, err)}
	}
	if err := dw.Close(); err != nil {
		return &fatalError{err}
	}
	if lines < 0 {
		m.retrieved = true
	}
	return nil
}

// update is the UPDATE state (RFC 1939 §6): mark the retrieved messages
// \Seen (unless Options.NoFlagUpdates), expunge the marked ones, then
// release the maildrop.
func (c *conn) update() error {
	defer c.releaseMaildrop()
	var seen, deleted []store.UID
	for _, m := range c.msgs {
		switch {
		case m.deleted:
			deleted = append(deleted, m.uid)
		case m.retrieved && !m.seen && !c.srv.opts.NoFlagUpdates:
			seen = append(seen, m.uid)
		}
	}
	if len(seen) > 0 {
		ctx, cancel := c.storeCtx()
		_, err := c.srv.opts.Store.SetFlags(ctx, c.mbox.ID, seen, store.FlagsAdd, store.FlagSeen, nil)
		cancel()
		if err != nil {
			// Not worth failing the QUIT for: the deletions matter more.
			c.log.Warn("marking retrieved messages seen", "n", len(seen), "err", err)
		}
	}
	if len(deleted) == 0 {
		return nil
	}
	ctx, cancel := c.storeCtx()
	defer cancel()
	gone, err := c.srv.opts.Store.Expunge(ctx, c.mbox.ID, deleted, false)
	if err != nil {
		return fmt.Errorf("expunge %d messages: %w", len(deleted), err)
	}
	c.log.Info("messages deleted", "n", len(gone))
	return nil
}

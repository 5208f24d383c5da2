package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// boxState is what a host caches about one mailbox: where it lives and the
// directory mtimes at which the index was last known to match the disk.
type boxState struct {
	id   MailboxID
	user UserID
	root string // the user's Maildir root
	dir  string // this mailbox's Maildir directory

	uidValidity uint32 // never changes for a mailbox id

	syncMu       sync.Mutex // serialises Sync and file renames of this mailbox on this host
	mtNew, mtCur int64      // guarded by syncMu; 0: unknown
	recheckAt    time.Time  // guarded by syncMu; see beginOwn
}

const mailboxCols = `id, user_id, name, uidvalidity, uid_next, highest_modseq, subscribed, special_use`

func scanMailbox(r interface{ Scan(...any) error }) (*Mailbox, error) {
	var m Mailbox
	var uv, next, ms, sub int64
	if err := r.Scan(&m.ID, &m.UserID, &m.Name, &uv, &next, &ms, &sub, &m.SpecialUse); err != nil {
		return nil, err
	}
	m.UIDValidity, m.UIDNext, m.HighestModSeq, m.Subscribed = uint32(uv), UID(next), uint64(ms), sub != 0
	return &m, nil
}

// box returns the cached state of mailbox id, loading it on first use.
func (s *Store) box(ctx context.Context, id MailboxID) (*boxState, error) {
	s.mu.Lock()
	b := s.boxes[id]
	s.mu.Unlock()
	if b != nil {
		// Another host may have renamed the folder; its notice drops our
		// entry too, but may still be on its way. One stat tells.
		if _, err := os.Stat(b.dir); err == nil {
			return b, nil
		}
		s.mu.Lock()
		if s.boxes[id] == b {
			delete(s.boxes, id)
		}
		s.mu.Unlock()
	}
	var userID UserID
	var name string
	var uv, mtNew, mtCur int64
	err := s.db.queryRow(ctx, `SELECT user_id, name, uidvalidity, dir_mtime_new, dir_mtime_cur FROM mailboxes WHERE id = $1`, id).
		Scan(&userID, &name, &uv, &mtNew, &mtCur)
	if errors.Is(err, errNoRows) {
		return nil, fmt.Errorf("%w: id %d", ErrNoMailbox, id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: load mailbox %d: %w", id, err)
	}
	u, err := s.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	root := s.MaildirPath(u)
	b = &boxState{id: id, user: userID, root: root, dir: filepath.Join(root, dirName(name)), uidValidity: uint32(uv), mtNew: mtNew, mtCur: mtCur}
	s.mu.Lock()
	if old := s.boxes[id]; old != nil {
		b = old
	} else {
		s.boxes[id] = b
	}
	s.mu.Unlock()
	return b, nil
}

// forgetUser drops cached mailbox state of a user after renames and
// deletions, so paths are recomputed.
func (s *Store) forgetUser(u UserID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, b := range s.boxes {
		if b.user == u {
			delete(s.boxes, id)
		}
	}
}

func (s *Store) nextUIDValidity(ctx context.Context, q querier, u UserID) (uint32, error) {
	var v int64
	err := q.queryRow(ctx, `UPDATE users SET last_uidvalidity =
		CASE WHEN last_uidvalidity + 1 > $1 THEN last_uidvalidity + 1 ELSE $1 END
		WHERE id = $2 RETURNING last_uidvalidity`, time.Now().Unix(), u).Scan(&v)
	if errors.Is(err, errNoRows) {
		return 0, fmt.Errorf("%w: id %d", ErrNoUser, u)
	}
	return uint32(v), err
}

// ensureRow makes sure an index row exists for a mailbox that exists on
// disk. UIDVALIDITY comes from a Dovecot dovecot-uidlist when there is one,
// so UIDs (and POP3 UIDLs) survive a move from Dovecot.
func (s *Store) ensureRow(ctx context.Context, u UserID, name, dir string, subscribed bool) error {
	var uv uint32
	if f, err := os.Open(filepath.Join(dir, "dovecot-uidlist")); err == nil {
		v, _, _, perr := parseDovecotUIDList(f)
		f.Close()
		if perr == nil {
			uv = v
		}
	}
	return s.db.tx(ctx, func(q querier) error {
		var n int64
		if err := q.queryRow(ctx, `SELECT COUNT(*) FROM mailboxes WHERE user_id = $1 AND name = $2`, u, name).Scan(&n); err != nil || n > 0 {
			return err
		}
		if uv == 0 {
			var err error
			if uv, err = s.nextUIDValidity(ctx, q, u); err != nil {
				return err
			}
		}
		_, err := q.exec(ctx, `INSERT INTO mailboxes (user_id, name, uidvalidity, subscribed, special_use)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, name) DO NOTHING`, u, name, uv, b2i(subscribed), guessSpecialUse(name))
		return err
	})
}

// guessSpecialUse gives folders found on disk the special use their
// conventional names imply.
func guessSpecialUse(name string) string {
	switch strings.ToLower(name) {
	case "sent", "sent items", "sent messages":
		return `\Sent`
	case "drafts":
		return `\Drafts`
	case "trash", "deleted items", "deleted messages":
		return `\Trash`
	case "junk", "spam":
		return `\Junk`
	case "archive", "archives":
		return `\Archive`
	}
	return ""
}

// readSubscriptions reads Dovecot's subscriptions file: a "V\t2" header
// and a blank line, then one name per line with levels in modified UTF-7
// separated by TABs.
func readSubscriptions(root string) map[string]bool {
	f, err := os.Open(filepath.Join(root, "subscriptions"))
	if err != nil {
		return nil
	}
	defer f.Close()
	subs := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "V\t") {
			continue
		}
		levels := strings.Split(l, "\t")
		for i, lv := range levels {
			if d, err := decodeMUTF7(lv); err == nil {
				levels[i] = d
			}
		}
		if name, err := validateName(strings.Join(levels, string(Delimiter))); err == nil {
			subs[name] = true
		}
	}
	return subs
}

// Mailboxes lists the user's mailboxes, INBOX first, after reconciling the
// index with the folders on disk: folders made by other tools are adopted,
// folders removed from disk are dropped.
func (s *Store) Mailboxes(ctx context.Context, u UserID) ([]Mailbox, error) {
	user, err := s.UserByID(ctx, u)
	if err != nil {
		return nil, err
	}
	root := s.MaildirPath(user)
	if err := initMaildir(root); err != nil {
		return nil, err
	}
	onDisk := map[string]bool{Inbox: true}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", root, err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if name, ok := nameFromDir(e.Name()); ok {
			onDisk[name] = true
		}
	}
	rows, err := s.mailboxRows(ctx, u)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	var subs map[string]bool
	for _, m := range rows {
		known[m.Name] = true
		if !onDisk[m.Name] {
			// Removed by another tool: drop the row (and its messages).
			if _, err := s.db.exec(ctx, `DELETE FROM mailboxes WHERE id = $1`, m.ID); err != nil {
				return nil, fmt.Errorf("store: drop vanished mailbox %s: %w", m.Name, err)
			}
			s.recountUsage(ctx, u)
			s.forgetUser(u)
		}
	}
	added := false
	for name := range onDisk {
		if known[name] {
			continue
		}
		if subs == nil {
			subs = readSubscriptions(root)
			if subs == nil {
				subs = map[string]bool{}
			}
		}
		if err := s.ensureRow(ctx, u, name, filepath.Join(root, dirName(name)), subs[name] || name == Inbox); err != nil {
			return nil, fmt.Errorf("store: adopt mailbox %s: %w", name, err)
		}
		added = true
	}
	if added {
		if rows, err = s.mailboxRows(ctx, u); err != nil {
			return nil, err
		}
	}
	out := rows[:0]
	for _, m := range rows {
		if onDisk[m.Name] {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if (out[i].Name == Inbox) != (out[j].Name == Inbox) {
			return out[i].Name == Inbox
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func (s *Store) mailboxRows(ctx context.Context, u UserID) ([]Mailbox, error) {
	rs, err := s.db.query(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE user_id = $1`, u)
	if err != nil {
		return nil, fmt.Errorf("store: list mailboxes: %w", err)
	}
	defer rs.Close()
	var out []Mailbox
	for rs.Next() {
		m, err := scanMailbox(rs)
		if err != nil {
			return nil, fmt.Errorf("store: list mailboxes: %w", err)
		}
		out = append(out, *m)
	}
	return out, rs.Err()
}

// Mailbox returns the user's mailbox called name (INBOX case-insensitive),
// adopting it from disk if another tool created it. ErrNoMailbox if there is
// none; ErrBadMailboxName for an invalid name.
func (s *Store) Mailbox(ctx context.Context, u UserID, name string) (*Mailbox, error) {
	name, err := validateName(name)
	if err != nil {
		return nil, err
	}
	m, err := s.mailboxByName(ctx, u, name)
	if err == nil {
		return m, nil
	}
	if !errors.Is(err, ErrNoMailbox) {
		return nil, err
	}
	user, err := s.UserByID(ctx, u)
	if err != nil {
		return nil, err
	}
	root := s.MaildirPath(user)
	dir := filepath.Join(root, dirName(name))
	if name == Inbox {
		if err := initMaildir(root); err != nil {
			return nil, err
		}
	} else if st, err := os.Stat(filepath.Join(dir, "cur")); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: %s", ErrNoMailbox, name)
	}
	if err := s.ensureRow(ctx, u, name, dir, name == Inbox); err != nil {
		return nil, err
	}
	return s.mailboxByName(ctx, u, name)
}

func (s *Store) mailboxByName(ctx context.Context, u UserID, name string) (*Mailbox, error) {
	m, err := scanMailbox(s.db.queryRow(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE user_id = $1 AND name = $2`, u, name))
	if errors.Is(err, errNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNoMailbox, name)
	}
	if err != nil {
		return nil, fmt.Errorf("store: look up mailbox %s: %w", name, err)
	}
	return m, nil
}

// CreateMailbox creates a mailbox and any missing parents, with the given
// special use (may be empty). ErrMailboxExists if it exists.
func (s *Store) CreateMailbox(ctx context.Context, u UserID, name, specialUse string) (*Mailbox, error) {
	name, err := validateName(name)
	if err != nil {
		return nil, err
	}
	if name == Inbox {
		return nil, fmt.Errorf("%w: %s", ErrMailboxExists, name)
	}
	user, err := s.UserByID(ctx, u)
	if err != nil {
		return nil, err
	}
	root := s.MaildirPath(user)
	if err := initMaildir(root); err != nil {
		return nil, err
	}
	if _, err := s.Mailbox(ctx, u, name); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrMailboxExists, name)
	} else if !errors.Is(err, ErrNoMailbox) {
		return nil, err
	}
	if err := s.ensureParents(ctx, u, name); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, dirName(name))
	if err := initMaildir(dir); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o600); err != nil {
		return nil, fmt.Errorf("store: create maildirfolder: %w", err)
	}
	var newID int64
	err = s.db.tx(ctx, func(q querier) error {
		uv, err := s.nextUIDValidity(ctx, q, u)
		if err != nil {
			return err
		}
		err = q.queryRow(ctx, `INSERT INTO mailboxes (user_id, name, uidvalidity, subscribed, special_use)
			VALUES ($1, $2, $3, 0, $4) ON CONFLICT (user_id, name) DO NOTHING RETURNING id`, u, name, uv, specialUse).Scan(&newID)
		if errors.Is(err, errNoRows) {
			return fmt.Errorf("%w: %s", ErrMailboxExists, name)
		}
		if err != nil {
			return err
		}
		return s.db.notify(ctx, q, s.events.notice(MailboxEvent{MailboxCreated, u, MailboxID(newID), name}))
	})
	if err != nil {
		return nil, err
	}
	s.events.publish(MailboxEvent{MailboxCreated, u, MailboxID(newID), name})
	return s.mailboxByName(ctx, u, name)
}

// ensureParents creates the missing superior mailboxes of name (RFC 9051
// §6.3.4: CREATE makes the hierarchy above the new name), INBOX aside.
func (s *Store) ensureParents(ctx context.Context, u UserID, name string) error {
	levels := strings.Split(name, string(Delimiter))
	for i := 1; i < len(levels); i++ {
		parent := strings.Join(levels[:i], string(Delimiter))
		if parent == Inbox {
			continue
		}
		if _, err := s.Mailbox(ctx, u, parent); errors.Is(err, ErrNoMailbox) {
			if _, err := s.CreateMailbox(ctx, u, parent, ""); err != nil && !errors.Is(err, ErrMailboxExists) {
				return err
			}
		}
	}
	return nil
}

// children returns the names of the mailboxes below name.
func (s *Store) children(ctx context.Context, u UserID, name string) ([]Mailbox, error) {
	all, err := s.Mailboxes(ctx, u)
	if err != nil {
		return nil, err
	}
	var out []Mailbox
	for _, m := range all {
		if strings.HasPrefix(m.Name, name+string(Delimiter)) {
			out = append(out, m)
		}
	}
	return out, nil
}

// DeleteMailbox removes a mailbox and its messages. INBOX cannot be
// deleted (ErrCannot); a mailbox with children gives ErrMailboxHasChild.
func (s *Store) DeleteMailbox(ctx context.Context, u UserID, name string) error {
	m, err := s.Mailbox(ctx, u, name)
	if err != nil {
		return err
	}
	if m.Name == Inbox {
		return fmt.Errorf("%w: cannot delete INBOX", ErrCannot)
	}
	kids, err := s.children(ctx, u, m.Name)
	if err != nil {
		return err
	}
	if len(kids) > 0 {
		return fmt.Errorf("%w: %s", ErrMailboxHasChild, m.Name)
	}
	b, err := s.box(ctx, m.ID)
	if err != nil {
		return err
	}
	// Move the directory out of sight first (into the root's tmp/, on the
	// same file system), then drop the rows, then the files.
	trash := filepath.Join(b.root, "tmp", "deleted-"+s.newKey())
	if err := os.Rename(b.dir, trash); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: delete mailbox %s: %w", m.Name, err)
	}
	err = s.db.tx(ctx, func(q querier) error {
		if _, err := q.exec(ctx, `DELETE FROM mailboxes WHERE id = $1`, m.ID); err != nil {
			return err
		}
		if err := recountUsageTx(ctx, q, u); err != nil {
			return err
		}
		if err := s.db.notify(ctx, q, s.events.notice(MailboxEvent{MailboxDeleted, u, m.ID, m.Name})); err != nil {
			return err
		}
		return s.db.notify(ctx, q, notice(m.ID, m.HighestModSeq+1))
	})
	if err != nil {
		return fmt.Errorf("store: delete mailbox %s: %w", m.Name, err)
	}
	s.forgetUser(u)
	s.lists.drop(m.ID)
	s.kick(m.ID, m.HighestModSeq+1)
	s.events.publish(MailboxEvent{MailboxDeleted, u, m.ID, m.Name})
	s.writeSubscriptions(ctx, u)
	if err := os.RemoveAll(trash); err != nil {
		s.log.Warn("remove deleted mailbox files", "dir", trash, "err", err)
	}
	return nil
}

// RenameMailbox renames a mailbox and its children. Renaming INBOX moves
// its messages into a new mailbox and leaves INBOX empty (RFC 9051 §6.3.6).
func (s *Store) RenameMailbox(ctx context.Context, u UserID, from, to string) error {
	src, err := s.Mailbox(ctx, u, from)
	if err != nil {
		return err
	}
	to, err = validateName(to)
	if err != nil {
		return err
	}
	if to == Inbox || strings.HasPrefix(to, src.Name+string(Delimiter)) && src.Name != Inbox {
		return fmt.Errorf("%w: cannot rename %s to %s", ErrCannot, src.Name, to)
	}
	if _, err := s.Mailbox(ctx, u, to); err == nil {
		return fmt.Errorf("%w: %s", ErrMailboxExists, to)
	} else if !errors.Is(err, ErrNoMailbox) {
		return err
	}
	if src.Name == Inbox {
		dst, err := s.CreateMailbox(ctx, u, to, "")
		if err != nil {
			return err
		}
		if err := s.Sync(ctx, src.ID); err != nil {
			return err
		}
		list, _, err := s.List(ctx, src.ID)
		if err != nil {
			return err
		}
		uids := make([]UID, len(list))
		for i, m := range list {
			uids[i] = m.UID
		}
		_, err = s.Move(ctx, src.ID, uids, dst.ID)
		return err
	}
	kids, err := s.children(ctx, u, src.Name)
	if err != nil {
		return err
	}
	user, err := s.UserByID(ctx, u)
	if err != nil {
		return err
	}
	root := s.MaildirPath(user)
	if err := s.ensureParents(ctx, u, to); err != nil {
		return err
	}
	type mv struct {
		id       MailboxID
		old, new string
	}
	moves := []mv{{src.ID, src.Name, to}}
	for _, k := range kids {
		moves = append(moves, mv{k.ID, k.Name, to + k.Name[len(src.Name):]})
	}
	for _, m := range moves {
		if _, err := validateName(m.new); err != nil {
			return err
		}
	}
	// Disk first: a crash after it leaves folders the next listing adopts
	// under their new names, never rows pointing at nothing.
	for i, m := range moves {
		if err := os.Rename(filepath.Join(root, dirName(m.old)), filepath.Join(root, dirName(m.new))); err != nil {
			for j := i - 1; j >= 0; j-- {
				_ = os.Rename(filepath.Join(root, dirName(moves[j].new)), filepath.Join(root, dirName(moves[j].old)))
			}
			return fmt.Errorf("store: rename %s: %w", m.old, err)
		}
	}
	err = s.db.tx(ctx, func(q querier) error {
		for _, m := range moves {
			if _, err := q.exec(ctx, `UPDATE mailboxes SET name = $1 WHERE id = $2`, m.new, m.id); err != nil {
				return err
			}
			if err := s.db.notify(ctx, q, s.events.notice(MailboxEvent{MailboxRenamed, u, m.id, m.new})); err != nil {
				return err
			}
		}
		return nil
	})
	s.forgetUser(u)
	if err != nil {
		return fmt.Errorf("store: rename %s: %w", src.Name, err)
	}
	for _, m := range moves {
		s.events.publish(MailboxEvent{MailboxRenamed, u, m.id, m.new})
	}
	s.writeSubscriptions(ctx, u)
	return nil
}

// SetSubscribed subscribes or unsubscribes a mailbox.
func (s *Store) SetSubscribed(ctx context.Context, u UserID, name string, sub bool) error {
	m, err := s.Mailbox(ctx, u, name)
	if err != nil {
		return err
	}
	if _, err := s.db.exec(ctx, `UPDATE mailboxes SET subscribed = $1 WHERE id = $2`, b2i(sub), m.ID); err != nil {
		return fmt.Errorf("store: subscribe %s: %w", name, err)
	}
	s.writeSubscriptions(ctx, u)
	return nil
}

// writeSubscriptions mirrors the user's subscriptions into Dovecot's
// subscriptions file in the Maildir root, so Dovecot and other tools reading
// the tree see the same subscribed folders. Failures are logged: the index
// is the truth.
func (s *Store) writeSubscriptions(ctx context.Context, u UserID) {
	user, err := s.UserByID(ctx, u)
	if err != nil {
		return
	}
	rows, err := s.mailboxRows(ctx, u)
	if err != nil {
		s.log.Warn("write subscriptions", "user", u, "err", err)
		return
	}
	var names []string
	for _, m := range rows {
		if !m.Subscribed {
			continue
		}
		levels := strings.Split(m.Name, string(Delimiter))
		for i, l := range levels {
			levels[i] = encodeMUTF7(l)
		}
		names = append(names, strings.Join(levels, "\t"))
	}
	sort.Strings(names)
	root := s.MaildirPath(user)
	body := "V\t2\n\n" + strings.Join(names, "\n")
	if len(names) > 0 {
		body += "\n"
	}
	tmp := filepath.Join(root, "tmp", "subscriptions."+s.newKey())
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		s.log.Warn("write subscriptions", "user", u, "err", err)
		return
	}
	if err := os.Rename(tmp, filepath.Join(root, "subscriptions")); err != nil {
		os.Remove(tmp)
		s.log.Warn("write subscriptions", "user", u, "err", err)
	}
}

// SetSpecialUse sets a mailbox's special-use attribute ("" clears it).
func (s *Store) SetSpecialUse(ctx context.Context, u UserID, name, use string) error {
	m, err := s.Mailbox(ctx, u, name)
	if err != nil {
		return err
	}
	if _, err := s.db.exec(ctx, `UPDATE mailboxes SET special_use = $1 WHERE id = $2`, use, m.ID); err != nil {
		return fmt.Errorf("store: set special use of %s: %w", name, err)
	}
	return nil
}

// Status syncs the mailbox with disk and returns its counters.
func (s *Store) Status(ctx context.Context, u UserID, name string) (*MailboxStatus, error) {
	m, err := s.Mailbox(ctx, u, name)
	if err != nil {
		return nil, err
	}
	if err := s.Sync(ctx, m.ID); err != nil {
		return nil, err
	}
	m, err = s.mailboxByName(ctx, u, m.Name)
	if err != nil {
		return nil, err
	}
	st := &MailboxStatus{Mailbox: *m}
	var n, unseen, deleted, size int64
	err = s.db.queryRow(ctx, `SELECT COUNT(*),
		COALESCE(SUM(CASE WHEN (flags & 1) = 0 THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN (flags & 8) <> 0 THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(size), 0)
		FROM messages WHERE mailbox_id = $1 AND expunged = 0`, m.ID).Scan(&n, &unseen, &deleted, &size)
	if err != nil {
		return nil, fmt.Errorf("store: status of %s: %w", name, err)
	}
	st.Messages, st.Unseen, st.Deleted, st.Size = uint32(n), uint32(unseen), uint32(deleted), size
	return st, nil
}

// recountUsage recomputes a user's quota usage from the index.
func (s *Store) recountUsage(ctx context.Context, u UserID) {
	if err := recountUsageTx(ctx, s.db, u); err != nil {
		s.log.Warn("recount quota usage", "user", u, "err", err)
	}
}

func recountUsageTx(ctx context.Context, q querier, u UserID) error {
	_, err := q.exec(ctx, `UPDATE users SET
		used_messages = (SELECT COUNT(*) FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id WHERE b.user_id = $1 AND m.expunged = 0),
		used_bytes = (SELECT COALESCE(SUM(m.size), 0) FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id WHERE b.user_id = $1 AND m.expunged = 0)
		WHERE id = $1`, u)
	return err
}

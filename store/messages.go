package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// List returns the messages of a mailbox in UID order, and the mailbox's
// HIGHESTMODSEQ: the listing has every change up to it, maybe some later
// ones (so replaying changes past it is always safe). Call Sync first to
// see outside deliveries.
//
// Listings of big mailboxes are cached (see listcache.go) and the same
// slice is returned to every caller until the mailbox changes: callers
// must not modify the result (neither its elements nor their Keywords).
func (s *Store) List(ctx context.Context, id MailboxID) ([]MessageInfo, uint64, error) {
	budget := s.listBudget()
	if budget > 0 {
		if infos, modseq, ok := s.lists.get(id); ok {
			out, hm, err := s.listSince(ctx, id, infos, modseq)
			switch {
			case err == nil:
				if hm != modseq {
					s.lists.put(id, hm, out, budget)
				}
				return out, hm, nil
			case errors.Is(err, ErrNoMailbox):
				s.lists.drop(id)
				return nil, 0, err
			case errors.Is(err, errStaleSnapshot):
				s.lists.drop(id)
			default:
				return nil, 0, err
			}
		}
	}
	out, hm, err := s.listAll(ctx, id)
	if err == nil && budget > 0 {
		s.lists.put(id, hm, out, budget)
	}
	return out, hm, err
}

// listAll reads the whole listing of a mailbox and its HIGHESTMODSEQ in
// one statement (one snapshot). No row at all: the mailbox is gone.
func (s *Store) listAll(ctx context.Context, id MailboxID) ([]MessageInfo, uint64, error) {
	rs, err := s.db.query(ctx, `SELECT b.highest_modseq, m.uid, m.flags, m.keywords, m.size, m.modseq
		FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id AND m.expunged = 0
		WHERE b.id = $1 ORDER BY m.uid`, id)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list mailbox %d: %w", id, err)
	}
	defer rs.Close()
	var out []MessageInfo
	var hm int64
	found := false
	for rs.Next() {
		var uid, fl, size, ms *int64
		var kw *string
		if err := rs.Scan(&hm, &uid, &fl, &kw, &size, &ms); err != nil {
			return nil, 0, fmt.Errorf("store: list mailbox %d: %w", id, err)
		}
		found = true
		if uid == nil {
			continue // an empty mailbox: the LEFT JOIN's lone mailbox row
		}
		out = append(out, MessageInfo{UID: UID(*uid), Flags: Flags(*fl), Keywords: splitKeywords(*kw), Size: *size, ModSeq: uint64(*ms)})
	}
	if err := rs.Err(); err != nil {
		return nil, 0, fmt.Errorf("store: list mailbox %d: %w", id, err)
	}
	if !found {
		return nil, 0, fmt.Errorf("%w: id %d", ErrNoMailbox, id)
	}
	return slices.Clip(out), uint64(hm), nil
}

// uidQuery builds the WHERE clause for a UID list: a range scan filtered in
// Go for long lists, an IN list for short ones.
func uidFilter(uids []UID) (clause string, args []any, filter map[UID]bool) {
	if len(uids) == 0 {
		return "1 = 0", nil, nil
	}
	if len(uids) <= 64 {
		ph := make([]string, len(uids))
		for i, u := range uids {
			ph[i] = fmt.Sprintf("$%d", i+2)
			args = append(args, int64(u))
		}
		return "uid IN (" + strings.Join(ph, ",") + ")", args, nil
	}
	lo, hi := uids[0], uids[0]
	filter = make(map[UID]bool, len(uids))
	for _, u := range uids {
		lo, hi = min(lo, u), max(hi, u)
		filter[u] = true
	}
	return "uid BETWEEN $2 AND $3", []any{int64(lo), int64(hi)}, filter
}

// Messages returns the given messages (in UID order) with the cached data
// that fields select, without opening message files. UIDs that do not
// exist or were expunged are skipped.
func (s *Store) Messages(ctx context.Context, id MailboxID, uids []UID, fields MessageFields) ([]Message, error) {
	clause, args, filter := uidFilter(uids)
	cols := `uid, flags, keywords, size, modseq, internal_date, maildir_key, filename`
	if fields&WithHeader != 0 {
		cols += `, header`
	}
	if fields&WithBodyStructure != 0 {
		cols += `, bodystructure`
	}
	rs, err := s.db.query(ctx, `SELECT `+cols+` FROM messages WHERE mailbox_id = $1 AND expunged = 0 AND `+clause+` ORDER BY uid`,
		append([]any{id}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("store: fetch messages of mailbox %d: %w", id, err)
	}
	out := make([]Message, 0, len(uids))
	var fill []int // indexes into out of messages whose cache is empty
	for rs.Next() {
		var uid, fl, size, ms, date int64
		var kw, key, fn string
		var hdr, bs []byte
		dest := []any{&uid, &fl, &kw, &size, &ms, &date, &key, &fn}
		if fields&WithHeader != 0 {
			dest = append(dest, &hdr)
		}
		if fields&WithBodyStructure != 0 {
			dest = append(dest, &bs)
		}
		if err := rs.Scan(dest...); err != nil {
			rs.Close()
			return nil, fmt.Errorf("store: fetch messages of mailbox %d: %w", id, err)
		}
		if filter != nil && !filter[UID(uid)] {
			continue
		}
		m := Message{MessageInfo: MessageInfo{UID: UID(uid), Flags: Flags(fl), Keywords: splitKeywords(kw), Size: size, ModSeq: uint64(ms)},
			InternalDate: fromNanos(date), Header: hdr, key: key, file: fn}
		if len(bs) > 0 {
			m.BodyStructure = new(BodyPart)
			if err := json.Unmarshal(bs, m.BodyStructure); err != nil {
				rs.Close()
				return nil, fmt.Errorf("store: decode cached structure of uid %d: %w", uid, err)
			}
		}
		if fields&WithHeader != 0 && len(hdr) == 0 || fields&WithBodyStructure != 0 && len(bs) == 0 {
			fill = append(fill, len(out))
		}
		out = append(out, m)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: fetch messages of mailbox %d: %w", id, err)
	}
	if len(fill) == 0 {
		return out, nil
	}
	// Messages indexed from their file names alone: read each once and
	// cache what it says, so later fetches need not open it.
	b, err := s.box(ctx, id)
	if err != nil {
		return nil, err
	}
	type filled struct {
		uid     UID
		hdr, bs []byte
	}
	var writes []filled
	drop := map[int]bool{}
	for _, i := range fill {
		m := &out[i]
		hdr, bs, err := readSummary(b, m.UID, m.key, m.file)
		if errors.Is(err, fs.ErrNotExist) {
			drop[i] = true // gone meanwhile; the next sync expunges it
			continue
		}
		if err != nil {
			return nil, err
		}
		writes = append(writes, filled{m.UID, hdr, bs})
		if fields&WithHeader != 0 {
			m.Header = hdr
		}
		if fields&WithBodyStructure != 0 {
			m.BodyStructure = new(BodyPart)
			if err := json.Unmarshal(bs, m.BodyStructure); err != nil {
				return nil, fmt.Errorf("store: decode structure of uid %d: %w", m.UID, err)
			}
		}
	}
	// One transaction for the batch: a commit per message would cost an
	// fsync each.
	if len(writes) > 0 {
		err := s.db.tx(ctx, func(q querier) error {
			for _, w := range writes {
				if _, err := q.exec(ctx, `UPDATE messages SET header = $1, bodystructure = $2 WHERE mailbox_id = $3 AND uid = $4 AND expunged = 0`,
					w.hdr, w.bs, b.id, int64(w.uid)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store: cache headers and structures of mailbox %d: %w", id, err)
		}
	}
	if len(drop) > 0 {
		kept := out[:0]
		for i, m := range out {
			if !drop[i] {
				kept = append(kept, m)
			}
		}
		out = kept
	}
	return out, nil
}

// readSummary reads message uid's file (found again by key if renamed)
// for the header and structure the index caches.
func readSummary(b *boxState, uid UID, key, fn string) (hdr, bs []byte, err error) {
	f, err := os.Open(filepath.Join(b.dir, fn))
	if errors.Is(err, fs.ErrNotExist) {
		found, ferr := findByKey(b.dir, key)
		if ferr != nil {
			return nil, nil, fs.ErrNotExist
		}
		f, err = os.Open(filepath.Join(b.dir, found))
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	hdr, bs, _, err = summarizeJSON(f)
	if err != nil {
		return nil, nil, fmt.Errorf("store: read uid %d: %w", uid, err)
	}
	return hdr, bs, nil
}

// OpenMessage opens a message for reading in CRLF form; size is its
// RFC822.SIZE. A file renamed by another host or tool is found again by its
// key. ErrNoMessage if the message is gone.
func (s *Store) OpenMessage(ctx context.Context, id MailboxID, uid UID) (io.ReadCloser, int64, error) {
	b, err := s.box(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	var key, fn string
	var size, exp int64
	err = s.db.queryRow(ctx, `SELECT maildir_key, filename, size, expunged FROM messages WHERE mailbox_id = $1 AND uid = $2`, id, int64(uid)).
		Scan(&key, &fn, &size, &exp)
	if errors.Is(err, errNoRows) || err == nil && exp != 0 {
		return nil, 0, fmt.Errorf("%w: uid %d", ErrNoMessage, uid)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("store: open uid %d: %w", uid, err)
	}
	rc, err := s.openFile(ctx, b, uid, key, fn)
	return rc, size, err
}

// OpenLoaded opens a message that Messages returned, like OpenMessage but
// without asking the index again: the file is looked for where it was when
// loaded (and by its key if renamed since). A message expunged after it was
// loaded opens as long as its file is there.
func (s *Store) OpenLoaded(ctx context.Context, id MailboxID, m *Message) (io.ReadCloser, error) {
	if m.key == "" {
		rc, _, err := s.OpenMessage(ctx, id, m.UID)
		return rc, err
	}
	b, err := s.box(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.openFile(ctx, b, m.UID, m.key, m.file)
}

// openFile opens message uid's file fn, or finds it again by key when
// another host or tool renamed it.
func (s *Store) openFile(ctx context.Context, b *boxState, uid UID, key, fn string) (io.ReadCloser, error) {
	id := b.id
	f, err := os.Open(filepath.Join(b.dir, fn))
	if errors.Is(err, fs.ErrNotExist) {
		// Renamed elsewhere: re-resolve by key (one listing).
		found, ferr := findByKey(b.dir, key)
		if ferr != nil {
			return nil, fmt.Errorf("%w: uid %d: file is gone", ErrNoMessage, uid)
		}
		if _, err := s.db.exec(ctx, `UPDATE messages SET filename = $1 WHERE mailbox_id = $2 AND uid = $3 AND expunged = 0`, found, id, int64(uid)); err != nil {
			s.log.Warn("record renamed file", "mailbox", id, "uid", uid, "err", err)
		}
		f, err = os.Open(filepath.Join(b.dir, found))
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: uid %d: file is gone", ErrNoMessage, uid)
		}
		return nil, fmt.Errorf("store: open uid %d: %w", uid, err)
	}
	return &messageReader{crlfReader: crlfReader{r: f}, f: f}, nil
}

// messageReader is an open message file read in CRLF form.
type messageReader struct {
	crlfReader
	f *os.File
}

func (m *messageReader) Close() error {
	m.release()
	return m.f.Close()
}

// quotaRoom checks, before any file is written, that adding bytes and msgs
// fits the user's quota. The insert re-checks atomically.
func (s *Store) quotaRoom(ctx context.Context, u UserID, bytes, msgs int64) error {
	var qb, qm, ub, um int64
	if err := s.db.queryRow(ctx, `SELECT quota_bytes, quota_messages, used_bytes, used_messages FROM users WHERE id = $1`, u).
		Scan(&qb, &qm, &ub, &um); err != nil {
		return fmt.Errorf("store: read quota of %d: %w", u, err)
	}
	if qb > 0 && ub+bytes > qb || qm > 0 && um+msgs > qm {
		return ErrOverQuota
	}
	return nil
}

// Append stores a message durably (file fsynced and renamed into cur/,
// index row committed) before it returns. A zero date means now.
func (s *Store) Append(ctx context.Context, id MailboxID, r io.Reader, flags Flags, keywords []string, date time.Time) (*AppendResult, error) {
	b, err := s.box(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.quotaRoom(ctx, b.user, 1, 1); err != nil {
		return nil, err
	}
	if date.IsZero() {
		date = time.Now()
	}
	keywords = normKeywords(append([]string(nil), keywords...))
	kw := s.keywordMapFor(b.dir, keywords)
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	clean := s.beginOwn(b)
	defer s.endOwn(b, clean)
	key, name, _, _, err := s.writeMessage(b.dir, r, formatInfo(flags, keywords, "", kw), date)
	if err != nil {
		return nil, err
	}
	row, err := readNewRow(filepath.Join(b.dir, "cur"), name, kw, false)
	if err != nil {
		return nil, fmt.Errorf("store: read back appended message: %w", err)
	}
	row.key, row.flags, row.keywords, row.date = key, flags, keywords, date
	uids, err := s.insertRows(ctx, b, []newRow{row}, true)
	if err != nil {
		os.Remove(filepath.Join(b.dir, "cur", name))
		return nil, err
	}
	return &AppendResult{UIDValidity: b.uidValidity, UID: uids[0]}, nil
}

type msgRow struct {
	uid      UID
	key, fn  string
	flags    Flags
	keywords []string
	size     int64
}

func (s *Store) loadRows(ctx context.Context, q querier, id MailboxID, uids []UID, extra string) ([]msgRow, error) {
	var clause string
	var args []any
	var filter map[UID]bool
	if uids == nil {
		clause = "1 = 1"
	} else {
		clause, args, filter = uidFilter(uids)
	}
	rs, err := q.query(ctx, `SELECT uid, maildir_key, filename, flags, keywords, size FROM messages
		WHERE mailbox_id = $1 AND expunged = 0 AND `+clause+extra+` ORDER BY uid`, append([]any{id}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []msgRow
	for rs.Next() {
		var r msgRow
		var uid, fl int64
		var kw string
		if err := rs.Scan(&uid, &r.key, &r.fn, &fl, &kw, &r.size); err != nil {
			return nil, err
		}
		if filter != nil && !filter[UID(uid)] {
			continue
		}
		r.uid, r.flags, r.keywords = UID(uid), Flags(fl), splitKeywords(kw)
		out = append(out, r)
	}
	return out, rs.Err()
}

func applyOp(op FlagOp, have, f Flags, haveKw, kw []string) (Flags, []string) {
	switch op {
	case FlagsAdd:
		return have | f, normKeywords(append(append([]string(nil), haveKw...), kw...))
	case FlagsRemove:
		drop := map[string]bool{}
		for _, k := range kw {
			drop[k] = true
		}
		var out []string
		for _, k := range haveKw {
			if !drop[k] {
				out = append(out, k)
			}
		}
		return have &^ f, out
	default:
		return f, normKeywords(append([]string(nil), kw...))
	}
}

// SetFlags changes flags and keywords of messages and returns the new state
// of those that changed. The index is updated first (one MODSEQ), then the
// file names are renamed to mirror the flags.
func (s *Store) SetFlags(ctx context.Context, id MailboxID, uids []UID, op FlagOp, flags Flags, keywords []string) ([]Change, error) {
	b, err := s.box(ctx, id)
	if err != nil {
		return nil, err
	}
	kw := s.keywordMapFor(b.dir, keywords)
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	var changes []Change
	var renames []msgRow
	var modseq uint64
	err = s.db.tx(ctx, func(q querier) error {
		changes, renames = nil, nil
		rows, err := s.loadRows(ctx, q, id, uids, "")
		if err != nil {
			return err
		}
		for _, r := range rows {
			nf, nk := applyOp(op, r.flags, flags, r.keywords, keywords)
			if nf == r.flags && joinKeywords(nk) == joinKeywords(r.keywords) {
				continue
			}
			if modseq == 0 {
				if modseq, err = bumpModSeq(ctx, q, id); err != nil {
					return err
				}
			}
			if _, err := q.exec(ctx, `UPDATE messages SET flags = $1, keywords = $2, modseq = $3 WHERE mailbox_id = $4 AND uid = $5`,
				int64(nf), joinKeywords(nk), modseq, id, int64(r.uid)); err != nil {
				return err
			}
			changes = append(changes, Change{UID: r.uid, Flags: nf, Keywords: nk, Size: r.size, ModSeq: modseq})
			r.flags, r.keywords = nf, nk
			renames = append(renames, r)
		}
		if modseq != 0 {
			return s.db.notify(ctx, q, notice(id, modseq))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: set flags in mailbox %d: %w", id, err)
	}
	if modseq != 0 {
		s.kick(id, modseq)
	}
	clean := s.beginOwn(b)
	s.mirrorFlags(ctx, b, renames, kw)
	s.endOwn(b, clean)
	return changes, nil
}

// mirrorFlags renames files so their info suffix shows the indexed flags.
// Failures are logged: the index stays the truth, and a later rename by
// another tool is picked up by Sync.
func (s *Store) mirrorFlags(ctx context.Context, b *boxState, rows []msgRow, kw *[26]string) {
	var renamed []msgRow // uid and new file name
	for _, r := range rows {
		sub, base, _ := strings.Cut(r.fn, "/")
		_, oldInfo, _ := splitName(base)
		_, _, extra := parseInfo(oldInfo, kw)
		name := r.key + ":2," + formatInfo(r.flags, r.keywords, extra, kw)
		if sub+"/"+base == "cur/"+name {
			continue
		}
		from := filepath.Join(b.dir, r.fn)
		err := os.Rename(from, filepath.Join(b.dir, "cur", name))
		if errors.Is(err, fs.ErrNotExist) {
			if found, ferr := findByKey(b.dir, r.key); ferr == nil {
				err = os.Rename(filepath.Join(b.dir, found), filepath.Join(b.dir, "cur", name))
			}
		}
		if err != nil {
			s.log.Debug("mirror flags into file name", "mailbox", b.id, "uid", r.uid, "err", err)
			continue
		}
		renamed = append(renamed, msgRow{uid: r.uid, fn: "cur/" + name})
	}
	if len(renamed) == 0 {
		return
	}
	// The new names in one transaction, after the renames: a commit per
	// file would cost an fsync each. A name not recorded is found again by
	// its key, so a failure here is only logged.
	err := s.db.tx(ctx, func(q querier) error {
		for _, r := range renamed {
			if _, err := q.exec(ctx, `UPDATE messages SET filename = $1 WHERE mailbox_id = $2 AND uid = $3`, r.fn, b.id, int64(r.uid)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Warn("record renamed files", "mailbox", b.id, "files", len(renamed), "err", err)
	}
}

// Expunge removes messages: with onlyDeleted, only those flagged \Deleted
// (nil uids: all of them). The index marks them expunged first (keeping a
// tombstone with the key), then the files are unlinked; a crash in between
// leaves a tombstone that Sync uses to finish the unlink.
func (s *Store) Expunge(ctx context.Context, id MailboxID, uids []UID, onlyDeleted bool) ([]UID, error) {
	b, err := s.box(ctx, id)
	if err != nil {
		return nil, err
	}
	if uids == nil && !onlyDeleted {
		return nil, errors.New("store: expunge: no UIDs given")
	}
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	clean := s.beginOwn(b)
	defer s.endOwn(b, clean)
	return s.expungeRows(ctx, b, uids, onlyDeleted, true)
}

func (s *Store) expungeRows(ctx context.Context, b *boxState, uids []UID, onlyDeleted, unlink bool) ([]UID, error) {
	var rows []msgRow
	var modseq uint64
	err := s.db.tx(ctx, func(q querier) error {
		extra := ""
		if onlyDeleted {
			extra = " AND (flags & 8) <> 0"
		}
		var err error
		if rows, err = s.loadRows(ctx, q, b.id, uids, extra); err != nil || len(rows) == 0 {
			return err
		}
		if modseq, err = bumpModSeq(ctx, q, b.id); err != nil {
			return err
		}
		// A tombstone keeps its file name while the unlink is pending
		// (see scanCur); with no file to unlink it is cleared at once.
		var bytes int64
		for _, r := range rows {
			fn := r.fn
			if !unlink {
				fn = ""
			}
			if _, err := q.exec(ctx, `UPDATE messages SET expunged = 1, modseq = $1, filename = $2, header = NULL, bodystructure = NULL WHERE mailbox_id = $3 AND uid = $4`,
				modseq, fn, b.id, int64(r.uid)); err != nil {
				return err
			}
			bytes += r.size
		}
		if _, err := q.exec(ctx, `UPDATE users SET used_bytes = used_bytes - $1, used_messages = used_messages - $2 WHERE id = $3`,
			bytes, len(rows), b.user); err != nil {
			return err
		}
		return s.db.notify(ctx, q, notice(b.id, modseq))
	})
	if err != nil {
		return nil, fmt.Errorf("store: expunge in mailbox %d: %w", b.id, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	s.kick(b.id, modseq)
	out := make([]UID, len(rows))
	var unlinked []UID
	for i, r := range rows {
		out[i] = r.uid
		if !unlink {
			continue
		}
		err := os.Remove(filepath.Join(b.dir, r.fn))
		if errors.Is(err, fs.ErrNotExist) {
			if found, ferr := findByKey(b.dir, r.key); ferr == nil {
				err = os.Remove(filepath.Join(b.dir, found))
			} else {
				err = nil
			}
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("unlink expunged message", "mailbox", b.id, "uid", r.uid, "err", err)
			continue
		}
		unlinked = append(unlinked, r.uid)
	}
	s.unlinkDone(ctx, b.id, unlinked)
	return out, nil
}

// unlinkDone records that the files of tombstones are gone, so a file that
// later shows up with one of their keys is a new message, not a leftover.
func (s *Store) unlinkDone(ctx context.Context, id MailboxID, uids []UID) {
	for len(uids) > 0 {
		n := min(len(uids), 64)
		clause, args, _ := uidFilter(uids[:n])
		if _, err := s.db.exec(ctx, `UPDATE messages SET filename = '' WHERE mailbox_id = $1 AND expunged = 1 AND `+clause,
			append([]any{id}, args...)...); err != nil {
			s.log.Warn("record unlinked files", "mailbox", id, "err", err)
			return
		}
		uids = uids[n:]
	}
}

// lockPair locks two mailboxes' sync mutexes in a fixed order.
func lockPair(a, b *boxState) func() {
	if a == b {
		a.syncMu.Lock()
		return a.syncMu.Unlock
	}
	if a.id > b.id {
		a, b = b, a
	}
	a.syncMu.Lock()
	b.syncMu.Lock()
	return func() { b.syncMu.Unlock(); a.syncMu.Unlock() }
}

// Copy copies messages into dst (hard links where the file system allows,
// else a byte copy), keeping flags, keywords and INTERNALDATE.
func (s *Store) Copy(ctx context.Context, src MailboxID, uids []UID, dst MailboxID) (*CopyResult, error) {
	return s.transfer(ctx, src, uids, dst, false)
}

// Move moves messages into dst: files are renamed, then one transaction
// indexes them in dst and expunges them from src. A crash in between leaves
// files that the next Sync of each mailbox reconciles; nothing is lost.
func (s *Store) Move(ctx context.Context, src MailboxID, uids []UID, dst MailboxID) (*CopyResult, error) {
	return s.transfer(ctx, src, uids, dst, true)
}

func (s *Store) transfer(ctx context.Context, src MailboxID, uids []UID, dst MailboxID, move bool) (*CopyResult, error) {
	sb, err := s.box(ctx, src)
	if err != nil {
		return nil, err
	}
	db, err := s.box(ctx, dst)
	if err != nil {
		return nil, err
	}
	if sb.user != db.user {
		return nil, fmt.Errorf("%w: mailboxes of different users", ErrCannot)
	}
	rows, err := s.loadRows(ctx, s.db, src, uids, "")
	if err != nil {
		return nil, fmt.Errorf("store: copy from mailbox %d: %w", src, err)
	}
	res := &CopyResult{UIDValidity: db.uidValidity}
	if len(rows) == 0 {
		return res, nil
	}
	if src == dst && move {
		return res, nil
	}
	if !move {
		var total int64
		for _, r := range rows {
			total += r.size
		}
		if err := s.quotaRoom(ctx, sb.user, total, int64(len(rows))); err != nil {
			return nil, err
		}
	}
	var allKw []string
	for _, r := range rows {
		allKw = append(allKw, r.keywords...)
	}
	skw := s.keywordMap(sb.dir)
	dkw := s.keywordMapFor(db.dir, normKeywords(allKw))
	unlock := lockPair(sb, db)
	defer unlock()
	cleanS, cleanD := s.beginOwn(sb), s.beginOwn(db)
	defer func() { s.endOwn(sb, cleanS); s.endOwn(db, cleanD) }()
	type placed struct {
		r       msgRow
		key, fn string
	}
	var done []placed
	for _, r := range rows {
		_, base, _ := strings.Cut(r.fn, "/")
		_, oldInfo, _ := splitName(base)
		_, _, extra := parseInfo(oldInfo, skw)
		info := formatInfo(r.flags, r.keywords, extra, dkw)
		from := filepath.Join(sb.dir, r.fn)
		// Moves get a fresh key too: the source keeps a tombstone with the
		// old key, and a message moved back must not look like it.
		key := s.newKey() + keySizes(r.key)
		name := key + ":2," + info
		to := filepath.Join(db.dir, "cur", name)
		err := s.placeFile(sb.dir, r.key, from, to, move)
		if errors.Is(err, fs.ErrNotExist) {
			continue // expunged by someone else meanwhile
		}
		if err != nil {
			s.rollbackPlaced(move, func(yield func(from, to string)) {
				for _, p := range done {
					yield(filepath.Join(db.dir, p.fn), filepath.Join(sb.dir, p.r.fn))
				}
			})
			return nil, err
		}
		done = append(done, placed{r: r, key: key, fn: "cur/" + name})
	}
	if err := syncDir(filepath.Join(db.dir, "cur")); err != nil {
		return nil, fmt.Errorf("store: fsync cur/: %w", err)
	}
	if len(done) == 0 {
		return res, nil
	}
	var dstMod, srcMod uint64
	err = s.db.tx(ctx, func(q querier) error {
		res.Pairs = res.Pairs[:0]
		var next, ms int64
		if err := q.queryRow(ctx, `UPDATE mailboxes SET uid_next = uid_next + $2, highest_modseq = highest_modseq + 1 WHERE id = $1 RETURNING uid_next, highest_modseq`,
			dst, len(done)).Scan(&next, &ms); err != nil {
			return err
		}
		dstMod = uint64(ms)
		uid := UID(next) - UID(len(done))
		var addBytes, addMsgs int64
		for _, p := range done {
			n, err := q.exec(ctx, `INSERT INTO messages (mailbox_id, uid, maildir_key, filename, flags, keywords, size, internal_date, modseq, header, bodystructure)
				SELECT $1, $2, $3, $4, flags, keywords, size, internal_date, $5, header, bodystructure FROM messages WHERE mailbox_id = $6 AND uid = $7
				ON CONFLICT DO NOTHING`, dst, int64(uid), p.key, p.fn, ms, src, int64(p.r.uid))
			if err != nil {
				return err
			}
			got := uid
			if n == 0 {
				var existing int64
				if err := q.queryRow(ctx, `SELECT uid FROM messages WHERE mailbox_id = $1 AND maildir_key = $2`, dst, p.key).Scan(&existing); err != nil {
					return fmt.Errorf("copy of uid %d vanished: %w", p.r.uid, err)
				}
				got = UID(existing)
			} else {
				addBytes += p.r.size
				addMsgs++
			}
			uid++
			res.Pairs = append(res.Pairs, UIDPair{Src: p.r.uid, Dst: got})
		}
		if err := s.db.notify(ctx, q, notice(dst, dstMod)); err != nil {
			return err
		}
		if move {
			m, err := bumpModSeq(ctx, q, src)
			if err != nil {
				return err
			}
			srcMod = m
			var subBytes, subMsgs int64
			for _, p := range done {
				n, err := q.exec(ctx, `UPDATE messages SET expunged = 1, modseq = $1, filename = '', header = NULL, bodystructure = NULL WHERE mailbox_id = $2 AND uid = $3 AND expunged = 0`,
					m, src, int64(p.r.uid))
				if err != nil {
					return err
				}
				if n > 0 {
					subBytes += p.r.size
					subMsgs++
				}
			}
			addBytes -= subBytes
			addMsgs -= subMsgs
			if err := s.db.notify(ctx, q, notice(src, srcMod)); err != nil {
				return err
			}
		}
		if addMsgs != 0 || addBytes != 0 {
			if _, err := q.exec(ctx, `UPDATE users SET used_bytes = used_bytes + $1, used_messages = used_messages + $2 WHERE id = $3`,
				addBytes, addMsgs, sb.user); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if !move {
			for _, p := range done {
				os.Remove(filepath.Join(db.dir, p.fn))
			}
		}
		// For a move the files already sit in dst; Sync of both sides
		// reconciles them, so nothing is lost.
		return nil, fmt.Errorf("store: copy into mailbox %d: %w", dst, err)
	}
	s.kick(dst, dstMod)
	if move {
		s.kick(src, srcMod)
	}
	sort.Slice(res.Pairs, func(i, j int) bool { return res.Pairs[i].Src < res.Pairs[j].Src })
	return res, nil
}

// keySizes returns the ",S=..,W=.." part of a key, for copies.
func keySizes(key string) string {
	if i := strings.Index(key, ",S="); i >= 0 {
		return key[i:]
	}
	if i := strings.Index(key, ",W="); i >= 0 {
		return key[i:]
	}
	return ""
}

// placeFile moves (rename) or copies (hard link, else byte copy) a message
// file, re-resolving a source renamed by someone else.
func (s *Store) placeFile(srcDir, key, from, to string, move bool) error {
	op := func(from string) error {
		if move {
			return os.Rename(from, to)
		}
		if err := os.Link(from, to); err == nil || errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return copyFile(from, to)
	}
	err := op(from)
	if errors.Is(err, fs.ErrNotExist) {
		found, ferr := findByKey(srcDir, key)
		if ferr != nil {
			return fs.ErrNotExist
		}
		err = op(filepath.Join(srcDir, found))
	}
	return err
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := filepath.Join(filepath.Dir(filepath.Dir(to)), "tmp", filepath.Base(to))
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if st, err := in.Stat(); err == nil {
		_ = os.Chtimes(tmp, st.ModTime(), st.ModTime())
	}
	return os.Rename(tmp, to)
}

func (s *Store) rollbackPlaced(move bool, each func(func(from, to string))) {
	each(func(placedAt, orig string) {
		if move {
			_ = os.Rename(placedAt, orig)
		} else {
			_ = os.Remove(placedAt)
		}
	})
}

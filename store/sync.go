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
	"sort"
	"strings"
	"time"
)

// Sync brings the index of a mailbox in line with its Maildir: files that
// appeared in new/ or cur/ get UIDs, renamed files update flags, vanished
// files are expunged. When neither directory's mtime moved since the last
// sync on this host (or, after a restart, since the mtimes recorded in the
// index), it costs two stat() calls.
func (s *Store) Sync(ctx context.Context, id MailboxID) error {
	b, err := s.box(ctx, id)
	if err != nil {
		return err
	}
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	return s.syncLocked(ctx, b)
}

// Rescan is Sync without trusting directory mtimes: it always lists new/
// and cur/ and compares them with the index. For `postoffice reindex`.
func (s *Store) Rescan(ctx context.Context, id MailboxID) error {
	b, err := s.box(ctx, id)
	if err != nil {
		return err
	}
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	b.mtNew, b.mtCur = 0, 0
	return s.syncLocked(ctx, b)
}

// mtimeSettle is how old a directory mtime must be before we trust that no
// later change can carry the same mtime (coarse timestamps, NFS).
const mtimeSettle = time.Second

func dirMtime(p string) (int64, error) {
	st, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return st.ModTime().UnixNano(), nil
}

func (s *Store) syncLocked(ctx context.Context, b *boxState) error {
	mtNew, err := dirMtime(filepath.Join(b.dir, "new"))
	if err != nil {
		return s.missingDir(b, err)
	}
	mtCur, err := dirMtime(filepath.Join(b.dir, "cur"))
	if err != nil {
		return s.missingDir(b, err)
	}
	recheck := !b.recheckAt.IsZero() && !time.Now().Before(b.recheckAt)
	if b.mtNew != 0 && mtNew == b.mtNew && mtCur == b.mtCur && !recheck {
		return nil
	}
	b.recheckAt = time.Time{}
	if s.opts.OnSync != nil {
		defer func(start time.Time) { s.opts.OnSync(time.Since(start)) }(time.Now())
	}
	moved := false
	if recheck || mtNew != b.mtNew || b.mtNew == 0 {
		if moved, err = s.moveNew(b); err != nil {
			return err
		}
	}
	if moved || recheck || mtCur != b.mtCur || b.mtCur == 0 {
		if err := s.scanCur(ctx, b); err != nil {
			return err
		}
	}
	// A directory mtime younger than mtimeSettle may be shared by a
	// change still to come (coarse timestamps, NFS). Trust it for now, so
	// a busy mailbox does not rescan on every event, but schedule one
	// verifying scan once it has settled. The index row only gets settled
	// values, for cold starts.
	now := time.Now().UnixNano()
	newest := max(mtNew, mtCur)
	if now-newest < int64(mtimeSettle) && b.recheckAt.IsZero() {
		b.recheckAt = time.Unix(0, newest).Add(mtimeSettle + 50*time.Millisecond)
	}
	settled := func(mt int64) int64 {
		if now-mt < int64(mtimeSettle) {
			return 0
		}
		return mt
	}
	if moved {
		mtNew = 0 // our own renames moved it; look again next time
	}
	if mtNew != b.mtNew || mtCur != b.mtCur {
		b.mtNew, b.mtCur = mtNew, mtCur
		if _, err := s.db.exec(ctx, `UPDATE mailboxes SET dir_mtime_new = $1, dir_mtime_cur = $2 WHERE id = $3`,
			settled(mtNew), settled(mtCur), b.id); err != nil {
			return fmt.Errorf("store: record mtimes of mailbox %d: %w", b.id, err)
		}
	}
	return nil
}

// recheckDelay is how long after our own changes to cur/ a full listing
// verifies that no outside tool changed it at the same moment.
const recheckDelay = 2 * time.Second

// beginOwn is called, with syncMu held, before we change files in cur/
// ourselves. It reports whether the index was in step with cur/.
//
// Our own renames move cur/'s mtime, and a full listing after each of them
// would make every STORE on a big mailbox cost a directory scan. So when
// the index was in step before our change, endOwn records the new mtime as
// in step too, and schedules one verifying scan recheckDelay later, which
// catches an outside change that happened in the same instant. A burst of
// our own changes thus costs one scan, not one per change.
func (s *Store) beginOwn(b *boxState) bool {
	mt, err := dirMtime(filepath.Join(b.dir, "cur"))
	return err == nil && b.mtCur != 0 && mt == b.mtCur
}

func (s *Store) endOwn(b *boxState, wasClean bool) {
	if !wasClean {
		return
	}
	mt, err := dirMtime(filepath.Join(b.dir, "cur"))
	if err != nil {
		b.mtCur = 0
		return
	}
	if mt == b.mtCur {
		// Nothing moved cur/ (a STORE that changed nothing, the source of
		// a COPY). A young mtime that a change could still share already
		// has its recheck scheduled by whoever recorded it.
		return
	}
	b.mtCur = mt
	if b.recheckAt.IsZero() {
		// Not postponed by later changes: a busy mailbox still gets its
		// verifying scan every recheckDelay.
		b.recheckAt = time.Now().Add(recheckDelay)
	}
}

func (s *Store) missingDir(b *boxState, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		if b.dir == b.root {
			return initMaildir(b.root)
		}
		return fmt.Errorf("%w: directory of mailbox %d is gone", ErrNoMailbox, b.id)
	}
	return fmt.Errorf("store: stat mailbox %d: %w", b.id, err)
}

// moveNew moves every complete file in new/ into cur/ with an info suffix,
// as Dovecot does. A file another host moved first is skipped.
func (s *Store) moveNew(b *boxState) (bool, error) {
	ents, err := os.ReadDir(filepath.Join(b.dir, "new"))
	if err != nil {
		return false, fmt.Errorf("store: list new/ of mailbox %d: %w", b.id, err)
	}
	moved := false
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !e.Type().IsRegular() {
			continue
		}
		key, info, _ := splitName(name)
		if key == "" {
			continue
		}
		err := os.Rename(filepath.Join(b.dir, "new", name), filepath.Join(b.dir, "cur", key+":2,"+info))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return moved, fmt.Errorf("store: move %s to cur/: %w", name, err)
		}
		moved = true
	}
	return moved, nil
}

type idxRow struct {
	uid      UID
	filename string
	flags    Flags
	keywords string
	expunged bool
}

func listCur(dir string) (map[string]string, error) {
	ents, err := os.ReadDir(filepath.Join(dir, "cur"))
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ents))
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		key, _, _ := splitName(name)
		if key == "" {
			continue
		}
		out[key] = name
	}
	return out, nil
}

// scanCur compares cur/ with the index and applies the differences.
func (s *Store) scanCur(ctx context.Context, b *boxState) error {
	disk, err := listCur(b.dir)
	if err != nil {
		return fmt.Errorf("store: list cur/ of mailbox %d: %w", b.id, err)
	}
	idx := make(map[string]idxRow, len(disk))
	rs, err := s.db.query(ctx, `SELECT uid, maildir_key, filename, flags, keywords, expunged FROM messages WHERE mailbox_id = $1`, b.id)
	if err != nil {
		return fmt.Errorf("store: load index of mailbox %d: %w", b.id, err)
	}
	for rs.Next() {
		var r idxRow
		var key string
		var uid, fl, exp int64
		if err := rs.Scan(&uid, &key, &r.filename, &fl, &r.keywords, &exp); err != nil {
			rs.Close()
			return err
		}
		r.uid, r.flags, r.expunged = UID(uid), Flags(fl), exp != 0
		idx[key] = r
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return err
	}
	kw := s.keywordMap(b.dir)
	// renamed is the update for a file whose name differs from the index's.
	renamed := func(r idxRow, name string) flagUpdate {
		_, info, _ := splitName(name)
		f, k, _ := parseInfo(info, kw)
		return flagUpdate{uid: r.uid, filename: "cur/" + name, flags: f, keywords: k,
			flagsChanged: f != r.flags || joinKeywords(k) != r.keywords && kw != nil}
	}
	var fresh []string
	var changed []flagUpdate
	var unlinked []UID
	for key, name := range disk {
		r, ok := idx[key]
		switch {
		case !ok:
			fresh = append(fresh, name)
		case r.expunged && r.filename != "":
			// Expunged in the index, unlink was interrupted: finish it.
			if err := os.Remove(filepath.Join(b.dir, "cur", name)); err == nil || errors.Is(err, fs.ErrNotExist) {
				unlinked = append(unlinked, r.uid)
			}
		case r.expunged:
			// A file with the key of a message expunged long ago: another
			// tool put it back (moved it in, restored a backup). It is a
			// new message; give it a fresh key, as Dovecot does with
			// duplicate keys, since the old key stays taken.
			fresh = append(fresh, s.rekey(b, name))
		case r.filename != "cur/"+name:
			changed = append(changed, renamed(r, name))
		}
	}
	if len(unlinked) > 0 {
		s.unlinkDone(ctx, b.id, unlinked)
	}
	var goneKeys []string
	for key, r := range idx {
		if _, ok := disk[key]; !ok && !r.expunged {
			goneKeys = append(goneKeys, key)
		}
	}
	var gone []UID
	if len(goneKeys) > 0 {
		// A file renamed by another host while we listed can be missed by
		// readdir; only expunge what a second listing also lacks.
		again, err := listCur(b.dir)
		if err != nil {
			return fmt.Errorf("store: list cur/ of mailbox %d: %w", b.id, err)
		}
		for _, key := range goneKeys {
			if name, ok := again[key]; ok {
				changed = append(changed, renamed(idx[key], name))
				continue
			}
			gone = append(gone, idx[key].uid)
		}
	}
	if len(changed) > 0 {
		if err := s.applyFlagUpdates(ctx, b, changed); err != nil {
			return err
		}
	}
	if len(gone) > 0 {
		if _, err := s.expungeRows(ctx, b, gone, false, false); err != nil {
			return err
		}
	}
	if len(fresh) > 0 {
		var pre map[string]UID
		if len(idx) == 0 {
			pre = s.dovecotUIDs(ctx, b)
		}
		if err := s.indexFiles(ctx, b, fresh, kw, pre); err != nil {
			return err
		}
	}
	return nil
}

// rekey renames a file in cur/ to a fresh key, keeping its size fields
// and info, and returns the new base name (the old one if the rename
// failed: then the next sync tries again).
func (s *Store) rekey(b *boxState, name string) string {
	key, info, _ := splitName(name)
	nn := s.newKey() + keySizes(key) + ":2," + info
	if err := os.Rename(filepath.Join(b.dir, "cur", name), filepath.Join(b.dir, "cur", nn)); err != nil {
		s.log.Warn("rename reused maildir key", "mailbox", b.id, "file", name, "err", err)
		return name
	}
	return nn
}

// dovecotUIDs returns the UIDs Dovecot gave the files of a mailbox that has
// never been indexed, when its dovecot-uidlist matches our UIDVALIDITY.
func (s *Store) dovecotUIDs(ctx context.Context, b *boxState) map[string]UID {
	f, err := os.Open(filepath.Join(b.dir, "dovecot-uidlist"))
	if err != nil {
		return nil
	}
	defer f.Close()
	uv, _, uids, err := parseDovecotUIDList(f)
	if err != nil {
		s.log.Warn("ignoring unreadable dovecot-uidlist", "dir", b.dir, "err", err)
		return nil
	}
	var ours, next int64
	if err := s.db.queryRow(ctx, `SELECT uidvalidity, uid_next FROM mailboxes WHERE id = $1`, b.id).Scan(&ours, &next); err != nil {
		return nil
	}
	if uint32(ours) != uv || next != 1 {
		return nil
	}
	return uids
}

type flagUpdate struct {
	uid          UID
	filename     string
	flags        Flags
	keywords     []string
	flagsChanged bool
}

func joinKeywords(k []string) string { return strings.Join(k, " ") }

func splitKeywords(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}

// applyFlagUpdates records files renamed outside our control: new file
// names, and new flags with a MODSEQ when the flags differ.
func (s *Store) applyFlagUpdates(ctx context.Context, b *boxState, ups []flagUpdate) error {
	var modseq uint64
	err := s.db.tx(ctx, func(q querier) error {
		bumped := false
		for _, u := range ups {
			if !u.flagsChanged {
				if _, err := q.exec(ctx, `UPDATE messages SET filename = $1 WHERE mailbox_id = $2 AND uid = $3`, u.filename, b.id, u.uid); err != nil {
					return err
				}
				continue
			}
			if !bumped {
				var err error
				if modseq, err = bumpModSeq(ctx, q, b.id); err != nil {
					return err
				}
				bumped = true
			}
			if _, err := q.exec(ctx, `UPDATE messages SET filename = $1, flags = $2, keywords = $3, modseq = $4 WHERE mailbox_id = $5 AND uid = $6`,
				u.filename, int64(u.flags), joinKeywords(u.keywords), modseq, b.id, u.uid); err != nil {
				return err
			}
		}
		if bumped {
			return s.db.notify(ctx, q, notice(b.id, modseq))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: update flags from disk in mailbox %d: %w", b.id, err)
	}
	if modseq != 0 {
		s.kick(b.id, modseq)
	}
	return nil
}

func bumpModSeq(ctx context.Context, q querier, id MailboxID) (uint64, error) {
	var m int64
	err := q.queryRow(ctx, `UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1 RETURNING highest_modseq`, id).Scan(&m)
	if errors.Is(err, errNoRows) {
		return 0, fmt.Errorf("%w: id %d", ErrNoMailbox, id)
	}
	return uint64(m), err
}

// notice is the change notice of a mailbox: "<id>:<modseq>:<commit time
// in unix microseconds>".
func notice(id MailboxID, modseq uint64) string {
	return fmt.Sprintf("%d:%d:%d", id, modseq, time.Now().UnixMicro())
}

// newRow is a message about to be indexed.
type newRow struct {
	key, filename string
	flags         Flags
	keywords      []string
	size          int64
	date          time.Time
	header, bs    []byte
	uid           UID // preassigned (Dovecot import), else 0
}

const indexBatch = 256

// indexFiles reads and indexes new files of cur/, in batches.
func (s *Store) indexFiles(ctx context.Context, b *boxState, names []string, kw *[26]string, pre map[string]UID) error {
	// Oldest first, so UIDs follow delivery order as far as names tell.
	sortByName(names)
	batch := make([]newRow, 0, indexBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := s.insertRows(ctx, b, batch, false)
		batch = batch[:0]
		return err
	}
	for _, name := range names {
		r, err := readNewRow(filepath.Join(b.dir, "cur"), name, kw, true)
		if errors.Is(err, fs.ErrNotExist) {
			continue // renamed or removed meanwhile; the next sync sees it
		}
		if err != nil {
			s.log.Warn("skip unreadable message file", "file", filepath.Join(b.dir, "cur", name), "err", err)
			continue
		}
		r.uid = pre[r.key]
		batch = append(batch, r)
		if len(batch) == indexBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func readNewRow(dir, name string, kw *[26]string, lazy bool) (newRow, error) {
	key, info, _ := splitName(name)
	fl, kws, _ := parseInfo(info, kw)
	if _, w, ok := parseSizesFromKey(key); lazy && ok && w >= 0 {
		// The name carries the CRLF size (",W=", written by Dovecot, by
		// us and by some MDAs): index from the name and a stat alone.
		// The header and structure cache is filled on first use
		// (Messages), so a huge new mailbox opens in seconds.
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return newRow{}, err
		}
		return newRow{key: key, filename: "cur/" + name, flags: fl, keywords: kws, size: w, date: st.ModTime()}, nil
	}
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return newRow{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return newRow{}, err
	}
	hdr, bs, size, err := summarizeJSON(f)
	if err != nil {
		return newRow{}, err
	}
	return newRow{key: key, filename: "cur/" + name, flags: fl, keywords: kws, size: size,
		date: st.ModTime(), header: hdr, bs: bs}, nil
}

// summarizeJSON is summarize with the structure encoded for the index.
func summarizeJSON(r io.Reader) (hdr, bs []byte, size int64, err error) {
	hdr, body, size, err := summarize(r)
	if err != nil {
		return nil, nil, 0, err
	}
	bs, err = json.Marshal(body)
	return hdr, bs, size, err
}

// insertRows indexes rows in one transaction: it reserves UIDs for the rows
// without one, bumps MODSEQ once, skips keys another indexer got to first,
// and updates quota usage. With checkQuota it fails with ErrOverQuota
// instead of exceeding the user's limits. It returns the UID each row ended
// up with (existing UIDs for keys indexed by someone else).
func (s *Store) insertRows(ctx context.Context, b *boxState, rows []newRow, checkQuota bool) ([]UID, error) {
	uids := make([]UID, len(rows))
	var modseq uint64
	err := s.db.tx(ctx, func(q querier) error {
		need, maxPre := 0, UID(0)
		for _, r := range rows {
			if r.uid == 0 {
				need++
			} else if r.uid > maxPre {
				maxPre = r.uid
			}
		}
		var next, ms int64
		err := q.queryRow(ctx, `UPDATE mailboxes SET
			uid_next = (CASE WHEN uid_next > $2 THEN uid_next ELSE $2 END) + $3,
			highest_modseq = highest_modseq + 1
			WHERE id = $1 RETURNING uid_next, highest_modseq`, b.id, int64(maxPre)+1, need).Scan(&next, &ms)
		if errors.Is(err, errNoRows) {
			return fmt.Errorf("%w: id %d", ErrNoMailbox, b.id)
		}
		if err != nil {
			return err
		}
		modseq = uint64(ms)
		uid := UID(next) - UID(need)
		assigned := make([]UID, len(rows))
		for i, r := range rows {
			if r.uid != 0 {
				assigned[i] = r.uid
			} else {
				assigned[i] = uid
				uid++
			}
		}
		// One multi-row INSERT; keys another indexer got to first come
		// back missing from RETURNING and keep their existing UID.
		var sb strings.Builder
		sb.WriteString(`INSERT INTO messages (mailbox_id, uid, maildir_key, filename, flags, keywords, size, internal_date, modseq, header, bodystructure) VALUES `)
		args := make([]any, 0, len(rows)*11)
		for i, r := range rows {
			if i > 0 {
				sb.WriteByte(',')
			}
			n := len(args)
			fmt.Fprintf(&sb, "($%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10, n+11)
			args = append(args, b.id, int64(assigned[i]), r.key, r.filename, int64(r.flags), joinKeywords(r.keywords), r.size, nanos(r.date), int64(modseq), r.header, r.bs)
		}
		sb.WriteString(` ON CONFLICT DO NOTHING RETURNING maildir_key`)
		rs, err := q.query(ctx, sb.String(), args...)
		if err != nil {
			return err
		}
		inserted := make(map[string]bool, len(rows))
		for rs.Next() {
			var k string
			if err := rs.Scan(&k); err != nil {
				rs.Close()
				return err
			}
			inserted[k] = true
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return err
		}
		var addBytes, addMsgs int64
		for i, r := range rows {
			if inserted[r.key] {
				uids[i] = assigned[i]
				addBytes += r.size
				addMsgs++
				continue
			}
			var existing int64
			if err := q.queryRow(ctx, `SELECT uid FROM messages WHERE mailbox_id = $1 AND maildir_key = $2`, b.id, r.key).Scan(&existing); err != nil {
				return fmt.Errorf("uid %d for %s taken: %w", assigned[i], r.key, err)
			}
			uids[i] = UID(existing)
		}
		if addMsgs > 0 {
			qs := `UPDATE users SET used_bytes = used_bytes + $1, used_messages = used_messages + $2 WHERE id = $3`
			if checkQuota {
				qs += ` AND (quota_bytes = 0 OR used_bytes + $1 <= quota_bytes) AND (quota_messages = 0 OR used_messages + $2 <= quota_messages)`
			}
			n, err := q.exec(ctx, qs, addBytes, addMsgs, b.user)
			if err != nil {
				return err
			}
			if n == 0 && checkQuota {
				return ErrOverQuota
			}
		}
		return s.db.notify(ctx, q, notice(b.id, modseq))
	})
	if err != nil {
		if errors.Is(err, ErrOverQuota) {
			return nil, err
		}
		return nil, fmt.Errorf("store: index messages of mailbox %d: %w", b.id, err)
	}
	s.kick(b.id, modseq)
	return uids, nil
}

func sortByName(names []string) {
	// Maildir keys start with the delivery time: "<sec>.M<usec>P<pid>Q<n>..."
	// (qmail, Dovecot, Postfix write these parts). Order by them, then by
	// name, so UIDs follow delivery order as far as names tell.
	type k struct {
		sec, usec, q int64
		name         string
	}
	num := func(s string, i int) (int64, int) {
		var v int64
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			v = v*10 + int64(s[i]-'0')
		}
		return v, i
	}
	ks := make([]k, len(names))
	for i, n := range names {
		e := k{name: n}
		var j int
		e.sec, j = num(n, 0)
		if strings.HasPrefix(n[j:], ".M") {
			e.usec, j = num(n, j+2)
			if j < len(n) && n[j] == 'P' {
				_, j = num(n, j+1)
				if j < len(n) && n[j] == 'Q' {
					e.q, _ = num(n, j+1)
				}
			}
		}
		ks[i] = e
	}
	sort.Slice(ks, func(i, j int) bool {
		a, b := ks[i], ks[j]
		if a.sec != b.sec {
			return a.sec < b.sec
		}
		if a.usec != b.usec {
			return a.usec < b.usec
		}
		if a.q != b.q {
			return a.q < b.q
		}
		return a.name < b.name
	})
	for i := range ks {
		names[i] = ks[i].name
	}
}

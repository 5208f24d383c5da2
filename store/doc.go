// Package store is postoffice's mail store: per-user Maildirs on a shared
// file system plus the message index in PostgreSQL (shared by every
// front-end host) or an embedded SQLite file (one host, the default).
//
// # What it owns
//
// Users, mailboxes (Maildir++ folders, names in modified UTF-7 on disk, as
// Dovecot lays them out), messages by UID, flags mirrored into file names,
// quota usage, the change feed, and the POP3 maildrop lock. It speaks in
// domain terms only: no IMAP or POP3 types, no sequence numbers, and no pgx,
// database/sql or go-maildir types in its API.
//
// # Invariants
//
//   - UIDs are assigned in the index by one UPDATE ... RETURNING on the
//     mailbox row; its row lock serialises hosts. A UID is never given twice
//     and never reused: expunged messages stay as tombstones keyed by their
//     Maildir key, so a file whose unlink was interrupted is removed by the
//     next Sync instead of coming back as a new message.
//   - A file is indexed at most once per mailbox: UNIQUE (mailbox_id,
//     maildir_key). Racing indexers insert with ON CONFLICT DO NOTHING and
//     simply skip the UIDs they reserved for files another indexer got.
//   - Append writes tmp/, fsyncs, renames into cur/ with ",S=,W=" in the
//     name, fsyncs cur/, then commits the row. A crash leaves nothing or a
//     complete file that Sync indexes.
//   - Every change bumps the mailbox's HIGHESTMODSEQ in its transaction and
//     stamps the changed rows; the change log (rows by MODSEQ) is the truth
//     and notifications are only hints.
//   - Sizes are of the CRLF form, computed once at indexing; readers get
//     CRLF streams from OpenMessage whatever the file's line endings.
//
// # Picking up outside deliveries
//
// Sync stats new/ and cur/. Unchanged mtimes (remembered per host, and in
// the mailbox row for cold starts) mean nothing to do. Otherwise files in
// new/ are moved to cur/ (as Dovecot does when a mailbox is opened
// read-write; we do it at indexing so the stored file name is stable), and
// cur/ is compared with the index by key: new keys are indexed, renamed
// files update flags, missing files are expunged (after a second listing,
// because readdir can miss a file renamed while it runs). A mtime younger
// than one second is not trusted (coarse timestamps, NFS) and is checked
// again. Our own renames in cur/ would otherwise force a full scan after
// every STORE; see beginOwn for how a burst of them costs one scan.
//
// A mailbox Dovecot served keeps its UIDVALIDITY and UIDs: on first
// indexing, dovecot-uidlist is honoured, and dovecot-keywords maps keyword
// letters in file names both ways.
//
// # Concurrency
//
// A Store is safe for concurrent use. Per mailbox, syncMu serialises Sync
// and our own file renames on this host; across hosts the database does.
// Watch records (one per watched mailbox per host) own one goroutine each,
// which refreshes the record's change log when kicked (after local commits,
// or by a LISTEN notice from another host), and runs Sync on inotify events
// and every PollInterval. The LISTEN goroutine reconnects by itself and
// then refreshes every record, so IDLE clients miss nothing. Close stops
// and waits for all of them.
package store

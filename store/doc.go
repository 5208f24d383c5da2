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
// # Reading changes: one snapshot
//
// Transactions that bump a mailbox's HIGHESTMODSEQ hold its row lock until
// they commit, so they commit in MODSEQ order. A reader that wants "every
// change up to M" must therefore read M and the rows in one statement (one
// snapshot): the change feed's refresh and List's incremental refresh join
// the mailbox row with the rows stamped above what they have. Reading M
// after the rows in a second statement loses a transaction that commits in
// between; reading M first and then the rows is safe but may see newer rows
// (harmless, since they are the latest state). This cost the soak two
// missed IDLE updates before it was written down.
//
// # Per-host caches
//
// List keeps an immutable snapshot per big mailbox (listcache.go), brought
// up to date from the rows changed since its MODSEQ. Callers share it and
// must not modify it. Expunged rows stay as tombstones forever; purging
// them would need a purge horizon that drops older snapshots and change
// logs.
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

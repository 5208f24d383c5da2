package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// migration is one schema version. Statements are separated by ";\n".
// The two dialects differ only in key columns and the blob type.
type migration struct {
	version int
	sql     string
}

// The schema, in the dialect-neutral form. {{ID}} is the auto-increment
// primary key, {{BLOB}} the binary type.
var migrations = []migration{
	{1, `
CREATE TABLE users (
	id {{ID}},
	name TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	disabled INTEGER NOT NULL DEFAULT 0,
	quota_bytes BIGINT NOT NULL DEFAULT 0,
	quota_messages BIGINT NOT NULL DEFAULT 0,
	used_bytes BIGINT NOT NULL DEFAULT 0,
	used_messages BIGINT NOT NULL DEFAULT 0,
	maildir_override TEXT NOT NULL DEFAULT '',
	last_uidvalidity BIGINT NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL,
	last_login_at BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE mailboxes (
	id {{ID}},
	user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	uidvalidity BIGINT NOT NULL,
	uid_next BIGINT NOT NULL DEFAULT 1,
	highest_modseq BIGINT NOT NULL DEFAULT 1,
	subscribed INTEGER NOT NULL DEFAULT 0,
	special_use TEXT NOT NULL DEFAULT '',
	dir_mtime_new BIGINT NOT NULL DEFAULT 0,
	dir_mtime_cur BIGINT NOT NULL DEFAULT 0,
	UNIQUE (user_id, name)
);
CREATE TABLE messages (
	mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid BIGINT NOT NULL,
	maildir_key TEXT NOT NULL,
	filename TEXT NOT NULL,
	flags INTEGER NOT NULL DEFAULT 0,
	keywords TEXT NOT NULL DEFAULT '',
	size BIGINT NOT NULL,
	internal_date BIGINT NOT NULL,
	modseq BIGINT NOT NULL,
	expunged INTEGER NOT NULL DEFAULT 0,
	header {{BLOB}},
	bodystructure {{BLOB}},
	PRIMARY KEY (mailbox_id, uid),
	UNIQUE (mailbox_id, maildir_key)
);
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq)`},
}

func dialect(sql, backend string) string {
	r := strings.NewReplacer(
		"{{ID}}", map[string]string{"postgres": "BIGSERIAL PRIMARY KEY", "sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT"}[backend],
		"{{BLOB}}", map[string]string{"postgres": "BYTEA", "sqlite": "BLOB"}[backend],
	)
	return r.Replace(sql)
}

// applyMigrations brings the schema up to date and returns how many
// versions it applied. On PostgreSQL an advisory lock serialises hosts that
// start at the same time.
func applyMigrations(ctx context.Context, d indexDB) (int, error) {
	err := d.tx(ctx, func(q querier) error {
		if d.name() == "postgres" {
			if _, err := q.exec(ctx, `SELECT pg_advisory_xact_lock(7370656)`); err != nil {
				return err
			}
		}
		_, err := q.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: create schema_migrations: %w", err)
	}
	applied := 0
	for _, m := range migrations {
		err := d.tx(ctx, func(q querier) error {
			if d.name() == "postgres" {
				if _, err := q.exec(ctx, `SELECT pg_advisory_xact_lock(7370656)`); err != nil {
					return err
				}
			}
			var n int64
			if err := q.queryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range strings.Split(dialect(m.sql, d.name()), ";\n") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := q.exec(ctx, stmt); err != nil {
					return fmt.Errorf("version %d: %w", m.version, err)
				}
			}
			if _, err := q.exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, m.version, time.Now().Unix()); err != nil {
				return err
			}
			applied++
			return nil
		})
		if err != nil {
			return applied, fmt.Errorf("store: migrate: %w", err)
		}
	}
	return applied, nil
}

func (d *pgDB) migrate(ctx context.Context) (int, error)     { return applyMigrations(ctx, d) }
func (d *sqliteDB) migrate(ctx context.Context) (int, error) { return applyMigrations(ctx, d) }

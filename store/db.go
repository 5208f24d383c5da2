package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// querier is the part of the index database that runs statements. SQL text
// is written once, with $1-style placeholders, in the common subset of
// PostgreSQL and SQLite (integers for booleans and times, no arrays).
type querier interface {
	exec(ctx context.Context, q string, args ...any) (int64, error)
	query(ctx context.Context, q string, args ...any) (rows, error)
	queryRow(ctx context.Context, q string, args ...any) row
}

type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

type row interface {
	Scan(dest ...any) error
}

// indexDB is the small internal interface both index backends implement
// (db_pg.go, db_sqlite.go). Everything above it is backend-neutral.
type indexDB interface {
	querier
	// tx runs fn in a transaction and commits it. It retries fn on
	// serialization failures, deadlocks and busy errors.
	tx(ctx context.Context, fn func(q querier) error) error
	// notify queues a change notice, delivered to other hosts on commit.
	// The embedded backend has no other hosts and does nothing.
	notify(ctx context.Context, q querier, payload string) error
	migrate(ctx context.Context) (int, error)
	ping(ctx context.Context) error
	name() string
	close() error
}

// errRetry marks a transaction error worth retrying.
var errRetry = errors.New("store: transaction conflict")

// errNoRows is what row.Scan returns when nothing matched, for both backends.
var errNoRows = errors.New("store: no rows")

func runTx(ctx context.Context, begin func(ctx context.Context, fn func(q querier) error) error, fn func(q querier) error) error {
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		err = begin(ctx, fn)
		if !errors.Is(err, errRetry) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
	return fmt.Errorf("store: transaction kept conflicting: %w", err)
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

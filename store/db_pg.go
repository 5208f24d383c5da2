package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgDB is the PostgreSQL index backend, on a pgxpool.
type pgDB struct {
	pool *pgxpool.Pool
	url  string
}

func openPG(ctx context.Context, url string) (*pgDB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store: parse database url: %w", err)
	}
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	// Statements are simple and few; the extended protocol with a
	// statement cache is the default and fine.
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connect to database: %w", err)
	}
	d := &pgDB{pool: pool, url: url}
	if err := d.ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return d, nil
}

func (d *pgDB) name() string { return "postgres" }

func (d *pgDB) close() error { d.pool.Close(); return nil }

func (d *pgDB) ping(ctx context.Context) error {
	if err := d.pool.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

func pgErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return errNoRows
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "40001", pe.Code == "40P01":
			return fmt.Errorf("%w: %w", errRetry, err)
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "57P"), // shutdown, crash, cannot connect now
			pe.Code == "53300":                // too many connections
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// Anything else from the driver that is not an SQL error is the
	// connection failing: the database is (for now) unavailable.
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

type pgq interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type pgQuerier struct{ q pgq }

func (p pgQuerier) exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := p.q.Exec(ctx, q, args...)
	if err != nil {
		return 0, pgErr(err)
	}
	return tag.RowsAffected(), nil
}

type pgRows struct{ pgx.Rows }

func (r pgRows) Err() error { return pgErr(r.Rows.Err()) }

func (p pgQuerier) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := p.q.Query(ctx, q, args...)
	if err != nil {
		return nil, pgErr(err)
	}
	return pgRows{r}, nil
}

type pgRow struct{ r pgx.Row }

func (r pgRow) Scan(dest ...any) error { return pgErr(r.r.Scan(dest...)) }

func (p pgQuerier) queryRow(ctx context.Context, q string, args ...any) row {
	return pgRow{p.q.QueryRow(ctx, q, args...)}
}

func (d *pgDB) exec(ctx context.Context, q string, args ...any) (int64, error) {
	return pgQuerier{d.pool}.exec(ctx, q, args...)
}

func (d *pgDB) query(ctx context.Context, q string, args ...any) (rows, error) {
	return pgQuerier{d.pool}.query(ctx, q, args...)
}

func (d *pgDB) queryRow(ctx context.Context, q string, args ...any) row {
	return pgQuerier{d.pool}.queryRow(ctx, q, args...)
}

func (d *pgDB) tx(ctx context.Context, fn func(q querier) error) error {
	return runTx(ctx, func(ctx context.Context, fn func(q querier) error) error {
		// A pooled connection that died with a database restart fails
		// the first statement; before COMMIT nothing happened, so that is
		// retried on another connection. A failed COMMIT is not: its
		// outcome is unknown to us.
		tx, err := d.pool.Begin(ctx)
		if err != nil {
			return retryUnavailable(pgErr(err))
		}
		defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
		if err := fn(pgQuerier{tx}); err != nil {
			return retryUnavailable(err)
		}
		return pgErr(tx.Commit(ctx))
	}, fn)
}

func (d *pgDB) notify(ctx context.Context, q querier, payload string) error {
	_, err := q.exec(ctx, "SELECT pg_notify('postoffice', $1)", payload)
	return err
}

func retryUnavailable(err error) error {
	if errors.Is(err, ErrUnavailable) && !errors.Is(err, errRetry) {
		return fmt.Errorf("%w: %w", errRetry, err)
	}
	return err
}

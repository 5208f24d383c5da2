package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // the embedded index driver
)

// sqliteDB is the embedded index backend. One process owns the file; WAL
// mode lets readers run beside the single writer.
type sqliteDB struct {
	db    *sql.DB
	stmts sync.Map // rewritten SQL -> *sql.Stmt, for statements outside transactions
}

// stmtQ runs short statements outside transactions through prepared
// statements, so the hot reads (OpenMessage, List, Messages) skip SQLite's
// parser. Long statements go through unprepared.
type stmtQ struct{ d *sqliteDB }

func (s stmtQ) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if v, ok := s.d.stmts.Load(q); ok {
		return v.(*sql.Stmt), nil
	}
	st, err := s.d.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if v, loaded := s.d.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return v.(*sql.Stmt), nil
	}
	return st, nil
}

func (s stmtQ) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if len(q) >= 4096 {
		return s.d.db.ExecContext(ctx, q, args...)
	}
	st, err := s.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (s stmtQ) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if len(q) >= 4096 {
		return s.d.db.QueryContext(ctx, q, args...)
	}
	st, err := s.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (s stmtQ) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if len(q) >= 4096 {
		return s.d.db.QueryRowContext(ctx, q, args...)
	}
	st, err := s.stmt(ctx, q)
	if err != nil {
		// Let database/sql report the error through Scan.
		return s.d.db.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func openSQLite(ctx context.Context, dir string) (*sqliteDB, error) {
	path := filepath.Join(dir, "index.db")
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	d := &sqliteDB{db: db}
	if err := d.ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

func (d *sqliteDB) name() string { return "sqlite" }

func (d *sqliteDB) close() error {
	d.stmts.Range(func(_, v any) bool { v.(*sql.Stmt).Close(); return true })
	return d.db.Close()
}

func (d *sqliteDB) ping(ctx context.Context) error {
	if err := d.db.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

func sqliteErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return errNoRows
	}
	msg := err.Error()
	if strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked") {
		return fmt.Errorf("%w: %w", errRetry, err)
	}
	return err
}

type sqlq interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type sqliteQuerier struct{ q sqlq }

// sqliteSQL rewrites $N placeholders to ?N. SQLite accepts both, but looks
// up "$N" as a name, which is quadratic in the number of parameters of the
// multi-row INSERTs. Short rewritten statements are cached.
var sqliteSQLCache sync.Map // string -> string

func sqliteSQL(q string) string {
	if v, ok := sqliteSQLCache.Load(q); ok {
		return v.(string)
	}
	b := []byte(q)
	inStr := false
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '\'':
			inStr = !inStr
		case !inStr && b[i] == '$' && i+1 < len(b) && b[i+1] >= '0' && b[i+1] <= '9':
			b[i] = '?'
		}
	}
	out := string(b)
	if len(q) < 4096 { // the long multi-row INSERTs are cheap to rewrite each time
		sqliteSQLCache.Store(q, out)
	}
	return out
}

func (s sqliteQuerier) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := s.q.ExecContext(ctx, sqliteSQL(q), args...)
	if err != nil {
		return 0, sqliteErr(err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

type sqliteRows struct{ r *sql.Rows }

func (r sqliteRows) Next() bool             { return r.r.Next() }
func (r sqliteRows) Scan(dest ...any) error { return sqliteErr(r.r.Scan(dest...)) }
func (r sqliteRows) Err() error             { return sqliteErr(r.r.Err()) }
func (r sqliteRows) Close()                 { r.r.Close() }

func (s sqliteQuerier) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := s.q.QueryContext(ctx, sqliteSQL(q), args...)
	if err != nil {
		return nil, sqliteErr(err)
	}
	return sqliteRows{r}, nil
}

type sqliteRow struct{ r *sql.Row }

func (r sqliteRow) Scan(dest ...any) error { return sqliteErr(r.r.Scan(dest...)) }

func (s sqliteQuerier) queryRow(ctx context.Context, q string, args ...any) row {
	return sqliteRow{s.q.QueryRowContext(ctx, sqliteSQL(q), args...)}
}

func (d *sqliteDB) exec(ctx context.Context, q string, args ...any) (int64, error) {
	return sqliteQuerier{stmtQ{d}}.exec(ctx, q, args...)
}

func (d *sqliteDB) query(ctx context.Context, q string, args ...any) (rows, error) {
	return sqliteQuerier{stmtQ{d}}.query(ctx, q, args...)
}

func (d *sqliteDB) queryRow(ctx context.Context, q string, args ...any) row {
	return sqliteQuerier{stmtQ{d}}.queryRow(ctx, q, args...)
}

func (d *sqliteDB) tx(ctx context.Context, fn func(q querier) error) error {
	return runTx(ctx, func(ctx context.Context, fn func(q querier) error) error {
		tx, err := d.db.BeginTx(ctx, nil)
		if err != nil {
			return sqliteErr(err)
		}
		defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
		if err := fn(sqliteQuerier{tx}); err != nil {
			return err
		}
		return sqliteErr(tx.Commit())
	}, fn)
}

func (d *sqliteDB) notify(context.Context, querier, string) error { return nil }

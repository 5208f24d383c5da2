package testsuite

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestWithDatabase(t *testing.T) {
	tests := []struct{ in, want string }{
		{DefaultDatabaseURL, "postgres://postgres@127.0.0.1:5432/po_x?sslmode=disable"},
		{"postgres://u:p@h/", "postgres://u:p@h/po_x"},
		{"host=h user=u", "host=h user=u dbname=po_x"},
	}
	for _, tt := range tests {
		if got := withDatabase(tt.in, "po_x"); got != tt.want {
			t.Errorf("withDatabase(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDeliver_concurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	const n = 20
	paths := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			paths[i] = Deliver(t, dir, []byte("Subject: x\n\nbody\n"))
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[p] {
			t.Fatalf("duplicate delivery path %s", p)
		}
		seen[p] = true
		if filepath.Dir(p) != filepath.Join(dir, "new") {
			t.Errorf("delivered to %s, want new/", p)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != "Subject: x\n\nbody\n" {
			t.Errorf("read %s = %q, %v", p, b, err)
		}
	}
	if es, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(es) != 0 {
		t.Errorf("tmp/ not empty: %d entries", len(es))
	}
	c := DeliverCur(t, dir, []byte("x\n"), "2,S")
	if !strings.HasSuffix(c, ":2,S") || filepath.Base(filepath.Dir(c)) != "cur" {
		t.Errorf("DeliverCur = %s", c)
	}
}

// TestNewDatabaseURL checks that a test database exists during the test and
// is dropped afterwards.
func TestNewDatabaseURL(t *testing.T) {
	var dbURL string
	t.Run("create", func(t *testing.T) {
		dbURL = NewDatabaseURL(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatalf("connect to fresh database: %v", err)
		}
		// An open connection must not keep the drop from working.
		t.Cleanup(func() { conn.Close(context.Background()) })
		if _, err := conn.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
			t.Fatal(err)
		}
	})
	if dbURL == "" {
		t.Skip("no database")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, dbURL); err == nil {
		conn.Close(ctx)
		t.Fatalf("database %s still exists after cleanup", dbURL)
	}
}

func TestNewStore(t *testing.T) {
	Backends(t, func(t *testing.T, backend string) {
		st := NewStore(t, backend)
		if got := st.Backend(); got != backend {
			t.Errorf("Backend() = %q, want %q", got, backend)
		}
		u := MustUser(t, st, "alice@example.org", "secret")
		if u.Name != "alice@example.org" {
			t.Errorf("user name %q", u.Name)
		}
		md := Maildir(t, st, u.Name)
		if want := filepath.Join(Options(t, st).DataDir, "alice@example.org", "Maildir"); md != want {
			t.Errorf("Maildir = %s, want %s", md, want)
		}
	})
}

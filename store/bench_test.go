package store_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
	"github.com/postoffice/postoffice/testsuite"
)

// fillCur writes n small messages straight into cur/, as a fast stand-in for
// n deliveries.
func fillCur(b *testing.B, dir string, n int) {
	b.Helper()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%d.M%dP1.bench,S=120:2,S", 1700000000+i/1000, i)
		msg := fmt.Sprintf("From: a@example.org\nTo: b@example.org\nSubject: message %d\nMessage-ID: <%d@bench>\n\nbody %d\n", i, i, i)
		if err := os.WriteFile(filepath.Join(dir, "cur", name), []byte(msg), 0o600); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIndexNew measures indexing 10,000 new messages in one Sync.
func BenchmarkIndexNew(b *testing.B) {
	for _, backend := range []string{testsuite.SQLite, testsuite.Postgres} {
		b.Run(backend, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				st := testsuite.NewStore(b, backend)
				u := testsuite.MustUser(b, st, "alice", "pw")
				root := testsuite.Maildir(b, st, "alice")
				fillCur(b, root, 10000)
				box, err := st.Mailbox(b.Context(), u.ID, "INBOX")
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := st.Sync(b.Context(), box.ID); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if l, _, _ := st.List(b.Context(), box.ID); len(l) != 10000 {
					b.Fatalf("indexed %d", len(l))
				}
				st.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/10000, "µs/msg")
		})
	}
}

// BenchmarkSyncUnchanged measures the check of an unchanged 100,000-message
// mailbox: it must be a couple of stat() calls.
func BenchmarkSyncUnchanged(b *testing.B) {
	for _, backend := range []string{testsuite.SQLite, testsuite.Postgres} {
		b.Run(backend, func(b *testing.B) {
			st := testsuite.NewStore(b, backend)
			u := testsuite.MustUser(b, st, "alice", "pw")
			root := testsuite.Maildir(b, st, "alice")
			fillCur(b, root, 100000)
			box, err := st.Mailbox(b.Context(), u.ID, "INBOX")
			if err != nil {
				b.Fatal(err)
			}
			if err := st.Sync(b.Context(), box.ID); err != nil {
				b.Fatal(err)
			}
			// Age the directories past the settle window and record them.
			mustOld(b, root)
			if err := st.Sync(b.Context(), box.ID); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := st.Sync(b.Context(), box.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var _ = store.Inbox

// mustOld sets the mtimes of new/ and cur/ ten seconds back, past the
// window in which Sync does not trust a directory mtime.
func mustOld(b *testing.B, root string) error {
	b.Helper()
	t := time.Now().Add(-10 * time.Second)
	for _, d := range []string{"new", "cur"} {
		if err := os.Chtimes(filepath.Join(root, d), t, t); err != nil {
			b.Fatal(err)
		}
	}
	return nil
}

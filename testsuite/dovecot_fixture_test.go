package testsuite_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
	"github.com/postoffice/postoffice/testsuite"
)

type fixture struct {
	Folders []struct {
		Name        string `json:"name"`
		Subscribed  bool   `json:"subscribed"`
		UIDValidity uint32 `json:"uidvalidity"`
		UIDNext     uint32 `json:"uidnext"`
		Messages    []struct {
			UID      uint32   `json:"uid"`
			Flags    []string `json:"flags"`
			Keywords []string `json:"keywords"`
			Size     int64    `json:"rfc822_size"`
			Date     string   `json:"internaldate"`
			Subject  string   `json:"subject"`
			File     string   `json:"file"`
		} `json:"messages"`
	} `json:"folders"`
}

// copyFixture copies the Dovecot-written tree into dst, recreating the
// empty cur/ new/ tmp/ directories git does not keep.
func copyFixture(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
			if rel == "." || strings.HasPrefix(filepath.Base(p), ".") {
				for _, sub := range []string{"cur", "new", "tmp"} {
					if err := os.MkdirAll(filepath.Join(target, sub), 0o700); err != nil {
						return err
					}
				}
			}
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

var flagNames = map[string]store.Flags{`\Seen`: store.FlagSeen, `\Answered`: store.FlagAnswered, `\Flagged`: store.FlagFlagged,
	`\Deleted`: store.FlagDeleted, `\Draft`: store.FlagDraft}

// TestDovecotTree_opens opens a Maildir tree written by Dovecot 2.3 (see
// testdata/dovecot/make-fixture.sh) and checks that folders (one with a
// non-ASCII name), UIDVALIDITY, UIDs, flags, keywords, sizes and dates are
// what Dovecot itself reported.
func TestDovecotTree_opens(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		raw, err := os.ReadFile("testdata/dovecot/EXPECTED.json")
		if err != nil {
			t.Fatal(err)
		}
		var fx fixture
		if err := json.Unmarshal(raw, &fx); err != nil {
			t.Fatal(err)
		}
		st := testsuite.NewStore(t, backend)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		root := filepath.Join(t.TempDir(), "alice", "Maildir")
		copyFixture(t, "testdata/dovecot/alice/Maildir", root)
		// Dovecot takes INTERNALDATE from the file mtime, which git drops.
		for _, f := range fx.Folders {
			for _, m := range f.Messages {
				d, err := time.Parse("02-Jan-2006 15:04:05 -0700", m.Date)
				if err != nil {
					t.Fatal(err)
				}
				dir := testsuite.Folder(root, f.Name)
				if f.Name == "Entwürfe" {
					dir = filepath.Join(root, ".Entw&APw-rfe") // modified UTF-7 on disk
				}
				if err := os.Chtimes(filepath.Join(dir, m.File), d, d); err != nil {
					t.Fatal(err)
				}
			}
		}
		u, err := st.CreateUser(ctx, store.User{Name: "alice", PasswordHash: "{PLAIN}alicepw", MaildirOverride: root})
		if err != nil {
			t.Fatal(err)
		}
		boxes, err := st.Mailboxes(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got, want []string
		for _, b := range boxes {
			got = append(got, b.Name)
		}
		for _, f := range fx.Folders {
			want = append(want, f.Name)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("folders: got %q, want %q", got, want)
		}
		for _, f := range fx.Folders {
			mb, err := st.Mailbox(ctx, u.ID, f.Name)
			if err != nil {
				t.Fatal(err)
			}
			if mb.UIDValidity != f.UIDValidity {
				t.Errorf("%s: uidvalidity %d, dovecot %d", f.Name, mb.UIDValidity, f.UIDValidity)
			}
			if mb.Subscribed != f.Subscribed {
				t.Errorf("%s: subscribed %v, dovecot %v", f.Name, mb.Subscribed, f.Subscribed)
			}
			if err := st.Sync(ctx, mb.ID); err != nil {
				t.Fatal(err)
			}
			list, _, err := st.List(ctx, mb.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != len(f.Messages) {
				t.Fatalf("%s: %d messages, dovecot %d", f.Name, len(list), len(f.Messages))
			}
			uids := make([]store.UID, len(list))
			for i, m := range list {
				uids[i] = m.UID
			}
			full, err := st.Messages(ctx, mb.ID, uids, store.WithHeader)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range f.Messages {
				m := full[i]
				var fl store.Flags
				for _, n := range want.Flags {
					fl |= flagNames[n]
				}
				kw := want.Keywords
				if len(kw) == 0 {
					kw = nil
				}
				if m.UID != store.UID(want.UID) || m.Flags != fl || !slices.Equal(m.Keywords, kw) || m.Size != want.Size {
					t.Errorf("%s: message %d: got uid %d flags %v keywords %v size %d; dovecot uid %d flags %v keywords %v size %d",
						f.Name, i, m.UID, m.Flags, m.Keywords, m.Size, want.UID, fl, kw, want.Size)
				}
				if !strings.Contains(string(m.Header), "Subject: "+want.Subject+"\r\n") {
					t.Errorf("%s uid %d: header lacks subject %q", f.Name, m.UID, want.Subject)
				}
				d, _ := time.Parse("02-Jan-2006 15:04:05 -0700", want.Date)
				if !m.InternalDate.Equal(d) {
					t.Errorf("%s uid %d: internal date %v, dovecot %v", f.Name, m.UID, m.InternalDate, d)
				}
			}
			st2, err := st.Mailbox(ctx, u.ID, f.Name)
			if err != nil {
				t.Fatal(err)
			}
			if uint32(st2.UIDNext) < f.UIDNext {
				t.Errorf("%s: uidnext %d below dovecot's %d", f.Name, st2.UIDNext, f.UIDNext)
			}
		}
	})
}

package testsuite

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
)

// TestIMAP_mbsync syncs an account both ways over IMAPS with mbsync (isync)
// and checks both sides: folders and messages created on either side
// appear on the other, flags and deletions travel, and a third run finds
// nothing to do. Skips when mbsync is not installed, unless
// REQUIRE_MBSYNC=1 (CI: apt-get install isync).
func TestIMAP_mbsync(t *testing.T) {
	mbsync, err := exec.LookPath("mbsync")
	if err != nil {
		if os.Getenv("REQUIRE_MBSYNC") == "1" {
			t.Fatal("mbsync not installed and REQUIRE_MBSYNC=1")
		}
		t.Skip("SKIP: mbsync (isync) not installed; apt-get install isync")
	}
	Backends(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		st := NewStore(t, backend)
		alice := MustUser(t, st, "alice", "secret")
		appendMsg(t, st, "alice", fixtureMsg1)
		appendMsg(t, st, "alice", fixtureMsg2)
		if _, err := st.CreateMailbox(ctx, alice.ID, "Work", ""); err != nil {
			t.Fatal(err)
		}
		appendTo(t, st, alice, "Work", "Subject: report\r\n\r\nnumbers\r\n", 0)
		is := startIMAP(t, st, imapConfig{noPlain: true})

		dir := t.TempDir()
		local := filepath.Join(dir, "mail")
		if err := os.MkdirAll(local, 0o700); err != nil {
			t.Fatal(err)
		}
		_, port, _ := strings.Cut(is.tlsAddr, ":")
		cfg := fmt.Sprintf(`IMAPAccount test
Host 127.0.0.1
Port %s
User alice
Pass secret
SSLType IMAPS
SSLVersions TLSv1.2 TLSv1.3
CertificateFile %s

IMAPStore remote
Account test

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Remove None
Expunge Both
SyncState *
Sync All
`, port, is.certPEM, local, local)
		cfgPath := filepath.Join(dir, "mbsyncrc")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		run := func(step string) {
			t.Helper()
			ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, mbsync, "-c", cfgPath, "-V", "-a").CombinedOutput()
			if err != nil {
				t.Fatalf("mbsync (%s): %v\n%s", step, err, out)
			}
			t.Logf("mbsync (%s):\n%s", step, out)
		}

		// 1. First sync: everything comes down.
		run("initial")
		if n := countLocal(t, filepath.Join(local, "INBOX")); n != 2 {
			t.Fatalf("local INBOX has %d messages, want 2", n)
		}
		if n := countLocal(t, filepath.Join(local, "Work")); n != 1 {
			t.Fatalf("local Work has %d messages, want 1", n)
		}
		for _, f := range []string{"Drafts", "Sent", "Trash", "Junk", "Archive"} {
			if _, err := os.Stat(filepath.Join(local, f)); err != nil {
				t.Errorf("special folder %s not synced: %v", f, err)
			}
		}

		// 2. Changes on both sides.
		Deliver(t, filepath.Join(local, "Sent"), []byte("Subject: sent locally\r\n\r\nbye\r\n"))
		if err := os.MkdirAll(filepath.Join(local, "Local"), 0o700); err != nil {
			t.Fatal(err)
		}
		Deliver(t, filepath.Join(local, "Local"), []byte("Subject: local folder\r\n\r\nx\r\n"))
		inboxFiles := localFiles(t, filepath.Join(local, "INBOX"))
		// Flag the first local INBOX message \Seen and delete the second.
		seenFile := inboxFiles[0]
		if err := os.Rename(seenFile, flagFile(seenFile, "S")); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(inboxFiles[1]); err != nil {
			t.Fatal(err)
		}
		appendMsg(t, st, "alice", "Subject: new on server\r\n\r\nfresh\r\n")
		if _, err := st.CreateMailbox(ctx, alice.ID, "Remote", ""); err != nil {
			t.Fatal(err)
		}
		appendTo(t, st, alice, "Remote", "Subject: remote folder\r\n\r\ny\r\n", store.FlagFlagged)

		run("both ways")

		// Server side.
		status := func(name string) *store.MailboxStatus {
			t.Helper()
			s, err := st.Status(ctx, alice.ID, name)
			if err != nil {
				t.Fatalf("status %s: %v", name, err)
			}
			return s
		}
		if s := status("Sent"); s.Messages != 1 {
			t.Errorf("server Sent has %d messages, want 1", s.Messages)
		}
		if s := status("Local"); s.Messages != 1 {
			t.Errorf("server Local has %d messages, want 1", s.Messages)
		}
		if s := status("INBOX"); s.Messages != 2 || s.Unseen != 1 {
			t.Errorf("server INBOX: %d messages, %d unseen; want 2 (one deleted locally), 1 unseen (one seen locally, one new)", s.Messages, s.Unseen)
		}
		// Local side.
		if n := countLocal(t, filepath.Join(local, "INBOX")); n != 2 {
			t.Errorf("local INBOX has %d messages, want 2", n)
		}
		remoteFiles := localFiles(t, filepath.Join(local, "Remote"))
		if len(remoteFiles) != 1 || !strings.Contains(filepath.Base(remoteFiles[0]), "F") {
			t.Errorf("local Remote: %q, want one flagged message", remoteFiles)
		}

		// 3. Nothing left to do; a third run changes nothing.
		run("idempotent")
		if s := status("INBOX"); s.Messages != 2 {
			t.Errorf("server INBOX after third run: %d messages", s.Messages)
		}
		if n := countLocal(t, filepath.Join(local, "Sent")); n != 1 {
			t.Errorf("local Sent has %d messages after third run", n)
		}
	})
}

// appendTo appends a message to a user's mailbox through the store.
func appendTo(t *testing.T, st *store.Store, u *store.User, mailbox, raw string, flags store.Flags) {
	t.Helper()
	ctx := context.Background()
	mb, err := st.Mailbox(ctx, u.ID, mailbox)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, mb.ID, strings.NewReader(raw), flags, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// localFiles lists the messages of a local Maildir (cur and new).
func localFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatalf("read %s: %v", dir, err)
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".") {
				out = append(out, filepath.Join(dir, sub, e.Name()))
			}
		}
	}
	return out
}

func countLocal(t *testing.T, dir string) int { return len(localFiles(t, dir)) }

// flagFile returns the cur/ path of a Maildir message with flags set.
func flagFile(p, flags string) string {
	dir := filepath.Dir(filepath.Dir(p))
	base := filepath.Base(p)
	key, info, _ := strings.Cut(base, ":2,")
	return filepath.Join(dir, "cur", key+":2,"+info+flags)
}

package testsuite

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-maildir"
)

// deliverySeq makes delivery keys unique within the process.
var deliverySeq atomic.Uint64

// Deliver drops content into the Maildir at maildirPath (a root or a
// Maildir++ folder) as an MTA would: written to tmp/<key>, fsynced, then
// renamed to new/<key>. It creates the Maildir directories if missing and
// returns the path of the new file; filepath.Base of it is the Maildir key.
// Safe for concurrent use, also on one Maildir.
//
// go-maildir's Delivery does the same but hides the key it chose, which
// tests need; this follows the same tmp-then-rename protocol with a key in
// the usual "<time>.M<usec>P<pid>Q<seq>R<random>.<host>" shape.
func Deliver(t testing.TB, maildirPath string, content []byte) string {
	t.Helper()
	if err := maildir.Dir(maildirPath).Init(); err != nil {
		t.Fatalf("testsuite: init maildir %s: %v", maildirPath, err)
	}
	key := newKey(t)
	tmp := filepath.Join(maildirPath, "tmp", key)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatalf("testsuite: deliver to %s: %v", maildirPath, err)
	}
	_, err = f.Write(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		t.Fatalf("testsuite: deliver to %s: write: %v", maildirPath, err)
	}
	dst := filepath.Join(maildirPath, "new", key)
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatalf("testsuite: deliver to %s: %v", maildirPath, err)
	}
	return dst
}

// DeliverCur puts content into cur/ of the Maildir at maildirPath with the
// Maildir info suffix info (for example "2,S" for \Seen), as a tool that
// files already-read mail would. It returns the path of the file.
func DeliverCur(t testing.TB, maildirPath string, content []byte, info string) string {
	t.Helper()
	p := Deliver(t, maildirPath, content)
	dst := filepath.Join(maildirPath, "cur", filepath.Base(p)+":"+info)
	if err := os.Rename(p, dst); err != nil {
		t.Fatalf("testsuite: move %s to cur: %v", p, err)
	}
	return dst
}

func newKey(t testing.TB) string {
	t.Helper()
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatalf("testsuite: random: %v", err)
	}
	now := time.Now()
	return fmt.Sprintf("%d.M%dP%dQ%dR%s.%s", now.Unix(), now.Nanosecond()/1000,
		os.Getpid(), deliverySeq.Add(1), hex.EncodeToString(r[:]), host)
}

package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-maildir"
)

// Maildir file names are "<key>:2,<info>", where the key is unique within
// the folder and the info letters are the flags, in ASCII order: D draft,
// F flagged, P passed, R replied, S seen, T trashed, then lower-case
// keyword letters mapped through dovecot-keywords (as Dovecot does).

// flagLetters maps system flags to Maildir info letters.
var flagLetters = []struct {
	f Flags
	c byte
}{{FlagDraft, 'D'}, {FlagFlagged, 'F'}, {FlagAnswered, 'R'}, {FlagSeen, 'S'}, {FlagDeleted, 'T'}}

// splitName splits a Maildir base name into the key and the info (the part
// after ":2,"). hasInfo is false for names without an info suffix.
func splitName(name string) (key, info string, hasInfo bool) {
	key, rest, found := strings.Cut(name, ":")
	if !found {
		return key, "", false
	}
	if strings.HasPrefix(rest, "2,") {
		return key, rest[2:], true
	}
	return key, "", false
}

// parseInfo turns info letters into flags and keywords. Letters it does not
// know (P passed, unknown keyword letters) are kept in extra so renames
// preserve them.
func parseInfo(info string, kw *[26]string) (f Flags, keywords []string, extra string) {
	for i := 0; i < len(info); i++ {
		c := info[i]
		matched := false
		for _, fl := range flagLetters {
			if fl.c == c {
				f |= fl.f
				matched = true
			}
		}
		if matched {
			continue
		}
		if c >= 'a' && c <= 'z' && kw != nil && kw[c-'a'] != "" {
			keywords = append(keywords, kw[c-'a'])
			continue
		}
		extra += string(c)
	}
	return f, normKeywords(keywords), extra
}

// formatInfo builds the info letters for flags, keywords and preserved
// extra letters. Keywords without a letter are kept in the index only.
func formatInfo(f Flags, keywords []string, extra string, kw *[26]string) string {
	var b []byte
	for _, fl := range flagLetters {
		if f&fl.f != 0 {
			b = append(b, fl.c)
		}
	}
	b = append(b, extra...)
	if kw != nil {
		for _, k := range keywords {
			for i, name := range kw {
				if name != "" && name == k {
					b = append(b, byte('a'+i))
				}
			}
		}
	}
	sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
	// drop duplicates
	out := b[:0]
	for i, c := range b {
		if i == 0 || c != b[i-1] {
			out = append(out, c)
		}
	}
	return string(out)
}

func normKeywords(k []string) []string {
	if len(k) == 0 {
		return nil
	}
	sort.Strings(k)
	out := k[:0]
	for i, s := range k {
		if s != "" && (i == 0 || s != k[i-1]) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

var keyCounter atomic.Uint64

// newKey makes a unique Maildir key in Dovecot's style:
// "<sec>.M<usec>P<pid>Q<n>R<random>.<host>".
func (s *Store) newKey() string {
	now := time.Now()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return fmt.Sprintf("%d.M%dP%dQ%dR%s.%s", now.Unix(), now.Nanosecond()/1000, os.Getpid(),
		keyCounter.Add(1), hex.EncodeToString(rnd[:]), s.hostname)
}

// initMaildir creates dir with cur/, new/ and tmp/.
func initMaildir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("store: create %s: %w", filepath.Dir(dir), err)
	}
	if err := maildir.Dir(dir).Init(); err != nil {
		return fmt.Errorf("store: init maildir %s: %w", dir, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeMessage copies r into tmp/, fsyncs it, and renames it into cur/ with
// ",S=<size>,W=<crlf size>" in the key and info as the suffix, then fsyncs
// cur/. It returns the key, the final base name and the sizes. Nothing is
// visible in cur/ until the file is complete.
func (s *Store) writeMessage(dir string, r io.Reader, info string, date time.Time) (key, name string, size, wsize int64, err error) {
	base := s.newKey()
	tmp := filepath.Join(dir, "tmp", base)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", "", 0, 0, fmt.Errorf("store: create %s: %w", tmp, err)
	}
	cleanup := func() { f.Close(); os.Remove(tmp) }
	cw := &crlfCounter{}
	size, err = io.Copy(io.MultiWriter(f, cw), r)
	if err != nil {
		cleanup()
		return "", "", 0, 0, fmt.Errorf("store: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		cleanup()
		return "", "", 0, 0, fmt.Errorf("store: fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", "", 0, 0, fmt.Errorf("store: close %s: %w", tmp, err)
	}
	if !date.IsZero() {
		_ = os.Chtimes(tmp, date, date)
	}
	wsize = cw.size()
	key = fmt.Sprintf("%s,S=%d,W=%d", base, size, wsize)
	name = key + ":2," + info
	if err := os.Rename(tmp, filepath.Join(dir, "cur", name)); err != nil {
		os.Remove(tmp)
		return "", "", 0, 0, fmt.Errorf("store: rename into cur: %w", err)
	}
	if err := syncDir(filepath.Join(dir, "cur")); err != nil {
		return "", "", 0, 0, fmt.Errorf("store: fsync cur: %w", err)
	}
	return key, name, size, wsize, nil
}

// crlfCounter counts the CRLF-form size of what is written to it.
type crlfCounter struct {
	n      int64
	lastCR bool
}

func (c *crlfCounter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	lfs := bytes.Count(p, []byte{'\n'})
	crlfs := bytes.Count(p, []byte("\r\n"))
	if c.lastCR && p[0] == '\n' {
		crlfs++
	}
	c.n += int64(len(p) + lfs - crlfs)
	c.lastCR = p[len(p)-1] == '\r'
	return len(p), nil
}

func (c *crlfCounter) size() int64 { return c.n }

// findByKey lists cur/ and new/ for the file whose key is key. It is the
// fallback when a stored file name vanished because another host or tool
// renamed it.
func findByKey(dir, key string) (string, error) {
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return "", err
		}
		for _, e := range ents {
			k, _, _ := splitName(e.Name())
			if k == key {
				return sub + "/" + e.Name(), nil
			}
		}
	}
	return "", fs.ErrNotExist
}

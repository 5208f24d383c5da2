package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Keywords are kept in the index. Like Dovecot, we also mirror up to 26 of
// them per folder into file names as the letters a-z, mapped through the
// folder's dovecot-keywords file ("<index> <name>" lines), so Dovecot and
// other tools reading the same tree see them.

// keywordMap reads a folder's dovecot-keywords; nil when there is none.
func (s *Store) keywordMap(dir string) *[26]string {
	f, err := os.Open(filepath.Join(dir, "dovecot-keywords"))
	if err != nil {
		return nil
	}
	defer f.Close()
	m, err := parseDovecotKeywords(f)
	if err != nil {
		s.log.Warn("ignoring unreadable dovecot-keywords", "dir", dir, "err", err)
		return nil
	}
	return &m
}

// keywordMapFor returns the folder's keyword map after giving each of
// keywords a letter, where letters are left. The file is replaced
// atomically.
func (s *Store) keywordMapFor(dir string, keywords []string) *[26]string {
	if len(keywords) == 0 {
		return s.keywordMap(dir)
	}
	s.kwMu.Lock()
	defer s.kwMu.Unlock()
	m := s.keywordMap(dir)
	if m == nil {
		m = new([26]string)
	}
	added := false
	for _, k := range keywords {
		if !validKeyword(k) {
			continue
		}
		have, free := false, -1
		for i, n := range m {
			if n == k {
				have = true
				break
			}
			if n == "" && free < 0 {
				free = i
			}
		}
		if !have && free >= 0 {
			m[free] = k
			added = true
		}
	}
	if !added {
		return m
	}
	var b strings.Builder
	for i, n := range m {
		if n != "" {
			fmt.Fprintf(&b, "%d %s\n", i, n)
		}
	}
	tmp := filepath.Join(dir, "tmp", "dovecot-keywords."+s.newKey())
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		s.log.Warn("write dovecot-keywords", "dir", dir, "err", err)
		return s.keywordMap(dir)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "dovecot-keywords")); err != nil {
		os.Remove(tmp)
		s.log.Warn("write dovecot-keywords", "dir", dir, "err", err)
		return s.keywordMap(dir)
	}
	return m
}

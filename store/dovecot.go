package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Reading the state Dovecot keeps next to a Maildir, so that a Maildir that
// Dovecot served keeps its UIDs, UIDVALIDITY and keywords when we take it
// over.

// maxUIDListLine bounds a dovecot-uidlist line; longer lines are skipped.
const maxUIDListLine = 64 << 10

var errBadUIDList = errors.New("store: malformed dovecot-uidlist")

// parseDovecotUIDList parses a dovecot-uidlist file and returns the
// mailbox's UIDVALIDITY, its next UID and the UID of each Maildir key (the
// file's base name up to the first ':').
//
// Version 3 (Dovecot ≥ 1.0.2) starts with "3 V<uidvalidity> N<nextuid>
// G<guid> ..." (fields in any order, unknown ones ignored) and has record
// lines "<uid> [<ext-field> ...] :<filename>", where extension fields are a
// letter and a value (e.g. "W1234", "S1200", "G<guid>"). Version 1 starts with
// "1 <uidvalidity> <nextuid>" and has lines "<uid> <filename>".
//
// Malformed record lines are skipped, since losing one UID is better than
// losing the list; a malformed or unknown header is an error. A file name
// listed twice keeps its first UID (Dovecot never writes that). nextUID is
// raised past the largest UID listed if the header claims less.
func parseDovecotUIDList(r io.Reader) (uidValidity uint32, nextUID UID, uids map[string]UID, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	first, err := readUIDListLine(br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, 0, nil, fmt.Errorf("%w: empty", errBadUIDList)
		}
		return 0, 0, nil, fmt.Errorf("store: read dovecot-uidlist: %w", err)
	}
	hf := strings.Fields(first)
	if len(hf) == 0 {
		return 0, 0, nil, fmt.Errorf("%w: empty header", errBadUIDList)
	}
	version := hf[0]
	switch version {
	case "1":
		if len(hf) < 3 {
			return 0, 0, nil, fmt.Errorf("%w: short version 1 header", errBadUIDList)
		}
		v, err1 := strconv.ParseUint(hf[1], 10, 32)
		n, err2 := strconv.ParseUint(hf[2], 10, 32)
		if err1 != nil || err2 != nil {
			return 0, 0, nil, fmt.Errorf("%w: bad version 1 header", errBadUIDList)
		}
		uidValidity, nextUID = uint32(v), UID(n)
	case "3":
		haveV := false
		for _, f := range hf[1:] {
			if len(f) < 2 {
				continue
			}
			switch f[0] {
			case 'V':
				v, err := strconv.ParseUint(f[1:], 10, 32)
				if err != nil {
					return 0, 0, nil, fmt.Errorf("%w: bad UIDVALIDITY", errBadUIDList)
				}
				uidValidity, haveV = uint32(v), true
			case 'N':
				n, err := strconv.ParseUint(f[1:], 10, 32)
				if err != nil {
					return 0, 0, nil, fmt.Errorf("%w: bad next UID", errBadUIDList)
				}
				nextUID = UID(n)
			}
		}
		if !haveV {
			return 0, 0, nil, fmt.Errorf("%w: no UIDVALIDITY", errBadUIDList)
		}
	default:
		return 0, 0, nil, fmt.Errorf("%w: unsupported version %q", errBadUIDList, version)
	}
	uids = make(map[string]UID)
	for {
		line, err := readUIDListLine(br)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, nil, fmt.Errorf("store: read dovecot-uidlist: %w", err)
		}
		uidStr, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		u, err := strconv.ParseUint(uidStr, 10, 32)
		if err != nil || u == 0 {
			continue
		}
		var name string
		if version == "3" {
			// The file name follows the first " :"; extension fields
			// before it never contain a colon at a field start.
			i := strings.Index(" "+rest, " :")
			if i < 0 {
				continue
			}
			name = rest[i+1:]
		} else {
			name = strings.TrimSpace(rest)
		}
		key, _, _ := strings.Cut(name, ":")
		if key == "" || strings.ContainsAny(key, "/\x00") {
			continue
		}
		if _, dup := uids[key]; !dup {
			uids[key] = UID(u)
		}
		if UID(u) >= nextUID && u < 1<<32-1 {
			nextUID = UID(u) + 1
		}
	}
	return uidValidity, nextUID, uids, nil
}

// readUIDListLine reads one line without its line ending. Over-long lines
// are returned as "" (and so skipped by the caller).
func readUIDListLine(br *bufio.Reader) (string, error) {
	var long bool
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = true
			continue
		}
		if err != nil && (!errors.Is(err, io.EOF) || len(b) == 0) {
			return "", err
		}
		if long || len(b) > maxUIDListLine {
			return "", nil
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
}

// parseDovecotKeywords parses a dovecot-keywords file: lines "<index>
// <name>", where index 0 is the letter 'a' in Maildir file names, 1 'b', up
// to 25 'z'. Unused letters are "". Lines with an index out of range or a
// malformed name are skipped.
func parseDovecotKeywords(r io.Reader) ([26]string, error) {
	var kw [26]string
	br := bufio.NewReaderSize(r, 4096)
	for {
		line, err := readUIDListLine(br)
		if errors.Is(err, io.EOF) {
			return kw, nil
		}
		if err != nil {
			return kw, fmt.Errorf("store: read dovecot-keywords: %w", err)
		}
		idx, name, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 || i >= len(kw) {
			continue
		}
		name = strings.TrimSpace(name)
		if name == "" || !validKeyword(name) {
			continue
		}
		kw[i] = name
	}
}

// validKeyword reports whether s is an IMAP flag-keyword atom (RFC 9051 §9:
// atom, no atom-specials, not a system flag).
func validKeyword(s string) bool {
	if s == "" || s[0] == '\\' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

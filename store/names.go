package store

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Mailbox names and their Maildir++ directories.
//
// A mailbox name in the API is UTF-8 with levels separated by Delimiter
// ('.'). INBOX is the Maildir root. Every other mailbox is a directory
// directly in the root whose name is "." followed by the name with each level
// in modified UTF-7 (RFC 3501 §5.1.3), as Dovecot's Maildir++ layout does:
// "Archive.2024" is ".Archive.2024", "Entwürfe" is ".Entw&APw-rfe". Children
// of INBOX are ordinary folders: "INBOX.Sub" is ".INBOX.Sub".
//
// Paths are only ever built from names that passed validateName, through
// dirName. A valid name cannot contain '/', NUL, or an empty level, so a
// directory name is a single path element that starts with '.' and is neither
// "." nor "..".

const (
	// maxNameBytes limits the UTF-8 length of a mailbox name.
	maxNameBytes = 1000
	// maxDirBytes is NAME_MAX: a Maildir++ folder is one directory entry, so
	// its whole encoded name must fit, not just each level.
	maxDirBytes = 255
)

// validateName checks a client-supplied mailbox name and returns its
// canonical form: the first level is "INBOX" if it matches case-insensitively.
// Every error wraps ErrBadMailboxName.
func validateName(name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: %s", ErrBadMailboxName, why)
	}
	if name == "" {
		return bad("empty name")
	}
	if len(name) > maxNameBytes {
		return bad("name too long")
	}
	if !utf8.ValidString(name) {
		return bad("name is not valid UTF-8")
	}
	for _, r := range name {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return bad("control character in name")
		case r == '/' || r == '\\':
			return bad("slash or backslash in name")
		case r == '*' || r == '%':
			return bad("wildcard in name") // RFC 9051 §6.3.9 list wildcards
		case r == utf8.RuneError:
			return bad("replacement character in name")
		}
	}
	if name[0] == '~' {
		return bad("name begins with '~'") // as Dovecot: no home directory expansion
	}
	first, rest, hasRest := strings.Cut(name, string(Delimiter))
	if strings.EqualFold(first, Inbox) {
		first = Inbox
	}
	canon := first
	if hasRest {
		canon = first + string(Delimiter) + rest
	}
	for level := range strings.SplitSeq(canon, string(Delimiter)) {
		if level == "" {
			return bad("empty hierarchy level")
		}
	}
	if canon != Inbox && len(dirName(canon)) > maxDirBytes {
		return bad("name too long on disk")
	}
	return canon, nil
}

// dirName returns the Maildir++ directory of a canonical, valid mailbox name,
// relative to the Maildir root: "" for INBOX, else "." and the name with each
// level in modified UTF-7.
func dirName(name string) string {
	if name == Inbox {
		return ""
	}
	levels := strings.Split(name, string(Delimiter))
	for i, l := range levels {
		levels[i] = encodeMUTF7(l)
	}
	return "." + strings.Join(levels, string(Delimiter))
}

// nameFromDir returns the mailbox name of a directory entry in the Maildir
// root, and false if the entry is not a folder: no leading '.', "." or "..",
// a name that is not canonical modified UTF-7, or that fails validateName
// or does not map back to the same directory (".inbox", ".INBOX").
func nameFromDir(dir string) (string, bool) {
	if len(dir) < 2 || dir[0] != '.' || dir == ".." {
		return "", false
	}
	levels := strings.Split(dir[1:], string(Delimiter))
	for i, l := range levels {
		if l == "" {
			return "", false
		}
		d, err := decodeMUTF7(l)
		if err != nil {
			return "", false
		}
		levels[i] = d
	}
	name := strings.Join(levels, string(Delimiter))
	canon, err := validateName(name)
	if err != nil || canon != name || dirName(canon) != dir {
		return "", false
	}
	return canon, true
}

package pop3d

import (
	"errors"
	"strings"
)

// maxLine is the longest command line we accept, not counting the line
// terminator. RFC 2449 §4: command lines are at most 255 octets.
const maxLine = 255

// maxSASLLine bounds a SASL client response line (RFC 5034 §4 lifts the
// 255-octet limit for responses inside an AUTH exchange).
const maxSASLLine = 8192

// maxArg is the longest argument RFC 1939 §3 allows. We apply it to the
// message-number commands only: user names (mail addresses) and passwords
// may legitimately be longer.
const maxArg = 40

var (
	errEmptyLine   = errors.New("empty command line")
	errBadKeyword  = errors.New("bad command keyword")
	errBadArgument = errors.New("bad argument")
)

// command is one parsed command line.
type command struct {
	name string // upper case keyword
	// rest is everything after the keyword and one SPACE, verbatim. PASS
	// takes it whole (RFC 1939 §7: the password may contain spaces).
	rest string
}

// args splits rest into arguments separated by single spaces. Empty
// arguments (double spaces, trailing space) are an error, per the RFC 1939
// §3 grammar. Callers that accept a free-form rest (PASS, USER) do not call it.
func (c command) args() ([]string, error) {
	if c.rest == "" {
		return nil, nil
	}
	args := strings.Split(c.rest, " ")
	for _, a := range args {
		if a == "" {
			return nil, errBadArgument
		}
	}
	return args, nil
}

// parseCommand parses a command line without its line terminator.
// RFC 1939 §3: a keyword of three or four printable ASCII characters,
// case-insensitive, optionally followed by a SPACE and arguments. We accept
// letters only in keywords (all POP3 keywords are letters), and reject
// control characters anywhere in the line except TAB in the rest, which
// passwords may contain.
func parseCommand(line string) (command, error) {
	if line == "" {
		return command{}, errEmptyLine
	}
	kw, rest, hasRest := strings.Cut(line, " ")
	if len(kw) < 3 || len(kw) > 4 {
		return command{}, errBadKeyword
	}
	for i := 0; i < len(kw); i++ {
		b := kw[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z') {
			return command{}, errBadKeyword
		}
	}
	if hasRest && rest == "" {
		// "STAT " with a trailing space: tolerated (some clients do it).
		hasRest = false
	}
	for i := 0; i < len(rest); i++ {
		if b := rest[i]; b < 0x20 && b != '\t' || b == 0x7f {
			return command{}, errBadArgument
		}
	}
	return command{name: strings.ToUpper(kw), rest: rest}, nil
}

// parseNumber parses a message number or line count: a non-empty string of
// ASCII digits (no sign, no spaces) of at most maxArg characters that fits in
// an int. RFC 1939 §3 and §7.
func parseNumber(s string) (int, bool) {
	if s == "" || len(s) > maxArg {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < '0' || b > '9' {
			return 0, false
		}
		if n > (1<<31-1-int(b-'0'))/10 {
			return 0, false // overflow: no mailbox has that many
		}
		n = n*10 + int(b-'0')
	}
	return n, true
}

// looksForeign reports whether a line received before login looks like
// another protocol (HTTP, SMTP, IMAP literals), the sign of a
// cross-protocol attack or a misdirected client.
func looksForeign(line string) bool {
	u := strings.ToUpper(line)
	for _, p := range []string{
		"GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "CONNECT ", "PATCH ", "TRACE ", "HTTP/",
		"HELO ", "EHLO ", "MAIL FROM:", "RCPT TO:", "DATA", "STARTTLS",
	} {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}

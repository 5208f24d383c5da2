package store

import (
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Modified UTF-7 (RFC 3501 §5.1.3) is the encoding Dovecot uses for the
// directory names of Maildir++ folders. Mailbox names in the store API are
// UTF-8; only directory names on disk are in modified UTF-7.

// mutf7Alphabet is the modified BASE64 alphabet of RFC 3501 §5.1.3: ','
// replaces '/', and there is no padding.
const mutf7Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"

var mutf7Decode = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(mutf7Alphabet); i++ {
		t[mutf7Alphabet[i]] = int8(i)
	}
	return t
}()

var errBadMUTF7 = errors.New("store: invalid modified UTF-7")

// mutf7Direct reports whether b represents itself in modified UTF-7
// (RFC 3501 §5.1.3: printable US-ASCII except '&').
func mutf7Direct(r rune) bool { return r >= 0x20 && r <= 0x7e }

// encodeMUTF7 encodes the UTF-8 string s in modified UTF-7. Invalid UTF-8
// bytes are encoded as U+FFFD; callers validate names first.
func encodeMUTF7(s string) string {
	// Fast path: nothing to encode.
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	var units []uint16
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if mutf7Direct(r) {
			b.WriteByte(byte(r))
			if r == '&' {
				b.WriteByte('-') // RFC 3501 §5.1.3: "&" is represented by "&-"
			}
			i += n
			continue
		}
		// RFC 3501 §5.1.3: a run of other characters is UTF-16 (big endian)
		// in modified BASE64 between "&" and "-".
		units = units[:0]
		for i < len(s) {
			r, n = utf8.DecodeRuneInString(s[i:])
			if mutf7Direct(r) {
				break
			}
			units = utf16.AppendRune(units, r)
			i += n
		}
		b.WriteByte('&')
		var acc uint32
		bits := 0
		for _, u := range units {
			acc = acc<<16 | uint32(u)
			bits += 16
			for bits >= 6 {
				bits -= 6
				b.WriteByte(mutf7Alphabet[(acc>>bits)&0x3f])
			}
			acc &= 1<<bits - 1
		}
		if bits > 0 {
			b.WriteByte(mutf7Alphabet[(acc<<(6-bits))&0x3f])
		}
		b.WriteByte('-')
	}
	return b.String()
}

// decodeMUTF7 decodes a modified UTF-7 string to UTF-8. It accepts only the
// canonical form encodeMUTF7 produces, so that a directory name maps to
// exactly one mailbox name and back: it rejects raw bytes outside printable
// US-ASCII, bad or unterminated BASE64, non-zero padding bits, printable
// US-ASCII inside BASE64 (RFC 3501 §5.1.3 forbids it), unpaired surrogates,
// and two BASE64 sections in a row (they must be one).
func decodeMUTF7(s string) (string, error) {
	if !strings.Contains(s, "&") {
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] > 0x7e {
				return "", errBadMUTF7
			}
		}
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	prevB64 := false // the previous token was a BASE64 section
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", errBadMUTF7
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			prevB64 = false
			continue
		}
		i++
		end := strings.IndexByte(s[i:], '-')
		if end < 0 {
			return "", errBadMUTF7 // unterminated
		}
		enc := s[i : i+end]
		i += end + 1
		if enc == "" {
			b.WriteByte('&')
			prevB64 = false
			continue
		}
		if prevB64 {
			return "", errBadMUTF7 // non-canonical: "&...-&...-"
		}
		prevB64 = true
		var acc uint32
		bits := 0
		var high uint16 // pending high surrogate
		for j := 0; j < len(enc); j++ {
			v := mutf7Decode[enc[j]]
			if v < 0 {
				return "", errBadMUTF7
			}
			acc = acc<<6 | uint32(v)
			bits += 6
			if bits < 16 {
				continue
			}
			bits -= 16
			u := uint16(acc >> bits)
			acc &= 1<<bits - 1
			switch {
			case high != 0:
				if !utf16.IsSurrogate(rune(u)) || u < 0xdc00 {
					return "", errBadMUTF7 // high surrogate without low
				}
				b.WriteRune(utf16.DecodeRune(rune(high), rune(u)))
				high = 0
			case u >= 0xd800 && u < 0xdc00:
				high = u
			case u >= 0xdc00 && u < 0xe000:
				return "", errBadMUTF7 // lone low surrogate
			case mutf7Direct(rune(u)):
				return "", errBadMUTF7 // must have been written directly
			default:
				b.WriteRune(rune(u))
			}
		}
		if high != 0 || bits >= 6 || acc != 0 {
			return "", errBadMUTF7 // unpaired surrogate, extra or non-zero padding bits
		}
	}
	return b.String(), nil
}

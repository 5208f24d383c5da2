package auth

// SHA-crypt ($5$ and $6$), written from Ulrich Drepper's public
// specification "Unix crypt using SHA-256 and SHA-512"
// (https://www.akkadia.org/drepper/SHA-crypt.txt). Step numbers below are
// the spec's.

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

const (
	shaSaltMax       = 16
	shaRoundsDefault = 5000
	shaRoundsMin     = 1000
	shaRoundsMax     = 999_999_999
)

// shaVariant is one of the two SHA-crypt flavours.
type shaVariant struct {
	magic string // "$5$" or "$6$"
	new   func() hash.Hash
	// order lists the digest bytes in the output's base64 groups of three
	// (spec step 22); a negative index stands for a zero byte.
	order []int
	// encLen is the length of the encoded digest: the last group is short.
	encLen int
}

var sha256Crypt = shaVariant{
	magic: "$5$",
	new:   sha256.New,
	order: []int{
		0, 10, 20, 21, 1, 11, 12, 22, 2, 3, 13, 23, 24, 4, 14,
		15, 25, 5, 6, 16, 26, 27, 7, 17, 18, 28, 8, 9, 19, 29,
		-1, 31, 30,
	},
	encLen: 43,
}

var sha512Crypt = shaVariant{
	magic: "$6$",
	new:   sha512.New,
	order: []int{
		0, 21, 42, 22, 43, 1, 44, 2, 23, 3, 24, 45, 25, 46, 4,
		47, 5, 26, 6, 27, 48, 28, 49, 7, 50, 8, 29, 9, 30, 51,
		31, 52, 10, 53, 11, 32, 12, 33, 54, 34, 55, 13, 56, 14, 35,
		15, 36, 57, 37, 58, 16, 59, 17, 38, 18, 39, 60, 40, 61, 19,
		62, 20, 41, -1, -1, 63,
	},
	encLen: 86,
}

// shaSetting is the parsed part of a SHA-crypt string before the digest.
type shaSetting struct {
	rounds int
	custom bool // "rounds=" was given, so it appears in the output
	salt   string
}

// parseSHASetting parses "$6$[rounds=N$]salt[$...]" and returns the
// setting and whatever follows the salt's terminating '$' (the encoded
// digest when s is a full hash).
func (v shaVariant) parseSetting(s string) (set shaSetting, digest string, err error) {
	rest, ok := strings.CutPrefix(s, v.magic)
	if !ok {
		return set, "", fmt.Errorf("%w: SHA-crypt hash does not start with %s", ErrMalformedHash, v.magic)
	}
	set.rounds = shaRoundsDefault
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		num, after, found := strings.Cut(r, "$")
		n, err := strconv.ParseUint(num, 10, 32)
		if !found || err != nil || num == "" || num[0] == '+' {
			return set, "", fmt.Errorf("%w: SHA-crypt: bad rounds", ErrMalformedHash)
		}
		// Spec: out-of-range counts are clamped, not rejected.
		set.rounds = int(min(max(n, shaRoundsMin), shaRoundsMax))
		set.custom = true
		rest = after
	}
	// Spec: the salt ends at the first '$' or after 16 characters.
	salt, digest, _ := strings.Cut(rest, "$")
	if len(salt) > shaSaltMax {
		salt = salt[:shaSaltMax]
	}
	set.salt = salt
	return set, digest, nil
}

// crypt computes the full SHA-crypt string of key for the setting in salt
// (which may be a complete hash; only its setting is used), as crypt(3)
// would.
func (v shaVariant) crypt(key, salt string) (string, error) {
	set, _, err := v.parseSetting(salt)
	if err != nil {
		return "", err
	}
	return v.format(set, v.digest([]byte(key), set)), nil
}

func (v shaVariant) format(set shaSetting, sum []byte) string {
	var b strings.Builder
	b.WriteString(v.magic)
	if set.custom {
		fmt.Fprintf(&b, "rounds=%d$", set.rounds)
	}
	b.WriteString(set.salt)
	b.WriteByte('$')
	b.WriteString(v.encode(sum))
	return b.String()
}

// digest runs spec steps 1-21 and returns the final digest C.
func (v shaVariant) digest(key []byte, set shaSetting) []byte {
	salt := []byte(set.salt)
	h := v.new()
	size := h.Size()

	// Steps 4-8: digest B = H(key salt key).
	h.Write(key)
	h.Write(salt)
	h.Write(key)
	b := h.Sum(nil)

	// Steps 1-3, 9-12: digest A.
	h.Reset()
	h.Write(key)
	h.Write(salt)
	h.Write(repeatTo(b, len(key)))      // step 9-10: B for each len(key) bytes
	for n := len(key); n > 0; n >>= 1 { // step 11: bits of len(key), LSB first
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(key)
		}
	}
	a := h.Sum(nil)

	// Steps 13-16: P from digest DP = H(key repeated len(key) times).
	h.Reset()
	for range key {
		h.Write(key)
	}
	p := repeatTo(h.Sum(nil), len(key))

	// Steps 17-20: S from digest DS = H(salt repeated 16+A[0] times).
	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(salt)
	}
	s := repeatTo(h.Sum(nil), len(salt))

	// Step 21: the rounds.
	c := a
	buf := make([]byte, 0, size)
	for i := range set.rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(s)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(buf[:0])
	}
	return c
}

// repeatTo returns n bytes made of d repeated (the last copy truncated).
func repeatTo(d []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, d[:min(len(d), n-len(out))]...)
	}
	return out
}

// cryptAlphabet is crypt(3)'s base64 alphabet, least significant 6 bits first.
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// encode is spec step 22: bytes in v.order, three at a time as a 24-bit
// number (first byte most significant), written 6 bits at a time from the
// low end; the final group, padded with zero bytes, writes only as many
// characters as it has bits of data.
func (v shaVariant) encode(sum []byte) string {
	var b strings.Builder
	for i := 0; i < len(v.order); i += 3 {
		var w uint32
		for _, idx := range v.order[i : i+3] {
			w <<= 8
			if idx >= 0 {
				w |= uint32(sum[idx])
			}
		}
		for range min(4, v.encLen-b.Len()) {
			b.WriteByte(cryptAlphabet[w&0x3f])
			w >>= 6
		}
	}
	return b.String()
}

func compareSHACrypt(s string, v shaVariant, password string, lim limits) (bool, error) {
	set, stored, err := v.parseSetting(s)
	if err != nil {
		return false, err
	}
	if set.rounds > lim.shaRounds {
		return false, fmt.Errorf("%w: SHA-crypt rounds %d exceed %d", ErrMalformedHash, set.rounds, lim.shaRounds)
	}
	if len(stored) != v.encLen {
		return false, fmt.Errorf("%w: SHA-crypt digest has %d characters, want %d", ErrMalformedHash, len(stored), v.encLen)
	}
	got := v.encode(v.digest([]byte(password), set))
	return subtle.ConstantTimeCompare([]byte(got), []byte(stored)) == 1, nil
}

package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Hash format errors. Compare wraps them with detail; check with errors.Is.
var (
	// ErrUnknownScheme means the hash names (or, without a {SCHEME} prefix,
	// looks like) no scheme this package can verify.
	ErrUnknownScheme = errors.New("auth: unknown password scheme")
	// ErrMalformedHash means the scheme is known but the hash does not parse,
	// or its cost parameters exceed the limits verification accepts.
	ErrMalformedHash = errors.New("auth: malformed password hash")
)

// Params are the argon2id cost parameters for new hashes. A zero field means
// the value from DefaultParams.
type Params struct {
	Time      uint32 // passes over memory (argon2 t)
	MemoryKiB uint32 // memory in KiB (argon2 m)
	Threads   uint8  // lanes (argon2 p); not a strength parameter
	KeyLen    uint32 // bytes of output
	SaltLen   uint32 // bytes of random salt
}

// DefaultParams are the argon2id parameters used when Options.Argon2 (or a
// field of it) is zero: t=2, m=19 MiB, p=1, a 32-byte key and a 16-byte salt.
// This is the OWASP password storage cheat sheet's argon2id baseline. One
// verification took 35-42 ms on one core of a 2-core AMD EPYC VM
// (BenchmarkCompare_defaultParams), and each one in flight holds 19 MiB
// (Options.MaxConcurrent bounds how many run at once). Dovecot's own default
// (m=64 MiB, t=3) took about 300 ms there. Treat it as a constant.
var DefaultParams = Params{Time: 2, MemoryKiB: 19 * 1024, Threads: 1, KeyLen: 32, SaltLen: 16}

// withDefaults returns p with each zero field taken from DefaultParams.
func (p Params) withDefaults() Params {
	d := DefaultParams
	if p.Time == 0 {
		p.Time = d.Time
	}
	if p.MemoryKiB == 0 {
		p.MemoryKiB = d.MemoryKiB
	}
	if p.Threads == 0 {
		p.Threads = d.Threads
	}
	if p.KeyLen == 0 {
		p.KeyLen = d.KeyLen
	}
	if p.SaltLen == 0 {
		p.SaltLen = d.SaltLen
	}
	return p
}

// validate checks p (after withDefaults) against what argon2 needs and what
// Compare will accept back, so every hash we write can be verified.
func (p Params) validate() error {
	lim := defaultLimits
	switch {
	case p.MemoryKiB < 8*uint32(p.Threads):
		return fmt.Errorf("auth: argon2 memory %d KiB is below 8 KiB per thread", p.MemoryKiB)
	case p.MemoryKiB > lim.argonMemoryKiB || p.Time > lim.argonTime:
		return fmt.Errorf("auth: argon2 t=%d m=%d exceeds the verification limits", p.Time, p.MemoryKiB)
	case p.KeyLen < 16 || p.KeyLen > 512:
		return fmt.Errorf("auth: argon2 key length %d is outside 16..512", p.KeyLen)
	case p.SaltLen < 8 || p.SaltLen > 512:
		return fmt.Errorf("auth: argon2 salt length %d is outside 8..512", p.SaltLen)
	}
	return nil
}

// limits cap the cost parameters Compare accepts from a stored hash, so a
// corrupt or hostile hash cannot make one verification take minutes or
// gigabytes.
type limits struct {
	argonMemoryKiB uint32
	argonTime      uint32
	bcryptCost     int
	shaRounds      int
}

// defaultLimits allow everything Dovecot's doveadm pw produces by default
// and far more: argon2 up to 1 GiB and 64 passes, bcrypt cost 16 (several
// seconds), SHA-crypt 10 million rounds.
var defaultLimits = limits{argonMemoryKiB: 1 << 20, argonTime: 64, bcryptCost: 16, shaRounds: 10_000_000}

// maxPasswordLen bounds the password length Verify and Compare accept.
// SHA-crypt's cost grows with rounds × length, so without it a long
// password would be a cheap denial of service.
const maxPasswordLen = 1024

// Hash returns an argon2id hash of password in Dovecot's format,
// "{ARGON2ID}$argon2id$v=19$m=...,t=...,p=...$salt$hash" (salt and hash in
// unpadded standard base64). Zero fields of params take DefaultParams'
// values.
func Hash(password string, params Params) (string, error) {
	p := params.withDefaults()
	if err := p.validate(); err != nil {
		return "", err
	}
	if len(password) > maxPasswordLen {
		return "", fmt.Errorf("auth: password longer than %d bytes", maxPasswordLen)
	}
	salt := make([]byte, p.SaltLen)
	_, _ = rand.Read(salt) // never fails (crypto/rand, Go 1.24+)
	return "{ARGON2ID}" + argon2Hash{
		variant: "argon2id",
		time:    p.Time,
		memory:  p.MemoryKiB,
		threads: p.Threads,
		salt:    salt,
		key:     argon2Key("argon2id", password, salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen),
	}.String(), nil
}

// Compare checks password against a stored hash. It returns nil on a match,
// ErrInvalidCredentials on a mismatch, and an error wrapping
// ErrUnknownScheme or ErrMalformedHash when the hash cannot be checked.
//
// Supported (scheme names are case-insensitive):
//   - {ARGON2ID}, {ARGON2I} and bare $argon2id$ / $argon2i$ (v=19)
//   - {BLF-CRYPT} and bare $2a$ / $2b$ / $2y$ bcrypt
//   - {SHA512-CRYPT}, {SHA256-CRYPT} and bare $6$ / $5$ SHA-crypt (rounds=)
//   - {CRYPT} holding one of the crypt(3) formats above
//   - {SHA512}, {SHA256}, {SHA1} (alias {SHA}) and the salted {SSHA512},
//     {SSHA256}, {SSHA}; base64 by default, ".HEX" / ".B64" suffixes as in
//     Dovecot ({SHA256.HEX})
//   - {PLAIN}, {CLEAR}, {CLEARTEXT}
//
// A hash without a {SCHEME} prefix that is not a recognised crypt format is
// ErrUnknownScheme, never treated as plaintext. All comparisons of secret
// material are constant-time.
func Compare(hash, password string) error {
	ok, err := compareHash(hash, password, defaultLimits)
	if err != nil {
		return err
	}
	if !ok {
		return ErrInvalidCredentials
	}
	return nil
}

// NeedsRehash reports whether a user's stored hash should be replaced by
// Hash(password, params) after a successful login: true for every scheme
// but argon2id, and for argon2id with a smaller Time, MemoryKiB, KeyLen or
// SaltLen than params (zero fields of params meaning DefaultParams). A hash
// that does not parse also needs rehashing.
func NeedsRehash(hash string, params Params) bool {
	p := params.withDefaults()
	scheme, rest := splitScheme(hash)
	if scheme != "ARGON2ID" {
		return true
	}
	h, err := parseArgon2(rest, "argon2id", defaultLimits)
	if err != nil {
		return true
	}
	return h.time < p.Time || h.memory < p.MemoryKiB ||
		uint32(len(h.key)) < p.KeyLen || uint32(len(h.salt)) < p.SaltLen
}

// splitScheme returns the upper-cased scheme name and the rest of hash. A
// "{SCHEME}" prefix wins; otherwise crypt(3)-style prefixes are recognised
// and rest is the whole hash. An unrecognised hash gives scheme "".
func splitScheme(hash string) (scheme, rest string) {
	if strings.HasPrefix(hash, "{") {
		end := strings.IndexByte(hash, '}')
		if end < 0 || end > 32 {
			return "", hash
		}
		return strings.ToUpper(hash[1:end]), hash[end+1:]
	}
	return cryptScheme(hash), hash
}

// cryptScheme names the scheme of a bare crypt(3)/PHC-style hash, or "".
func cryptScheme(hash string) string {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		return "ARGON2ID"
	case strings.HasPrefix(hash, "$argon2i$"):
		return "ARGON2I"
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		// $2x$ (the buggy pre-2011 crypt_blowfish variant) is left out on
		// purpose: x/crypto would treat it as $2a$ and reject some passwords.
		return "BLF-CRYPT"
	case strings.HasPrefix(hash, "$6$"):
		return "SHA512-CRYPT"
	case strings.HasPrefix(hash, "$5$"):
		return "SHA256-CRYPT"
	}
	return ""
}

// compareHash is Compare's core: ok reports a match; err means the hash
// could not be checked. It is what the Verifier calls (through a field, so
// tests can count calls).
func compareHash(hash, password string, lim limits) (ok bool, err error) {
	if len(password) > maxPasswordLen {
		return false, nil
	}
	scheme, rest := splitScheme(hash)
	if scheme == "CRYPT" {
		scheme = cryptScheme(rest)
		if strings.HasPrefix(scheme, "ARGON2") {
			scheme = "" // not a crypt(3) format Dovecot's CRYPT understands
		}
	}
	switch scheme {
	case "ARGON2ID", "ARGON2I":
		return compareArgon2(rest, strings.ToLower(scheme), password, lim)
	case "BLF-CRYPT":
		return compareBcrypt(rest, password, lim)
	case "SHA512-CRYPT":
		return compareSHACrypt(rest, sha512Crypt, password, lim)
	case "SHA256-CRYPT":
		return compareSHACrypt(rest, sha256Crypt, password, lim)
	case "PLAIN", "CLEAR", "CLEARTEXT":
		// Compare fixed-size digests so the time does not depend on where
		// (or whether the lengths) differ.
		a, b := sha256.Sum256([]byte(rest)), sha256.Sum256([]byte(password))
		return subtle.ConstantTimeCompare(a[:], b[:]) == 1, nil
	case "":
		return false, ErrUnknownScheme
	}
	if d, ok := lookupDigest(scheme); ok {
		return d.compare(rest, password)
	}
	return false, fmt.Errorf("%w %q", ErrUnknownScheme, scheme)
}

func compareBcrypt(hash, password string, lim limits) (bool, error) {
	if cryptScheme(hash) != "BLF-CRYPT" {
		return false, fmt.Errorf("%w: BLF-CRYPT hash does not start with $2a$, $2b$ or $2y$", ErrMalformedHash)
	}
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
	if cost > lim.bcryptCost {
		return false, fmt.Errorf("%w: bcrypt cost %d exceeds %d", ErrMalformedHash, cost, lim.bcryptCost)
	}
	// CompareHashAndPassword compares in constant time. Like crypt(3) it
	// only uses the first 72 bytes of the password.
	err = bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	}
	return false, fmt.Errorf("%w: %v", ErrMalformedHash, err)
}

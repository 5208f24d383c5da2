package auth

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// argon2Hash is a parsed PHC-style argon2 string:
// $argon2id$v=19$m=65536,t=3,p=1$<salt>$<key>, salt and key in unpadded
// standard base64 (Dovecot and libargon2 write it so).
type argon2Hash struct {
	variant string // "argon2id" or "argon2i"
	time    uint32
	memory  uint32 // KiB
	threads uint8
	salt    []byte
	key     []byte
}

func (h argon2Hash) String() string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d$%s$%s", h.variant, argon2.Version,
		h.memory, h.time, h.threads, b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// argon2Key derives the key with the given variant.
func argon2Key(variant, password string, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	if variant == "argon2i" {
		return argon2.Key([]byte(password), salt, time, memory, threads, keyLen)
	}
	return argon2.IDKey([]byte(password), salt, time, memory, threads, keyLen)
}

// parseArgon2 parses s as an argon2 hash of the given variant, refusing
// parameters beyond lim.
func parseArgon2(s, variant string, lim limits) (argon2Hash, error) {
	bad := func(why string) (argon2Hash, error) {
		return argon2Hash{}, fmt.Errorf("%w: %s: %s", ErrMalformedHash, variant, why)
	}
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != variant {
		return bad("want $" + variant + "$v=19$m=..,t=..,p=..$salt$hash")
	}
	// x/crypto implements version 0x13 only; a missing v= means 0x10.
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version " + strconv.Quote(f[2]))
	}
	h := argon2Hash{variant: variant}
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return bad("want m=..,t=..,p=..")
	}
	var vals [3]uint64
	for i, name := range [3]string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(params[i], name)
		if !ok {
			return bad("want m=..,t=..,p=..")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("bad parameter " + strconv.Quote(params[i]))
		}
		vals[i] = n
	}
	if vals[2] < 1 || vals[2] > 255 || vals[1] < 1 || vals[0] < 8*vals[2] {
		return bad("parameters out of range")
	}
	h.memory, h.time, h.threads = uint32(vals[0]), uint32(vals[1]), uint8(vals[2])
	if h.memory > lim.argonMemoryKiB || h.time > lim.argonTime {
		return bad(fmt.Sprintf("t=%d m=%d exceeds the limits t=%d m=%d", h.time, h.memory, lim.argonTime, lim.argonMemoryKiB))
	}
	var err error
	if h.salt, err = decodeB64(f[4]); err != nil || len(h.salt) == 0 || len(h.salt) > 512 {
		return bad("bad salt")
	}
	if h.key, err = decodeB64(f[5]); err != nil || len(h.key) < 4 || len(h.key) > 512 {
		return bad("bad hash")
	}
	return h, nil
}

// decodeB64 decodes standard base64 with or without padding.
func decodeB64(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

func compareArgon2(s, variant, password string, lim limits) (bool, error) {
	h, err := parseArgon2(s, variant, lim)
	if err != nil {
		return false, err
	}
	key := argon2Key(variant, password, h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

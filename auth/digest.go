package auth

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// digestScheme is one of Dovecot's plain digest schemes: {SHA512} is
// base64(H(password)); the salted {SSHA512} is base64(H(password+salt)+salt).
// A ".HEX" suffix on the scheme name means hex instead of base64, ".B64"
// (or ".BASE64") spells out the default.
type digestScheme struct {
	new    func() hash.Hash
	salted bool
	hex    bool
}

// lookupDigest maps an upper-cased scheme name to its digest scheme.
func lookupDigest(scheme string) (digestScheme, bool) {
	name, enc, _ := strings.Cut(scheme, ".")
	var d digestScheme
	switch enc {
	case "", "B64", "BASE64":
	case "HEX":
		d.hex = true
	default:
		return d, false
	}
	switch name {
	case "SHA512":
		d.new = sha512.New
	case "SSHA512":
		d.new, d.salted = sha512.New, true
	case "SHA256":
		d.new = sha256.New
	case "SSHA256":
		d.new, d.salted = sha256.New, true
	case "SHA1", "SHA":
		d.new = sha1.New
	case "SSHA":
		d.new, d.salted = sha1.New, true
	default:
		return d, false
	}
	return d, true
}

func (d digestScheme) compare(encoded, password string) (bool, error) {
	var raw []byte
	var err error
	if d.hex {
		raw, err = hex.DecodeString(encoded)
	} else {
		raw, err = decodeB64(encoded)
	}
	if err != nil {
		return false, fmt.Errorf("%w: digest does not decode: %v", ErrMalformedHash, err)
	}
	h := d.new()
	size := h.Size()
	switch {
	case !d.salted && len(raw) != size:
		return false, fmt.Errorf("%w: digest has %d bytes, want %d", ErrMalformedHash, len(raw), size)
	case d.salted && (len(raw) <= size || len(raw) > size+256):
		return false, fmt.Errorf("%w: salted digest has %d bytes, want %d plus salt", ErrMalformedHash, len(raw), size)
	}
	h.Write([]byte(password))
	h.Write(raw[size:]) // the salt; empty when unsalted
	return subtle.ConstantTimeCompare(h.Sum(nil), raw[:size]) == 1, nil
}

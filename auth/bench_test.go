package auth

import (
	"context"
	"testing"
)

// BenchmarkCompare_defaultParams is the cost of one login with a current
// hash: argon2id with DefaultParams.
func BenchmarkCompare_defaultParams(b *testing.B) {
	h, err := Hash("correct horse", DefaultParams)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := Compare(h, "correct horse"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify_defaultParams is a whole Verify (lookup, throttle,
// argon2id with DefaultParams).
func BenchmarkVerify_defaultParams(b *testing.B) {
	h, err := Hash("correct horse", DefaultParams)
	if err != nil {
		b.Fatal(err)
	}
	v, err := New(Options{Lookup: func(ctx context.Context, name string) (string, bool, bool, error) {
		return h, false, true, nil
	}})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := v.Verify(ctx, "alice", "correct horse", remote); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompare_schemes gives the cost of imported hashes for
// comparison (Dovecot 2.3 defaults).
func BenchmarkCompare_schemes(b *testing.B) {
	for _, tc := range []struct{ name, hash string }{
		{"ARGON2ID-dovecot-m64M-t3", "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$lBXIbqDGNZ+omMdi5DdVyA$i0QW0z8Zm94gBSxpQ3K12HoFfHZIVxLHqZ9jXoSHvE8"},
		{"BLF-CRYPT-cost5", "{BLF-CRYPT}$2y$05$tJPsXUWr35obyFHtDIlrreIeu2A27Wx/YwXDNbR9VBcKu.91G1L8W"},
		{"SHA512-CRYPT-5000", "{SHA512-CRYPT}$6$7MaAuHxoQKSCHE1L$R8Y7DxihLfTimpVAqq41qHz4NKazhvASZZUL7BV7GRcC4VjLxveLG0URO.LbEug7fuE8nIVap8lIMTrmaTQQx0"},
		{"SSHA512", "{SSHA512}4561LKnXuwDJ3vC9z7b2OwVoOZEDyKDeb5c3MtJ9zA0pNfWJkdKSJh96pAjco7kY5dXNc2IQvWUc5YQfOvHBUjcWUOM="},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if err := Compare(tc.hash, "secret"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

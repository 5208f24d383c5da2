package auth

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// testParams are cheap argon2id parameters for tests that hash a lot.
var testParams = Params{Time: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32, SaltLen: 16}

type vector struct {
	scheme, password, hash string
}

// dovecotVectors reads testdata/dovecot-pw.tsv (made with doveadm pw).
func dovecotVectors(t testing.TB) []vector {
	t.Helper()
	f, err := os.Open("testdata/dovecot-pw.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("bad fixture line %q", line)
		}
		vs = append(vs, vector{f[0], f[1], f[2]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 30 {
		t.Fatalf("only %d fixtures", len(vs))
	}
	return vs
}

func TestCompare_dovecotVectors(t *testing.T) {
	for _, v := range dovecotVectors(t) {
		t.Run(v.scheme+"/"+v.password, func(t *testing.T) {
			t.Parallel()
			if testing.Short() && strings.Contains(v.hash, "m=65536") {
				t.Skip("64 MiB argon2 in -short")
			}
			if err := Compare(v.hash, v.password); err != nil {
				t.Fatalf("Compare(%q, %q) = %v, want nil", v.hash, v.password, err)
			}
			if err := Compare(v.hash, v.password+"x"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("wrong password: err = %v, want ErrInvalidCredentials", err)
			}
			// Scheme names are case-insensitive.
			if end := strings.IndexByte(v.hash, '}'); end > 0 {
				lower := strings.ToLower(v.hash[:end]) + v.hash[end:]
				if err := Compare(lower, v.password); err != nil {
					t.Fatalf("lower-case scheme %q: %v", lower, err)
				}
			}
		})
	}
}

func TestCompare_bareCryptFormats(t *testing.T) {
	// Without a {SCHEME} prefix, crypt(3)/PHC prefixes are recognised.
	for _, v := range dovecotVectors(t) {
		end := strings.IndexByte(v.hash, '}')
		bare := v.hash[end+1:]
		if cryptScheme(bare) == "" || strings.Contains(bare, "m=65536") {
			continue
		}
		t.Run(bare, func(t *testing.T) {
			if err := Compare(bare, v.password); err != nil {
				t.Fatalf("Compare(%q) = %v", bare, err)
			}
		})
	}
}

func TestCompare_bcryptVariants(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("hunter2"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	base := string(h) // $2a$04$...
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		hash := prefix + base[4:]
		for _, stored := range []string{hash, "{BLF-CRYPT}" + hash, "{blf-crypt}" + hash, "{CRYPT}" + hash} {
			if err := Compare(stored, "hunter2"); err != nil {
				t.Errorf("Compare(%q) = %v", stored, err)
			}
			if err := Compare(stored, "hunter3"); !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("Compare(%q, wrong) = %v", stored, err)
			}
		}
	}
	// Like crypt(3), bcrypt uses the first 72 bytes only.
	long := strings.Repeat("a", 72)
	h, err = bcrypt.GenerateFromPassword([]byte(long), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := Compare(string(h), long+"ignored"); err != nil {
		t.Errorf("73+ byte password: %v", err)
	}
}

func TestCompare_plainIsConstantTimeAndExact(t *testing.T) {
	for _, tc := range []struct {
		hash, pw string
		ok       bool
	}{
		{"{PLAIN}secret", "secret", true},
		{"{CLEAR}secret", "secret", true},
		{"{cleartext}secret", "secret", true},
		{"{PLAIN}secret", "Secret", false},
		{"{PLAIN}secret", "secre", false},
		{"{PLAIN}", "", true},
		{"{PLAIN}a}b{c", "a}b{c", true},
	} {
		err := Compare(tc.hash, tc.pw)
		if (err == nil) != tc.ok {
			t.Errorf("Compare(%q, %q) = %v, want ok=%v", tc.hash, tc.pw, err, tc.ok)
		}
	}
}

func TestCompare_badHashes(t *testing.T) {
	for _, tc := range []struct {
		hash string
		want error
	}{
		{"", ErrUnknownScheme},
		{"secret", ErrUnknownScheme}, // no prefix is never plaintext
		{"{NOPE}x", ErrUnknownScheme},
		{"{MD5-CRYPT}$1$AaxzHpHl$iakhgK5wAr7gayB6o18821", ErrUnknownScheme},
		{"{CRYPT}$1$AaxzHpHl$iakhgK5wAr7gayB6o18821", ErrUnknownScheme},
		{"{CRYPT}$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", ErrUnknownScheme},
		{"{SHA512.ROT13}x", ErrUnknownScheme},
		{"{SHA512", ErrUnknownScheme},
		{"$2x$04$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui", ErrUnknownScheme},
		{"{ARGON2ID}$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", ErrMalformedHash},
		{"{ARGON2ID}$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", ErrMalformedHash},
		{"{ARGON2ID}$argon2id$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", ErrMalformedHash},
		{"{ARGON2ID}$argon2id$v=19$t=1,m=64,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", ErrMalformedHash},
		{"{ARGON2ID}$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", ErrMalformedHash},
		{"{ARGON2ID}$argon2id$v=19$m=64,t=1,p=0$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", ErrMalformedHash},
		{"{ARGON2ID}$argon2id$v=19$m=7,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", ErrMalformedHash},
		{"{ARGON2ID}$argon2id$v=19$m=64,t=1,p=256$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", ErrMalformedHash},
		{"{ARGON2ID}$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", ErrMalformedHash}, // 4 GiB
		{"{ARGON2ID}$argon2id$v=19$m=64,t=1000,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", ErrMalformedHash},
		{"{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNo", ErrMalformedHash},
		{"{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$", ErrMalformedHash},
		{"{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFz$extra", ErrMalformedHash},
		{"{BLF-CRYPT}$6$salt$x", ErrMalformedHash},
		{"{BLF-CRYPT}$2y$04$short", ErrMalformedHash},
		{"$2y$17$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui", ErrMalformedHash}, // cost over limit
		{"{SHA512-CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", ErrMalformedHash},
		{"$6$saltstring$tooshort", ErrMalformedHash},
		{"$6$rounds=x$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", ErrMalformedHash},
		{"$6$rounds=999999999$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", ErrMalformedHash},
		{"{SHA512}vSsar3708Jvp9Szi2NWZZ02Bqp1qRCFpbcTZPdBhnWgs5WtNZKnvCXdhztmeD2cmW192CF5bDufKRpayrW", ErrMalformedHash}, // short
		{"{SHA256}not base64!", ErrMalformedHash},
		{"{SSHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=", ErrMalformedHash}, // no salt
		{"{SHA256.HEX}zz", ErrMalformedHash},
	} {
		t.Run(tc.hash, func(t *testing.T) {
			err := Compare(tc.hash, "secret")
			if !errors.Is(err, tc.want) {
				t.Fatalf("Compare(%q) = %v, want %v", tc.hash, err, tc.want)
			}
			if !NeedsRehash(tc.hash, DefaultParams) {
				t.Errorf("NeedsRehash(%q) = false for an unusable hash", tc.hash)
			}
		})
	}
}

func TestCompare_passwordTooLong(t *testing.T) {
	long := strings.Repeat("x", maxPasswordLen+1)
	if err := Compare("{PLAIN}"+long, long); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("err = %v, want ErrInvalidCredentials", err)
	}
	if _, err := Hash(long, testParams); err == nil {
		t.Fatal("Hash accepted an over-long password")
	}
}

func TestHash_roundTrip(t *testing.T) {
	for _, pw := range []string{"secret", "", "pässwörd", "with space and $ and {BRACES}", strings.Repeat("z", maxPasswordLen)} {
		h, err := Hash(pw, testParams)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h, "{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$") {
			t.Fatalf("Hash = %q, want Dovecot ARGON2ID format", h)
		}
		if err := Compare(h, pw); err != nil {
			t.Fatalf("Compare(Hash(%q)) = %v", pw, err)
		}
		if err := Compare(h, pw+"!"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
		if NeedsRehash(h, testParams) {
			t.Errorf("NeedsRehash of a fresh hash = true")
		}
	}
	a, _ := Hash("same", testParams)
	b, _ := Hash("same", testParams)
	if a == b {
		t.Error("two hashes of one password are equal: salt not random")
	}
}

func TestHash_params(t *testing.T) {
	h, err := Hash("pw", Params{Time: 1, MemoryKiB: 128, Threads: 2, KeyLen: 16, SaltLen: 8})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := splitScheme(h)
	p, err := parseArgon2(h[len("{ARGON2ID}"):], "argon2id", defaultLimits)
	if err != nil || r != "ARGON2ID" {
		t.Fatal(r, err)
	}
	if p.time != 1 || p.memory != 128 || p.threads != 2 || len(p.key) != 16 || len(p.salt) != 8 {
		t.Errorf("parsed %+v", p)
	}
	for _, bad := range []Params{
		{MemoryKiB: 8, Threads: 2},
		{MemoryKiB: 2 << 20},
		{Time: 65},
		{KeyLen: 8},
		{SaltLen: 4},
	} {
		if _, err := Hash("pw", bad); err == nil {
			t.Errorf("Hash with %+v: no error", bad)
		}
	}
}

func TestNeedsRehash(t *testing.T) {
	strong := Params{Time: 2, MemoryKiB: 128, Threads: 1, KeyLen: 32, SaltLen: 16}
	mk := func(p Params) string {
		h, err := Hash("pw", p)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for _, tc := range []struct {
		name string
		hash string
		want bool
	}{
		{"same", mk(strong), false},
		{"stronger", mk(Params{Time: 3, MemoryKiB: 256, KeyLen: 64, SaltLen: 32}), false},
		{"more threads is not weaker", mk(Params{Time: 2, MemoryKiB: 128, Threads: 4, KeyLen: 32, SaltLen: 16}), false},
		{"fewer threads is not weaker", mk(Params{Time: 2, MemoryKiB: 128, Threads: 1, KeyLen: 32, SaltLen: 16}), false},
		{"less time", mk(Params{Time: 1, MemoryKiB: 128, KeyLen: 32, SaltLen: 16}), true},
		{"less memory", mk(Params{Time: 2, MemoryKiB: 64, KeyLen: 32, SaltLen: 16}), true},
		{"shorter key", mk(Params{Time: 2, MemoryKiB: 128, KeyLen: 16, SaltLen: 16}), true},
		{"shorter salt", mk(Params{Time: 2, MemoryKiB: 128, KeyLen: 32, SaltLen: 8}), true},
		{"bare argon2id", strings.TrimPrefix(mk(strong), "{ARGON2ID}"), false},
		{"lower-case scheme", "{argon2id}" + strings.TrimPrefix(mk(strong), "{ARGON2ID}"), false},
		{"argon2i", "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$DaFnYc16Ko7ptxu9VmKKYA$jZMQjRzDhIgtP+tpJOluxGt0SvnIzwNcbWFXra7FyY4", true},
		{"bcrypt", "$2y$05$tJPsXUWr35obyFHtDIlrreIeu2A27Wx/YwXDNbR9VBcKu.91G1L8W", true},
		{"sha512-crypt", "{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", true},
		{"plain", "{PLAIN}pw", true},
		{"garbage", "xyz", true},
	} {
		if got := NeedsRehash(tc.hash, strong); got != tc.want {
			t.Errorf("%s: NeedsRehash(%q) = %v, want %v", tc.name, tc.hash, got, tc.want)
		}
	}
	// The Dovecot default (m=64 MiB, t=3) is at least DefaultParams.
	if NeedsRehash("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$lBXIbqDGNZ+omMdi5DdVyA$i0QW0z8Zm94gBSxpQ3K12HoFfHZIVxLHqZ9jXoSHvE8", Params{}) {
		t.Error("Dovecot's default argon2id needs rehash under DefaultParams")
	}
}

// TestHash_dovecotVerifies checks that Dovecot accepts our hashes. It
// needs doveadm (apt-get install dovecot-core) and skips without it.
func TestHash_dovecotVerifies(t *testing.T) {
	doveadm, err := exec.LookPath("doveadm")
	if err != nil {
		t.Skip("doveadm not installed")
	}
	for _, p := range []Params{testParams, {}} {
		h, err := Hash("pässwörd", p)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(doveadm, "pw", "-t", h, "-p", "pässwörd").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "verified") {
			t.Fatalf("doveadm pw -t %s: %v: %s", h, err, out)
		}
		out, err = exec.Command(doveadm, "pw", "-t", h, "-p", "wrong").CombinedOutput()
		if err == nil {
			t.Fatalf("doveadm verified a wrong password: %s", out)
		}
	}
}

// FuzzVerifyHash feeds arbitrary stored hashes and passwords to the
// verification and rehash logic: it must never panic, and a hash it
// accepts must also be accepted with its scheme name in lower case.
func FuzzVerifyHash(f *testing.F) {
	for _, v := range dovecotVectors(f) {
		f.Add(v.hash, v.password)
	}
	for _, v := range shaCryptSpecVectors {
		f.Add(v.want, v.password)
	}
	f.Add("$6$rounds=1000$salt$", "x")
	f.Add("{SSHA512.HEX}00", "")
	f.Add("{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA", "pw")
	// Tight limits keep every input cheap.
	lim := limits{argonMemoryKiB: 256, argonTime: 2, bcryptCost: 5, shaRounds: 5000}
	f.Fuzz(func(t *testing.T, hash, password string) {
		ok, err := compareHash(hash, password, lim)
		if err != nil && ok {
			t.Fatalf("ok with error %v", err)
		}
		if err != nil && !errors.Is(err, ErrUnknownScheme) && !errors.Is(err, ErrMalformedHash) {
			t.Fatalf("unexpected error class: %v", err)
		}
		if ok && strings.HasPrefix(hash, "{") {
			if end := strings.IndexByte(hash, '}'); end > 0 {
				ok2, _ := compareHash(strings.ToLower(hash[:end])+hash[end:], password, lim)
				if !ok2 {
					t.Fatalf("lower-case scheme of %q rejected", hash)
				}
			}
		}
		_ = NeedsRehash(hash, DefaultParams)
	})
}

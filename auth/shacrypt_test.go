package auth

import (
	"errors"
	"strings"
	"testing"
)

// shaCryptSpecVectors are the test vectors published with Drepper's
// SHA-crypt specification (https://www.akkadia.org/drepper/SHA-crypt.txt).
var shaCryptSpecVectors = []struct {
	setting, password, want string
}{
	{"$5$saltstring", "Hello world!",
		"$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
	{"$5$rounds=10000$saltstringsaltstring", "Hello world!",
		"$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"},
	{"$5$rounds=5000$toolongsaltstring", "This is just a test",
		"$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5"},
	{"$5$rounds=1400$anotherlongsaltstring", "a very much longer text to encrypt.  This one even stretches over morethan one line.",
		"$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1"},
	{"$5$rounds=77777$short", "we have a short salt string but not a short password",
		"$5$rounds=77777$short$JiO1O3ZpDAxGJeaDIuqCoEFysAe1mZNJRs3pw0KQRd/"},
	{"$5$rounds=123456$asaltof16chars..", "a short string",
		"$5$rounds=123456$asaltof16chars..$gP3VQ/6X7UUEW3HkBn2w1/Ptq2jxPyzV/cZKmF/wJvD"},
	{"$5$rounds=10$roundstoolow", "the minimum number is still observed",
		"$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC"},
	{"$6$saltstring", "Hello world!",
		"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{"$6$rounds=10000$saltstringsaltstring", "Hello world!",
		"$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
	{"$6$rounds=5000$toolongsaltstring", "This is just a test",
		"$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
	{"$6$rounds=1400$anotherlongsaltstring", "a very much longer text to encrypt.  This one even stretches over morethan one line.",
		"$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1"},
	{"$6$rounds=77777$short", "we have a short salt string but not a short password",
		"$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0"},
	{"$6$rounds=123456$asaltof16chars..", "a short string",
		"$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1"},
	{"$6$rounds=10$roundstoolow", "the minimum number is still observed",
		"$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
}

func variantOf(setting string) shaVariant {
	if setting[1] == '5' {
		return sha256Crypt
	}
	return sha512Crypt
}

func TestSHACrypt_specVectors(t *testing.T) {
	for _, v := range shaCryptSpecVectors {
		t.Run(v.setting, func(t *testing.T) {
			t.Parallel()
			if testing.Short() && strings.Contains(v.setting, "rounds=123456") {
				t.Skip("123456 rounds in -short")
			}
			got, err := variantOf(v.setting).crypt(v.password, v.setting)
			if err != nil {
				t.Fatal(err)
			}
			if got != v.want {
				t.Fatalf("crypt(%q, %q)\n got %s\nwant %s", v.password, v.setting, got, v.want)
			}
			// The full hash verifies through Compare, bare and prefixed.
			scheme := "{SHA512-CRYPT}"
			if v.setting[1] == '5' {
				scheme = "{SHA256-CRYPT}"
			}
			for _, h := range []string{v.want, scheme + v.want, "{CRYPT}" + v.want} {
				if err := Compare(h, v.password); err != nil {
					t.Errorf("Compare(%q) = %v", h, err)
				}
			}
			if err := Compare(v.want, v.password[1:]); !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("wrong password: %v", err)
			}
			// Crypting with the complete hash as the setting reproduces it.
			again, err := variantOf(v.setting).crypt(v.password, v.want)
			if err != nil || again != v.want {
				t.Errorf("crypt with hash as setting = %q, %v", again, err)
			}
		})
	}
}

func TestSHACrypt_parseSetting(t *testing.T) {
	for _, tc := range []struct {
		in     string
		rounds int
		custom bool
		salt   string
		digest string
	}{
		{"$6$abc$def", 5000, false, "abc", "def"},
		{"$6$abc", 5000, false, "abc", ""},
		{"$6$$def", 5000, false, "", "def"},
		{"$6$rounds=5000$abc$def", 5000, true, "abc", "def"},
		{"$6$rounds=1$abc$def", 1000, true, "abc", "def"},
		{"$6$rounds=4000000000$abc$def", shaRoundsMax, true, "abc", "def"},
		{"$6$0123456789abcdefXYZ$def", 5000, false, "0123456789abcdef", "def"},
	} {
		set, digest, err := sha512Crypt.parseSetting(tc.in)
		if err != nil || set.rounds != tc.rounds || set.custom != tc.custom || set.salt != tc.salt || digest != tc.digest {
			t.Errorf("parseSetting(%q) = %+v, %q, %v", tc.in, set, digest, err)
		}
	}
	for _, bad := range []string{"$5$abc", "$6$rounds=$abc", "$6$rounds=+5$abc", "$6$rounds=-5$abc", "$6$rounds=5000", "$6$rounds=99999999999$a$b"} {
		if _, _, err := sha512Crypt.parseSetting(bad); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("parseSetting(%q): err = %v, want ErrMalformedHash", bad, err)
		}
	}
}

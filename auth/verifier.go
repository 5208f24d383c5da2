package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Outcomes of Verify that callers branch on.
var (
	// ErrInvalidCredentials is returned for an unknown user, a wrong
	// password and a disabled account alike.
	ErrInvalidCredentials = errors.New("auth: invalid credentials")
	// ErrThrottled is returned while the user name or the remote address is
	// locked out after too many failures.
	ErrThrottled = errors.New("auth: too many failed logins, try again later")
)

// maxNameLen bounds the user names Verify looks up; longer names fail like
// unknown users.
const maxNameLen = 320

// Options configure a Verifier. Lookup is required; every other zero value
// is safe and means the documented default.
type Options struct {
	// Lookup returns the stored hash for a user name; found is false for an
	// unknown user (not an error). It is called once per Verify, with the
	// name as the client sent it. A *store.Store method fits after a small
	// adapter in cmd/.
	Lookup func(ctx context.Context, name string) (hash string, disabled, found bool, err error)
	// Rehash stores newHash for name. It is called after a successful
	// login whose stored hash NeedsRehash; its error is logged, not
	// returned. Nil means stored hashes are never upgraded.
	Rehash func(ctx context.Context, name, newHash string) error
	// Argon2 are the parameters for new hashes (rehash, the timing dummy).
	// Zero fields mean DefaultParams' values.
	Argon2 Params
	// Throttle configures delays and lockouts after failures.
	Throttle ThrottleOptions
	// MaxConcurrent bounds how many hash computations run at once; each
	// argon2 one holds its memory parameter. Zero means 2×GOMAXPROCS.
	// Verify waits for a slot (or its context).
	MaxConcurrent int
	// CacheTTL, when positive, remembers successful logins for that long,
	// so a client that logs in again with the same password skips the
	// (deliberately slow) hash comparison, as Dovecot's auth cache does.
	// Entries are keyed by a keyed hash (HMAC-SHA256 with a random
	// per-process key) of the user name, the stored hash and the password:
	// a changed password or hash misses at once, and the cache holds no
	// password. Failures are never cached. Zero: no cache.
	CacheTTL time.Duration
	// Logger receives login failures (Info: user and remote only), lockouts
	// (Warn) and unusable stored hashes (Error). Nil discards.
	Logger *slog.Logger
}

// Stats are cumulative Verify outcomes.
type Stats struct {
	OK        uint64 // successful logins
	Failed    uint64 // ErrInvalidCredentials answers
	Throttled uint64 // ErrThrottled answers
}

// Verifier checks user names and passwords. It is safe for concurrent use.
// It holds no goroutines and needs no Close.
type Verifier struct {
	lookup   func(ctx context.Context, name string) (hash string, disabled, found bool, err error)
	rehash   func(ctx context.Context, name, newHash string) error
	params   Params
	throttle *throttle
	log      *slog.Logger
	sem      chan struct{} // one token per hash computation in flight
	dummy    string        // hash checked for unknown users, so they cost the same

	// compare checks a password against a hash (compareHash with the
	// default limits). A field so tests can count calls.
	compare func(hash, password string) (bool, error)

	ok, failed, throttled atomic.Uint64

	cache *loginCache // nil: no cache
}

// New returns a Verifier. It computes one argon2id hash (the dummy that
// unknown users are checked against), so it takes as long as one login.
func New(opts Options) (*Verifier, error) {
	if opts.Lookup == nil {
		return nil, errors.New("auth: Options.Lookup is required")
	}
	params := opts.Argon2.withDefaults()
	th, err := newThrottle(opts.Throttle)
	if err != nil {
		return nil, err
	}
	// A random password nobody can send: the dummy must never match.
	dummy, err := Hash(rand.Text(), params)
	if err != nil {
		return nil, err
	}
	n := opts.MaxConcurrent
	if n <= 0 {
		n = 2 * runtime.GOMAXPROCS(0)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Verifier{
		lookup:   opts.Lookup,
		rehash:   opts.Rehash,
		params:   params,
		throttle: th,
		log:      log,
		sem:      make(chan struct{}, n),
		dummy:    dummy,
		compare: func(hash, password string) (bool, error) {
			return compareHash(hash, password, defaultLimits)
		},
		cache: newLoginCache(opts.CacheTTL),
	}, nil
}

// Verify checks name and password for a client at remote (the zero Addr
// when unknown: then only the per-user throttle applies). It returns nil on
// success, ErrInvalidCredentials for an unknown user, a wrong password or a
// disabled account (all three run one hash verification, so they take the
// same time), ErrThrottled while name or remote is locked out, and any
// other error for internal failures (lookup errors, ctx done).
//
// After earlier failures of name or remote, Verify first sleeps the
// throttle's delay. After a success with a hash that NeedsRehash, it calls
// Options.Rehash with a fresh argon2id hash.
func (v *Verifier) Verify(ctx context.Context, name, password string, remote netip.Addr) error {
	delay, err := v.throttle.admit(name, remote)
	if err != nil {
		v.throttled.Add(1)
		v.log.Debug("login refused", "user", name, "remote", remote, "err", err)
		return err
	}
	if delay > 0 {
		if err := v.throttle.sleep(ctx, delay); err != nil {
			return fmt.Errorf("auth: verify %q: %w", name, err)
		}
	}
	hash, ok, err := v.check(ctx, name, password)
	if err != nil {
		return err
	}
	if !ok {
		v.failed.Add(1)
		v.log.Info("login failed", "user", name, "remote", remote)
		if v.throttle.fail(name, remote) {
			v.log.Warn("login locked out", "user", name, "remote", remote)
		}
		return ErrInvalidCredentials
	}
	v.throttle.succeed(name)
	v.ok.Add(1)
	v.upgrade(ctx, name, password, hash)
	return nil
}

// check looks name up and compares password, running exactly one hash
// comparison whatever the outcome. ok is true only for an enabled user with
// the right password; err only reports internal failures.
func (v *Verifier) check(ctx context.Context, name, password string) (hash string, ok bool, err error) {
	var disabled, found bool
	if name != "" && len(name) <= maxNameLen && utf8.ValidString(name) {
		hash, disabled, found, err = v.lookup(ctx, name)
		if err != nil {
			return "", false, fmt.Errorf("auth: look up %q: %w", name, err)
		}
	}
	if !found {
		hash = v.dummy
	}
	var ck [32]byte
	if found && !disabled && v.cache != nil {
		ck = v.cache.key(name, hash, password)
		if v.cache.hit(ck) {
			return hash, true, nil
		}
	}
	if err := v.acquire(ctx); err != nil {
		return "", false, fmt.Errorf("auth: verify %q: %w", name, err)
	}
	defer v.release()
	match, err := v.compare(hash, password)
	if err != nil {
		// The stored hash is unusable: the user cannot log in until an
		// operator fixes it. Spend the dummy's cost so the answer's timing
		// does not single the account out.
		v.log.Error("stored password hash unusable", "user", name, "err", err)
		_, _ = v.compare(v.dummy, password)
		return "", false, nil
	}
	ok = match && found && !disabled
	if ok && v.cache != nil {
		v.cache.add(ck)
	}
	return hash, ok, nil
}

// upgrade replaces a weaker stored hash after a successful login.
func (v *Verifier) upgrade(ctx context.Context, name, password, hash string) {
	if v.rehash == nil || !NeedsRehash(hash, v.params) {
		return
	}
	if err := v.acquire(ctx); err != nil {
		return // the login succeeded; upgrade next time
	}
	newHash, err := Hash(password, v.params)
	v.release()
	if err == nil {
		err = v.rehash(ctx, name, newHash)
	}
	if err != nil {
		v.log.Warn("password rehash", "user", name, "err", err)
		return
	}
	v.log.Info("password rehashed", "user", name)
}

func (v *Verifier) acquire(ctx context.Context) error {
	select {
	case v.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (v *Verifier) release() { <-v.sem }

// Metrics returns the counts of Verify outcomes so far.
func (v *Verifier) Metrics() Stats {
	return Stats{OK: v.ok.Load(), Failed: v.failed.Load(), Throttled: v.throttled.Load()}
}

// Password is a string that never shows up in logs or formatted output:
// slog and every fmt verb print "[redacted]". Use it to hold a password
// between protocol steps (POP3 USER/PASS); convert with string(p) only to
// pass it to Verify.
type Password string

// LogValue implements slog.LogValuer.
func (Password) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Format implements fmt.Formatter for every verb, %v %s %q %x %#v included.
func (Password) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

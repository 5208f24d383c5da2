package auth

import (
	"context"
	"errors"
	"hash/maphash"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// ThrottleOptions configure the login throttle. Failures are counted per
// user name (case-insensitively) and per remote address (IPv6 by /64, since
// one host usually owns a whole /64). Loopback is not exempt. Every zero
// value means the default given; a negative value switches the feature off
// where noted.
type ThrottleOptions struct {
	// FreeFailures is how many recent failures pass without delay. Zero
	// means 3; negative means none.
	FreeFailures int
	// BaseDelay is the delay once FreeFailures is used up; it doubles with
	// each further failure up to MaxDelay. The larger of the user's and the
	// address's counts decides. Zero means 250ms; negative disables delays.
	BaseDelay time.Duration
	// MaxDelay caps the delay. Zero means 4s.
	MaxDelay time.Duration
	// UserLimit is the number of failures after which a user name is
	// locked out for Lockout. Zero means 10; negative never locks.
	UserLimit int
	// IPLimit is the same for a remote address (or IPv6 /64). Zero means
	// 20; negative never locks.
	IPLimit int
	// Window is how long failures are remembered: a count is forgotten
	// once Window passes without a new failure. Zero means 15 minutes.
	Window time.Duration
	// Lockout is how long a lockout lasts; afterwards the count starts
	// again from zero. Zero means 15 minutes.
	Lockout time.Duration
	// MaxEntries bounds each of the two tables (user names, addresses).
	// When one is full, expired entries are dropped, then arbitrary ones
	// that are not locked out. Zero means 65536 (under 10 MB for both).
	MaxEntries int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Sleep waits d or until ctx is done, returning ctx.Err() then. Nil
	// means a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// throttle keeps failure counts. A success clears the user's count but not
// the address's, so one valid account cannot launder an attacker's address.
// Checking (admit) and counting (fail) are separate steps, so attempts
// already past admit when a lockout starts still get their answer; the
// Verifier's hashing semaphore bounds how many those can be.
type throttle struct {
	o     ThrottleOptions // defaults filled in
	sleep func(ctx context.Context, d time.Duration) error
	seed  maphash.Seed // user names are keyed by a seeded hash: fixed-size keys

	mu    sync.Mutex
	users table[uint64]     // guarded by mu
	addrs table[netip.Addr] // guarded by mu
}

// record is one user's or address's recent failures.
type record struct {
	failures int
	last     time.Time // last failure
	until    time.Time // end of the lockout; zero when not locked
}

// table is a bounded map of records.
type table[K comparable] struct {
	m         map[K]record
	limit     int // failures that lock; <= 0 never
	lastSweep time.Time
}

func newThrottle(o ThrottleOptions) (*throttle, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.FreeFailures, 3)
	def(&o.UserLimit, 10)
	def(&o.IPLimit, 20)
	def(&o.MaxEntries, 65536)
	defDur(&o.BaseDelay, 250*time.Millisecond)
	defDur(&o.MaxDelay, 4*time.Second)
	defDur(&o.Window, 15*time.Minute)
	defDur(&o.Lockout, 15*time.Minute)
	if o.FreeFailures < 0 {
		o.FreeFailures = 0
	}
	if o.MaxEntries < 0 || o.MaxDelay < 0 || o.Window < 0 || o.Lockout < 0 {
		return nil, errors.New("auth: negative ThrottleOptions.MaxEntries, MaxDelay, Window or Lockout")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	t := &throttle{o: o, sleep: o.Sleep, seed: maphash.MakeSeed()}
	if t.sleep == nil {
		t.sleep = sleepCtx
	}
	t.users = table[uint64]{m: make(map[uint64]record), limit: o.UserLimit}
	t.addrs = table[netip.Addr]{m: make(map[netip.Addr]record), limit: o.IPLimit}
	return t, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *throttle) userKey(name string) uint64 {
	return maphash.String(t.seed, strings.ToLower(name))
}

// addrKey returns the address's table key; ok is false for the zero Addr.
func addrKey(a netip.Addr) (k netip.Addr, ok bool) {
	if !a.IsValid() {
		return k, false
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr(), true
	}
	return a, true
}

// admit returns ErrThrottled while name or remote is locked out, else the
// delay their recent failures earn.
func (t *throttle) admit(name string, remote netip.Addr) (time.Duration, error) {
	now := t.o.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.users.get(t.userKey(name), now, t.o)
	var a record
	if k, ok := addrKey(remote); ok {
		a = t.addrs.get(k, now, t.o)
	}
	if now.Before(u.until) || now.Before(a.until) {
		return 0, ErrThrottled
	}
	return t.delay(max(u.failures, a.failures)), nil
}

// delay is 0 for the free failures, then BaseDelay doubling to MaxDelay.
func (t *throttle) delay(failures int) time.Duration {
	n := failures - t.o.FreeFailures
	if t.o.BaseDelay < 0 || n < 0 {
		return 0
	}
	d := t.o.BaseDelay
	for ; n > 0 && d < t.o.MaxDelay; n-- {
		d *= 2
	}
	return min(d, t.o.MaxDelay)
}

// fail counts a failure for name and remote and reports whether that
// started a lockout of either.
func (t *throttle) fail(name string, remote netip.Addr) (locked bool) {
	now := t.o.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	locked = t.users.fail(t.userKey(name), now, t.o)
	if k, ok := addrKey(remote); ok {
		locked = t.addrs.fail(k, now, t.o) || locked
	}
	return locked
}

// succeed forgets name's failures.
func (t *throttle) succeed(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.users.m, t.userKey(name))
}

// expired reports whether r can be forgotten at now.
func (r record) expired(now time.Time, o ThrottleOptions) bool {
	if !r.until.IsZero() {
		return !now.Before(r.until)
	}
	return !now.Before(r.last.Add(o.Window))
}

// get returns k's live record (the zero record if none), dropping it if
// expired.
func (tb *table[K]) get(k K, now time.Time, o ThrottleOptions) record {
	r, ok := tb.m[k]
	if ok && r.expired(now, o) {
		delete(tb.m, k)
		return record{}
	}
	return r
}

// fail counts one failure for k and reports whether it started a lockout.
func (tb *table[K]) fail(k K, now time.Time, o ThrottleOptions) bool {
	r, ok := tb.m[k]
	if ok && r.expired(now, o) {
		r, ok = record{}, false
	}
	if !ok {
		tb.makeRoom(now, o)
	}
	r.failures++
	r.last = now
	started := tb.limit > 0 && r.failures >= tb.limit && r.until.IsZero()
	if started {
		r.until = now.Add(o.Lockout)
	}
	tb.m[k] = r
	return started
}

// makeRoom ensures there is space for one more entry: it drops expired
// entries (at most once a second, the sweep is O(n)), then, if still full,
// arbitrary entries, preferring ones not locked out.
func (tb *table[K]) makeRoom(now time.Time, o ThrottleOptions) {
	if len(tb.m) < o.MaxEntries {
		return
	}
	if now.Sub(tb.lastSweep) >= time.Second || now.Before(tb.lastSweep) {
		tb.lastSweep = now
		for k, r := range tb.m {
			if r.expired(now, o) {
				delete(tb.m, k)
			}
		}
	}
	for _, evictLocked := range []bool{false, true} {
		for k, r := range tb.m {
			if len(tb.m) < o.MaxEntries {
				return
			}
			if locked := !r.until.IsZero(); locked == evictLocked {
				delete(tb.m, k)
			}
		}
	}
}

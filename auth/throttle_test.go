package auth

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// throttleHarness has one user, alice/pw, with cheap hashes.
func throttleHarness(t *testing.T, edit func(*ThrottleOptions)) *harness {
	t.Helper()
	return newHarness(t, map[string]fakeUser{
		"alice": {hash: mustHash(t, "pw")},
		"bob":   {hash: mustHash(t, "bobpw")},
	}, func(o *Options) {
		if edit != nil {
			edit(&o.Throttle)
		}
	})
}

func TestThrottle_growingDelay(t *testing.T) {
	h := throttleHarness(t, func(o *ThrottleOptions) { o.UserLimit, o.IPLimit = -1, -1 })
	var got []time.Duration
	for range 9 {
		if err := h.v.Verify(ctx, "alice", "wrong", remote); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatal(err)
		}
		d := h.sleeps.take()
		if len(d) > 1 {
			t.Fatalf("slept %v in one Verify", d)
		}
		got = append(got, append(d, 0)[0])
	}
	ms := time.Millisecond
	want := []time.Duration{0, 0, 0, 250 * ms, 500 * ms, 1000 * ms, 2000 * ms, 4000 * ms, 4000 * ms}
	if !slices.Equal(got, want) {
		t.Errorf("delays %v, want %v", got, want)
	}
	// The delay applies before the answer, to a right password too.
	if err := h.v.Verify(ctx, "alice", "pw", remote); err != nil {
		t.Fatal(err)
	}
	if d := h.sleeps.take(); !slices.Equal(d, []time.Duration{4 * time.Second}) {
		t.Errorf("delay before success %v", d)
	}
}

func TestThrottle_userLockout(t *testing.T) {
	h := throttleHarness(t, nil)
	ips := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}) }
	for i := range 10 { // from ten addresses, so only the user limit applies
		if err := h.v.Verify(ctx, "alice", "wrong", ips(i)); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	before := h.compare.Load()
	for _, name := range []string{"alice", "ALICE", "Alice"} { // names are case-insensitive
		if err := h.v.Verify(ctx, name, "pw", ips(99)); !errors.Is(err, ErrThrottled) {
			t.Fatalf("Verify(%s) during lockout = %v, want ErrThrottled", name, err)
		}
	}
	if h.compare.Load() != before {
		t.Error("a locked-out attempt computed a hash")
	}
	// Other users are unaffected.
	if err := h.v.Verify(ctx, "bob", "bobpw", ips(99)); err != nil {
		t.Fatalf("bob: %v", err)
	}
	h.clock.Advance(15*time.Minute - time.Second)
	if err := h.v.Verify(ctx, "alice", "pw", ips(99)); !errors.Is(err, ErrThrottled) {
		t.Fatalf("just before the lockout ends: %v", err)
	}
	h.clock.Advance(time.Second)
	h.sleeps.take()
	if err := h.v.Verify(ctx, "alice", "pw", ips(99)); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
	if d := h.sleeps.take(); len(d) != 0 {
		t.Errorf("delay %v after the lockout ended", d)
	}
	if got, want := h.v.Metrics(), (Stats{OK: 2, Failed: 10, Throttled: 4}); got != want {
		t.Errorf("Metrics = %+v, want %+v", got, want)
	}
	if logs := h.log.String(); !strings.Contains(logs, `msg="login locked out" user=alice`) {
		t.Errorf("lockout not logged:\n%s", logs)
	}
}

func TestThrottle_ipLockout(t *testing.T) {
	h := throttleHarness(t, nil)
	for i := range 20 { // twenty different names from one address
		if err := h.v.Verify(ctx, fmt.Sprintf("user%d", i), "x", remote); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	if err := h.v.Verify(ctx, "alice", "pw", remote); !errors.Is(err, ErrThrottled) {
		t.Fatalf("from the locked address: %v", err)
	}
	if err := h.v.Verify(ctx, "alice", "pw", netip.MustParseAddr("::ffff:192.0.2.1")); !errors.Is(err, ErrThrottled) {
		t.Fatalf("IPv4-mapped form of the locked address: %v", err)
	}
	if err := h.v.Verify(ctx, "alice", "pw", netip.MustParseAddr("192.0.2.2")); err != nil {
		t.Fatalf("from another address: %v", err)
	}
}

func TestThrottle_ipv6Per64(t *testing.T) {
	h := throttleHarness(t, func(o *ThrottleOptions) { o.IPLimit = 3; o.UserLimit = -1 })
	for i := range 3 {
		addr := netip.MustParseAddr(fmt.Sprintf("2001:db8:1:2::%x", i+1))
		_ = h.v.Verify(ctx, fmt.Sprintf("u%d", i), "x", addr)
	}
	if err := h.v.Verify(ctx, "alice", "pw", netip.MustParseAddr("2001:db8:1:2:ffff::1%eth0")); !errors.Is(err, ErrThrottled) {
		t.Fatalf("same /64: %v", err)
	}
	if err := h.v.Verify(ctx, "alice", "pw", netip.MustParseAddr("2001:db8:1:3::1")); err != nil {
		t.Fatalf("other /64: %v", err)
	}
}

func TestThrottle_loopbackNotExempt(t *testing.T) {
	h := throttleHarness(t, func(o *ThrottleOptions) { o.IPLimit = 2 })
	lo := netip.MustParseAddr("127.0.0.1")
	_ = h.v.Verify(ctx, "a", "x", lo)
	_ = h.v.Verify(ctx, "b", "x", lo)
	if err := h.v.Verify(ctx, "alice", "pw", lo); !errors.Is(err, ErrThrottled) {
		t.Fatalf("loopback: %v", err)
	}
}

func TestThrottle_successClearsUserNotAddress(t *testing.T) {
	h := throttleHarness(t, func(o *ThrottleOptions) { o.UserLimit = 5; o.IPLimit = 6 })
	for range 4 {
		_ = h.v.Verify(ctx, "alice", "wrong", remote)
	}
	if err := h.v.Verify(ctx, "alice", "pw", remote); err != nil {
		t.Fatal(err)
	}
	// alice's count is back to zero: four more failures do not lock her...
	other := netip.MustParseAddr("203.0.113.9")
	for range 4 {
		_ = h.v.Verify(ctx, "alice", "wrong", other)
	}
	if err := h.v.Verify(ctx, "alice", "pw", other); err != nil {
		t.Fatalf("alice after 4 new failures: %v", err)
	}
	// ...but the address kept its four: two more lock it.
	_ = h.v.Verify(ctx, "bob", "wrong", remote)
	_ = h.v.Verify(ctx, "bob", "wrong", remote)
	if err := h.v.Verify(ctx, "bob", "bobpw", remote); !errors.Is(err, ErrThrottled) {
		t.Fatalf("address after 6 failures: %v", err)
	}
}

func TestThrottle_windowForgets(t *testing.T) {
	h := throttleHarness(t, nil)
	for range 9 {
		_ = h.v.Verify(ctx, "alice", "wrong", remote)
		h.clock.Advance(14 * time.Minute) // each failure restarts the window
	}
	h.sleeps.take()
	_ = h.v.Verify(ctx, "alice", "wrong", remote) // the tenth locks
	if err := h.v.Verify(ctx, "alice", "pw", remote); !errors.Is(err, ErrThrottled) {
		t.Fatalf("slow failures did not add up: %v", err)
	}

	h2 := throttleHarness(t, nil)
	for range 5 {
		_ = h2.v.Verify(ctx, "alice", "wrong", remote)
	}
	h2.clock.Advance(15 * time.Minute)
	h2.sleeps.take()
	if err := h2.v.Verify(ctx, "alice", "pw", remote); err != nil {
		t.Fatal(err)
	}
	if d := h2.sleeps.take(); len(d) != 0 {
		t.Errorf("delay %v after the window passed", d)
	}
}

func TestThrottle_zeroAddrUsesUserOnly(t *testing.T) {
	h := throttleHarness(t, func(o *ThrottleOptions) { o.UserLimit = 2; o.IPLimit = 1 })
	_ = h.v.Verify(ctx, "x", "wrong", netip.Addr{})
	if err := h.v.Verify(ctx, "alice", "pw", netip.Addr{}); err != nil {
		t.Fatalf("zero Addr shared a lockout: %v", err)
	}
	if n := len(h.v.throttle.addrs.m); n != 0 {
		t.Errorf("%d address entries for zero Addrs", n)
	}
}

func TestThrottle_disabled(t *testing.T) {
	h := throttleHarness(t, func(o *ThrottleOptions) { o.UserLimit, o.IPLimit, o.BaseDelay = -1, -1, -1 })
	for range 50 {
		_ = h.v.Verify(ctx, "alice", "wrong", remote)
	}
	if err := h.v.Verify(ctx, "alice", "pw", remote); err != nil {
		t.Fatal(err)
	}
	if d := h.sleeps.take(); len(d) != 0 {
		t.Errorf("delays %v with BaseDelay < 0", d)
	}
}

func TestThrottle_memoryBounded(t *testing.T) {
	h := throttleHarness(t, func(o *ThrottleOptions) {
		o.MaxEntries = 8
		o.UserLimit = 2
		o.IPLimit = -1
		o.BaseDelay = -1
	})
	_ = h.v.Verify(ctx, "alice", "wrong", remote)
	_ = h.v.Verify(ctx, "alice", "wrong", remote) // locked
	th := h.v.throttle
	for i := range 200 {
		th.fail(fmt.Sprintf("spray%d", i), netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
		if n, m := len(th.users.m), len(th.addrs.m); n > 8 || m > 8 {
			t.Fatalf("after %d failures: %d user and %d address entries, cap 8", i+1, n, m)
		}
		h.clock.Advance(100 * time.Millisecond)
	}
	// Eviction prefers entries that are not locked out.
	if err := h.v.Verify(ctx, "alice", "pw", remote); !errors.Is(err, ErrThrottled) {
		t.Fatalf("the spray evicted a lockout: %v", err)
	}
	// Expired entries go first: after the window, the table empties out.
	h.clock.Advance(16 * time.Minute)
	th.fail("late", remote)
	if n := len(th.users.m); n != 1 {
		t.Errorf("%d user entries after expiry, want 1", n)
	}
}

func TestThrottle_delayFunction(t *testing.T) {
	th, err := newThrottle(ThrottleOptions{FreeFailures: 1, BaseDelay: time.Second, MaxDelay: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for failures, want := range []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second} {
		if got := th.delay(failures); got != want {
			t.Errorf("delay(%d) = %v, want %v", failures, got, want)
		}
	}
	if got := th.delay(1 << 30); got != 3*time.Second {
		t.Errorf("delay(huge) = %v", got)
	}
}

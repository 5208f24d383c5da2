package auth

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// TestVerify_cache: with CacheTTL a repeated successful login skips the hash
// comparison; a wrong password, a changed hash, a disabled account and an
// expired entry do not.
func TestVerify_cache(t *testing.T) {
	hash, err := Hash("right", testParams)
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]fakeUser{"alice": {hash: hash}}
	h := newHarness(t, users, func(o *Options) { o.CacheTTL = time.Hour })
	now := time.Now()
	h.v.cache.now = func() time.Time { return now }
	ctx := context.Background()
	ip := netip.MustParseAddr("192.0.2.1")
	for i := 0; i < 3; i++ {
		if err := h.v.Verify(ctx, "alice", "right", ip); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.compare.Load(); n != 1 {
		t.Fatalf("3 logins compared %d times, want 1", n)
	}
	if err := h.v.Verify(ctx, "alice", "wrong", ip); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if n := h.compare.Load(); n != 2 {
		t.Fatalf("wrong password did not compare: %d", n)
	}
	// A new hash (password changed elsewhere) misses the cache.
	newHash, _ := Hash("right", testParams)
	h.users["alice"] = fakeUser{hash: newHash}
	if err := h.v.Verify(ctx, "alice", "right", ip); err != nil {
		t.Fatal(err)
	}
	if n := h.compare.Load(); n != 3 {
		t.Fatalf("changed hash served from cache: %d", n)
	}
	h.users["alice"] = fakeUser{hash: newHash, disabled: true}
	if err := h.v.Verify(ctx, "alice", "right", ip); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("disabled account logged in from cache: %v", err)
	}
	h.users["alice"] = fakeUser{hash: newHash}
	now = now.Add(2 * time.Hour)
	if err := h.v.Verify(ctx, "alice", "right", ip); err != nil {
		t.Fatal(err)
	}
	if n := h.compare.Load(); n != 5 {
		t.Fatalf("expired entry served from cache: %d comparisons", n)
	}
}

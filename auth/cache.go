package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// maxCacheEntries bounds the login cache's memory (about 64 bytes each).
const maxCacheEntries = 100000

// loginCache remembers successful logins for a while (Options.CacheTTL).
type loginCache struct {
	ttl    time.Duration
	secret [32]byte
	now    func() time.Time

	mu      sync.Mutex
	entries map[[32]byte]time.Time // guarded by mu; key -> expiry
}

func newLoginCache(ttl time.Duration) *loginCache {
	if ttl <= 0 {
		return nil
	}
	c := &loginCache{ttl: ttl, now: time.Now, entries: map[[32]byte]time.Time{}}
	_, _ = rand.Read(c.secret[:])
	return c
}

// key binds user, stored hash and password; NULs separate the fields (a
// name cannot contain one: Verify refuses invalid names before lookup).
func (c *loginCache) key(name, hash, password string) [32]byte {
	m := hmac.New(sha256.New, c.secret[:])
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write([]byte(hash))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

func (c *loginCache) hit(k [32]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.entries[k]
	if ok && c.now().After(exp) {
		delete(c.entries, k)
		return false
	}
	return ok
}

func (c *loginCache) add(k [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.entries) >= maxCacheEntries {
		for e, exp := range c.entries {
			if now.After(exp) {
				delete(c.entries, e)
			}
		}
		if len(c.entries) >= maxCacheEntries {
			clear(c.entries)
		}
	}
	c.entries[k] = now.Add(c.ttl)
}

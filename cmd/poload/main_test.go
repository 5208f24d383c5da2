package main

import (
	"fmt"
	"testing"
)

// Workers must never share a user while conns <= users: our POP3 server
// locks the maildrop, so a shared user is a spurious [IN-USE] error.
func TestNthUser_disjoint(t *testing.T) {
	for _, tc := range []struct{ users, conns int }{{20, 8}, {50, 16}, {7, 7}, {10, 3}, {3, 5}} {
		cfg := &config{users: tc.users, conns: tc.conns, userPrefix: "bench"}
		owner := map[string]int{}
		for i := range tc.conns {
			for k := range 3 * tc.users {
				u := cfg.nthUser(i, k)
				var n int
				if _, err := fmt.Sscanf(u, "bench%d", &n); err != nil || n < 1 || n > tc.users {
					t.Fatalf("users=%d conns=%d: worker %d got %q", tc.users, tc.conns, i, u)
				}
				if o, ok := owner[u]; ok && o != i && tc.conns <= tc.users {
					t.Fatalf("users=%d conns=%d: %s used by workers %d and %d", tc.users, tc.conns, u, o, i)
				}
				owner[u] = i
			}
		}
		if tc.conns <= tc.users && len(owner) != tc.users {
			t.Errorf("users=%d conns=%d: only %d users used", tc.users, tc.conns, len(owner))
		}
	}
}

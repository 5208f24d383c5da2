package imapd_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/postoffice/postoffice/imapd"
	"github.com/postoffice/postoffice/store"
	"github.com/postoffice/postoffice/testsuite"
)

// TestFetchCache_sameAnswers fetches ENVELOPE and BODYSTRUCTURE through
// servers with the parsed-structure cache on, tiny (so generations turn
// over while fetching) and off, on one store: every answer must be the same
// byte for byte, first fetch or cached.
func TestFetchCache_sameAnswers(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, backend string) {
		st := testsuite.NewStore(t, backend)
		log := testsuite.Logger(t)
		on := newSelEnvOn(t, st, true, log)
		tiny := newSelEnvOn(t, st, false, log, func(o *imapd.Options) { o.FetchCacheBytes = 4096 })
		off := newSelEnvOn(t, st, false, log, func(o *imapd.Options) { o.FetchCacheBytes = -1 })
		var uids []store.UID
		for i := 0; i < 40; i++ {
			raw := msg(i)
			switch i % 3 {
			case 1:
				raw = fetchFixture
			case 2:
				raw = fmt.Sprintf("From: =?UTF-8?B?w4RyZ2Vy?= <x%d@example.org>\nSubject: =?UTF-8?Q?caf=C3=A9_%d?=\nCc: a@b.example, \"Q, R\" <q@r.example>\n\nbody %d\n", i, i, i)
			}
			uids = append(uids, on.appendMsg(t, "INBOX", raw, 0))
		}
		const cmd = "UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE BODY)"
		fetch := func(e *selEnv) []string {
			r := e.raw(t)
			r.OK("EXAMINE INBOX")
			return r.OK(cmd)
		}
		want := fetch(off)
		if len(want) != len(uids) {
			t.Fatalf("uncached fetch: %d responses, want %d: %q", len(want), len(uids), want)
		}
		for i, e := range []*selEnv{on, on, tiny, tiny, tiny} {
			if got := fetch(e); !slices.Equal(got, want) {
				for j := range min(len(got), len(want)) {
					if got[j] != want[j] {
						t.Fatalf("fetch %d differs at response %d:\n got %q\nwant %q", i, j, got[j], want[j])
					}
				}
				t.Fatalf("fetch %d: %d responses, want %d", i, len(got), len(want))
			}
		}
		if n := imapd.FetchCacheLen(on.srv); n != len(uids) {
			t.Errorf("cache holds %d messages, want %d", n, len(uids))
		}
		if n := imapd.FetchCacheLen(tiny.srv); n >= len(uids) {
			t.Errorf("4 KB cache holds %d messages; its budget should have dropped some", n)
		}
		if n := imapd.FetchCacheLen(off.srv); n != 0 {
			t.Errorf("cache that is off holds %d messages", n)
		}
		// Another mailbox has other messages under the same UIDs.
		if _, err := st.CreateMailbox(t.Context(), on.user.ID, "Other", ""); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 5; i++ {
			on.appendMsg(t, "Other", fmt.Sprintf("From: other%d@example.org\nSubject: other %d\n\nx\n", i, i), 0)
		}
		fetchOther := func(e *selEnv) []string {
			r := e.raw(t)
			r.OK("EXAMINE Other")
			return r.OK(cmd)
		}
		if got, want := fetchOther(on), fetchOther(off); !slices.Equal(got, want) {
			t.Fatalf("Other through the cache:\n got %q\nwant %q", got, want)
		}
		// ENVELOPE alone after BODYSTRUCTURE alone: the entry is completed.
		r := on.raw(t)
		r.OK("EXAMINE INBOX")
		for _, l := range r.OK("UID FETCH 1:* (ENVELOPE)") {
			if !strings.Contains(l, "ENVELOPE (") {
				t.Fatalf("ENVELOPE missing: %q", l)
			}
		}
	})
}

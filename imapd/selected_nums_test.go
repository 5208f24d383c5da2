package imapd

import (
	"fmt"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/postoffice/postoffice/store"
)

func TestResolve(t *testing.T) {
	sel := &selected{uids: []store.UID{3, 5, 7, 20}, saved: []store.UID{5, 6, 20}}
	seq := func(s string) imap.NumSet {
		var set imap.SeqSet
		for _, r := range parseRanges(t, s) {
			set = append(set, imap.SeqRange{Start: r[0], Stop: r[1]})
		}
		return set
	}
	uid := func(s string) imap.NumSet {
		var set imap.UIDSet
		for _, r := range parseRanges(t, s) {
			set = append(set, imap.UIDRange{Start: imap.UID(r[0]), Stop: imap.UID(r[1])})
		}
		return set
	}
	cases := []struct {
		name string
		set  imap.NumSet
		want string // "bad" for an error
	}{
		{"seq 1", seq("1:1"), "[{0 0}]"},
		{"seq 2:*", seq("2:0"), "[{1 3}]"},
		{"seq *", seq("0:0"), "[{3 3}]"},
		{"seq 9:* clamps", seq("9:0"), "[{3 3}]"},
		{"seq 5 is out of range", seq("5:5"), "bad"},
		{"seq 3:6 is out of range", seq("3:6"), "bad"},
		{"seq merged", seq("1:2,2:3,4:4"), "[{0 3}]"},
		{"uid 4:19", uid("4:19"), "[{1 2}]"},
		{"uid 21:* is the last", uid("21:0"), "[{3 3}]"},
		{"uid *", uid("0:0"), "[{3 3}]"},
		{"uid 1:2 matches nothing", uid("1:2"), "[]"},
		{"uid 100", uid("100:100"), "[]"},
		{"$", imap.SearchRes(), "[{1 1} {3 3}]"},
	}
	for _, tc := range cases {
		got, err := sel.resolve(tc.set, true)
		s := fmt.Sprint(got)
		if got == nil {
			s = "[]"
		}
		if err != nil {
			s = "bad"
		}
		if s != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, s, tc.want)
		}
	}
	empty := &selected{}
	if rs, err := empty.resolve(seq("1:0"), true); err != nil || len(rs) != 0 {
		t.Errorf("1:* on an empty view: %v %v", rs, err)
	}
	if _, err := empty.resolve(seq("1:1"), true); err == nil {
		t.Errorf("seq 1 on an empty view: no error")
	}
}

// parseRanges parses "a:b,c:d" with 0 for "*" (already normalised as the
// library stores ranges: Start <= Stop, or Stop 0 for "n:*").
func parseRanges(t *testing.T, s string) [][2]uint32 {
	var out [][2]uint32
	for _, part := range splitComma(s) {
		var a, b uint32
		if _, err := fmt.Sscanf(part, "%d:%d", &a, &b); err != nil {
			t.Fatalf("range %q: %v", part, err)
		}
		out = append(out, [2]uint32{a, b})
	}
	return out
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

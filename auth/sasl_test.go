package auth

import (
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
)

// call is one invocation of the mechanism's callback.
type call struct{ identity, username, password string }

// runClient drives server with a go-sasl client the way a protocol does.
// go-sasl's clients always send an initial response (and cannot answer the
// challenges that replace it), so the flows without one are tested step by
// step below.
func runClient(t *testing.T, c sasl.Client, s sasl.Server) error {
	t.Helper()
	_, resp, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		challenge, done, err := s.Next(resp)
		if err != nil || done {
			return err
		}
		if resp, err = c.Next(challenge); err != nil {
			t.Fatalf("client rejected challenge %q: %v", challenge, err)
		}
	}
	t.Fatal("no end after 5 steps")
	return nil
}

func TestPlainServer_goSASLClient(t *testing.T) {
	var got []call
	s := NewPlainServer(func(id, user, pw string) error {
		got = append(got, call{id, user, pw})
		return nil
	})
	if err := runClient(t, sasl.NewPlainClient("", "alice", "pw with spaces"), s); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != (call{"", "alice", "pw with spaces"}) {
		t.Errorf("calls %+v", got)
	}
}

func TestPlainServer_messages(t *testing.T) {
	fnErr := errors.New("from fn")
	for _, tc := range []struct {
		name string
		msg  string
		want error
		call *call
	}{
		{"ok", "\x00alice\x00pw", nil, &call{"", "alice", "pw"}},
		{"identity", "admin\x00alice\x00pw", nil, &call{"admin", "alice", "pw"}},
		{"utf8", "\x00jürgen\x00pässwort", nil, &call{"", "jürgen", "pässwort"}},
		{"binary password", "\x00alice\x00\xff\xfe", nil, &call{"", "alice", "\xff\xfe"}},
		{"fn error passes through", "\x00alice\x00bad", fnErr, &call{"", "alice", "bad"}},
		{"empty", "", ErrMalformedResponse, nil},
		{"no NUL", "alicepw", ErrMalformedResponse, nil},
		{"one NUL", "alice\x00pw", ErrMalformedResponse, nil},
		{"three NULs", "\x00alice\x00pw\x00", ErrMalformedResponse, nil},
		{"empty user", "\x00\x00pw", ErrMalformedResponse, nil},
		{"empty password", "\x00alice\x00", ErrMalformedResponse, nil},
		{"bad utf8 user", "\x00al\xffice\x00pw", ErrMalformedResponse, nil},
		{"bad utf8 identity", "\xff\x00alice\x00pw", ErrMalformedResponse, nil},
		{"CRLF in user", "\x00alice\r\nA1 LOGOUT\x00pw", ErrMalformedResponse, nil},
		{"huge user", "\x00" + strings.Repeat("a", maxFieldLen+1) + "\x00pw", ErrMalformedResponse, nil},
		{"huge password", "\x00alice\x00" + strings.Repeat("a", maxFieldLen+1), ErrMalformedResponse, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []call
			s := NewPlainServer(func(id, user, pw string) error {
				got = append(got, call{id, user, pw})
				if pw == "bad" {
					return fnErr
				}
				return nil
			})
			challenge, done, err := s.Next([]byte(tc.msg))
			if !done || challenge != nil || !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Next = %q, %v, %v; want done, %v", challenge, done, err, tc.want)
			}
			switch {
			case tc.call == nil && len(got) != 0:
				t.Errorf("fn called with %+v", got)
			case tc.call != nil && (len(got) != 1 || got[0] != *tc.call):
				t.Errorf("calls %+v, want %+v", got, *tc.call)
			}
			if _, _, err := s.Next([]byte("\x00alice\x00pw")); !errors.Is(err, sasl.ErrUnexpectedClientResponse) {
				t.Errorf("Next after done = %v", err)
			}
			if len(got) > 1 {
				t.Errorf("fn called again after done")
			}
		})
	}
}

func TestPlainServer_emptyChallengeWithoutInitialResponse(t *testing.T) {
	s := NewPlainServer(func(string, string, string) error { return nil })
	challenge, done, err := s.Next(nil)
	if err != nil || done || challenge == nil || len(challenge) != 0 {
		t.Fatalf("Next(nil) = %q, %v, %v; want empty challenge", challenge, done, err)
	}
}

func TestLoginServer_goSASLClient(t *testing.T) {
	var got []call
	s := NewLoginServer(func(user, pw string) error {
		got = append(got, call{"", user, pw})
		return nil
	})
	if err := runClient(t, sasl.NewLoginClient("alice", "pw"), s); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != (call{"", "alice", "pw"}) {
		t.Errorf("calls %+v", got)
	}
}

func TestLoginServer_exchanges(t *testing.T) {
	fnErr := errors.New("from fn")
	type step struct {
		resp      []byte
		challenge string // expected; "" with done
		done      bool
		err       error
	}
	b := func(s string) []byte { return []byte(s) }
	for _, tc := range []struct {
		name  string
		steps []step
		call  *call
	}{
		{"no initial response", []step{
			{nil, "Username:", false, nil},
			{b("alice"), "Password:", false, nil},
			{b("pw"), "", true, nil},
		}, &call{"", "alice", "pw"}},
		{"empty initial response asks for the name", []step{
			{b(""), "Username:", false, nil},
			{b("alice"), "Password:", false, nil},
			{b("pw"), "", true, nil},
		}, &call{"", "alice", "pw"}},
		{"initial response is the name", []step{
			{b("alice"), "Password:", false, nil},
			{b("pw"), "", true, nil},
		}, &call{"", "alice", "pw"}},
		{"fn error passes through", []step{
			{b("alice"), "Password:", false, nil},
			{b("bad"), "", true, fnErr},
		}, &call{"", "alice", "bad"}},
		{"empty user", []step{
			{nil, "Username:", false, nil},
			{b(""), "", true, ErrMalformedResponse},
		}, nil},
		{"nil user", []step{
			{nil, "Username:", false, nil},
			{nil, "", true, ErrMalformedResponse},
		}, nil},
		{"empty password", []step{
			{b("alice"), "Password:", false, nil},
			{b(""), "", true, ErrMalformedResponse},
		}, nil},
		{"garbage user", []step{
			{b("\xff\xfe\x00"), "", true, ErrMalformedResponse},
		}, nil},
		{"NUL in password", []step{
			{b("alice"), "Password:", false, nil},
			{b("p\x00w"), "", true, ErrMalformedResponse},
		}, nil},
		{"huge user", []step{
			{b(strings.Repeat("u", maxFieldLen+1)), "", true, ErrMalformedResponse},
		}, nil},
		{"response after done", []step{
			{b("alice"), "Password:", false, nil},
			{b("pw"), "", true, nil},
			{b("more"), "", true, sasl.ErrUnexpectedClientResponse},
		}, &call{"", "alice", "pw"}},
		{"response after malformed", []step{
			{b(""), "Username:", false, nil},
			{b(""), "", true, ErrMalformedResponse},
			{b("alice"), "", true, sasl.ErrUnexpectedClientResponse},
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []call
			s := NewLoginServer(func(user, pw string) error {
				got = append(got, call{"", user, pw})
				if pw == "bad" {
					return fnErr
				}
				return nil
			})
			for i, st := range tc.steps {
				challenge, done, err := s.Next(st.resp)
				if string(challenge) != st.challenge || done != st.done || !errors.Is(err, st.err) || (st.err == nil && err != nil) {
					t.Fatalf("step %d: Next(%q) = %q, %v, %v; want %q, %v, %v", i, st.resp, challenge, done, err, st.challenge, st.done, st.err)
				}
			}
			switch {
			case tc.call == nil && len(got) != 0:
				t.Errorf("fn called with %+v", got)
			case tc.call != nil && (len(got) != 1 || got[0] != *tc.call):
				t.Errorf("calls %+v, want %+v", got, *tc.call)
			}
		})
	}
}

// FuzzSASLServers feeds a sequence of client responses (split on '|') to
// both mechanisms: no panics, fn only sees well-formed fields, and nothing
// continues after done.
func FuzzSASLServers(f *testing.F) {
	f.Add("\x00alice\x00pw")
	f.Add("|alice|pw")
	f.Add("alice|pw|extra")
	f.Add("\xff|\x00|")
	f.Fuzz(func(t *testing.T, input string) {
		check := func(user, pw string) error {
			if !validName([]byte(user), false) || !validPassword([]byte(pw)) {
				t.Fatalf("fn got malformed %q %q", user, pw)
			}
			return ErrInvalidCredentials
		}
		servers := []sasl.Server{
			NewPlainServer(func(id, user, pw string) error {
				if !validName([]byte(id), true) {
					t.Fatalf("fn got malformed identity %q", id)
				}
				return check(user, pw)
			}),
			NewLoginServer(check),
		}
		for _, s := range servers {
			done := false
			for i, part := range strings.Split(input, "|") {
				var resp []byte
				if i > 0 || part != "" {
					resp = []byte(part)
				}
				_, d, err := s.Next(resp)
				if done && !errors.Is(err, sasl.ErrUnexpectedClientResponse) {
					t.Fatalf("Next after done = %v", err)
				}
				if d && err == nil {
					t.Fatal("done without error although fn always fails")
				}
				done = done || d
			}
		}
	})
}

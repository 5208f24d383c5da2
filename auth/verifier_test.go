package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeUser is one row of the fake user table behind Lookup.
type fakeUser struct {
	hash     string
	disabled bool
}

// harness is a Verifier with a fake user table, clock, sleep and a log
// buffer, and counts of the calls that matter.
type harness struct {
	v       *Verifier
	users   map[string]fakeUser // read-only after newHarness
	clock   *fakeClock
	sleeps  *sleepRecorder
	log     *syncBuffer
	compare atomic.Int64 // hash comparisons
	hashes  sync.Map     // hash string -> comparisons with it (*atomic.Int64)
	rehash  chan [2]string
}

func newHarness(t *testing.T, users map[string]fakeUser, edit func(*Options)) *harness {
	t.Helper()
	h := &harness{
		users:  users,
		clock:  &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		sleeps: &sleepRecorder{},
		log:    &syncBuffer{},
		rehash: make(chan [2]string, 10),
	}
	opts := Options{
		Lookup: func(ctx context.Context, name string) (string, bool, bool, error) {
			u, ok := h.users[name]
			return u.hash, u.disabled, ok, nil
		},
		Rehash: func(ctx context.Context, name, newHash string) error {
			h.rehash <- [2]string{name, newHash}
			return nil
		},
		Argon2: testParams,
		Throttle: ThrottleOptions{
			Now:   h.clock.Now,
			Sleep: h.sleeps.Sleep,
		},
		Logger: slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&opts)
	}
	v, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	inner := v.compare
	v.compare = func(hash, password string) (bool, error) {
		h.compare.Add(1)
		n, _ := h.hashes.LoadOrStore(hash, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		return inner(hash, password)
	}
	h.v = v
	return h
}

// comparisons returns how often hash was compared against.
func (h *harness) comparisons(hash string) int64 {
	n, ok := h.hashes.Load(hash)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// sleepRecorder records requested delays instead of sleeping.
type sleepRecorder struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (s *sleepRecorder) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.delays = append(s.delays, d)
	s.mu.Unlock()
	return ctx.Err()
}

// take returns and forgets the recorded delays.
func (s *sleepRecorder) take() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.delays
	s.delays = nil
	return d
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func mustHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := Hash(pw, testParams)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var (
	ctx    = context.Background()
	remote = netip.MustParseAddr("192.0.2.1")
)

func TestVerify_outcomes(t *testing.T) {
	alice := mustHash(t, "alicepw")
	h := newHarness(t, map[string]fakeUser{
		"alice": {hash: alice},
		"dave":  {hash: mustHash(t, "davepw"), disabled: true},
	}, func(o *Options) { o.Throttle.BaseDelay = -1 })
	for _, tc := range []struct {
		name, pw string
		want     error
	}{
		{"alice", "alicepw", nil},
		{"alice", "wrong", ErrInvalidCredentials},
		{"alice", "", ErrInvalidCredentials},
		{"nobody", "alicepw", ErrInvalidCredentials},
		{"dave", "davepw", ErrInvalidCredentials}, // disabled, right password
		{"dave", "wrong", ErrInvalidCredentials},
		{"", "x", ErrInvalidCredentials},
		{strings.Repeat("n", maxNameLen+1), "x", ErrInvalidCredentials},
		{"bad\xffutf8", "x", ErrInvalidCredentials},
		{"alice", strings.Repeat("p", maxPasswordLen+1), ErrInvalidCredentials},
	} {
		before := h.compare.Load()
		err := h.v.Verify(ctx, tc.name, tc.pw, remote)
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("Verify(%q, %q) = %v, want %v", tc.name, tc.pw, err, tc.want)
		}
		// Every outcome costs exactly one hash comparison.
		if n := h.compare.Load() - before; n != 1 {
			t.Errorf("Verify(%q, %q): %d hash comparisons, want 1", tc.name, tc.pw, n)
		}
	}
	if got, want := h.v.Metrics(), (Stats{OK: 1, Failed: 9}); got != want {
		t.Errorf("Metrics = %+v, want %+v", got, want)
	}
}

// TestVerify_unknownUserCostsOneHash checks by counting, not timing, that an
// unknown user is compared against the dummy argon2id hash made with the
// configured parameters, i.e. the same work as a wrong password for a user
// with a current hash.
func TestVerify_unknownUserCostsOneHash(t *testing.T) {
	alice := mustHash(t, "alicepw")
	h := newHarness(t, map[string]fakeUser{"alice": {hash: alice}}, nil)
	if err := h.v.Verify(ctx, "alice", "wrong", remote); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatal(err)
	}
	if err := h.v.Verify(ctx, "mallory", "wrong", remote); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatal(err)
	}
	if n := h.comparisons(alice); n != 1 {
		t.Errorf("alice's hash compared %d times, want 1", n)
	}
	if n := h.comparisons(h.v.dummy); n != 1 {
		t.Errorf("dummy hash compared %d times, want 1", n)
	}
	if NeedsRehash(h.v.dummy, testParams) || !NeedsRehash(h.v.dummy, Params{Time: testParams.Time + 1}) {
		t.Errorf("dummy %q is not an argon2id hash with exactly the configured parameters", h.v.dummy)
	}
	if err := Compare(h.v.dummy, ""); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("dummy matches the empty password: %v", err)
	}
}

func TestVerify_unusableStoredHash(t *testing.T) {
	h := newHarness(t, map[string]fakeUser{
		"carol": {hash: "{MD5-CRYPT}$1$AaxzHpHl$iakhgK5wAr7gayB6o18821"},
		"erin":  {hash: "{ARGON2ID}garbage"},
	}, nil)
	for _, name := range []string{"carol", "erin"} {
		before := h.comparisons(h.v.dummy)
		if err := h.v.Verify(ctx, name, "secret", remote); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("Verify(%s) = %v, want ErrInvalidCredentials", name, err)
		}
		if n := h.comparisons(h.v.dummy) - before; n != 1 {
			t.Errorf("%s: dummy compared %d times, want 1 (equal cost)", name, n)
		}
	}
	if logs := h.log.String(); strings.Count(logs, "stored password hash unusable") != 2 || !strings.Contains(logs, "level=ERROR") {
		t.Errorf("unusable hashes not logged at Error:\n%s", logs)
	}
}

func TestVerify_lookupErrorIsInternal(t *testing.T) {
	boom := errors.New("database down")
	h := newHarness(t, nil, func(o *Options) {
		o.Lookup = func(ctx context.Context, name string) (string, bool, bool, error) {
			return "", false, false, boom
		}
	})
	err := h.v.Verify(ctx, "alice", "pw", remote)
	if !errors.Is(err, boom) || errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("Verify = %v, want wrapped lookup error", err)
	}
	if got := h.v.Metrics(); got != (Stats{}) {
		t.Errorf("internal error counted: %+v", got)
	}
	// Not a failure for the throttle either.
	if d, err := h.v.throttle.admit("alice", remote); d != 0 || err != nil {
		t.Errorf("admit after internal error = %v, %v", d, err)
	}
}

func TestVerify_rehash(t *testing.T) {
	current := mustHash(t, "newpw")
	h := newHarness(t, map[string]fakeUser{
		"plain":   {hash: "{PLAIN}oldpw"},
		"sha":     {hash: "{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		"current": {hash: current},
	}, nil)
	for _, tc := range []struct{ name, pw string }{{"plain", "oldpw"}, {"sha", "Hello world!"}} {
		if err := h.v.Verify(ctx, tc.name, tc.pw, remote); err != nil {
			t.Fatalf("Verify(%s) = %v", tc.name, err)
		}
		select {
		case got := <-h.rehash:
			if got[0] != tc.name || !strings.HasPrefix(got[1], "{ARGON2ID}$argon2id$") {
				t.Fatalf("Rehash(%q, %q)", got[0], got[1])
			}
			if err := Compare(got[1], tc.pw); err != nil || NeedsRehash(got[1], testParams) {
				t.Fatalf("new hash %q: Compare %v, NeedsRehash %v", got[1], err, NeedsRehash(got[1], testParams))
			}
		default:
			t.Fatalf("no Rehash after %s login", tc.name)
		}
	}
	// No rehash for a current hash or a failed login.
	_ = h.v.Verify(ctx, "current", "newpw", remote)
	_ = h.v.Verify(ctx, "plain", "wrong", remote)
	select {
	case got := <-h.rehash:
		t.Fatalf("unexpected Rehash(%q)", got[0])
	default:
	}
}

func TestVerify_rehashErrorIsLoggedNotReturned(t *testing.T) {
	h := newHarness(t, map[string]fakeUser{"plain": {hash: "{PLAIN}oldpw"}}, func(o *Options) {
		o.Rehash = func(ctx context.Context, name, newHash string) error { return errors.New("read-only database") }
	})
	if err := h.v.Verify(ctx, "plain", "oldpw", remote); err != nil {
		t.Fatalf("Verify = %v, want nil despite Rehash error", err)
	}
	if logs := h.log.String(); !strings.Contains(logs, "read-only database") {
		t.Errorf("Rehash error not logged:\n%s", logs)
	}
}

func TestVerify_logsNoSecrets(t *testing.T) {
	const pw = "Tr0ub4dor&3-unique-password"
	h := newHarness(t, map[string]fakeUser{"alice": {hash: "{PLAIN}" + pw}}, func(o *Options) {
		o.Throttle.UserLimit = 2
	})
	_ = h.v.Verify(ctx, "alice", pw+"typo", remote)
	_ = h.v.Verify(ctx, "alice", pw, remote)                              // ok + rehash
	_ = h.v.Verify(ctx, "alice", pw+"typo", remote)                       // fail
	_ = h.v.Verify(ctx, "alice", pw+"typo", remote)                       // fail, lockout
	_ = h.v.Verify(ctx, "alice", pw, remote)                              // throttled
	_ = h.v.Verify(ctx, "nobody", pw, netip.MustParseAddr("2001:db8::1")) // unknown
	logs := h.log.String()
	if strings.Contains(logs, "Tr0ub4dor") {
		t.Fatalf("password in logs:\n%s", logs)
	}
	for _, want := range []string{
		`level=INFO msg="login failed" user=alice remote=192.0.2.1`,
		`level=WARN msg="login locked out" user=alice remote=192.0.2.1`,
		`level=INFO msg="login failed" user=nobody remote=2001:db8::1`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestVerify_contextCancelledDuringDelay(t *testing.T) {
	h := newHarness(t, map[string]fakeUser{"alice": {hash: mustHash(t, "pw")}}, func(o *Options) {
		o.Throttle.FreeFailures = -1
	})
	_ = h.v.Verify(ctx, "alice", "wrong", remote)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	before := h.compare.Load()
	if err := h.v.Verify(cctx, "alice", "pw", remote); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify = %v, want context.Canceled", err)
	}
	if h.compare.Load() != before {
		t.Error("hash compared after the context ended")
	}
}

func TestVerify_boundsConcurrentHashing(t *testing.T) {
	const limit = 2
	h := newHarness(t, map[string]fakeUser{"alice": {hash: mustHash(t, "pw")}}, func(o *Options) {
		o.MaxConcurrent = limit
		o.Throttle.UserLimit = -1
		o.Throttle.IPLimit = -1
		o.Throttle.BaseDelay = -1
	})
	var inFlight, peak atomic.Int64
	inner := h.v.compare
	h.v.compare = func(hash, pw string) (bool, error) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		defer inFlight.Add(-1)
		return inner(hash, pw)
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			pw := "pw"
			if i%2 == 1 {
				pw = "wrong"
			}
			_ = h.v.Verify(ctx, "alice", pw, remote)
		})
	}
	wg.Wait()
	if p := peak.Load(); p > limit {
		t.Errorf("%d hash comparisons at once, limit %d", p, limit)
	}
	if got := h.v.Metrics(); got.OK != 8 || got.Failed != 8 {
		t.Errorf("Metrics = %+v, want 8 ok, 8 failed", got)
	}
}

func TestNew_options(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without Lookup: no error")
	}
	lookup := func(ctx context.Context, name string) (string, bool, bool, error) { return "", false, false, nil }
	if _, err := New(Options{Lookup: lookup, Argon2: Params{KeyLen: 4}}); err == nil {
		t.Error("New with a 4-byte key: no error")
	}
	if _, err := New(Options{Lookup: lookup, Throttle: ThrottleOptions{Window: -time.Second}}); err == nil {
		t.Error("New with a negative Window: no error")
	}
	v, err := New(Options{Lookup: lookup}) // all defaults, nil Logger
	if err != nil {
		t.Fatal(err)
	}
	if v.params != DefaultParams || NeedsRehash(v.dummy, DefaultParams) {
		t.Errorf("zero Argon2 did not mean DefaultParams: %+v, dummy %q", v.params, v.dummy)
	}
	if err := v.Verify(ctx, "x", "y", remote); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Verify = %v", err)
	}
}

func TestPassword_redacted(t *testing.T) {
	p := Password("hunter2")
	for _, verb := range []string{"%v", "%s", "%q", "%x", "%X", "%#v", "%+v", "%d", "%10s"} {
		if s := fmt.Sprintf(verb, p); strings.Contains(s, "hunter2") || strings.Contains(s, "68756e74657232") {
			t.Errorf("%s prints %q", verb, s)
		}
	}
	if s := fmt.Sprint(struct{ P Password }{p}); strings.Contains(s, "hunter2") {
		t.Errorf("in a struct: %q", s)
	}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("x", "password", p)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("x", "password", p)
	for _, out := range []string{text.String(), js.String()} {
		if strings.Contains(out, "hunter2") || !strings.Contains(out, "[redacted]") {
			t.Errorf("slog output %q", out)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(js.Bytes(), &m); err != nil || m["password"] != "[redacted]" {
		t.Errorf("json %v %v", m, err)
	}
	if string(p) != "hunter2" {
		t.Error("conversion lost the value")
	}
}

package testsuite

// TestSoak is the chaos soak of issue 5: three postofficed front-ends on
// 127.0.0.1-3, one Maildir tree, one PostgreSQL cluster of the test's own;
// an outside deliverer; per user an owner IMAP client (APPEND, FETCH,
// STORE, COPY, MOVE, EXPUNGE, CREATE, RENAME), two reader IMAP clients
// (SELECT, FETCH, APPEND), a POP3 client (RETR, DELE, QUIT) and an IDLE
// watcher, each picking a host at random per session; SIGKILLs of the
// front-ends every few seconds and one PostgreSQL restart. At the end a
// checker compares the model of acknowledged operations (soak_model_test.go)
// with what the servers, the index and the disk hold, and prints the counts;
// every one must be 0.
//
// Phases, as fractions of SOAK_DURATION (default 60s):
//
//	perf-3 (20%)  3 front-ends, no faults: CPU and queries per operation
//	perf-1 (20%)  1 front-end (the other two down): CPU and queries per operation
//	chaos  (60%)  3 front-ends, SIGKILL + restart every 2-5 s, one PostgreSQL restart
//
// Run long:   make soak DURATION=10m
// Knobs:      SOAK_DURATION, SOAK_USERS (10; 5 clients each), SOAK_THINK (400ms
// between a client's commands), SOAK_IDLE_MARGIN (3s, 5s with -race), SOAK_LOG_LEVEL (warn),
// SOAK_KEEP=1 keeps the work directory (daemon logs, Maildir tree).

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/jackc/pgx/v5"
)

func soakEnvDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return d
}

// soakPhase measures server CPU, client operations and PostgreSQL queries
// over one phase.
type soakPhase struct {
	name               string
	start              time.Time
	cpu0               float64
	imap0, pop30, del0 int64
}

func (r *soakRun) cpu() float64 {
	var c float64
	for _, h := range r.hosts {
		c += h.cpu()
	}
	return c
}

func (r *soakRun) beginPhase(t *testing.T, pg *soakPG, name string) *soakPhase {
	if err := pg.resetStatements(); err != nil {
		t.Logf("soak: reset pg_stat_statements: %v", err)
	}
	return &soakPhase{name: name, start: time.Now(), cpu0: r.cpu(),
		imap0: r.imapCmds.Load(), pop30: r.pop3Cmds.Load(), del0: r.deliveries.Load()}
}

func (r *soakRun) endPhase(t *testing.T, pg *soakPG, p *soakPhase) string {
	wall := time.Since(p.start)
	cpu := r.cpu() - p.cpu0
	imapN, pop3N, delN := r.imapCmds.Load()-p.imap0, r.pop3Cmds.Load()-p.pop30, r.deliveries.Load()-p.del0
	ops := imapN + pop3N + delN
	s := fmt.Sprintf("%-6s %5.1fs: %d ops (%d IMAP commands, %d POP3 commands, %d deliveries) = %.0f ops/s; postofficed CPU %.2fs = %.3f CPU-s per 1000 ops",
		p.name, wall.Seconds(), ops, imapN, pop3N, delN, float64(ops)/wall.Seconds(), cpu, cpu*1000/float64(max(ops, 1)))
	if st, err := pg.statements(); err == nil {
		s += fmt.Sprintf("\n       PostgreSQL: %d statements = %.2f per IMAP command (%.2f per IMAP+POP3 command)",
			st.total, float64(st.total)/float64(max(imapN, 1)), float64(st.total)/float64(max(imapN+pop3N, 1)))
		for i, q := range st.top {
			if i == 8 {
				break
			}
			s += fmt.Sprintf("\n         %7d  %.110s", q.calls, strings.Join(strings.Fields(q.query), " "))
		}
	} else {
		s += fmt.Sprintf("\n       PostgreSQL query counts unavailable: %v", err)
	}
	t.Log(s)
	return s
}

func TestSoak(t *testing.T) {
	if os.Getenv("SOAK_DURATION") == "" && testing.Short() {
		t.Skip("chaos soak: skipped with -short unless SOAK_DURATION is set")
	}
	total := soakEnvDuration(t, "SOAK_DURATION", 60*time.Second)
	think := soakEnvDuration(t, "SOAK_THINK", 400*time.Millisecond)
	defMargin := 3 * time.Second
	if soakRace {
		defMargin = 5 * time.Second // race-detector daemons on a busy CI machine
	}
	margin := soakEnvDuration(t, "SOAK_IDLE_MARGIN", defMargin)
	nUsers := 10
	if v := os.Getenv("SOAK_USERS"); v != "" {
		fmt.Sscan(v, &nUsers)
	}

	pg := startSoakPG(t)
	work, err := os.MkdirTemp("", "postoffice-soak-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("SOAK_KEEP") != "" {
			t.Logf("soak: work directory kept: %s", work)
			return
		}
		os.RemoveAll(work)
	})
	daemon, admin := soakBuild(t, filepath.Join(work, "bin"), soakRace)
	tree := filepath.Join(work, "tree")
	tmpl := filepath.Join(tree, "%u", "Maildir")
	hostEnv := []string{"GORACE=halt_on_error=0"}
	r := &soakRun{tree: tree, think: think, st: &soakStats{}, nos: map[string]int{}}
	if r.debug, err = os.Create(filepath.Join(work, "soak-events.log")); err != nil {
		t.Fatal(err)
	}
	defer r.debug.Close()
	for i := range 3 {
		r.hosts = append(r.hosts, newSoakHost(t, i, daemon, pg.url, tmpl, work, hostEnv))
	}
	r.enabled.Store(7)
	for _, h := range r.hosts {
		if err := h.start(t); err != nil {
			t.Fatalf("soak: %v", err)
		}
	}
	t.Cleanup(func() { r.stopHosts(t) })
	for i := range nUsers {
		u := newSoakUser(fmt.Sprintf("soak%02d", i+1), fmt.Sprintf("pw-%d-soak", i+1))
		u.logf = r.logf
		cmd := exec.Command(admin, "--data", filepath.Join(work, "host1"), "--db", pg.url, "--maildir", tmpl,
			"user", "add", u.name, "--password-stdin")
		cmd.Env = append(os.Environ(), "POSTOFFICE_ARGON2_MEMORY=8", "POSTOFFICE_ARGON2_TIME=1")
		cmd.Stdin = strings.NewReader(u.pass + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("soak: postoffice user add %s: %v\n%s", u.name, err, out)
		}
		r.users = append(r.users, u)
	}
	t.Logf("soak: %d users × 5 clients on %s, %s, %s; PostgreSQL 127.0.0.1:%d; %v; work %s",
		nUsers, r.hosts[0].imapAddr, r.hosts[1].imapAddr, r.hosts[2].imapAddr, pg.port, total, work)

	// The workload.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	final := make(chan struct{})
	var finalOnce sync.Once
	closeFinal := func() { finalOnce.Do(func() { close(final) }) }
	defer closeFinal() // after a Fatal too: the watchers end
	var wg, watchers sync.WaitGroup
	errs := make(chan error, 1)
	seed := uint64(time.Now().UnixNano())
	t.Logf("soak: seed %d", seed)
	rng := func(i uint64) *mrand.Rand { return mrand.New(mrand.NewPCG(seed, i)) }
	for i, u := range r.users {
		k := uint64(i) * 10
		wg.Add(4)
		go func() { defer wg.Done(); r.owner(ctx, u, rng(k)) }()
		go func() { defer wg.Done(); r.reader(ctx, u, 1, rng(k+1)) }()
		go func() { defer wg.Done(); r.reader(ctx, u, 2, rng(k+2)) }()
		go func() { defer wg.Done(); r.popper(ctx, u, rng(k+3)) }()
		watchers.Add(1)
		go func() { defer watchers.Done(); r.watch(u, rng(k+4), margin, final) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); r.deliverer(ctx, rng(1<<40), errs) }()

	sleep := func(d time.Duration) {
		select {
		case <-time.After(d):
		case err := <-errs:
			t.Fatalf("soak: %v", err)
		}
	}
	var report []string

	// perf-3
	p := r.beginPhase(t, pg, "perf-3")
	sleep(total / 5)
	report = append(report, r.endPhase(t, pg, p))

	// perf-1
	r.enabled.Store(1)
	r.hosts[1].kill()
	r.hosts[2].kill()
	p = r.beginPhase(t, pg, "perf-1")
	sleep(total / 5)
	report = append(report, r.endPhase(t, pg, p))
	for _, h := range r.hosts[1:] {
		if err := h.start(t); err != nil {
			t.Fatalf("soak: %v", err)
		}
	}
	r.enabled.Store(7)

	// chaos
	chaosEnd := time.Now().Add(total * 3 / 5)
	pgAt := time.Now().Add(total * 3 / 10)
	kills, pgRestarts := 0, 0
	restartPG := func() {
		t.Logf("soak: restarting PostgreSQL")
		r.logf("restarting PostgreSQL")
		r.mu.Lock()
		r.pgDown[0] = time.Now()
		r.mu.Unlock()
		if err := pg.restart(t); err != nil {
			t.Fatalf("soak: %v", err)
		}
		r.mu.Lock()
		r.pgDown[1] = time.Now()
		r.mu.Unlock()
		r.logf("PostgreSQL is back")
	}
	frng := rng(1 << 41)
	for time.Now().Before(chaosEnd) {
		sleep(2*time.Second + time.Duration(frng.Int64N(int64(3*time.Second))))
		if pgRestarts == 0 && time.Now().After(pgAt) {
			restartPG()
			pgRestarts++
			continue
		}
		h := r.hosts[frng.IntN(len(r.hosts))]
		r.logf("SIGKILL host%d", h.idx+1)
		h.kill()
		kills++
		sleep(time.Duration(frng.Int64N(int64(1500 * time.Millisecond))))
		if err := h.start(t); err != nil {
			t.Fatalf("soak: restart: %v", err)
		}
	}
	if pgRestarts == 0 {
		restartPG()
		pgRestarts++
	}
	t.Logf("soak: chaos over: %d SIGKILLs, %d PostgreSQL restart", kills, pgRestarts)

	for _, h := range r.hosts {
		if err := h.ensureUp(t); err != nil {
			t.Fatalf("soak: %v", err)
		}
	}
	r.enabled.Store(7)

	// Settle: stop the clients, let the watchers idle through a quiet
	// period, then take their final look.
	stop()
	r.waitLogged(t, "clients", &wg)
	select {
	case err := <-errs:
		t.Fatalf("soak: %v", err)
	default:
	}
	time.Sleep(margin + 2*time.Second)
	closeFinal()
	r.waitLogged(t, "IDLE watchers", &watchers)

	t.Logf("soak: checking")
	r.check(t, pg)
	r.printResult(t, total, kills, pgRestarts, report)
}

// waitLogged waits for wg; if that takes long, it logs the goroutines to
// the event log.
func (r *soakRun) waitLogged(t *testing.T, what string, wg *sync.WaitGroup) {
	start := time.Now()
	dump := time.AfterFunc(45*time.Second, func() {
		var b strings.Builder
		pprof.Lookup("goroutine").WriteTo(&b, 1)
		r.logf("waiting for %s for 45s; goroutines:\n%s", what, b.String())
	})
	wg.Wait()
	dump.Stop()
	t.Logf("soak: %s stopped in %v", what, time.Since(start).Round(time.Millisecond))
}

// stopHosts stops the front-ends with SIGTERM (graceful shutdown),
// SIGKILL after 15 s.
func (r *soakRun) stopHosts(t *testing.T) {
	for _, h := range r.hosts {
		h.mu.Lock()
		cmd, waited := h.cmd, h.waited
		h.mu.Unlock()
		if cmd == nil {
			continue
		}
		h.killing.Store(true)
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-waited:
			if !cmd.ProcessState.Success() {
				t.Logf("soak: host %d exited after SIGTERM: %v", h.idx+1, cmd.ProcessState)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("soak: host %d did not stop within 15s of SIGTERM", h.idx+1)
			h.kill()
		}
		h.reap(cmd)
	}
}

// listAll lists every folder of u through host h: UIDVALIDITY and
// (UID, X-Soak-ID, flags) in sequence order.
func (r *soakRun) listAll(h *soakHost, u *soakUser) (map[string][]soakObs, map[string]uint32, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Second)
		}
		s, err := r.dialIMAP(u, h, "checker", nil)
		if err != nil {
			lastErr = err
			continue
		}
		out, uvs, err := func() (map[string][]soakObs, map[string]uint32, error) {
			defer s.close()
			s.begin("LIST \"\" *")
			list, err := s.c.List("", "*", nil).Collect()
			if err != nil {
				return nil, nil, err
			}
			out, uvs := map[string][]soakObs{}, map[string]uint32{}
			for _, l := range list {
				s.begin("EXAMINE " + l.Mailbox)
				data, err := s.c.Select(l.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
				if err != nil {
					return nil, nil, fmt.Errorf("EXAMINE %s: %w", l.Mailbox, err)
				}
				uvs[l.Mailbox] = data.UIDValidity
				out[l.Mailbox] = nil
				if data.NumMessages == 0 {
					continue
				}
				s.begin("UID FETCH 1:* in " + l.Mailbox)
				msgs, err := s.c.Fetch(soakAllUIDs, &imap.FetchOptions{UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{soakIDSection}}).Collect()
				if err != nil {
					return nil, nil, fmt.Errorf("FETCH %s: %w", l.Mailbox, err)
				}
				out[l.Mailbox] = r.obsList(u, s.who, l.Mailbox, data.UIDValidity, msgs)
			}
			return out, uvs, nil
		}()
		if err == nil {
			return out, uvs, nil
		}
		lastErr = err
	}
	return nil, nil, lastErr
}

// check is the final checker.
func (r *soakRun) check(t *testing.T, pg *soakPG) {
	st := r.st
	for _, u := range r.users {
		// Settle the folder operations whose answers were lost.
		if s, err := r.dialIMAP(u, r.hosts[0], "checker", nil); err == nil {
			if err := s.settleFolders(u, true); err != nil {
				t.Errorf("soak: LIST for %s: %v", u.name, err)
			}
			s.close()
		}
		var views []map[string][]soakObs
		for _, h := range r.hosts {
			v, uvs, err := r.listAll(h, u)
			if err != nil {
				st.listFail.Add(1)
				st.note("final listing", "%s through host %d: %v\n%s", u.name, h.idx+1, err, r.dumpUser(pg, u))
				continue
			}
			for name, uv := range uvs {
				u.checkUIDValidity(st, fmt.Sprintf("checker@host%d", h.idx+1), name, uv)
			}
			views = append(views, v)
		}
		if len(views) == 0 {
			continue
		}
		for i := 1; i < len(views); i++ {
			if a, b := fmt.Sprint(soakSorted(views[0])), fmt.Sprint(soakSorted(views[i])); a != b {
				st.hostsDisagree.Add(1)
				st.note("hosts disagree", "%s: host 1 lists %.300s; another host lists %.300s", u.name, a, b)
			}
		}
		r.compare(u, views[0])
	}
	r.checkIndexDisk(t, pg)
	for _, h := range r.hosts {
		if n := h.crashes.Load(); n > 0 {
			st.crashes.Add(n)
			st.note("crash", "host%d exited %d times by itself, last: %v (see %s)", h.idx+1, n, h.lastErr.Load(), h.logPath)
		}
		n := h.logScan("panic:", "goroutine ", "WARNING: DATA RACE")
		st.panics.Add(int64(n["panic:"]))
		st.races.Add(int64(n["WARNING: DATA RACE"]))
		for _, l := range h.logLines("panic:", 3) {
			st.note("panic", "host%d: %s", h.idx+1, l)
		}
	}
}

// dumpUser describes u's mailboxes in the index and on disk, for a
// failure message.
func (r *soakRun) dumpUser(pg *soakPG, u *soakUser) string {
	var b strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, pg.url); err == nil {
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT b.id, b.name, b.uidvalidity, b.uid_next,
			(SELECT count(*) FROM messages m WHERE m.mailbox_id = b.id AND m.expunged = 0)
			FROM mailboxes b JOIN users u ON u.id = b.user_id WHERE u.name = $1 ORDER BY b.id`, u.name)
		if err == nil {
			b.WriteString("  index mailboxes (id name uidvalidity uid_next live):\n")
			for rows.Next() {
				var id, uv, next, n int64
				var name string
				if rows.Scan(&id, &name, &uv, &next, &n) == nil {
					fmt.Fprintf(&b, "    %d %q %d %d %d\n", id, name, uv, next, n)
				}
			}
			rows.Close()
		}
	}
	ents, _ := os.ReadDir(filepath.Join(r.tree, u.name, "Maildir"))
	b.WriteString("  on disk:")
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), ".") {
			fmt.Fprintf(&b, " %s(%d)", e.Name(), len(soakMaildirKeys(filepath.Join(r.tree, u.name, "Maildir", e.Name()))))
		}
	}
	return b.String()
}

func soakSorted(v map[string][]soakObs) []string {
	var out []string
	for name, l := range v {
		for _, o := range l {
			out = append(out, fmt.Sprintf("%s/%d=%s[%s]", name, o.uid, o.id, o.flags))
		}
	}
	sort.Strings(out)
	return out
}

// compare compares the model of u with a final listing.
func (r *soakRun) compare(u *soakUser, actual map[string][]soakObs) {
	st := r.st
	u.mu.Lock()
	defer u.mu.Unlock()
	for name, f := range u.folders {
		if f.pending != "" {
			st.unsettled.Add(1)
			st.note("unsettled", "%s %s: %s", u.name, name, f.pending)
			continue
		}
		list, exists := actual[name]
		if !exists {
			st.folderAnomaly.Add(1)
			st.note("folder", "%s: folder %s acknowledged but not listed", u.name, name)
		}
		count := map[string]int{}
		for _, o := range list {
			count[o.id]++
			if count[o.id] == 2 {
				st.duplicated.Add(1)
				st.note("duplicated", "%s %s: %s more than once (UIDs of it include %d)", u.name, name, o.id, o.uid)
			} else if count[o.id] > 2 {
				st.duplicated.Add(1)
			}
			in := f.msgs[o.id]
			if in == nil || in.state == soakAbsent {
				if count[o.id] == 1 {
					st.resurrected.Add(1)
					what := "never acknowledged there"
					if in != nil {
						what = fmt.Sprintf("removal acknowledged at %s", in.goneAt.Format("15:04:05.000"))
					}
					st.note("resurrected", "%s %s: %s (UID %d) present, %s", u.name, name, o.id, o.uid, what)
				}
				continue
			}
			if in.flagsOK && count[o.id] == 1 && in.flags != o.flags {
				st.flags.Add(1)
				st.note("flags", "%s %s: %s (UID %d) has flags [%s], last acknowledged [%s]", u.name, name, o.id, o.uid, o.flags, in.flags)
			}
		}
		for id, in := range f.msgs {
			if in.state == soakPresent && count[id] == 0 {
				st.lost.Add(1)
				st.note("lost", "%s %s: %s acknowledged, not there", u.name, name, id)
			}
		}
	}
	for name, list := range actual {
		if u.folders[name] != nil {
			continue
		}
		for _, o := range list {
			st.resurrected.Add(1)
			st.note("resurrected", "%s: %s (UID %d) in %s, a folder the workload does not put messages in", u.name, o.id, o.uid, name)
		}
	}
}

// checkIndexDisk compares the index rows with the files of each mailbox.
func (r *soakRun) checkIndexDisk(t *testing.T, pg *soakPG) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.url)
	if err != nil {
		t.Errorf("soak: connect for the index check: %v", err)
		return
	}
	defer conn.Close(ctx)
	type mbox struct{ user, name string }
	live := map[mbox]map[string]bool{}
	rows, err := conn.Query(ctx, `SELECT u.name, b.name, m.maildir_key, m.expunged
		FROM mailboxes b JOIN users u ON u.id = b.user_id LEFT JOIN messages m ON m.mailbox_id = b.id`)
	if err != nil {
		t.Errorf("soak: index query: %v", err)
		return
	}
	for rows.Next() {
		var user, name string
		var key *string
		var expunged *int64
		if err := rows.Scan(&user, &name, &key, &expunged); err != nil {
			t.Errorf("soak: index query: %v", err)
			return
		}
		k := mbox{user, name}
		if live[k] == nil {
			live[k] = map[string]bool{}
		}
		if key != nil && expunged != nil && *expunged == 0 {
			live[k][*key] = true
		}
	}
	if err := rows.Err(); err != nil {
		t.Errorf("soak: index query: %v", err)
		return
	}
	st := r.st
	dirs := map[string]bool{}
	for k, keys := range live {
		dir := filepath.Join(r.tree, k.user, "Maildir")
		if !strings.EqualFold(k.name, "INBOX") {
			dir = filepath.Join(dir, "."+k.name)
		}
		dirs[dir] = true
		files := soakMaildirKeys(dir)
		for key := range files {
			if !keys[key] {
				st.filesNoRow.Add(1)
				st.note("file without row", "%s %s: %s", k.user, k.name, key)
			}
		}
		for key := range keys {
			if !files[key] {
				st.rowsNoFile.Add(1)
				st.note("row without file", "%s %s: %s", k.user, k.name, key)
			}
		}
	}
	// Folders on disk the index does not know.
	for _, u := range r.users {
		root := filepath.Join(r.tree, u.name, "Maildir")
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			if !e.IsDir() || !strings.HasPrefix(e.Name(), ".") {
				continue
			}
			dir := filepath.Join(root, e.Name())
			if dirs[dir] {
				continue
			}
			for key := range soakMaildirKeys(dir) {
				st.filesNoRow.Add(1)
				st.note("file without row", "%s: %s in %s, a folder the index does not have", u.name, key, e.Name())
			}
		}
	}
}

// soakMaildirKeys returns the keys of the files in dir's cur/ and new/.
func soakMaildirKeys(dir string) map[string]bool {
	keys := map[string]bool{}
	for _, sub := range []string{"cur", "new"} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			if e.Type().IsRegular() {
				k, _, _ := strings.Cut(e.Name(), ":")
				keys[k] = true
			}
		}
	}
	return keys
}

func (r *soakRun) printResult(t *testing.T, total time.Duration, kills, pgRestarts int, report []string) {
	st := r.st
	counts := []struct {
		name string
		n    int64
	}{
		{"acknowledged messages lost", st.lost.Load()},
		{"messages duplicated", st.duplicated.Load()},
		{"messages present after acknowledged removal", st.resurrected.Load()},
		{"UIDs reused", st.uidReused.Load()},
		{"UIDs out of order", st.uidOrder.Load()},
		{"UIDVALIDITY changes", st.uidvalidity.Load()},
		{"flags differing from last acknowledged STORE", st.flags.Load()},
		{"IDLE: changes missed", st.idleMissed.Load()},
		{"IDLE: changes out of order", st.idleOrder.Load()},
		{"files without index rows", st.filesNoRow.Load()},
		{"index rows without files", st.rowsNoFile.Load()},
		{"message contents corrupted", st.corrupt.Load()},
		{"messages without X-Soak-ID", st.foreign.Load()},
		{"hosts disagreeing on a user's mail", st.hostsDisagree.Load()},
		{"final listings failed (LIST/EXAMINE/FETCH)", st.listFail.Load()},
		{"folder anomalies", st.folderAnomaly.Load()},
		{"folder operations left unsettled", st.unsettled.Load()},
		{"commands left unanswered", st.hung.Load()},
		{"daemon crashes (exits not caused by the soak)", st.crashes.Load()},
		{"daemon panics", st.panics.Load()},
		{"daemon data races", st.races.Load()},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n==== chaos soak: %v, %d users, %d IMAP + %d POP3 commands, %d deliveries, %d SIGKILLs, %d PostgreSQL restart, %d ambiguous operations\n",
		total, len(r.users), r.imapCmds.Load(), r.pop3Cmds.Load(), r.deliveries.Load(), kills, pgRestarts, r.ambiguous.Load())
	bad := false
	for _, c := range counts {
		fmt.Fprintf(&b, "  %-46s %d\n", c.name+":", c.n)
		bad = bad || c.n != 0
	}
	b.WriteString("  ---- performance\n")
	for _, s := range report {
		b.WriteString("  " + strings.ReplaceAll(s, "\n", "\n  ") + "\n")
	}
	r.mu.Lock()
	if len(r.nos) > 0 {
		b.WriteString("  ---- NO / -ERR answers (not counted as acknowledged)\n")
		var keys []string
		for k := range r.nos {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "  %6d  %s\n", r.nos[k], k)
		}
	}
	r.mu.Unlock()
	st.mu.Lock()
	if len(st.examples) > 0 {
		b.WriteString("  ---- examples\n")
		var kinds []string
		for k := range st.examples {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			for _, e := range st.examples[k] {
				fmt.Fprintf(&b, "  [%s] %s\n", k, e)
			}
		}
	}
	st.mu.Unlock()
	b.WriteString("====")
	t.Log(b.String())
	if bad {
		t.Errorf("chaos soak: a count above is not 0")
	}
}

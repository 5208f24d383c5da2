package testsuite_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postoffice/postoffice/store"
	"github.com/postoffice/postoffice/testsuite"
)

// The reverse of TestDovecotTree_opens: our store writes a Maildir tree and
// Dovecot 2.3's doveadm, with a private configuration, reads it. Dovecot
// builds its own dovecot-uidlist (we write none), so its UIDs are its own;
// messages are matched by subject.

// dovecotMsg is what a message should look like to Dovecot.
type dovecotMsg struct {
	flags    store.Flags
	keywords []string // sorted
	raw      []byte   // the bytes as appended (Dovecot's physical form)
	virtual  int64    // RFC822.SIZE: the CRLF form
	date     time.Time
}

// readsSeed is a message appended with store.Append.
type readsSeed struct {
	folder   string
	subject  string
	crlf     bool   // body and header with CRLF; else LF only
	extra    string // additional header lines, LF-terminated
	body     string // LF-terminated lines; converted for crlf
	flags    store.Flags
	keywords []string
}

var readsSeeds = []readsSeed{
	{folder: "INBOX", subject: "inbox 1 seen crlf", crlf: true, body: "first\n", flags: store.FlagSeen},
	{folder: "INBOX", subject: "inbox 2 answered flagged label1 lf", body: "second\nline two\n",
		flags: store.FlagSeen | store.FlagAnswered | store.FlagFlagged, keywords: []string{"$Label1"}},
	{folder: "INBOX", subject: "inbox 3 deleted draft work crlf", crlf: true, body: "third\n",
		flags: store.FlagDeleted | store.FlagDraft, keywords: []string{"Work"}},
	{folder: "INBOX", subject: "inbox 4 all flags two keywords lf", body: "fourth\n",
		flags:    store.FlagSeen | store.FlagAnswered | store.FlagFlagged | store.FlagDeleted | store.FlagDraft,
		keywords: []string{"$Label1", "Work"}},
	{folder: "INBOX", subject: "inbox 5 expunged later", body: "gone\n", flags: store.FlagSeen},
	{folder: "INBOX", subject: "inbox 6 flags changed later", body: "sixth\n", flags: store.FlagSeen, keywords: []string{"Work"}},
	{folder: "Sent", subject: "sent 1 crlf", crlf: true, body: "hello bob\n", flags: store.FlagSeen},
	{folder: "Sent", subject: "sent 2 mime lf", flags: store.FlagSeen | store.FlagAnswered,
		extra: "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n",
		body:  "--b\nContent-Type: text/plain\n\npart\n--b--\n"},
	{folder: "Archive.2024", subject: "archive 2024 1 no flags lf", body: "old\n"},
	{folder: "Archive.2024", subject: "archive 2024 2 no final newline", body: "no newline at the end",
		flags: store.FlagFlagged, keywords: []string{"$Label1"}},
	{folder: "Archive.2024", subject: "archive 2024 3 crlf keyword only", crlf: true, body: "kept\n", keywords: []string{"Work"}},
	{folder: "Entwürfe", subject: "entwurf 1 8bit lf", flags: store.FlagDraft,
		extra: "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n",
		body:  "Grüße aus Köln\n"},
	{folder: "Entwürfe", subject: "entwurf 2 crlf seen draft", crlf: true, body: "zwei\n",
		flags: store.FlagDraft | store.FlagSeen, keywords: []string{"$Label1", "Work"}},
}

// readsMessage builds a message with LF line endings, or CRLF if crlf.
func readsMessage(subject, extra, body string, crlf bool) []byte {
	m := "From: Alice <alice@example.org>\nTo: Bob <bob@example.org>\n" +
		"Subject: " + subject + "\nDate: Tue, 14 Nov 2023 22:13:20 +0000\n" +
		"Message-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@example.org>\n" +
		extra + "\n" + body
	if crlf {
		m = strings.ReplaceAll(m, "\n", "\r\n")
	}
	return []byte(m)
}

// virtualSize is the size of b with every bare LF counted as CRLF.
func virtualSize(b []byte) int64 {
	n := int64(len(b))
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			n++
		}
	}
	return n
}

// TestDovecotReads_storeTree writes a Maildir tree with our store (folders
// with a hierarchy and a non-ASCII name, LF and CRLF messages, all system
// flags, keywords, an MTA delivery, a flag change and an expunge) and checks
// that Dovecot's doveadm sees the same folders and, per message, the same
// flags, keywords, physical and virtual (CRLF) sizes, received dates and
// bytes.
func TestDovecotReads_storeTree(t *testing.T) {
	doveadm := needDoveadm(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	st := testsuite.NewStore(t, testsuite.SQLite)
	u := testsuite.MustUser(t, st, "alice", "pw")
	root := testsuite.Maildir(t, st, "alice")

	for _, mb := range []struct{ name, use string }{
		{"Sent", `\Sent`}, {"Archive.2024", `\Archive`}, {"Entwürfe", `\Drafts`},
	} {
		if _, err := st.CreateMailbox(ctx, u.ID, mb.name, mb.use); err != nil {
			t.Fatalf("create mailbox %q: %v", mb.name, err)
		}
	}
	boxes := map[string]*store.Mailbox{}
	mailbox := func(name string) *store.Mailbox {
		t.Helper()
		if m, ok := boxes[name]; ok {
			return m
		}
		m, err := st.Mailbox(ctx, u.ID, name)
		if err != nil {
			t.Fatalf("mailbox %q: %v", name, err)
		}
		boxes[name] = m
		return m
	}

	// want[folder][subject] is the state Dovecot must report.
	want := map[string]map[string]*dovecotMsg{
		"INBOX": {}, "Sent": {}, "Archive": {}, "Archive.2024": {}, "Entwürfe": {},
	}
	uids := map[string]store.UID{} // subject -> our UID
	base := time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)
	for i, s := range readsSeeds {
		raw := readsMessage(s.subject, s.extra, s.body, s.crlf)
		date := base.Add(time.Duration(i) * time.Hour)
		res, err := st.Append(ctx, mailbox(s.folder).ID, bytes.NewReader(raw), s.flags, s.keywords, date)
		if err != nil {
			t.Fatalf("append %q to %s: %v", s.subject, s.folder, err)
		}
		uids[s.subject] = res.UID
		want[s.folder][s.subject] = &dovecotMsg{flags: s.flags, keywords: slices.Sorted(slices.Values(s.keywords)),
			raw: raw, virtual: virtualSize(raw), date: date}
	}

	// An MTA delivery into INBOX/new (LF, 8-bit, no sizes in the name),
	// picked up by Sync.
	inbox := mailbox("INBOX")
	const delivered = "inbox 7 mta delivery"
	deliveredRaw := readsMessage(delivered, "Content-Type: text/plain; charset=utf-8\n", "Zürich\n", false)
	testsuite.Deliver(t, root, deliveredRaw)
	if err := st.Sync(ctx, inbox.ID); err != nil {
		t.Fatalf("sync INBOX: %v", err)
	}
	list, _, err := st.List(ctx, inbox.ID)
	if err != nil {
		t.Fatalf("list INBOX: %v", err)
	}
	appended := map[store.UID]bool{}
	for _, s := range readsSeeds {
		if s.folder == "INBOX" {
			appended[uids[s.subject]] = true
		}
	}
	for _, m := range list {
		if !appended[m.UID] {
			uids[delivered] = m.UID
		}
	}
	if uids[delivered] == 0 {
		t.Fatalf("the delivered message is not in INBOX after Sync: %+v", list)
	}
	msgs, err := st.Messages(ctx, inbox.ID, []store.UID{uids[delivered]}, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("messages INBOX %d: %v (%d found)", uids[delivered], err, len(msgs))
	}
	want["INBOX"][delivered] = &dovecotMsg{raw: deliveredRaw, virtual: virtualSize(deliveredRaw),
		date: msgs[0].InternalDate}

	// A flag change: replace \Seen Work with \Answered \Flagged $Label1
	// and a keyword new to the folder.
	const changed = "inbox 6 flags changed later"
	newKW := []string{"$Label1", "Later"}
	if _, err := st.SetFlags(ctx, inbox.ID, []store.UID{uids[changed]}, store.FlagsReplace,
		store.FlagAnswered|store.FlagFlagged, newKW); err != nil {
		t.Fatalf("set flags: %v", err)
	}
	want["INBOX"][changed].flags = store.FlagAnswered | store.FlagFlagged
	want["INBOX"][changed].keywords = newKW

	// An expunge.
	const expunged = "inbox 5 expunged later"
	if got, err := st.Expunge(ctx, inbox.ID, []store.UID{uids[expunged]}, false); err != nil || len(got) != 1 {
		t.Fatalf("expunge: %v %v", got, err)
	}
	delete(want["INBOX"], expunged)

	// Our own view must be the intended one, or the comparison below
	// proves nothing.
	before := storeSnapshot(t, ctx, st, u.ID)
	for folder, bySubject := range want {
		for subject, w := range bySubject {
			uid := uids[subject]
			got, ok := before[folder][uid]
			switch {
			case !ok:
				t.Errorf("store: %s UID %d (%q) missing", folder, uid, subject)
			case got.Flags != w.flags || !slices.Equal(got.Keywords, w.keywords) || got.Size != w.virtual:
				t.Errorf("store: %s UID %d (%q) = flags %q keywords %q size %d, want flags %q keywords %q size %d",
					folder, uid, subject, flagList(got.Flags), got.Keywords, got.Size, flagList(w.flags), w.keywords, w.virtual)
			}
		}
		if len(before[folder]) != len(bySubject) {
			t.Errorf("store: %s has %d messages, want %d", folder, len(before[folder]), len(bySubject))
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	dv := newDoveadmEnv(t, doveadm, root)

	// Folders: names as UTF-8, the parent Archive included.
	var folders []string
	for _, r := range dv.run(ctx, "mailbox", "list") {
		folders = append(folders, r["mailbox"])
	}
	slices.Sort(folders)
	t.Logf("doveadm mailbox list: %q", folders)
	wantFolders := slices.Sorted(maps.Keys(want))
	if !slices.Equal(folders, wantFolders) {
		t.Errorf("doveadm mailbox list = %q, want %q", folders, wantFolders)
	}

	// Messages.
	seen := map[string]map[string]bool{}
	for _, r := range dv.run(ctx, "fetch",
		"mailbox uid flags size.physical size.virtual date.received.unixtime hdr.subject text", "all") {
		folder, subject := r["mailbox"], strings.TrimSpace(r["hdr.subject"])
		where := fmt.Sprintf("dovecot %s UID %s %q", folder, r["uid"], subject)
		t.Logf("%s: flags %q size.physical %s size.virtual %s date.received %s", where,
			r["flags"], r["size.physical"], r["size.virtual"], r["date.received.unixtime"])
		w, ok := want[folder][subject]
		if !ok {
			t.Errorf("%s: unexpected message (%v)", where, r)
			continue
		}
		if seen[folder] == nil {
			seen[folder] = map[string]bool{}
		}
		if seen[folder][subject] {
			t.Errorf("%s: listed twice", where)
		}
		seen[folder][subject] = true
		flags, keywords, bad := parseDovecotFlags(r["flags"])
		if len(bad) > 0 {
			t.Errorf("%s: unknown system flags %q", where, bad)
		}
		if flags != w.flags || !slices.Equal(keywords, w.keywords) {
			t.Errorf("%s: flags %q, want %q keywords %q", where, r["flags"], flagList(w.flags), w.keywords)
		}
		if got := r["size.physical"]; got != strconv.Itoa(len(w.raw)) {
			t.Errorf("%s: size.physical = %s, want %d", where, got, len(w.raw))
		}
		if got := r["text"]; got != string(w.raw) {
			t.Errorf("%s: text = %q, want %q", where, got, w.raw)
		}
		if got := r["size.virtual"]; got != strconv.FormatInt(w.virtual, 10) {
			t.Errorf("%s: size.virtual = %s, want %d (RFC822.SIZE)", where, got, w.virtual)
		}
		if got := r["date.received.unixtime"]; got != strconv.FormatInt(w.date.Unix(), 10) {
			t.Errorf("%s: date.received.unixtime = %s, want %d (%s)", where, got, w.date.Unix(), w.date.UTC())
		}
	}
	for folder, bySubject := range want {
		for subject := range bySubject {
			if !seen[folder][subject] {
				t.Errorf("dovecot: %s: message %q missing", folder, subject)
			}
		}
	}

	// Dovecot wrote its dovecot-uidlist (with UIDs of its own) and index
	// next to our files; our view of the tree must not change.
	after := storeSnapshot(t, ctx, st, u.ID)
	for folder, view := range before {
		for uid, m := range view {
			a, ok := after[folder][uid]
			if !ok || a.Flags != m.Flags || !slices.Equal(a.Keywords, m.Keywords) || a.Size != m.Size {
				t.Errorf("store after Dovecot: %s UID %d = %+v (present %v), was %+v", folder, uid, a, ok, m)
			}
		}
		if len(after[folder]) != len(view) {
			t.Errorf("store after Dovecot: %s has %d messages, had %d", folder, len(after[folder]), len(view))
		}
	}
}

// flagList names the system flags in fl, for messages.
func flagList(fl store.Flags) string {
	var names []string
	for name, f := range flagNames {
		if fl&f != 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}

// storeSnapshot syncs and lists every mailbox of u: folder -> UID -> message.
func storeSnapshot(t *testing.T, ctx context.Context, st *store.Store, u store.UserID) map[string]map[store.UID]store.MessageInfo {
	t.Helper()
	mbs, err := st.Mailboxes(ctx, u)
	if err != nil {
		t.Fatalf("mailboxes: %v", err)
	}
	view := map[string]map[store.UID]store.MessageInfo{}
	for _, mb := range mbs {
		if err := st.Sync(ctx, mb.ID); err != nil {
			t.Fatalf("sync %s: %v", mb.Name, err)
		}
		list, _, err := st.List(ctx, mb.ID)
		if err != nil {
			t.Fatalf("list %s: %v", mb.Name, err)
		}
		view[mb.Name] = map[store.UID]store.MessageInfo{}
		for _, m := range list {
			view[mb.Name][m.UID] = m
		}
	}
	return view
}

// parseDovecotFlags splits doveadm's flags field into system flags and
// sorted keywords; \Recent (Dovecot's session state) is dropped and other
// unknown system flags are returned in bad.
func parseDovecotFlags(s string) (flags store.Flags, keywords, bad []string) {
	for _, f := range strings.Fields(s) {
		switch {
		case strings.EqualFold(f, `\Recent`):
		case strings.HasPrefix(f, `\`):
			fl, ok := flagNames[f]
			if !ok {
				bad = append(bad, f)
			}
			flags |= fl
		default:
			keywords = append(keywords, f)
		}
	}
	slices.Sort(keywords)
	return flags, keywords, bad
}

// requireDovecot reports whether a missing doveadm fails the test instead
// of skipping it: in CI (CI=true) and with REQUIRE_DOVECOT=1.
func requireDovecot() bool {
	on := func(k string) bool {
		v := strings.ToLower(os.Getenv(k))
		return v != "" && v != "0" && v != "false"
	}
	return on("CI") || on("REQUIRE_DOVECOT")
}

// needDoveadm returns the path of doveadm (Debian package dovecot-core). It
// skips t loudly when doveadm is missing, or fails it with CI=true or
// REQUIRE_DOVECOT=1.
func needDoveadm(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("doveadm")
	if err == nil {
		return p
	}
	if requireDovecot() {
		t.Fatalf("doveadm is not installed (CI/REQUIRE_DOVECOT set): apt-get install dovecot-core: %v", err)
	}
	fmt.Fprintf(os.Stderr, "\n!!! testsuite: doveadm not found: SKIPPING %s (Dovecot reading our Maildir).\n"+
		"!!! testsuite: apt-get install dovecot-core, or set REQUIRE_DOVECOT=1 to fail instead.\n\n", t.Name())
	t.Skipf("doveadm not installed (apt-get install dovecot-core): %v", err)
	return ""
}

// doveadmEnv runs doveadm on one Maildir with a private configuration.
type doveadmEnv struct {
	t       *testing.T
	doveadm string
	conf    string
	env     []string
}

// newDoveadmEnv writes a Dovecot configuration for the Maildir++ tree at root
// into a temporary directory. Nothing is shared with a Dovecot that may be
// running on this host: base_dir (where doveadm would look for the master's,
// auth's and stats' sockets) and state_dir are private and empty, and
// doveadm's mail commands neither start nor signal a master process. Binary
// indexes go to the temporary directory; Dovecot still writes its
// dovecot-uidlist into the Maildir, as it would in production.
//
// doveadm runs without -u: -u does a userdb lookup through the auth
// service's socket, which needs a running Dovecot. Without -u, doveadm
// takes the user from $USER and the settings from the file.
//
// Dovecot refuses mail access as root. Run as root, the tree and the
// temporary directories are given to "nobody" (ownership only, contents
// untouched) and the directories above them within the test's temporary
// directory get o+x, so doveadm can drop privileges to that user.
func newDoveadmEnv(t *testing.T, doveadm, root string) *doveadmEnv {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{root, dir} {
		if strings.ContainsAny(p, " \t\n\":#{}$%\\") {
			t.Fatalf("path %q cannot be written into a Dovecot configuration", p)
		}
	}
	home := filepath.Join(dir, "home")
	for _, d := range []string{"run", "state", "index", "home"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		uid, gid = 65534, 65534
		if nobody, err := user.Lookup("nobody"); err == nil {
			uid, _ = strconv.Atoi(nobody.Uid)
			gid, _ = strconv.Atoi(nobody.Gid)
		}
		for _, d := range []string{root, filepath.Join(dir, "index"), home} {
			giveTree(t, d, uid, gid)
		}
		top := filepath.Dir(dir) // the test's temporary directory
		for _, d := range []string{filepath.Dir(root), dir} {
			makeTraversable(t, d, top)
		}
	}
	conf := filepath.Join(dir, "dovecot.conf")
	cfg := fmt.Sprintf(`# Private configuration of TestDovecotReads: doveadm only, no daemons.
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
ssl = no
protocols =
mail_location = maildir:%[2]s:INDEX=%[1]s/index
namespace inbox {
  inbox = yes
  separator = .
}
mail_uid = %[3]d
mail_gid = %[4]d
first_valid_uid = %[3]d
first_valid_gid = %[4]d
`, dir, root, uid, gid)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return &doveadmEnv{t: t, doveadm: doveadm, conf: conf,
		env: []string{"PATH=" + os.Getenv("PATH"), "USER=alice", "HOME=" + home, "TZ=UTC"}}
}

// run runs `doveadm -c <conf> -f json <args>` and returns its records.
func (d *doveadmEnv) run(ctx context.Context, args ...string) []map[string]string {
	d.t.Helper()
	cmd := exec.CommandContext(ctx, d.doveadm, append([]string{"-c", d.conf, "-f", "json"}, args...)...)
	cmd.Env = d.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		d.t.Fatalf("doveadm %s: %v\nstderr: %s\nstdout: %s", strings.Join(args, " "), err, &stderr, &stdout)
	}
	if stderr.Len() > 0 {
		d.t.Logf("doveadm %s: stderr: %s", strings.Join(args, " "), &stderr)
	}
	var recs []map[string]string
	if err := json.Unmarshal(stdout.Bytes(), &recs); err != nil {
		d.t.Fatalf("doveadm %s: output is not a JSON array of records: %v\n%s", strings.Join(args, " "), err, &stdout)
	}
	return recs
}

// giveTree gives dir and everything below it to uid:gid.
func giveTree(t *testing.T, dir string, uid, gid int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatalf("chown %s: %v", dir, err)
	}
}

// makeTraversable adds o+x to dir and its parents up to top, which must
// contain dir.
func makeTraversable(t *testing.T, dir, top string) {
	t.Helper()
	rel, err := filepath.Rel(top, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		t.Fatalf("%s is not inside the test's temporary directory %s", dir, top)
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
			t.Fatal(err)
		}
		if d == top {
			return
		}
	}
}

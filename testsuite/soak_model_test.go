package testsuite

// The chaos soak's model of what the servers acknowledged (see
// soak_test.go), and the counters the checker prints.
//
// A message instance is a (user, folder, X-Soak-ID) triple: the workload
// never puts two copies of one message into one folder, and never copies or
// moves into INBOX, so each INBOX instance exists at most once ever. Folder
// names are never reused, so a name identifies one mailbox for its whole
// life. One IMAP client per user (the owner) does every STORE, COPY, MOVE,
// EXPUNGE, CREATE and RENAME of that user; other clients only APPEND to
// INBOX, read, and delete through POP3.
//
// An instance is present (acknowledged), absent (never there, or its
// deletion acknowledged) or maybe (the command that adds or removes it lost
// its answer). Only the owner's later observation settles a maybe, and only
// once the command is surely over: the host it went to has died since, or a
// minute has passed.

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type soakState int8

const (
	soakAbsent soakState = iota
	soakPresent
	soakMaybe
)

// soakAmb says where a command whose answer was lost went.
type soakAmb struct {
	host int
	inc  int64 // the host's incarnation when the command was sent
	at   time.Time
}

type soakInst struct {
	state    soakState
	gen      uint64 // user generation of the last state change
	amb      soakAmb
	flags    string // tracked flags (soakTracked), canonical
	flagsOK  bool
	flagsGen uint64
	flagsAmb soakAmb
	addedAt  time.Time // INBOX: when it became visible
	goneAt   time.Time // when it was (maybe) removed
}

type soakFolder struct {
	name    string
	msgs    map[string]*soakInst
	pending string // "create", or "rename:NEW": unusable until settled
	pendAmb soakAmb
}

type soakAdd struct {
	id string
	at time.Time
}

// soakUser is one account's model; mu guards everything below it.
type soakUser struct {
	name, pass string

	mu          sync.Mutex
	gen         uint64
	folders     map[string]*soakFolder
	nextFolder  int
	uids        map[string]map[uint32]string // folder+" "+uidvalidity → UID → X-Soak-ID
	uidvalidity map[string]uint32
	inboxAdds   []soakAdd
	logf        func(format string, args ...any) // the soak's event log
}

func newSoakUser(name, pass string) *soakUser {
	u := &soakUser{name: name, pass: pass, folders: map[string]*soakFolder{},
		uids: map[string]map[uint32]string{}, uidvalidity: map[string]uint32{}}
	u.folders["INBOX"] = &soakFolder{name: "INBOX", msgs: map[string]*soakInst{}}
	return u
}

// soakTracked are the flags the owner sets with STORE and the checker
// compares (\Seen and \Deleted change through POP3 RETR and EXPUNGE).
var soakTracked = []string{`\Answered`, `\Draft`, `\Flagged`, `$SoakA`, `$SoakB`}

// soakCanonFlags keeps the tracked flags of fs, sorted, space-separated.
func soakCanonFlags(fs []string) string {
	var out []string
	for _, f := range fs {
		for _, t := range soakTracked {
			if strings.EqualFold(f, t) {
				out = append(out, t)
			}
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// soakStats are the checker's counts; every one must end at 0.
type soakStats struct {
	lost, duplicated, resurrected     atomic.Int64
	uidReused, uidOrder, uidvalidity  atomic.Int64
	flags, idleMissed, idleOrder      atomic.Int64
	filesNoRow, rowsNoFile, corrupt   atomic.Int64
	hostsDisagree, folderAnomaly      atomic.Int64
	foreign, panics, races, unsettled atomic.Int64
	hung, crashes, listFail           atomic.Int64

	mu       sync.Mutex
	examples map[string][]string
}

// note records an example of a problem counted under kind.
func (s *soakStats) note(kind, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.examples == nil {
		s.examples = map[string][]string{}
	}
	if len(s.examples[kind]) < 8 {
		s.examples[kind] = append(s.examples[kind], time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
}

// settled reports whether an ambiguous command is surely over.
func (a soakAmb) settled(hosts []*soakHost) bool {
	return hosts[a.host].inc.Load() > a.inc || time.Since(a.at) > time.Minute
}

func (u *soakUser) folder(name string) *soakFolder {
	f := u.folders[name]
	if f == nil {
		// A folder the model lost (renamed away meanwhile): a scratch
		// folder keeps callers simple; it is not in u.folders.
		f = &soakFolder{name: name, msgs: map[string]*soakInst{}}
	}
	return f
}

func (u *soakUser) curGen() uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.gen
}

// usable returns the folders that are not pending, INBOX first.
func (u *soakUser) usable() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	names := []string{"INBOX"}
	for n, f := range u.folders {
		if n != "INBOX" && f.pending == "" {
			names = append(names, n)
		}
	}
	sort.Strings(names[1:])
	return names
}

// add records an acknowledged (amb nil) or ambiguous addition of id to
// folder. startGen is the generation before the command was sent: a
// removal recorded since then (POP3 deleting the new message at once)
// wins.
func (u *soakUser) add(folder, id, flags string, flagsOK bool, startGen uint64, amb *soakAmb, visible bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f := u.folder(folder)
	in := f.msgs[id]
	if in != nil && in.gen > startGen && in.state != soakPresent {
		return
	}
	if in == nil {
		in = &soakInst{}
		f.msgs[id] = in
	}
	u.gen++
	in.gen, in.flagsGen = u.gen, u.gen
	in.flags, in.flagsOK = flags, flagsOK
	in.goneAt = time.Time{}
	if amb != nil {
		in.state, in.amb = soakMaybe, *amb
	} else {
		in.state = soakPresent
	}
	if visible && folder == "INBOX" && amb == nil {
		in.addedAt = time.Now()
		u.inboxAdds = append(u.inboxAdds, soakAdd{id, in.addedAt})
	}
}

// visible marks a delivered INBOX message as visible (in new/) now.
func (u *soakUser) visible(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if in := u.folders["INBOX"].msgs[id]; in != nil {
		in.addedAt = time.Now()
		u.inboxAdds = append(u.inboxAdds, soakAdd{id, in.addedAt})
	}
}

// remove records an acknowledged (amb nil) or ambiguous removal.
func (u *soakUser) remove(folder, id string, amb *soakAmb) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f := u.folder(folder)
	in := f.msgs[id]
	if in == nil {
		in = &soakInst{}
		f.msgs[id] = in
	} else if amb != nil && in.state == soakAbsent {
		return
	}
	u.gen++
	in.gen = u.gen
	in.goneAt = time.Now()
	if amb != nil {
		in.state, in.amb = soakMaybe, *amb
	} else {
		in.state = soakAbsent
	}
}

// setFlags records an acknowledged (amb nil) or ambiguous STORE.
func (u *soakUser) setFlags(folder, id, flags string, amb *soakAmb) {
	u.mu.Lock()
	defer u.mu.Unlock()
	in := u.folder(folder).msgs[id]
	if in == nil {
		return
	}
	u.gen++
	in.flagsGen = u.gen
	if amb != nil {
		in.flagsOK, in.flagsAmb = false, *amb
	} else {
		in.flags, in.flagsOK = flags, true
	}
}

// inst returns a copy of the instance (zero value: absent).
func (u *soakUser) inst(folder, id string) soakInst {
	u.mu.Lock()
	defer u.mu.Unlock()
	if f := u.folders[folder]; f != nil {
		if in := f.msgs[id]; in != nil {
			return *in
		}
	}
	return soakInst{}
}

// soakObs is one message as a client saw it.
type soakObs struct {
	uid   uint32
	id    string
	flags string
}

// observe lets the owner settle ambiguous instances of folder from a
// listing that started at generation snap.
func (u *soakUser) observe(folder string, snap uint64, list []soakObs, hosts []*soakHost) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f := u.folders[folder]
	if f == nil {
		return
	}
	seen := map[string]soakObs{}
	for _, o := range list {
		seen[o.id] = o
	}
	for id, in := range f.msgs {
		o, ok := seen[id]
		if in.state == soakMaybe && in.gen < snap && in.amb.settled(hosts) {
			u.logf("%s: settled %s %s: present=%v", u.name, folder, id, ok)
			if ok {
				in.state = soakPresent
			} else {
				in.state = soakAbsent
				if in.goneAt.IsZero() {
					in.goneAt = time.Now()
				}
			}
		}
		if ok && in.state == soakPresent && !in.flagsOK && in.flagsGen < snap && in.flagsAmb.settled(hosts) {
			in.flags, in.flagsOK = o.flags, true
		}
	}
}

// checkUID remembers that uid names id in folder/uidvalidity and counts a
// UID that named another message before.
func (u *soakUser) checkUID(st *soakStats, who, folder string, uv, uid uint32, id string) {
	if id == "" || uv == 0 || uid == 0 {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	k := fmt.Sprintf("%s %d", folder, uv)
	m := u.uids[k]
	if m == nil {
		m = map[uint32]string{}
		u.uids[k] = m
	}
	if old, ok := m[uid]; ok && old != id {
		st.uidReused.Add(1)
		st.note("uid reused", "%s %s %s UIDVALIDITY %d: UID %d named %s, now %s", who, u.name, folder, uv, uid, old, id)
		return
	}
	m[uid] = id
}

// checkUIDValidity counts a folder whose UIDVALIDITY changed.
func (u *soakUser) checkUIDValidity(st *soakStats, who, folder string, uv uint32) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if old, ok := u.uidvalidity[folder]; ok && old != uv {
		st.uidvalidity.Add(1)
		st.note("uidvalidity", "%s %s %s: UIDVALIDITY %d, earlier %d", who, u.name, folder, uv, old)
	}
	u.uidvalidity[folder] = uv
}

// soakMessage is the content of message id: a few headers and a body whose
// size (about 1 KiB, sometimes 8 or 64 KiB) follows from id.
func soakMessage(user, id string) []byte {
	h := sha256.Sum256([]byte(id))
	size := 600 + int(h[0])*2
	switch {
	case h[1] < 5:
		size = 64 << 10
	case h[1] < 40:
		size = 8 << 10
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "Message-ID: <%s@soak.test>\r\nX-Soak-ID: %s\r\nFrom: deliverer@soak.test\r\nTo: %s@soak.test\r\n"+
		"Subject: soak %s\r\nDate: Sun, 29 Nov 2026 12:00:00 +0000\r\n\r\n", id, id, user, id)
	for i := 0; b.Len() < size; i++ {
		if i%7 == 3 {
			b.WriteString(".dot-stuffed line\r\n")
		}
		fmt.Fprintf(&b, "%s line %d %x\r\n", id, i, h[i%32])
	}
	return b.Bytes()
}

// soakParseID finds the X-Soak-ID in a header block or whole message.
func soakParseID(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimRight(l, "\r")
		if l == "" {
			return ""
		}
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "X-Soak-ID") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// soakUserOf returns the user part of an X-Soak-ID ("soak01-d17").
func soakUserOf(id string) string {
	u, _, _ := strings.Cut(id, "-")
	return u
}

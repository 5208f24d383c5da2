package testsuite

// The chaos soak's owner client: the one IMAP client per user that STOREs,
// COPYs, MOVEs, EXPUNGEs, CREATEs and RENAMEs, so the model knows the
// expected flags and folders exactly.

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"strings"

	"github.com/emersion/go-imap/v2"
)

const soakMaxFolders = 5 // besides INBOX and the special-use folders

func (r *soakRun) owner(ctx context.Context, u *soakUser, rng *mrand.Rand) {
	for ctx.Err() == nil {
		s, err := r.dialIMAP(u, r.pickHost(rng), "owner", nil)
		if err != nil {
			r.pause(rng)
			continue
		}
		r.ownerSession(ctx, s, u, rng)
		s.close()
	}
}

// settleFolders settles ambiguous CREATEs and RENAMEs from a LIST, once the
// commands are surely over (or always, with force).
func (s *soakIMAP) settleFolders(u *soakUser, force bool) error {
	u.mu.Lock()
	need := false
	for _, f := range u.folders {
		if f.pending != "" && (force || f.pendAmb.settled(s.r.hosts)) {
			need = true
		}
	}
	u.mu.Unlock()
	if !need {
		return nil
	}
	s.begin("LIST \"\" *")
	list, err := s.c.List("", "*", nil).Collect()
	if err != nil {
		return err
	}
	exists := map[string]bool{}
	for _, l := range list {
		exists[l.Mailbox] = true
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for name, f := range u.folders {
		if f.pending == "" || !(force || f.pendAmb.settled(s.r.hosts)) {
			continue
		}
		if f.pending == "create" {
			if exists[name] {
				f.pending = ""
			} else {
				delete(u.folders, name)
			}
			continue
		}
		to := strings.TrimPrefix(f.pending, "rename:")
		f.pending = ""
		s.r.logf("%s %s: settle %s %s: LIST has old=%v new=%v", s.who, u.name, name, to, exists[name], exists[to])
		switch {
		case exists[to] && !exists[name]:
			delete(u.folders, name)
			f.name = to
			u.folders[to] = f
		case exists[name] && !exists[to]:
		default:
			s.r.st.folderAnomaly.Add(1)
			s.r.st.note("folder", "%s %s: after an interrupted RENAME %s → %s, LIST has old=%v new=%v", s.who, u.name, name, to, exists[name], exists[to])
		}
	}
	return nil
}

// ownerTargets returns folders other than from (and INBOX) that may take a
// copy of id: the model has no live or ambiguous instance of it there.
func (u *soakUser) ownerTargets(from, id string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for n, f := range u.folders {
		if n == "INBOX" || n == from || f.pending != "" {
			continue
		}
		if in := f.msgs[id]; in == nil || in.state == soakAbsent {
			out = append(out, n)
		}
	}
	return out
}

// ownerPick returns a message of sel the model holds as present, and its
// flags.
func (u *soakUser) ownerPick(sel *soakSel, rng *mrand.Rand) (soakObs, soakInst, bool) {
	if len(sel.list) == 0 {
		return soakObs{}, soakInst{}, false
	}
	for range 4 {
		o := sel.list[rng.IntN(len(sel.list))]
		if in := u.inst(sel.name, o.id); in.state == soakPresent {
			return o, in, true
		}
	}
	return soakObs{}, soakInst{}, false
}

func (r *soakRun) ownerSession(ctx context.Context, s *soakIMAP, u *soakUser, rng *mrand.Rand) {
	if err := s.settleFolders(u, false); err != nil {
		return
	}
	var sel *soakSel
	for i := 2 + rng.IntN(8); i > 0 && ctx.Err() == nil; i-- {
		r.pause(rng)
		p := rng.IntN(100)
		if sel == nil && p >= 15 && p < 85 {
			p = 90 // needs a selected folder
		}
		ok := true
		switch {
		case p < 15: // APPEND
			names := u.usable()
			ok = s.appendMsg(u, names[rng.IntN(len(names))], rng)
		case p < 30: // STORE
			ok = s.ownerStore(u, sel, rng)
		case p < 42: // COPY
			ok = s.ownerCopy(u, sel, rng, false)
		case p < 54: // MOVE
			ok = s.ownerCopy(u, sel, rng, true)
		case p < 68: // EXPUNGE
			ok = s.ownerExpunge(u, sel, rng)
		case p < 80: // FETCH
			if o, _, found := u.ownerPick(sel, rng); found {
				if err := s.fetchCheck(u, sel, o.uid, o.id); err != nil {
					ok = soakDefinite(err)
				}
			}
		case p < 83: // CREATE
			ok = s.ownerCreate(u)
		case p < 86: // RENAME
			if s.ownerRename(u, rng) {
				sel = nil
			} else {
				ok = false
			}
		default: // SELECT another folder
			names := u.usable()
			var err error
			sel, err = s.selectList(u, names[rng.IntN(len(names))], true)
			if err != nil {
				sel, ok = nil, soakDefinite(err)
				if ok {
					r.noted("SELECT", err)
				}
			}
		}
		if !ok {
			return
		}
	}
}

func (s *soakIMAP) ownerStore(u *soakUser, sel *soakSel, rng *mrand.Rand) bool {
	o, _, found := u.ownerPick(sel, rng)
	if !found {
		return true
	}
	var flags []imap.Flag
	var names []string
	for _, f := range soakTracked {
		if rng.IntN(3) == 0 {
			flags = append(flags, imap.Flag(f))
			names = append(names, f)
		}
	}
	s.begin(fmt.Sprintf("UID STORE %d FLAGS.SILENT (%s) in %s", o.uid, strings.Join(names, " "), sel.name))
	err := s.c.Store(imap.UIDSetNum(imap.UID(o.uid)), &imap.StoreFlags{Op: imap.StoreFlagsSet, Silent: true, Flags: flags}, nil).Close()
	switch {
	case err == nil:
		u.setFlags(sel.name, o.id, soakCanonFlags(names), nil)
	case soakDefinite(err):
		s.r.noted("UID STORE", err)
	default:
		u.setFlags(sel.name, o.id, "", s.amb())
		return false
	}
	return true
}

// ownerCopy COPYs or MOVEs a message of sel to another folder.
func (s *soakIMAP) ownerCopy(u *soakUser, sel *soakSel, rng *mrand.Rand, move bool) bool {
	o, in, found := u.ownerPick(sel, rng)
	if !found {
		return true
	}
	targets := u.ownerTargets(sel.name, o.id)
	if len(targets) == 0 {
		return true
	}
	dst := targets[rng.IntN(len(targets))]
	start := u.curGen()
	uids := imap.UIDSetNum(imap.UID(o.uid))
	s.begin(fmt.Sprintf("UID COPY/MOVE %d %s (from %s)", o.uid, dst, sel.name))
	var uv uint32
	var dest imap.NumSet
	var err error
	name := "UID COPY"
	if move {
		name = "UID MOVE"
		d, merr := s.c.Move(uids, dst).Wait()
		err = merr
		if d != nil {
			uv, dest = d.UIDValidity, d.DestUIDs
		}
	} else {
		d, cerr := s.c.Copy(uids, dst).Wait()
		err = cerr
		if d != nil {
			uv, dest = d.UIDValidity, d.DestUIDs
		}
	}
	s.r.logf("%s %s: %s %s UID %d (%s) → %s: %v %v", s.who, u.name, name, sel.name, o.uid, o.id, dst, dest, err)
	switch {
	case err == nil:
		dstUID := uint32(0)
		if set, ok := dest.(imap.UIDSet); ok {
			if l, ok := set.Nums(); ok && len(l) == 1 {
				dstUID = uint32(l[0])
			}
		}
		if dstUID == 0 {
			// Nothing copied: the message was gone already (POP3).
			return true
		}
		if move {
			u.remove(sel.name, o.id, nil)
		}
		u.add(dst, o.id, in.flags, in.flagsOK, start, nil, false)
		u.checkUID(s.r.st, s.who, dst, uv, dstUID, o.id)
	case soakDefinite(err):
		s.r.noted(name, err)
	default:
		a := s.amb()
		if move {
			u.remove(sel.name, o.id, a)
		}
		u.add(dst, o.id, in.flags, in.flagsOK, start, a, false)
		return false
	}
	return true
}

func (s *soakIMAP) ownerExpunge(u *soakUser, sel *soakSel, rng *mrand.Rand) bool {
	o, _, found := u.ownerPick(sel, rng)
	if !found {
		return true
	}
	uids := imap.UIDSetNum(imap.UID(o.uid))
	s.begin(fmt.Sprintf("UID STORE %d +FLAGS.SILENT (\\Deleted) in %s", o.uid, sel.name))
	err := s.c.Store(uids, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	if err != nil {
		if soakDefinite(err) {
			s.r.noted("UID STORE +FLAGS \\Deleted", err)
			return true
		}
		return false
	}
	s.begin(fmt.Sprintf("UID EXPUNGE %d in %s", o.uid, sel.name))
	_, err = s.c.UIDExpunge(imap.UIDSet(uids)).Collect()
	s.r.logf("%s %s: UID EXPUNGE %s UID %d (%s): %v", s.who, u.name, sel.name, o.uid, o.id, err)
	switch {
	case err == nil:
		u.remove(sel.name, o.id, nil)
	case soakDefinite(err):
		s.r.noted("UID EXPUNGE", err)
	default:
		u.remove(sel.name, o.id, s.amb())
		return false
	}
	return true
}

func (s *soakIMAP) ownerCreate(u *soakUser) bool {
	u.mu.Lock()
	n := 0
	for name := range u.folders {
		if strings.HasPrefix(name, "F") || strings.HasPrefix(name, "R") {
			n++
		}
	}
	u.nextFolder++
	name := fmt.Sprintf("F%d", u.nextFolder)
	u.mu.Unlock()
	if n >= soakMaxFolders {
		return true
	}
	s.begin("CREATE " + name)
	err := s.c.Create(name, nil).Wait()
	s.r.logf("%s %s: CREATE %s: %v", s.who, u.name, name, err)
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case err == nil:
		u.folders[name] = &soakFolder{name: name, msgs: map[string]*soakInst{}}
	case soakDefinite(err):
		s.r.noted("CREATE", err)
	default:
		u.folders[name] = &soakFolder{name: name, msgs: map[string]*soakInst{}, pending: "create", pendAmb: *s.amb()}
		return false
	}
	return true
}

// ownerRename renames one of the workload's folders to a new name; false
// when the session broke.
func (s *soakIMAP) ownerRename(u *soakUser, rng *mrand.Rand) bool {
	names := u.usable()[1:]
	if len(names) == 0 {
		return true
	}
	from := names[rng.IntN(len(names))]
	u.mu.Lock()
	u.nextFolder++
	to := fmt.Sprintf("R%d", u.nextFolder)
	u.mu.Unlock()
	s.begin("RENAME " + from + " " + to)
	err := s.c.Rename(from, to, nil).Wait()
	s.r.logf("%s %s: RENAME %s %s: %v", s.who, u.name, from, to, err)
	u.mu.Lock()
	defer u.mu.Unlock()
	f := u.folders[from]
	switch {
	case err == nil:
		delete(u.folders, from)
		f.name = to
		u.folders[to] = f
	case soakDefinite(err):
		s.r.noted("RENAME", err)
	default:
		f.pending, f.pendAmb = "rename:"+to, *s.amb()
		return false
	}
	return true
}

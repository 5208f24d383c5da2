package imapd

// Mailbox management: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST
// (with LIST-EXTENDED, LIST-STATUS, SPECIAL-USE, CHILDREN), LSUB, STATUS
// (with STATUS=SIZE) and NAMESPACE.
//
// Names arrive as UTF-8: the library decodes modified UTF-7 (RFC 3501
// §5.1.3) and passes raw UTF-8 through, and encodes names on the way out
// according to UTF8=ACCEPT / IMAP4rev2. The store validates names (no "..",
// empty levels, control characters, "/") and answers ErrBadMailboxName.
// Every store call carries the session's user ID: a session can only name
// its own user's mailboxes.

import (
	"errors"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postoffice/postoffice/store"
)

const delim = store.Delimiter

// Limits on LIST patterns, against the exponential backtracking a naive
// matcher would do on "*%*%*%...": the matcher here is O(pattern × name),
// and these bound the product.
const (
	maxListPattern  = 255
	maxListPatterns = 16
)

// creatableUse reports whether CREATE (USE (...)) and Options.SpecialFolders
// may give a mailbox this special use. \All and \Flagged are virtual
// mailboxes, which we do not have.
func creatableUse(use string) bool {
	switch use {
	case `\Drafts`, `\Sent`, `\Trash`, `\Junk`, `\Archive`:
		return true
	}
	return false
}

// canonicalUse returns a special-use attribute in its RFC 6154 spelling.
func canonicalUse(attr imap.MailboxAttr) string {
	for _, u := range []string{`\Drafts`, `\Sent`, `\Trash`, `\Junk`, `\Archive`, `\All`, `\Flagged`} {
		if strings.EqualFold(string(attr), u) {
			return u
		}
	}
	return string(attr)
}

// declaredName removes one trailing hierarchy delimiter: RFC 9051 §6.3.4
// lets CREATE "foo." declare that foo will have children. The store creates
// the mailbox foo. RENAME targets are treated alike.
func declaredName(name string) string {
	if len(name) > 1 && name[len(name)-1] == delim {
		return name[:len(name)-1]
	}
	return name
}

// Create implements imapserver.Session (CREATE, RFC 9051 §6.3.4, with
// CREATE-SPECIAL-USE, RFC 6154 §3).
func (s *session) Create(name string, options *imap.CreateOptions) error {
	use := ""
	if options != nil && len(options.SpecialUse) > 0 {
		if len(options.SpecialUse) > 1 {
			return no(codeUseAttr, "Only one special-use attribute per mailbox is supported")
		}
		use = canonicalUse(options.SpecialUse[0])
		if !creatableUse(use) {
			// RFC 6154 §3: MUST NOT create it; SHOULD say USEATTR.
			return no(codeUseAttr, "Unsupported special-use attribute")
		}
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	_, err := s.mailStore().CreateMailbox(ctx, s.user.ID, declaredName(name), use)
	return s.imapError(err)
}

// Delete implements imapserver.Session (DELETE, RFC 9051 §6.3.5). INBOX
// cannot be deleted (NO [CANNOT]); a mailbox with children neither
// (NO [HASCHILDREN]), as in Dovecot.
func (s *session) Delete(name string) error {
	ctx, cancel := s.opCtx()
	defer cancel()
	return s.imapError(s.mailStore().DeleteMailbox(ctx, s.user.ID, name))
}

// Rename implements imapserver.Session (RENAME, RFC 9051 §6.3.6). Children
// move along; renaming INBOX moves its messages into the new mailbox and
// leaves INBOX empty. Both are the store's doing.
func (s *session) Rename(oldName, newName string, _ *imap.RenameOptions) error {
	ctx, cancel := s.opCtx()
	defer cancel()
	return s.imapError(s.mailStore().RenameMailbox(ctx, s.user.ID, oldName, declaredName(newName)))
}

// Subscribe implements imapserver.Session (SUBSCRIBE). Subscriptions are a
// flag on existing mailboxes, so subscribing a missing one is
// NO [NONEXISTENT].
func (s *session) Subscribe(name string) error {
	ctx, cancel := s.opCtx()
	defer cancel()
	return s.imapError(s.mailStore().SetSubscribed(ctx, s.user.ID, name, true))
}

// Unsubscribe implements imapserver.Session (UNSUBSCRIBE).
func (s *session) Unsubscribe(name string) error {
	ctx, cancel := s.opCtx()
	defer cancel()
	return s.imapError(s.mailStore().SetSubscribed(ctx, s.user.ID, name, false))
}

// Namespace implements imapserver.SessionNamespace (RFC 2342): one personal
// namespace with an empty prefix; no other users' or shared namespaces.
func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{
		Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}},
	}, nil
}

// checkStatusOptions refuses STATUS items the library parses but we cannot
// answer (the library would dereference a nil value).
func checkStatusOptions(o *imap.StatusOptions) error {
	if o != nil && o.DeletedStorage {
		return bad(imap.ResponseCodeClientBug, "DELETED-STORAGE requires QUOTA, which is not supported")
	}
	return nil
}

// Status implements imapserver.Session (STATUS, RFC 9051 §6.3.11, with
// STATUS=SIZE, RFC 8438, and APPENDLIMIT, RFC 7889).
func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	if err := checkStatusOptions(options); err != nil {
		return nil, err
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	ms, err := s.mailStore().Status(ctx, s.user.ID, name)
	if err != nil {
		return nil, s.imapError(err)
	}
	return s.statusData(ms, options), nil
}

func (s *session) statusData(ms *store.MailboxStatus, o *imap.StatusOptions) *imap.StatusData {
	d := &imap.StatusData{Mailbox: ms.Name}
	if o.NumMessages {
		d.NumMessages = ptr(ms.Messages)
	}
	if o.NumRecent {
		d.NumRecent = ptr(uint32(0)) // \Recent is not kept (obsolete in IMAP4rev2)
	}
	if o.UIDNext {
		d.UIDNext = imap.UID(ms.UIDNext)
	}
	if o.UIDValidity {
		d.UIDValidity = ms.UIDValidity
	}
	if o.NumUnseen {
		d.NumUnseen = ptr(ms.Unseen)
	}
	if o.NumDeleted {
		d.NumDeleted = ptr(ms.Deleted)
	}
	if o.Size {
		d.Size = ptr(ms.Size)
	}
	if o.AppendLimit {
		d.AppendLimit = ptr(s.srv.appendLimit)
	}
	return d
}

func ptr[T any](v T) *T { return &v }

// listEntry is one name LIST may return: a mailbox, or a missing parent of
// one (mb == nil).
type listEntry struct {
	name           string
	mb             *store.Mailbox
	hasChildren    bool
	subscribedKids bool // some descendant is subscribed (CHILDINFO)
}

// List implements imapserver.Session (LIST, RFC 9051 §6.3.9, with
// LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE RFC 6154 and
// CHILDREN RFC 3348; and LSUB, which the library sends here with
// SelectSubscribed).
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if options == nil {
		options = &imap.ListOptions{}
	}
	if err := checkStatusOptions(options.ReturnStatus); err != nil {
		return err
	}
	if len(patterns) == 0 {
		// RFC 9051 §6.3.9: an empty pattern asks for the delimiter and the
		// root name.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	if len(patterns) > maxListPatterns {
		return bad(imap.ResponseCodeLimit, "Too many LIST patterns")
	}
	canon := make([]string, len(patterns))
	for i, p := range patterns {
		canon[i] = canonicalPattern(ref, p)
		if len(canon[i]) > maxListPattern {
			return bad(imap.ResponseCodeLimit, "LIST pattern too long")
		}
	}

	ctx, cancel := s.opCtx()
	defer cancel()
	st := s.mailStore()
	mboxes, err := st.Mailboxes(ctx, s.user.ID)
	if err != nil {
		return s.imapError(err)
	}
	for _, e := range listEntries(mboxes) {
		if !slices.ContainsFunc(canon, func(p string) bool { return matchPattern(p, e.name) }) {
			continue
		}
		data := &imap.ListData{Mailbox: e.name, Delim: delim}
		subscribed := e.mb != nil && e.mb.Subscribed
		switch {
		case options.SelectSubscribed && !subscribed:
			// RFC 5258 §3: with RECURSIVEMATCH, a parent of subscribed
			// mailboxes is listed with CHILDINFO.
			if !options.SelectRecursiveMatch || !e.subscribedKids {
				continue
			}
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		case options.SelectSpecialUse && (e.mb == nil || e.mb.SpecialUse == ""):
			continue
		case options.SelectSubscribed && options.SelectRecursiveMatch && e.subscribedKids:
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		if e.mb == nil {
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		}
		if e.hasChildren {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if subscribed && (options.SelectSubscribed || options.ReturnSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if e.mb != nil && e.mb.SpecialUse != "" {
			// RFC 6154 §2: returned in plain LIST too, which is what
			// clients that never ask RETURN (SPECIAL-USE) rely on.
			data.Attrs = append(data.Attrs, imap.MailboxAttr(e.mb.SpecialUse))
		}
		if options.ReturnStatus != nil && e.mb != nil {
			ms, err := st.Status(ctx, s.user.ID, e.mb.Name)
			switch {
			case err == nil:
				data.Status = s.statusData(ms, options.ReturnStatus)
			case isGone(err):
				// Deleted since we listed: RFC 5819 §2 returns no STATUS.
			default:
				return s.imapError(err)
			}
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

func isGone(err error) bool { return errors.Is(err, store.ErrNoMailbox) }

// listEntries returns every mailbox plus the missing parents of any (which
// a Maildir++ tree made by other tools can have), INBOX first, then by
// name.
func listEntries(mboxes []store.Mailbox) []*listEntry {
	byName := make(map[string]*listEntry, len(mboxes))
	var out []*listEntry
	for i := range mboxes {
		e := &listEntry{name: mboxes[i].Name, mb: &mboxes[i]}
		if strings.EqualFold(e.name, store.Inbox) {
			e.name = store.Inbox
		}
		byName[e.name] = e
		out = append(out, e)
	}
	for _, mb := range mboxes {
		name := mb.Name
		for {
			i := strings.LastIndexByte(name, delim)
			if i <= 0 {
				break
			}
			name = name[:i]
			p := byName[name]
			if p == nil {
				p = &listEntry{name: name}
				byName[name] = p
				out = append(out, p)
			}
			p.hasChildren = true
			if mb.Subscribed {
				p.subscribedKids = true
			}
		}
	}
	slices.SortFunc(out, func(a, b *listEntry) int {
		switch {
		case a.name == store.Inbox:
			return -1
		case b.name == store.Inbox:
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	return out
}

// canonicalPattern joins a LIST reference and pattern the way
// imapserver.MatchList does (a pattern starting with the delimiter ignores
// the reference; a reference gets a trailing delimiter), makes a leading
// INBOX component upper case (INBOX is case-insensitive, RFC 9051 §5.1),
// and collapses runs of wildcards, which match the same names.
func canonicalPattern(ref, pattern string) string {
	if strings.HasPrefix(pattern, string(delim)) {
		ref, pattern = "", pattern[1:]
	}
	if ref != "" && !strings.HasSuffix(ref, string(delim)) {
		ref += string(delim)
	}
	p := ref + pattern
	if len(p) >= len(store.Inbox) && strings.EqualFold(p[:len(store.Inbox)], store.Inbox) &&
		(len(p) == len(store.Inbox) || p[len(store.Inbox)] == delim) {
		p = store.Inbox + p[len(store.Inbox):]
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '*' || c == '%' {
			j := i
			star := false
			for j < len(p) && (p[j] == '*' || p[j] == '%') {
				star = star || p[j] == '*'
				j++
			}
			if star {
				b.WriteByte('*')
			} else {
				b.WriteByte('%') // "%%" matches what "%" matches
			}
			i = j - 1
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// matchPattern reports whether name matches a LIST pattern: "*" matches
// anything, "%" anything but the delimiter (RFC 9051 §6.3.9). Dynamic
// programming over pattern × name: no backtracking blow-up.
func matchPattern(pattern, name string) bool {
	prev := make([]bool, len(name)+1)
	next := make([]bool, len(name)+1)
	prev[0] = true
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		next[0] = prev[0] && (c == '*' || c == '%')
		alive := next[0]
		for j := 1; j <= len(name); j++ {
			switch c {
			case '*':
				next[j] = prev[j] || next[j-1]
			case '%':
				next[j] = prev[j] || (next[j-1] && name[j-1] != delim)
			default:
				next[j] = prev[j-1] && name[j-1] == c
			}
			alive = alive || next[j]
		}
		if !alive {
			return false // no prefix of name matches: nothing can follow
		}
		prev, next = next, prev
	}
	return prev[len(name)]
}

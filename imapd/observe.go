package imapd

import (
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"
)

// observed wraps a session to time each command for Options.ObserveCommand.
// It embeds *session, so every optional interface the session implements
// is implemented here too; the overrides only add timing. Poll runs after
// every command and is not a command of its own, so it is not timed; IDLE
// is timed from its start to DONE.
type observed struct {
	*session
	obs func(name string, d time.Duration)
}

var (
	_ imapserver.SessionIMAP4rev2      = (*observed)(nil)
	_ imapserver.SessionSASL           = (*observed)(nil)
	_ imapserver.SessionUnauthenticate = (*observed)(nil)
	_ imapserver.SessionAppendLimit    = (*observed)(nil)
	_ imapserver.SessionNamespace      = (*observed)(nil)
	_ imapserver.SessionMove           = (*observed)(nil)
	_ imapserver.Session               = (*observed)(nil)
)

func (o *observed) since(name string, start time.Time) { o.obs(name, time.Since(start)) }

func (o *observed) Login(username, password string) error {
	defer o.since("LOGIN", time.Now())
	return o.session.Login(username, password)
}

func (o *observed) Authenticate(mech string) (sasl.Server, error) {
	defer o.since("AUTHENTICATE", time.Now())
	return o.session.Authenticate(mech)
}

func (o *observed) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	cmd := "SELECT"
	if options != nil && options.ReadOnly {
		cmd = "EXAMINE"
	}
	defer o.since(cmd, time.Now())
	return o.session.Select(name, options)
}

func (o *observed) Create(name string, options *imap.CreateOptions) error {
	defer o.since("CREATE", time.Now())
	return o.session.Create(name, options)
}

func (o *observed) Delete(name string) error {
	defer o.since("DELETE", time.Now())
	return o.session.Delete(name)
}

func (o *observed) Rename(oldName, newName string, options *imap.RenameOptions) error {
	defer o.since("RENAME", time.Now())
	return o.session.Rename(oldName, newName, options)
}

func (o *observed) Subscribe(name string) error {
	defer o.since("SUBSCRIBE", time.Now())
	return o.session.Subscribe(name)
}

func (o *observed) Unsubscribe(name string) error {
	defer o.since("UNSUBSCRIBE", time.Now())
	return o.session.Unsubscribe(name)
}

func (o *observed) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	defer o.since("LIST", time.Now())
	return o.session.List(w, ref, patterns, options)
}

func (o *observed) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	defer o.since("STATUS", time.Now())
	return o.session.Status(name, options)
}

func (o *observed) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	defer o.since("APPEND", time.Now())
	return o.session.Append(mailbox, r, options)
}

func (o *observed) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	defer o.since("IDLE", time.Now())
	return o.session.Idle(w, stop)
}

func (o *observed) Unselect() error {
	defer o.since("UNSELECT", time.Now())
	return o.session.Unselect()
}

func (o *observed) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	defer o.since("EXPUNGE", time.Now())
	return o.session.Expunge(w, uids)
}

func (o *observed) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	defer o.since("SEARCH", time.Now())
	return o.session.Search(kind, criteria, options)
}

func (o *observed) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	defer o.since("FETCH", time.Now())
	return o.session.Fetch(w, numSet, options)
}

func (o *observed) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	defer o.since("STORE", time.Now())
	return o.session.Store(w, numSet, flags, options)
}

func (o *observed) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	defer o.since("COPY", time.Now())
	return o.session.Copy(numSet, dest)
}

func (o *observed) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	defer o.since("MOVE", time.Now())
	return o.session.Move(w, numSet, dest)
}

func (o *observed) Namespace() (*imap.NamespaceData, error) {
	defer o.since("NAMESPACE", time.Now())
	return o.session.Namespace()
}

func (o *observed) Unauthenticate() error {
	defer o.since("UNAUTHENTICATE", time.Now())
	return o.session.Unauthenticate()
}

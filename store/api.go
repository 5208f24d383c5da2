package store

import (
	"errors"
	"time"
)

// UserID identifies a user in the index.
type UserID int64

// MailboxID identifies a mailbox in the index. IDs are never reused.
type MailboxID int64

// UID is a message's unique identifier within one mailbox and UIDVALIDITY.
type UID uint32

// Sentinel errors that callers branch on. Everything else is an internal error.
var (
	ErrNoUser          = errors.New("store: no such user")
	ErrUserExists      = errors.New("store: user exists")
	ErrNoMailbox       = errors.New("store: no such mailbox")
	ErrMailboxExists   = errors.New("store: mailbox exists")
	ErrNoMessage       = errors.New("store: no such message")
	ErrMailboxBusy     = errors.New("store: maildrop is locked by another session")
	ErrOverQuota       = errors.New("store: over quota")
	ErrBadMailboxName  = errors.New("store: invalid mailbox name")
	ErrMailboxHasChild = errors.New("store: mailbox has children")
	ErrCannot          = errors.New("store: operation not permitted on this mailbox")
	ErrUnavailable     = errors.New("store: index database unavailable")
)

// Flags is the set of system flags of a message, mirrored in the Maildir
// info suffix (":2,DFRST").
type Flags uint8

// System flags.
const (
	FlagSeen Flags = 1 << iota
	FlagAnswered
	FlagFlagged
	FlagDeleted
	FlagDraft
)

// Delimiter is the hierarchy delimiter of mailbox names in the store API and
// on the wire. It is also the Maildir++ separator on disk.
const Delimiter = '.'

// Inbox is the name of the user's inbox, the Maildir root.
const Inbox = "INBOX"

// User is a user account.
type User struct {
	ID              UserID
	Name            string
	PasswordHash    string
	Disabled        bool
	QuotaBytes      int64 // 0 = unlimited
	QuotaMessages   int64 // 0 = unlimited
	UsedBytes       int64
	UsedMessages    int64
	MaildirOverride string // empty: from the path template
	CreatedAt       time.Time
	LastLoginAt     time.Time // zero: never
}

// Mailbox is a mailbox (Maildir++ folder) of a user.
type Mailbox struct {
	ID            MailboxID
	UserID        UserID
	Name          string // UTF-8, Delimiter-separated, "INBOX" for the root
	UIDValidity   uint32
	UIDNext       UID
	HighestModSeq uint64
	Subscribed    bool
	SpecialUse    string // "", `\Sent`, `\Drafts`, `\Trash`, `\Junk`, `\Archive`, ...
}

// MailboxStatus are the counters of a mailbox, computed from the index.
type MailboxStatus struct {
	Mailbox
	Messages uint32
	Unseen   uint32
	Deleted  uint32
	Size     int64 // sum of RFC822.SIZE
}

// MessageInfo is the per-message state a session view needs: everything but
// the cached content.
type MessageInfo struct {
	UID      UID
	Flags    Flags
	Keywords []string // sorted, no duplicates
	Size     int64    // RFC822.SIZE: the size with CRLF line endings
	ModSeq   uint64
}

// Message is a message with the cached data fetched with Messages.
type Message struct {
	MessageInfo
	InternalDate  time.Time
	Header        []byte    // the raw header in CRLF form, with the blank line; only with WithHeader
	BodyStructure *BodyPart // only with WithBodyStructure

	key, file string // where the file was when loaded; for OpenLoaded
}

// MessageFields selects the cached data Messages loads.
type MessageFields uint8

// Message fields.
const (
	WithHeader MessageFields = 1 << iota
	WithBodyStructure
)

// BodyPart is the MIME structure of a message or a part, in wire (CRLF) form.
type BodyPart struct {
	Type        string            `json:"t"` // lower case, e.g. "text"
	Subtype     string            `json:"s"` // lower case, e.g. "plain"
	Params      map[string]string `json:"p,omitempty"`
	ID          string            `json:"id,omitempty"`
	Description string            `json:"d,omitempty"`
	Encoding    string            `json:"e,omitempty"`
	Size        int64             `json:"z"`           // octets of the body, CRLF form
	Lines       int64             `json:"l,omitempty"` // text/* and message/rfc822
	MD5         string            `json:"m,omitempty"`
	Disposition string            `json:"ds,omitempty"`
	DispParams  map[string]string `json:"dp,omitempty"`
	Language    []string          `json:"lg,omitempty"`
	Location    string            `json:"lc,omitempty"`
	// Multipart children, for Type "multipart".
	Children []*BodyPart `json:"c,omitempty"`
	// For message/rfc822 and message/global: the embedded message's raw
	// header (CRLF) and structure.
	MessageHeader []byte    `json:"mh,omitempty"`
	Message       *BodyPart `json:"mb,omitempty"`
}

// FlagOp is how SetFlags applies its flags.
type FlagOp int

// Flag operations.
const (
	FlagsReplace FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// UIDPair maps a source UID to the UID of its copy.
type UIDPair struct {
	Src, Dst UID
}

// CopyResult is the outcome of Copy and Move.
type CopyResult struct {
	UIDValidity uint32 // of the destination
	Pairs       []UIDPair
}

// AppendResult is the outcome of Append.
type AppendResult struct {
	UIDValidity uint32
	UID         UID
}

// Change is one message change in a mailbox's change log: the message's
// state as of ModSeq. A message not yet known to a view that is not Expunged
// is new.
type Change struct {
	UID      UID
	Flags    Flags
	Keywords []string
	Size     int64
	ModSeq   uint64
	Expunged bool
}

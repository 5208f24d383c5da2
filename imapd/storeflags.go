package imapd

// STORE (RFC 9051 §6.4.6). One store.SetFlags transaction per command. The
// untagged FETCH answers come from the view after the store's reply; with
// .SILENT they are left out. CONDSTORE's UNCHANGEDSINCE is not supported
// (the library never passes it without CONDSTORE).

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postoffice/postoffice/store"
)

// maxKeywordLen bounds a keyword's length.
const maxKeywordLen = 128

// Store implements imapserver.Session.
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	sel := s.sel
	if sel == nil {
		return errNotSelected
	}
	if sel.readOnly {
		return errReadOnly
	}
	sf, kws, err := storeFlags(flags.Flags)
	if err != nil {
		return err
	}
	rs, err := sel.resolve(numSet, true)
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		return nil
	}
	var op store.FlagOp
	switch flags.Op {
	case imap.StoreFlagsSet:
		op = store.FlagsReplace
	case imap.StoreFlagsAdd:
		op = store.FlagsAdd
	case imap.StoreFlagsDel:
		op = store.FlagsRemove
	default:
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unknown STORE operation"}
	}

	// Keywords are case-insensitive (RFC 9051 §2.3.2): use the spelling
	// the mailbox already has.
	for i, k := range kws {
		for known := range sel.kwSeen {
			if strings.EqualFold(known, k) {
				kws[i] = known
				break
			}
		}
	}
	var changes []store.Change
	if op == store.FlagsReplace || sf != 0 || len(kws) > 0 { // else nothing to add or remove
		uids := sel.rangeUIDs(rs)
		ctx, cancel := s.selCtx()
		changes, err = s.mailStore().SetFlags(ctx, sel.mbox.ID, uids, op, sf, kws)
		cancel()
		if err != nil {
			return s.imapError(err)
		}
	}
	newKW := false
	for _, c := range changes {
		if sel.applyOwnChange(c) {
			newKW = sel.noteKeywords(c.Keywords) || newKW
		}
	}
	if newKW {
		// RFC 9051 §7.3.5: the FLAGS response announces new keywords. A
		// FetchWriter cannot write it, so the poll after this command does.
		sel.flagsDirty = true
	}
	if flags.Silent {
		return nil
	}
	// The untagged FETCH for every message of the set that still exists.
	for _, r := range rs {
		for i := r.lo; i <= r.hi; i++ {
			uid := sel.uids[i]
			if _, gone := sel.pendingExpunge[uid]; gone {
				continue
			}
			rw := w.CreateMessage(uint32(i + 1))
			if _, isUID := numSet.(imap.UIDSet); isUID {
				rw.WriteUID(imap.UID(uid))
			}
			rw.WriteFlags(sel.msgFlags(i))
			if err := rw.Close(); err != nil {
				return err
			}
		}
	}
	return nil
}

// storeFlags splits IMAP flags into system flags and keywords.
func storeFlags(fl []imap.Flag) (store.Flags, []string, error) {
	var sf store.Flags
	var kws []string
	for _, f := range fl {
		switch strings.ToLower(string(f)) {
		case `\seen`:
			sf |= store.FlagSeen
		case `\answered`:
			sf |= store.FlagAnswered
		case `\flagged`:
			sf |= store.FlagFlagged
		case `\deleted`:
			sf |= store.FlagDeleted
		case `\draft`:
			sf |= store.FlagDraft
		case `\recent`:
			// RFC 3501 §6.4.6: \Recent cannot be stored; ignored.
		default:
			if strings.HasPrefix(string(f), `\`) {
				return 0, nil, &imap.Error{
					Type: imap.StatusResponseTypeBad,
					Code: imap.ResponseCodeClientBug,
					Text: "Unknown system flag " + string(f),
				}
			}
			if len(f) > maxKeywordLen {
				return 0, nil, &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "Keyword too long"}
			}
			kws = appendKeyword(kws, string(f))
		}
	}
	return sf, kws, nil
}

// appendKeyword adds k unless an equal keyword (case-insensitively, RFC
// 9051 §2.3.2) is there.
func appendKeyword(kws []string, k string) []string {
	for _, x := range kws {
		if strings.EqualFold(x, k) {
			return kws
		}
	}
	return append(kws, k)
}

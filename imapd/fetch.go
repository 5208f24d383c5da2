package imapd

// FETCH (RFC 9051 §6.4.5). Items from the view (UID, FLAGS) cost no store
// call; INTERNALDATE, RFC822.SIZE, ENVELOPE and BODYSTRUCTURE come from the
// index cache (one store.Messages call per batch); body sections read the
// file, streamed into the response literal.

import (
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postoffice/postoffice/store"
)

// fetchBatch is how many messages one store.Messages call loads.
const fetchBatch = 256

// errExpungeIssued ends a FETCH some of whose messages were expunged by
// another session meanwhile (RFC 9051 §7.1, RFC 2180 §4.1.2).
var errExpungeIssued = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: codeExpungeIssued,
	Text: "Some messages were expunged meanwhile and were not returned",
}

// Fetch implements imapserver.Session.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	sel := s.sel
	if sel == nil {
		return errNotSelected
	}
	rs, err := sel.resolve(numSet, true)
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		return nil
	}

	// RFC 9051 §6.4.5: a non-PEEK body fetch sets \Seen, and the changed
	// flags are returned. Not in a read-only mailbox.
	var flagsChanged map[store.UID]bool
	if !sel.readOnly && wantsSeen(options) {
		flagsChanged, err = s.markSeen(sel, rs)
		if err != nil {
			return err
		}
	}

	var fields store.MessageFields
	needsBody := len(options.BodySection) > 0 || len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0
	needStore := options.InternalDate || options.RFC822Size || options.Envelope || options.BodyStructure != nil || needsBody
	if options.Envelope || needsHeader(options) {
		fields |= store.WithHeader
	}
	if options.BodyStructure != nil {
		fields |= store.WithBodyStructure
	}

	expunged := false
	batch := make([]int, 0, fetchBatch)
	var ents []*fetchEntry
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		// Parsed structures from the server's cache. When every message of
		// the batch has what is asked for, the index need not return the
		// raw header and structure; with no body section asked for either,
		// the index is not asked at all (a message another session
		// expunged meanwhile is then still answered from the cache, as
		// RFC 9051 allows until this session reports the EXPUNGE).
		ents = ents[:0]
		batchFields, batchStore := fields, needStore
		if options.Envelope || options.BodyStructure != nil {
			all := true
			for _, idx := range batch {
				e := s.srv.fetchCache.get(fetchKey{sel.mbox.ID, sel.mbox.UIDValidity, sel.uids[idx]})
				ents = append(ents, e)
				all = all && e != nil && (!options.Envelope || e.env != nil) && (options.BodyStructure == nil || e.bs != nil)
			}
			if all {
				batchFields &^= store.WithBodyStructure
				if !needsHeader(options) {
					batchFields &^= store.WithHeader
				}
				batchStore = needsBody
			}
		}
		var byUID map[store.UID]*store.Message
		if batchStore {
			var err error
			if byUID, err = s.cachedMessages(sel, batch, batchFields); err != nil {
				return err
			}
		}
		for i, idx := range batch {
			uid := sel.uids[idx]
			var m *store.Message
			if batchStore {
				if m = byUID[uid]; m == nil {
					expunged = true
					continue
				}
			}
			var e *fetchEntry
			if i < len(ents) {
				e = ents[i]
			}
			err := s.fetchOne(w, sel, idx, m, e, options, flagsChanged[uid])
			if errors.Is(err, store.ErrNoMessage) {
				expunged = true
				continue
			}
			if err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	for _, r := range rs {
		for idx := r.lo; idx <= r.hi; idx++ {
			batch = append(batch, idx)
			if len(batch) == fetchBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if expunged {
		return errExpungeIssued
	}
	return nil
}

func wantsSeen(o *imap.FetchOptions) bool {
	for _, bs := range o.BodySection {
		if !bs.Peek {
			return true
		}
	}
	for _, bs := range o.BinarySection {
		if !bs.Peek {
			return true
		}
	}
	return false
}

// needsHeader reports whether a section is served from the cached header.
func needsHeader(o *imap.FetchOptions) bool {
	for _, bs := range o.BodySection {
		if len(bs.Part) == 0 && bs.Specifier != imap.PartSpecifierNone {
			return true
		}
	}
	for _, bs := range o.BinarySection {
		if len(bs.Part) == 0 {
			return true
		}
	}
	for _, bs := range o.BinarySectionSize {
		if len(bs.Part) == 0 {
			return true
		}
	}
	return false
}

// markSeen sets \Seen on the messages of rs that lack it and returns the
// UIDs whose flags changed.
func (s *session) markSeen(sel *selected, rs []idxRange) (map[store.UID]bool, error) {
	var uids []store.UID
	for _, r := range rs {
		for i := r.lo; i <= r.hi; i++ {
			if sel.flags[i]&store.FlagSeen == 0 {
				uids = append(uids, sel.uids[i])
			}
		}
	}
	if len(uids) == 0 {
		return nil, nil
	}
	ctx, cancel := s.selCtx()
	defer cancel()
	changes, err := s.mailStore().SetFlags(ctx, sel.mbox.ID, uids, store.FlagsAdd, store.FlagSeen, nil)
	if err != nil {
		return nil, s.imapError(err)
	}
	changed := make(map[store.UID]bool, len(changes))
	for _, c := range changes {
		if sel.applyOwnChange(c) {
			changed[c.UID] = true
		}
	}
	return changed, nil
}

// applyOwnChange records a flag change this session made (and reports to
// its client itself). It returns false for messages not in the view.
func (sel *selected) applyOwnChange(c store.Change) bool {
	i, ok := sel.find(c.UID)
	if !ok || c.Expunged {
		return false
	}
	if _, gone := sel.pendingExpunge[c.UID]; gone {
		return false
	}
	sel.flags[i] = c.Flags
	sel.setKeywords(c.UID, c.Keywords)
	if c.ModSeq > sel.modseq {
		if sel.ownMod == nil {
			sel.ownMod = make(map[store.UID]uint64)
		}
		sel.ownMod[c.UID] = c.ModSeq
	}
	return true
}

// preparedSection is a section ready to be written.
type preparedSection struct {
	body     *imap.FetchItemBodySection
	bin      *imap.FetchItemBinarySection
	sizeOnly *imap.FetchItemBinarySectionSize
	size     int64 // BINARY.SIZE
	data     *openSection
}

// fetchOne writes the FETCH response of the message at view index idx.
// Everything that can fail (files included) is opened before the response
// starts, so a message gone meanwhile is skipped, not cut off.
func (s *session) fetchOne(w *imapserver.FetchWriter, sel *selected, idx int, m *store.Message, cached *fetchEntry, o *imap.FetchOptions, flagsChanged bool) error {
	uid := sel.uids[idx]
	var src *msgSource
	if m != nil {
		src = &msgSource{s: s, mbox: sel.mbox.ID, uid: uid, size: m.Size, header: m.Header, loaded: m}
	}

	var secs []preparedSection
	defer func() {
		for _, p := range secs {
			p.data.close()
		}
	}()
	add := func(p preparedSection, c content, partial *imap.SectionPartial) error {
		from, n := partialRange(partial, c.size)
		d, err := c.openRange(src, from, n)
		if err != nil {
			return err
		}
		p.data = d
		secs = append(secs, p)
		return nil
	}
	for _, bs := range o.BodySection {
		c, err := bodySection(src, bs)
		if err == nil {
			err = add(preparedSection{body: bs}, c, bs.Partial)
		}
		if err != nil {
			return err
		}
	}
	for _, bs := range o.BinarySection {
		c, err := binarySection(src, bs.Part)
		if err == nil {
			c, err = c.resolveSize(src)
		}
		if err == nil {
			err = add(preparedSection{bin: bs}, c, bs.Partial)
		}
		if err != nil {
			return err
		}
	}
	for _, bs := range o.BinarySectionSize {
		c, err := binarySection(src, bs.Part)
		if err == nil {
			c, err = c.resolveSize(src)
		}
		if err != nil {
			return err
		}
		secs = append(secs, preparedSection{sizeOnly: bs, size: c.size})
	}
	env, bs, size, date := s.srv.fetchCache.resolve(fetchKey{sel.mbox.ID, sel.mbox.UIDValidity, uid}, m, cached, o)

	rw := w.CreateMessage(uint32(idx + 1))
	if o.UID {
		rw.WriteUID(imap.UID(uid))
	}
	if o.Flags || flagsChanged {
		rw.WriteFlags(sel.msgFlags(idx))
	}
	if o.InternalDate {
		rw.WriteInternalDate(date)
	}
	if o.RFC822Size {
		rw.WriteRFC822Size(size)
	}
	if o.Envelope {
		rw.WriteEnvelope(env)
	}
	if bs != nil {
		rw.WriteBodyStructure(bs)
	}
	for _, p := range secs {
		if p.sizeOnly != nil {
			rw.WriteBinarySectionSize(p.sizeOnly, uint32(min(p.size, int64(^uint32(0)))))
			continue
		}
		var lw io.WriteCloser
		if p.body != nil {
			lw = rw.WriteBodySection(p.body, p.data.n)
		} else {
			lw = rw.WriteBinarySection(p.bin, p.data.n)
		}
		err := p.data.writeTo(lw)
		if cerr := lw.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			// The response is cut: the connection cannot continue.
			rw.Close()
			return err
		}
	}
	return rw.Close()
}

// envelopeOf builds an ENVELOPE from a cached raw header. Only the fields
// an envelope is made of are parsed (real headers are mostly Received,
// DKIM-Signature and the like); the answer is the same as from parsing the
// whole header (TestEnvelopeOf_sameAsWholeHeader).
func envelopeOf(raw []byte) *imap.Envelope {
	if len(raw) == 0 {
		return &imap.Envelope{}
	}
	raw = terminatedHeader(raw)
	if small, ok := envelopeFields(raw); ok {
		raw = small
	}
	h, err := readHeader(raw)
	if err != nil {
		return &imap.Envelope{}
	}
	return imapserver.ExtractEnvelope(h)
}

// envelopeNames are the fields imapserver.ExtractEnvelope reads.
var envelopeNames = []string{"Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "In-Reply-To", "Message-Id"}

// envelopeFields returns the lines of raw's envelope fields (each with its
// continuation lines, in order) and a blank line. ok is false when raw has
// a line that makes the header parser fail (a leading continuation, a line
// without a colon, a bad field name): then the whole header must be parsed,
// so that the answer stays the parser's.
func envelopeFields(raw []byte) ([]byte, bool) {
	out := make([]byte, 0, 512)
	keep, first := false, true
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i+1], raw[i+1:]
		} else {
			raw = nil
		}
		content := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(content) == 0 {
			break // the blank line ends the header
		}
		if content[0] == ' ' || content[0] == '\t' {
			if first {
				return nil, false
			}
			if keep {
				out = appendLine(out, line)
			}
			continue
		}
		first = false
		colon := bytes.IndexByte(content, ':')
		if colon < 0 {
			return nil, false
		}
		name := bytes.Trim(content[:colon], " \t")
		for _, c := range name {
			if c < 33 || c > 126 {
				return nil, false
			}
		}
		keep = false
		for _, n := range envelopeNames {
			if len(name) == len(n) && bytes.EqualFold(name, []byte(n)) {
				keep = true
				break
			}
		}
		if keep {
			out = appendLine(out, line)
		}
	}
	return append(out, "\r\n"...), true
}

// appendLine appends a header line, ending it if the header ended without.
func appendLine(out, line []byte) []byte {
	out = append(out, line...)
	if line[len(line)-1] != '\n' {
		out = append(out, "\r\n"...)
	}
	return out
}

// bodyStructureOf converts a cached store.BodyPart to the IMAP structure,
// always with extension data (BODYSTRUCTURE; the library drops it for BODY).
func bodyStructureOf(p *store.BodyPart, size int64) imap.BodyStructure {
	if p == nil {
		return &imap.BodyStructureSinglePart{
			Type: "text", Subtype: "plain",
			Params:   map[string]string{"charset": "us-ascii"},
			Size:     clampU32(size),
			Text:     &imap.BodyStructureText{},
			Extended: &imap.BodyStructureSinglePartExt{},
		}
	}
	typ, sub := strings.ToLower(p.Type), strings.ToLower(p.Subtype)
	if typ == "" {
		typ, sub = "text", "plain"
	}
	var disp *imap.BodyStructureDisposition
	if p.Disposition != "" {
		disp = &imap.BodyStructureDisposition{Value: p.Disposition, Params: p.DispParams}
	}
	if typ == "multipart" {
		if len(p.Children) == 0 {
			// A multipart without parts cannot be written (RFC 9051's
			// body-type-mpart needs one); describe it as text.
			return &imap.BodyStructureSinglePart{
				Type: "text", Subtype: "plain", Size: clampU32(p.Size),
				Text:     &imap.BodyStructureText{NumLines: p.Lines},
				Extended: &imap.BodyStructureSinglePartExt{Disposition: disp, Language: p.Language, Location: p.Location},
			}
		}
		mp := &imap.BodyStructureMultiPart{
			Subtype: sub,
			Extended: &imap.BodyStructureMultiPartExt{
				Params: p.Params, Disposition: disp, Language: p.Language, Location: p.Location,
			},
		}
		for _, c := range p.Children {
			mp.Children = append(mp.Children, bodyStructureOf(c, c.Size))
		}
		return mp
	}
	sp := &imap.BodyStructureSinglePart{
		Type:        typ,
		Subtype:     sub,
		Params:      p.Params,
		ID:          p.ID,
		Description: p.Description,
		Encoding:    p.Encoding,
		Size:        clampU32(p.Size),
		Extended:    &imap.BodyStructureSinglePartExt{Disposition: disp, Language: p.Language, Location: p.Location},
	}
	switch {
	case typ == "message" && (sub == "rfc822" || sub == "global"):
		inner := p.Message
		var innerSize int64
		if inner != nil {
			innerSize = inner.Size
		}
		sp.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			Envelope:      envelopeOf(p.MessageHeader),
			BodyStructure: bodyStructureOf(inner, innerSize),
			NumLines:      p.Lines,
		}
	case typ == "text":
		sp.Text = &imap.BodyStructureText{NumLines: p.Lines}
	}
	return sp
}

func clampU32(n int64) uint32 {
	if n < 0 {
		return 0
	}
	if n > int64(^uint32(0)) {
		return ^uint32(0)
	}
	return uint32(n)
}

// cachedMessages loads the index data of the view positions in batch
// (one store query), keyed by UID. Messages expunged meanwhile are absent.
func (s *session) cachedMessages(sel *selected, batch []int, fields store.MessageFields) (map[store.UID]*store.Message, error) {
	uids := make([]store.UID, len(batch))
	for i, idx := range batch {
		uids[i] = sel.uids[idx]
	}
	ctx, cancel := s.selCtx()
	msgs, err := s.mailStore().Messages(ctx, sel.mbox.ID, uids, fields)
	cancel()
	if err != nil {
		return nil, s.imapError(err)
	}
	byUID := make(map[store.UID]*store.Message, len(msgs))
	for i := range msgs {
		byUID[msgs[i].UID] = &msgs[i]
	}
	return byUID, nil
}

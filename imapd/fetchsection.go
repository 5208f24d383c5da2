package imapd

// Body sections (RFC 9051 §6.4.5, RFC 3516) are served as byte ranges of the
// message in CRLF form: the store yields the file converted to CRLF, so every
// offset and size here is in wire form. The top-level HEADER, HEADER.FIELDS
// and TEXT come from the cached header without reading the file for the
// header; nested parts are located with one streaming scan (locatePart),
// then the range is streamed from a second read. Nothing but headers is held
// in memory, except decoded BINARY sections up to binaryMemLimit.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"
	"sync"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/emersion/go-imap/v2"

	"github.com/postoffice/postoffice/store"
)

const (
	// maxHeaderCapture caps the header bytes kept per MIME entity while
	// scanning; longer headers are cut (their ranges stay exact).
	maxHeaderCapture = 256 << 10
	// binaryMemLimit is the largest decoded BINARY section built in memory;
	// larger ones are decoded twice (size, then data) while streaming.
	binaryMemLimit = 4 << 20
)

// errUnknownCTE answers BINARY for a part with an encoding we cannot decode.
var errUnknownCTE = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeUnknownCTE,
	Text: "Unknown Content-Transfer-Encoding",
}

// msgSource opens one message of the selected mailbox.
type msgSource struct {
	s      *session
	mbox   store.MailboxID
	uid    store.UID
	size   int64          // RFC822.SIZE
	header []byte         // cached raw header (with the blank line); nil if not loaded
	loaded *store.Message // what Messages returned, if anything: opens without an index lookup
}

func (m *msgSource) open() (io.ReadCloser, error) {
	ctx, cancel := m.s.selCtx()
	defer cancel()
	if m.loaded != nil {
		return m.s.mailStore().OpenLoaded(ctx, m.mbox, m.loaded)
	}
	rc, _, err := m.s.mailStore().OpenMessage(ctx, m.mbox, m.uid)
	return rc, err
}

// content is a section's data before <partial> is applied: prefix followed
// by the file range [off, off+n), decoded with decode ("", "base64" or
// "quoted-printable"). size is the total size, -1 while unknown (decoding).
type content struct {
	prefix []byte
	off, n int64
	decode string
	size   int64
}

func memContent(b []byte) content { return content{prefix: b, size: int64(len(b))} }

// reader returns the whole content as a stream. Read errors of the file
// itself are recorded in the returned srcErr, so callers can tell them from
// malformed encoded data (served as far as it decodes).
func (c content) reader(src *msgSource) (io.Reader, *srcErr, io.Closer, error) {
	se := &srcErr{}
	if c.n == 0 {
		return bytes.NewReader(c.prefix), se, io.NopCloser(nil), nil
	}
	rc, err := src.open()
	if err != nil {
		return nil, nil, nil, err
	}
	if _, err := io.CopyN(io.Discard, rc, c.off); err != nil {
		rc.Close()
		return nil, nil, nil, fmt.Errorf("imapd: skip to section: %w", err)
	}
	se.r = io.LimitReader(rc, c.n)
	var r io.Reader = se
	switch c.decode {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &base64Filter{r: r})
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	}
	if len(c.prefix) > 0 {
		r = io.MultiReader(bytes.NewReader(c.prefix), r)
	}
	return r, se, rc, nil
}

// srcErr passes reads through and remembers a read error other than EOF.
type srcErr struct {
	r   io.Reader
	err error
}

func (s *srcErr) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// ioErr returns err if it is (or came from) a file read error, nil if it
// is a decoding error or EOF.
func (s *srcErr) ioErr(err error) error {
	if err == nil || errors.Is(err, io.EOF) || s.err == nil {
		return nil
	}
	return err
}

// resolveSize computes size for decoded content; small content is turned
// into memory content on the way.
func (c content) resolveSize(src *msgSource) (content, error) {
	if c.size >= 0 {
		return c, nil
	}
	r, se, cl, err := c.reader(src)
	if err != nil {
		return c, err
	}
	defer cl.Close()
	if c.n <= binaryMemLimit {
		b, err := io.ReadAll(r)
		if err := se.ioErr(err); err != nil {
			return c, err
		}
		return memContent(b), nil
	}
	n, err := io.Copy(io.Discard, r)
	if err := se.ioErr(err); err != nil {
		return c, err
	}
	c.size = n
	return c, nil
}

// partialRange returns the offset and length of <partial> within a content of
// size n (RFC 9051 §6.4.5: an offset beyond the end gives an empty string).
func partialRange(p *imap.SectionPartial, n int64) (int64, int64) {
	if p == nil {
		return 0, n
	}
	off := min(p.Offset, n)
	return off, min(p.Size, n-off)
}

// openRange opens the stream of count bytes from offset from of c before
// the response starts, so that a message expunged (and unlinked) meanwhile
// is noticed while it can still be skipped; an open file stays readable.
func (c content) openRange(src *msgSource, from, count int64) (*openSection, error) {
	if count == 0 {
		return &openSection{}, nil
	}
	if c.n == 0 {
		return &openSection{mem: c.prefix[from : from+count], n: count}, nil
	}
	r, se, cl, err := c.reader(src)
	if err != nil {
		return nil, err
	}
	if _, err := io.CopyN(io.Discard, r, from); err != nil {
		cl.Close()
		if ierr := se.ioErr(err); ierr != nil {
			return nil, fmt.Errorf("imapd: skip in section: %w", ierr)
		}
		r = bytes.NewReader(nil) // decoded data ended early: padded below
	}
	return &openSection{r: r, se: se, cl: cl, n: count}, nil
}

// openSection is a section's data ready to be copied into its literal.
type openSection struct {
	mem []byte
	r   io.Reader
	se  *srcErr
	cl  io.Closer
	n   int64
}

// writeTo copies the section into w (a literal of exactly n bytes).
func (o *openSection) writeTo(w io.Writer) error {
	if o.r == nil {
		_, err := w.Write(o.mem)
		return err
	}
	n, err := io.CopyN(w, o.r, o.n)
	if n < o.n {
		if ierr := o.se.ioErr(err); ierr != nil {
			return ierr
		}
		// A decoder stopped early (the size was measured with the same
		// decoder, so only a file changing underneath gets here): the
		// literal's size is promised, so pad rather than desynchronise.
		_, err = w.Write(bytes.Repeat([]byte{' '}, int(o.n-n)))
		return err
	}
	return nil
}

func (o *openSection) close() {
	if o != nil && o.cl != nil {
		o.cl.Close()
	}
}

// base64Filter drops bytes outside the base64 alphabet (line breaks,
// stray whitespace) so that slightly malformed bodies still decode.
type base64Filter struct{ r io.Reader }

func (f *base64Filter) Read(p []byte) (int, error) {
	for {
		n, err := f.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// bodySection computes the content of BODY[section] (without <partial>).
func bodySection(src *msgSource, sec *imap.FetchItemBodySection) (content, error) {
	if len(sec.Part) == 0 {
		switch sec.Specifier {
		case imap.PartSpecifierNone:
			return content{off: 0, n: src.size, size: src.size}, nil
		case imap.PartSpecifierMIME: // MIME needs a part number; nothing
			return memContent(nil), nil
		}
		hdr, err := src.topHeader()
		if err != nil {
			return content{}, err
		}
		if sec.Specifier == imap.PartSpecifierText {
			h := min(int64(len(hdr)), src.size)
			return content{off: h, n: src.size - h, size: src.size - h}, nil
		}
		return memContent(filterHeader(hdr, sec.HeaderFields, sec.HeaderFieldsNot)), nil
	}
	loc, err := src.locate(sec.Part, sec.Specifier == imap.PartSpecifierHeader || sec.Specifier == imap.PartSpecifierText)
	if err != nil || loc == nil {
		return memContent(nil), err
	}
	switch sec.Specifier {
	case imap.PartSpecifierNone:
		return loc.bodyContent(), nil
	case imap.PartSpecifierMIME:
		return memContent(loc.mimeHdr), nil
	}
	if !loc.isMessage() || loc.emb == nil {
		return memContent(nil), nil
	}
	if sec.Specifier == imap.PartSpecifierText {
		n := max(loc.bodyEnd-loc.emb.bodyStart, 0)
		return content{off: loc.emb.bodyStart, n: n, size: n}, nil
	}
	return memContent(filterHeader(loc.emb.hdr, sec.HeaderFields, sec.HeaderFieldsNot)), nil
}

// binarySection computes the content of BINARY[part] (RFC 3516 §4.2).
func binarySection(src *msgSource, part []int) (content, error) {
	if len(part) == 0 {
		hdr, err := src.topHeader()
		if err != nil {
			return content{}, err
		}
		mt, _, cte := parseEntityHeader(hdr, false)
		h := min(int64(len(hdr)), src.size)
		if strings.HasPrefix(mt, "multipart/") || strings.HasPrefix(mt, "message/") {
			cte = ""
		}
		dec, err := decoderFor(cte)
		if err != nil {
			return content{}, err
		}
		if dec == "" {
			return content{off: 0, n: src.size, size: src.size}, nil
		}
		return content{prefix: hdr[:h], off: h, n: src.size - h, decode: dec, size: -1}, nil
	}
	loc, err := src.locate(part, false)
	if err != nil || loc == nil {
		return memContent(nil), err
	}
	c := loc.bodyContent()
	if strings.HasPrefix(loc.mediaType, "multipart/") || loc.isMessage() {
		return c, nil
	}
	dec, err := decoderFor(loc.cte)
	if err != nil {
		return content{}, err
	}
	if dec != "" {
		c.decode, c.size = dec, -1
	}
	return c, nil
}

func decoderFor(cte string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "", "7bit", "8bit", "binary":
		return "", nil
	case "base64":
		return "base64", nil
	case "quoted-printable":
		return "quoted-printable", nil
	}
	return "", errUnknownCTE
}

// topHeader returns the message header, from the cache or by reading it.
func (m *msgSource) topHeader() ([]byte, error) {
	if m.header != nil {
		return m.header, nil
	}
	rc, err := m.open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	ls := newLineScanner(rc)
	e, err := readEntity(ls, nil, false)
	if err != nil {
		return nil, err
	}
	m.header = e.hdr
	return m.header, nil
}

// locate scans the message for part (a non-empty part number).
func (m *msgSource) locate(part []int, wantEmbedded bool) (*partLoc, error) {
	rc, err := m.open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return locatePart(rc, part, wantEmbedded)
}

// filterHeader applies HEADER.FIELDS / HEADER.FIELDS.NOT to a raw header.
// The blank line that ends the header is kept (RFC 9051 §6.4.5).
func filterHeader(hdr []byte, fields, not []string) []byte {
	if len(fields) == 0 && len(not) == 0 {
		return hdr
	}
	match := func(name []byte, list []string) bool {
		for _, f := range list {
			if strings.EqualFold(string(name), f) {
				return true
			}
		}
		return false
	}
	var out []byte
	rest := hdr
	for len(rest) > 0 {
		// one field: a line plus its continuation lines
		end := 0
		for {
			i := bytes.IndexByte(rest[end:], '\n')
			if i < 0 {
				end = len(rest)
				break
			}
			end += i + 1
			if end >= len(rest) || (rest[end] != ' ' && rest[end] != '\t') {
				break
			}
		}
		field := rest[:end]
		rest = rest[end:]
		if isBlankLine(field) {
			out = append(out, field...)
			break
		}
		colon := bytes.IndexByte(field, ':')
		if colon < 0 {
			continue
		}
		name := bytes.TrimRight(field[:colon], " \t")
		keep := match(name, fields)
		if len(fields) == 0 {
			keep = !match(name, not)
		}
		if keep {
			out = append(out, field...)
		}
	}
	if out == nil {
		out = []byte{}
	}
	if !bytes.HasSuffix(out, []byte("\r\n\r\n")) && !bytes.Equal(out, []byte("\r\n")) && len(hdr) > 0 && isBlankLineEnd(hdr) {
		out = append(out, '\r', '\n')
	}
	return out
}

func isBlankLine(l []byte) bool { return string(l) == "\r\n" || string(l) == "\n" }

func isBlankLineEnd(hdr []byte) bool {
	return bytes.HasSuffix(hdr, []byte("\r\n\r\n")) || bytes.Equal(hdr, []byte("\r\n"))
}

// terminatedHeader returns raw, ending with a blank line as the header
// parser needs (a copy when it had none).
func terminatedHeader(raw []byte) []byte {
	if isBlankLineEnd(raw) {
		return raw
	}
	return append(append([]byte(nil), raw...), "\r\n\r\n"...)
}

// headerReaders recycles the readers readHeader parses with (ReadHeader
// copies what it keeps).
var headerReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// readHeader parses a raw header that ends with a blank line.
func readHeader(raw []byte) (textproto.Header, error) {
	br := headerReaders.Get().(*bufio.Reader)
	br.Reset(bytes.NewReader(raw))
	h, err := textproto.ReadHeader(br)
	br.Reset(nil)
	headerReaders.Put(br)
	return h, err
}

// lineScanner reads lines with their offsets.
type lineScanner struct {
	br  *bufio.Reader
	off int64 // offset of the next byte
	bol bool  // the next read starts a line

	back     []byte // a pushed-back line
	backOff  int64
	backBol  bool
	haveBack bool
}

func newLineScanner(r io.Reader) *lineScanner {
	return &lineScanner{br: bufio.NewReaderSize(r, 32<<10), bol: true}
}

// next returns the next line (or fragment of an overlong line) with its
// terminator, its offset and whether it starts a line. The slice is valid
// until the next call. At the end it returns io.EOF with an empty line.
func (ls *lineScanner) next() ([]byte, int64, bool, error) {
	if ls.haveBack {
		ls.haveBack = false
		ls.off = ls.backOff + int64(len(ls.back))
		ls.bol = true
		return ls.back, ls.backOff, ls.backBol, nil
	}
	start, bol := ls.off, ls.bol
	line, err := ls.br.ReadSlice('\n')
	ls.off += int64(len(line))
	switch {
	case err == bufio.ErrBufferFull:
		ls.bol = false
		return line, start, bol, nil
	case err == io.EOF && len(line) > 0:
		ls.bol = false
		return line, start, bol, nil
	case err != nil:
		return nil, start, bol, err
	}
	ls.bol = true
	return line, start, bol, nil
}

// unread pushes back a (complete) line returned by next.
func (ls *lineScanner) unread(line []byte, off int64, bol bool) {
	ls.back = append(ls.back[:0], line...)
	ls.backOff, ls.backBol, ls.haveBack = off, bol, true
	ls.off = off
}

// entity is a MIME entity found by the scanner.
type entity struct {
	hdrStart  int64
	bodyStart int64
	hdr       []byte
	mediaType string
	params    map[string]string
	cte       string
}

// readEntity reads a header at the scanner's position. A delimiter line of
// one of terms ends the header early (malformed part without a body).
func readEntity(ls *lineScanner, terms []string, digest bool) (*entity, error) {
	e := &entity{hdrStart: ls.off}
	for {
		line, off, bol, err := ls.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if bol && isDelimiterOf(line, terms) {
			ls.unread(line, off, bol)
			break
		}
		if len(e.hdr) < maxHeaderCapture {
			e.hdr = append(e.hdr, line...)
		}
		if bol && isBlankLine(line) {
			break
		}
	}
	e.bodyStart = ls.off
	e.mediaType, e.params, e.cte = parseEntityHeader(e.hdr, digest)
	return e, nil
}

// parseEntityHeader returns the media type (lower case, with the RFC 2045
// defaults), its parameters and the Content-Transfer-Encoding.
func parseEntityHeader(hdr []byte, digest bool) (string, map[string]string, string) {
	h, err := readHeader(terminatedHeader(hdr))
	if err != nil {
		h = textproto.Header{}
	}
	mh := gomessage.Header{Header: h}
	mt, params, err := mh.ContentType()
	switch {
	case !mh.Has("Content-Type") && digest:
		// RFC 2046 §5.1.5: the default in a digest is message/rfc822.
		mt, params = "message/rfc822", nil
	case err != nil || mt == "" || !strings.Contains(mt, "/"):
		mt, params = "text/plain", nil
	}
	return strings.ToLower(mt), params, strings.ToLower(strings.TrimSpace(mh.Get("Content-Transfer-Encoding")))
}

// isDelimiterOf reports whether line is a boundary delimiter (or close
// delimiter) of one of boundaries (RFC 2046 §5.1.1; transport padding
// allowed).
func isDelimiterOf(line []byte, boundaries []string) bool {
	if len(line) < 3 || line[0] != '-' || line[1] != '-' {
		return false
	}
	for _, b := range boundaries {
		if delimiterKind(line, b) != 0 {
			return true
		}
	}
	return false
}

// delimiterKind is 1 for "--b", 2 for "--b--", 0 otherwise.
func delimiterKind(line []byte, b string) int {
	if b == "" || len(line) < 2+len(b) || line[0] != '-' || line[1] != '-' || string(line[2:2+len(b)]) != b {
		return 0
	}
	rest := line[2+len(b):]
	kind := 1
	if bytes.HasPrefix(rest, []byte("--")) {
		kind = 2
		rest = rest[2:]
	}
	if len(bytes.Trim(rest, " \t\r\n")) != 0 {
		return 0
	}
	return kind
}

// partLoc is where a part is in the message.
type partLoc struct {
	mimeHdr   []byte // the part's MIME header (for a part that is a message's body: the message header)
	bodyStart int64
	bodyEnd   int64
	mediaType string
	cte       string
	emb       *entity // the embedded message's header, for message/rfc822 parts when asked
}

func (l *partLoc) isMessage() bool {
	return l.mediaType == "message/rfc822" || l.mediaType == "message/global"
}

func (l *partLoc) bodyContent() content {
	n := max(l.bodyEnd-l.bodyStart, 0)
	return content{off: l.bodyStart, n: n, size: n}
}

// locatePart finds part (1-based numbers, RFC 9051 §6.4.5) in the message
// read from r. It returns nil when the part does not exist.
func locatePart(r io.Reader, part []int, wantEmbedded bool) (*partLoc, error) {
	ls := newLineScanner(r)
	cur, err := readEntity(ls, nil, false)
	if err != nil {
		return nil, err
	}
	var stack []string // boundaries enclosing cur (its terminators)
	isMsg := true      // cur is a message (top level or embedded), not a part
	for i := 0; i < len(part); i++ {
		k := part[i]
		if !isMsg && (cur.mediaType == "message/rfc822" || cur.mediaType == "message/global") {
			// Part numbers below a message/rfc822 part address the
			// embedded message's parts.
			emb, err := readEntity(ls, stack, false)
			if err != nil {
				return nil, err
			}
			cur, isMsg = emb, true
		}
		if strings.HasPrefix(cur.mediaType, "multipart/") {
			b := cur.params["boundary"]
			child, err := nthChild(ls, b, k, stack, cur.mediaType == "multipart/digest")
			if err != nil || child == nil {
				return nil, err
			}
			stack = append(stack, b)
			cur, isMsg = child, false
			continue
		}
		if isMsg && k == 1 {
			// Part 1 of a non-multipart message is its body.
			isMsg = false
			continue
		}
		return nil, nil
	}
	loc := &partLoc{mimeHdr: cur.hdr, bodyStart: cur.bodyStart, mediaType: cur.mediaType, cte: cur.cte}
	if wantEmbedded && loc.isMessage() {
		emb, err := readEntity(ls, stack, false)
		if err != nil {
			return nil, err
		}
		loc.emb = emb
	}
	end, err := scanToDelimiter(ls, stack)
	if err != nil {
		return nil, err
	}
	loc.bodyEnd = max(end, loc.bodyStart)
	return loc, nil
}

// nthChild skips to the k-th part of a multipart body with boundary b and
// reads its header. terms are the enclosing boundaries.
func nthChild(ls *lineScanner, b string, k int, terms []string, digest bool) (*entity, error) {
	if k < 1 || b == "" {
		return nil, nil
	}
	seen := 0
	for {
		line, off, bol, err := ls.next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if !bol {
			continue
		}
		switch delimiterKind(line, b) {
		case 1:
			seen++
			if seen == k {
				return readEntity(ls, append(terms[:len(terms):len(terms)], b), digest)
			}
			continue
		case 2:
			return nil, nil
		}
		if isDelimiterOf(line, terms) {
			ls.unread(line, off, bol)
			return nil, nil
		}
	}
}

// scanToDelimiter reads up to the next delimiter line of terms (or the end)
// and returns where the body before it ends: the CRLF before a delimiter
// belongs to the delimiter (RFC 2046 §5.1.1).
func scanToDelimiter(ls *lineScanner, terms []string) (int64, error) {
	if len(terms) == 0 {
		for {
			_, _, _, err := ls.next()
			if err == io.EOF {
				return ls.off, nil
			}
			if err != nil {
				return 0, err
			}
		}
	}
	var prevEnd int64 = -1 // where the previous line's terminator starts
	for {
		line, off, bol, err := ls.next()
		if err == io.EOF {
			return ls.off, nil
		}
		if err != nil {
			return 0, err
		}
		if bol && isDelimiterOf(line, terms) {
			if prevEnd >= 0 {
				return prevEnd, nil
			}
			return off, nil
		}
		switch {
		case bytes.HasSuffix(line, []byte("\r\n")):
			prevEnd = off + int64(len(line)) - 2
		case bytes.HasSuffix(line, []byte("\n")):
			prevEnd = off + int64(len(line)) - 1
		default:
			prevEnd = -1
		}
	}
}

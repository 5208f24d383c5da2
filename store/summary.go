package store

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// summarize reads a raw message once and returns what the index caches: the
// top-level header, the MIME structure and the RFC822.SIZE.
//
// Everything is measured on the CRLF form of the message (bare LFs count as
// CRLF), which is what IMAP clients see. The message is streamed line by
// line; only headers are held in memory, never part bodies.
//
// The rules follow what Dovecot 2.3 reports for the same message, so that
// clients see the same BODYSTRUCTURE from both servers:
//
//   - header is the raw top-level header in CRLF form including the empty
//     line that ends it. A message without an empty line is all header and its
//     body is empty; nothing is synthesized (Dovecot's BODY[HEADER] is the
//     whole message then). Thus size == len(header) + body.Size always.
//   - Size of a part is the octets of its body; the CRLF before a boundary
//     line belongs to the boundary (RFC 2046 §5.1.1). Lines is the number of
//     LFs in the body (a last line without LF does not count), set for text/*
//     and message/rfc822.
//   - Boundary lines are matched by prefix: "--" boundary, followed by
//     anything (Dovecot accepts "--bound  " and also "--boundX"). The
//     innermost multipart's boundary is tried first. Boundaries are case
//     sensitive.
//   - A part without Content-Type is text/plain; charset=us-ascii, or
//     message/rfc822 directly inside multipart/digest (RFC 2046 §5.1.5).
//     Text parts without a charset parameter get charset=us-ascii, as Dovecot
//     reports. A missing Content-Transfer-Encoding is "7bit".
//   - The first of repeated Content-* fields counts. Header lines without a
//     colon are skipped.
//   - A multipart without a usable boundary, or without any body part, has
//     one empty text/plain child (Dovecot reports it so; BODYSTRUCTURE needs
//     at least one child).
//   - message/rfc822 with a transfer encoding other than 7bit, 8bit or binary
//     is not parsed: MessageHeader is empty and Message an empty text/plain,
//     as Dovecot does. message/global is a plain leaf part, like in Dovecot.
//   - Type, subtype and parameter names are lower-cased (the store's
//     contract; Dovecot reports them as written). Parameter values,
//     disposition and encoding are kept as written.
//   - deviation: a syntactically invalid Content-Type ("text/", "garbage",
//     "text/plain/x") degrades to text/plain; charset=us-ascii as RFC 2045
//     §5.2 says. Dovecot reports such parts with type "" or "garbage" "".
//
// Malformed input never fails; only errors reading r are returned.
func summarize(r io.Reader) (header []byte, body *BodyPart, size int64, err error) {
	s := &mimeScanner{br: bufio.NewReaderSize(newCRLFReader(r), 64<<10), hit: -1}
	header, body, _ = s.parsePart(defaultPartType, 0, true)
	for s.err == nil { // trailing data no multipart claimed: cannot happen at top level, but drain anyway
		s.next()
	}
	if !errors.Is(s.err, io.EOF) {
		return nil, nil, 0, s.err
	}
	return header, body, s.pos, nil
}

const (
	// maxMIMEDepth bounds the nesting of multiparts and messages; deeper
	// containers are summarized as plain text leaves.
	maxMIMEDepth = 100
	// maxMIMEParts bounds the number of parts in one message. Once it is
	// reached, boundaries are no longer recognized: the rest of the message
	// is the body of the last part.
	maxMIMEParts = 10000
	// maxPartHeader bounds the header bytes kept of a body part that is
	// neither the message nor an embedded message (only Content-* fields are
	// needed from it). Its size is still counted.
	maxPartHeader = 256 << 10
	// maxBoundary is the longest boundary parameter used.
	maxBoundary = 4096
)

type partType struct{ typ, sub string }

var (
	defaultPartType = partType{"text", "plain"}
	digestPartType  = partType{"message", "rfc822"}
)

// mimeScanner reads the CRLF form of a message in line fragments and spots
// boundary lines of the enclosing multiparts.
type mimeScanner struct {
	br     *bufio.Reader
	pos    int64    // offset of the next unread byte
	lfs    int64    // LFs read so far
	midLn  bool     // the last fragment did not end a line
	bounds []string // "--" + boundary of each open multipart, outermost first
	parts  int      // parts seen so far
	full   bool     // parts reached maxMIMEParts: no more boundaries
	err    error    // sticky read error, io.EOF at the end

	// The boundary line that stopped the last read, consumed whole.
	hit      int   // index into bounds; -1: none
	hitClose bool  // it was a close delimiter ("--b--")
	hitStart int64 // offset of the start of the boundary line
	hitLFs   int64 // lfs before the boundary line
}

// fragKind is what next returns.
type fragKind int

const (
	fragData     fragKind = iota // part of a line of content
	fragBoundary                 // a boundary line: s.hit is set
	fragEOF                      // end of input or read error
)

// next reads the next line fragment. A boundary line is consumed whole and
// reported as fragBoundary; the fragment is then nil.
func (s *mimeScanner) next() ([]byte, fragKind) {
	if s.err != nil {
		return nil, fragEOF
	}
	start := s.pos
	lineStart := !s.midLn
	frag, err := s.br.ReadSlice('\n')
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		s.err = err
	}
	if len(frag) == 0 {
		return nil, fragEOF
	}
	s.pos += int64(len(frag))
	ended := frag[len(frag)-1] == '\n'
	if ended {
		s.lfs++
	}
	s.midLn = !ended
	if lineStart && !s.full && len(s.bounds) > 0 && len(frag) >= 2 && frag[0] == '-' && frag[1] == '-' {
		for i := len(s.bounds) - 1; i >= 0; i-- {
			b := s.bounds[i]
			if !bytes.HasPrefix(frag, []byte(b)) {
				continue
			}
			s.hit = i
			s.hitClose = bytes.HasPrefix(frag[len(b):], []byte("--"))
			s.hitStart = start
			s.hitLFs = s.lfs
			if ended {
				s.hitLFs--
			}
			for s.midLn && s.err == nil { // consume the rest of the line
				rest, err := s.br.ReadSlice('\n')
				if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
					s.err = err
				}
				if len(rest) == 0 {
					break
				}
				s.pos += int64(len(rest))
				if rest[len(rest)-1] == '\n' {
					s.lfs++
					s.midLn = false
				}
			}
			return nil, fragBoundary
		}
	}
	return frag, fragData
}

// skipBody reads until a boundary line or the end.
func (s *mimeScanner) skipBody() fragKind {
	for {
		if _, k := s.next(); k != fragData {
			return k
		}
	}
}

// readHeader reads a header block up to and including the empty line, or up
// to a boundary line or the end. It keeps at most limit bytes (<0: all).
func (s *mimeScanner) readHeader(limit int) ([]byte, fragKind) {
	var hdr []byte
	lineStart := true
	for {
		frag, k := s.next()
		if k != fragData {
			return hdr, k
		}
		if limit < 0 || len(hdr) < limit {
			keep := frag
			if limit >= 0 && len(hdr)+len(keep) > limit {
				keep = keep[:limit-len(hdr)]
			}
			hdr = append(hdr, keep...)
		}
		if lineStart && len(frag) == 2 && frag[0] == '\r' && frag[1] == '\n' {
			return hdr, fragData
		}
		lineStart = frag[len(frag)-1] == '\n'
	}
}

// bodyEnd returns the end offset and LF count of a body that started at
// start with lfs LFs, given how its reading stopped.
func (s *mimeScanner) bodyEnd(start, lfs int64) (size, lines int64) {
	if s.hit < 0 {
		return s.pos - start, s.lfs - lfs
	}
	// RFC 2046 §5.1.1: the CRLF before the boundary line is part of it.
	if s.hitStart-2 <= start {
		return 0, 0
	}
	return s.hitStart - 2 - start, s.hitLFs - 1 - lfs
}

// parsePart parses one entity (header and body) at the current position and
// returns its header, its structure and the LF count of its body (whatever
// its type). It stops at the end of its body: at a boundary line of an
// enclosing multipart (left in s.hit) or at the end.
func (s *mimeScanner) parsePart(def partType, depth int, keepHeader bool) (hdr []byte, p *BodyPart, lines int64) {
	s.parts++
	s.full = s.parts >= maxMIMEParts
	limit := -1
	if !keepHeader {
		limit = maxPartHeader
	}
	hdr, k := s.readHeader(limit)
	p = partFromHeader(hdr, def)
	container := depth < maxMIMEDepth && !s.full
	isMsg := p.Type == "message" && p.Subtype == "rfc822"
	if (p.Type == "multipart" || isMsg) && !container {
		degradeToText(p)
		isMsg = false
	}
	boundary := ""
	if p.Type == "multipart" {
		boundary = p.Params["boundary"]
		if len(boundary) > maxBoundary {
			boundary = ""
		}
	}
	switch {
	case k != fragData:
		// The body ended within the header: it is empty.
		if isMsg {
			p.Message = emptyTextPart()
		}
	case boundary != "":
		start, lfs := s.pos, s.lfs
		s.bounds = append(s.bounds, "--"+boundary)
		mine := len(s.bounds) - 1
		childDef := defaultPartType
		if p.Subtype == "digest" {
			childDef = digestPartType
		}
		s.skipBody() // preamble
		for s.hit == mine && !s.hitClose {
			s.hit = -1
			_, child, _ := s.parsePart(childDef, depth+1, false)
			p.Children = append(p.Children, child)
		}
		s.bounds = s.bounds[:mine]
		if s.hit == mine {
			// Close delimiter: the epilogue follows, up to an outer
			// boundary. The own boundary no longer counts (a nested
			// multipart may reuse an outer boundary, as Dovecot allows).
			s.hit = -1
			s.skipBody()
		}
		p.Size, lines = s.bodyEnd(start, lfs)
	case isMsg && identityEncoding(p.Encoding):
		mh, m, mlines := s.parsePart(defaultPartType, depth+1, true)
		p.MessageHeader, p.Message = mh, m
		p.Size = int64(len(mh)) + m.Size
		lines = int64(bytes.Count(mh, []byte{'\n'})) + mlines
	default:
		if isMsg {
			p.Message = emptyTextPart() // encoded: not parsed, like Dovecot
		}
		start, lfs := s.pos, s.lfs
		s.skipBody()
		p.Size, lines = s.bodyEnd(start, lfs)
	}
	if p.Type == "multipart" && len(p.Children) == 0 {
		p.Children = []*BodyPart{emptyTextPart()}
	}
	if p.Type == "text" || (p.Type == "message" && p.Subtype == "rfc822") {
		p.Lines = lines
	}
	return hdr, p, lines
}

func identityEncoding(enc string) bool {
	return strings.EqualFold(enc, "7bit") || strings.EqualFold(enc, "8bit") || strings.EqualFold(enc, "binary")
}

func emptyTextPart() *BodyPart {
	return &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit"}
}

// degradeToText turns a container part that is nested too deep into a text
// leaf.
func degradeToText(p *BodyPart) {
	p.Type, p.Subtype = "text", "plain"
	p.Params = map[string]string{"charset": "us-ascii"}
	p.Children, p.Message, p.MessageHeader = nil, nil, nil
}

// headerFields calls fn for each field of a raw header block with the field
// name lower-cased and the value unfolded, without leading white space.
// Lines that are neither a field nor a continuation are skipped.
func headerFields(hdr []byte, fn func(name, value string)) {
	var name string
	var val []byte
	have := false
	flush := func() {
		if have {
			fn(name, string(val))
		}
		have = false
	}
	for len(hdr) > 0 {
		line := hdr
		if i := bytes.IndexByte(hdr, '\n'); i >= 0 {
			line, hdr = hdr[:i+1], hdr[i+1:]
		} else {
			hdr = nil
		}
		content := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte{'\n'}), []byte{'\r'})
		if len(content) == 0 {
			break // the empty line ends the header
		}
		if content[0] == ' ' || content[0] == '\t' {
			if have {
				val = append(val, content...) // RFC 5322 §2.2.3: unfold by removing CRLF
			}
			continue
		}
		flush()
		colon := bytes.IndexByte(content, ':')
		if colon <= 0 {
			continue
		}
		n := bytes.TrimRight(content[:colon], " \t")
		if len(n) == 0 {
			continue
		}
		name = strings.ToLower(string(n))
		val = append(val[:0:0], bytes.TrimLeft(content[colon+1:], " \t")...)
		have = true
	}
	flush()
}

// partFromHeader builds a part from its header (the body's sizes are filled
// in later). def is the type when there is no Content-Type.
func partFromHeader(hdr []byte, def partType) *BodyPart {
	p := &BodyPart{Type: def.typ, Subtype: def.sub, Encoding: "7bit"}
	var seen struct{ ct, cte, id, desc, md5, disp, lang, loc bool }
	headerFields(hdr, func(name, v string) {
		if !strings.HasPrefix(name, "content-") {
			return
		}
		switch name[len("content-"):] {
		case "type":
			if seen.ct {
				return
			}
			seen.ct = true
			typ, sub, params, ok := parseContentType(v)
			if !ok {
				p.Type, p.Subtype, p.Params = "text", "plain", nil
				return
			}
			p.Type, p.Subtype, p.Params = typ, sub, params
		case "transfer-encoding":
			if seen.cte {
				return
			}
			seen.cte = true
			lx := &hlex{s: v}
			lx.cfws()
			if t := lx.token(); t != "" {
				p.Encoding = t
			}
		case "id":
			if !seen.id {
				seen.id, p.ID = true, v
			}
		case "description":
			if !seen.desc {
				seen.desc, p.Description = true, v
			}
		case "md5":
			if !seen.md5 {
				seen.md5, p.MD5 = true, v
			}
		case "location":
			if !seen.loc {
				seen.loc, p.Location = true, v
			}
		case "disposition":
			if seen.disp {
				return
			}
			seen.disp = true
			lx := &hlex{s: v}
			lx.cfws()
			if t := lx.token(); t != "" {
				p.Disposition = t
				p.DispParams = lx.params()
			}
		case "language":
			if seen.lang {
				return
			}
			seen.lang = true
			p.Language = parseLanguage(v)
		}
	})
	if p.Type == "text" {
		if p.Params == nil {
			p.Params = map[string]string{}
		}
		if _, ok := p.Params["charset"]; !ok {
			p.Params["charset"] = "us-ascii" // RFC 2045 §5.2 default, as Dovecot reports it
		}
	}
	return p
}

// parseContentType parses "type/subtype; params" (RFC 2045 §5.1) leniently.
// ok is false when there is no valid type/subtype.
func parseContentType(v string) (typ, sub string, params map[string]string, ok bool) {
	lx := &hlex{s: v}
	lx.cfws()
	typ = lx.token()
	lx.cfws()
	if typ == "" || !lx.consume('/') {
		return "", "", nil, false
	}
	lx.cfws()
	sub = lx.token()
	lx.cfws()
	if sub == "" || (!lx.done() && lx.peek() != ';') {
		return "", "", nil, false
	}
	return strings.ToLower(typ), strings.ToLower(sub), lx.params(), true
}

// parseLanguage parses a Content-Language list (RFC 3282).
func parseLanguage(v string) []string {
	lx := &hlex{s: v}
	var out []string
	for {
		lx.cfws()
		if lx.done() {
			return out
		}
		if t := lx.token(); t != "" {
			out = append(out, t)
			continue
		}
		lx.i++ // ',' or junk
	}
}

// hlex is a lenient lexer for structured MIME header values (RFC 2045 §5.1
// tokens, quoted strings and comments).
type hlex struct {
	s string
	i int
}

func (l *hlex) done() bool { return l.i >= len(l.s) }
func (l *hlex) peek() byte { return l.s[l.i] }

func (l *hlex) consume(c byte) bool {
	if !l.done() && l.s[l.i] == c {
		l.i++
		return true
	}
	return false
}

// cfws skips white space and (nested) comments.
func (l *hlex) cfws() {
	depth := 0
	for !l.done() {
		c := l.s[l.i]
		switch {
		case depth > 0 && c == '\\':
			l.i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n':
			return
		}
		l.i++
	}
}

// isTSpecial reports RFC 2045 tspecials, space, controls and non-ASCII.
func isTSpecial(c byte) bool {
	return c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0
}

func (l *hlex) token() string {
	start := l.i
	for !l.done() && !isTSpecial(l.s[l.i]) {
		l.i++
	}
	return l.s[start:l.i]
}

// value reads a parameter value: a quoted string, or leniently anything up
// to ';', white space or a comment (real mail has unquoted "=" and "/" in
// boundaries).
func (l *hlex) value() string {
	if l.consume('"') {
		var b strings.Builder
		for !l.done() {
			c := l.s[l.i]
			l.i++
			switch {
			case c == '"':
				return b.String()
			case c == '\\' && !l.done():
				b.WriteByte(l.s[l.i])
				l.i++
			default:
				b.WriteByte(c)
			}
		}
		return b.String() // unterminated: take the rest
	}
	start := l.i
	for !l.done() {
		c := l.s[l.i]
		if c == ';' || c == ' ' || c == '\t' || c == '(' || c == '"' {
			break
		}
		l.i++
	}
	return l.s[start:l.i]
}

// skipTo moves past the next ';' (or to the end).
func (l *hlex) skipTo() {
	for !l.done() && l.s[l.i] != ';' {
		if l.s[l.i] == '"' {
			l.i++
			l.value0()
			continue
		}
		l.i++
	}
}

// value0 skips the rest of a quoted string.
func (l *hlex) value0() {
	for !l.done() {
		c := l.s[l.i]
		l.i++
		if c == '\\' {
			l.i++
		} else if c == '"' {
			return
		}
	}
}

// params parses "; key=value" pairs. Keys are lower-cased; the first of
// repeated keys counts; malformed pairs are skipped. RFC 2231 continuations
// are joined as Dovecot does: "k*0", "k*1" become "k"; if any piece is
// extended ("k*0*", or "k*"), the key is "k*" and the raw value (charset and
// percent-escapes included) is kept.
func (l *hlex) params() map[string]string {
	type piece struct {
		n   int
		ext bool
		v   string
	}
	var order []string
	plain := map[string]string{}
	cont := map[string][]piece{}
	for {
		l.cfws()
		if l.done() {
			break
		}
		if !l.consume(';') {
			l.skipTo()
			continue
		}
		l.cfws()
		key := strings.ToLower(l.token())
		l.cfws()
		if key == "" || !l.consume('=') {
			l.skipTo()
			continue
		}
		l.cfws()
		val := l.value()
		base, rest, isCont := strings.Cut(key, "*")
		if !isCont || base == "" {
			if _, dup := plain[key]; !dup {
				plain[key] = val
				order = append(order, key)
			}
			continue
		}
		// "k*": extended; "k*N": section N; "k*N*": extended section N.
		ext := rest == "" || strings.HasSuffix(rest, "*")
		num := strings.TrimSuffix(rest, "*")
		n := 0
		if num != "" {
			for _, c := range []byte(num) {
				if c < '0' || c > '9' || n > 1000 {
					n = -1
					break
				}
				n = n*10 + int(c-'0')
			}
			if n < 0 {
				continue
			}
		}
		if _, ok := cont[base]; !ok {
			order = append(order, "*"+base)
		}
		cont[base] = append(cont[base], piece{n, ext, val})
	}
	if len(order) == 0 {
		return nil
	}
	out := make(map[string]string, len(order))
	for _, k := range order {
		if k[0] != '*' {
			if _, dup := out[k]; !dup {
				out[k] = plain[k]
			}
			continue
		}
		base := k[1:]
		ps := cont[base]
		// Join in section order; sections missing or repeated are tolerated.
		var b strings.Builder
		ext := false
		for want := 0; want <= len(ps); want++ {
			for _, p := range ps {
				if p.n == want {
					b.WriteString(p.v)
					ext = ext || p.ext
					break
				}
			}
		}
		key := base
		if ext {
			key += "*"
		}
		if _, dup := out[key]; !dup {
			out[key] = b.String()
		}
	}
	return out
}

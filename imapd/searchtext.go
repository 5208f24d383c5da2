package imapd

// SEARCH BODY and TEXT read the message file: every text/* part is decoded
// (quoted-printable, base64) and converted to UTF-8 by go-message (its
// charset package, imported here, registers the golang.org/x/text decoders),
// and embedded message/rfc822 parts are searched too. Matching is a
// case-insensitive substring test. The decoded text of one message is kept
// only while that message is evaluated, capped at maxSearchText.

import (
	"errors"
	"io"
	"strings"

	gomessage "github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // charset conversion for SEARCH

	"github.com/postoffice/postoffice/store"
)

// maxSearchText caps the decoded text kept per message for BODY/TEXT.
const maxSearchText = 16 << 20

// maxSearchDepth caps message/rfc822 nesting followed by the text scan.
const maxSearchDepth = 8

// msgText is a message's searchable text, case-folded.
type msgText struct {
	header string // the top-level header, encoded words decoded
	body   string // decoded text parts (and embedded messages' headers and text)
}

// textOf returns sm's text, reading the file on first use. A message gone
// meanwhile has no text; other errors are kept in sm.failed.
func (s *session) textOf(sel *selected, sm *searchMsg) *msgText {
	if sm.text != nil || sm.failed != nil {
		return sm.text
	}
	ctx, cancel := s.selCtx()
	defer cancel()
	var rc io.ReadCloser
	var err error
	if sm.m != nil { // loaded with the batch: no second index lookup
		rc, err = s.mailStore().OpenLoaded(ctx, sel.mbox.ID, sm.m)
	} else {
		rc, _, err = s.mailStore().OpenMessage(ctx, sel.mbox.ID, sm.uid)
	}
	if errors.Is(err, store.ErrNoMessage) {
		sm.text = &msgText{}
		return sm.text
	}
	if err != nil {
		sm.failed = err
		return nil
	}
	defer rc.Close()
	var hb, bb strings.Builder
	if err := extractText(rc, &hb, &bb, 0); err != nil {
		s.log.Debug("search: reading message text", "mailbox", sel.mbox.Name, "uid", sm.uid, "err", err)
	}
	sm.text = &msgText{header: foldCase(hb.String()), body: foldCase(bb.String())}
	return sm.text
}

// extractText writes the decoded header of the message read from r to hdr
// and its decoded text parts to body. Malformed input ends the extraction
// early with an error; what was extracted so far stays.
func extractText(r io.Reader, hdr, body *strings.Builder, depth int) error {
	e, err := gomessage.Read(r)
	if e == nil {
		return err
	}
	writeHeaderText(hdr, e.Header)
	return e.Walk(func(_ []int, part *gomessage.Entity, err error) error {
		if err != nil && !gomessage.IsUnknownCharset(err) && !gomessage.IsUnknownEncoding(err) {
			return err
		}
		mt, _, _ := part.Header.ContentType()
		mt = strings.ToLower(mt)
		switch {
		case mt == "" || strings.HasPrefix(mt, "text/"):
			if part.MultipartReader() != nil {
				return nil
			}
			return copyCapped(body, part.Body)
		case (mt == "message/rfc822" || mt == "message/global") && depth < maxSearchDepth:
			// The embedded header and text are part of the outer body.
			return extractText(part.Body, body, body, depth+1)
		}
		return nil
	})
}

func writeHeaderText(w *strings.Builder, h gomessage.Header) {
	fields := h.Fields()
	for fields.Next() {
		v, err := fields.Text()
		if err != nil {
			v = fields.Value()
		}
		if w.Len()+len(v) > maxSearchText {
			return
		}
		w.WriteString(fields.Key())
		w.WriteString(": ")
		w.WriteString(v)
		w.WriteString("\n")
	}
}

// copyCapped appends r to w up to maxSearchText in total.
func copyCapped(w *strings.Builder, r io.Reader) error {
	room := int64(maxSearchText - w.Len())
	if room <= 0 {
		return nil
	}
	_, err := io.Copy(w, io.LimitReader(r, room))
	if err != nil && !errors.Is(err, io.EOF) {
		// A decoding error mid-part: keep what decoded.
		return nil
	}
	w.WriteString("\n")
	return nil
}

package imapd

import (
	"bufio"
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"
)

// envelopeWhole is envelopeOf without the field filter: the whole header
// through the library, as the answer must be.
func envelopeWhole(raw []byte) *imap.Envelope {
	if len(raw) == 0 {
		return &imap.Envelope{}
	}
	if !isBlankLineEnd(raw) {
		raw = append(append([]byte(nil), raw...), "\r\n\r\n"...)
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return &imap.Envelope{}
	}
	return imapserver.ExtractEnvelope(h)
}

var envelopeHeaders = []string{
	"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hi\r\nDate: Tue, 05 Mar 2024 10:00:00 +0100\r\nMessage-ID: <1@x>\r\n\r\n",
	// Noise first, folded fields, odd case, trailing space before the colon.
	"Received: from a by b;\r\n\tTue, 05 Mar 2024 10:00:00 +0100\r\nDKIM-Signature: v=1; a=rsa-sha256;\r\n b=abc\r\nsUbJeCt : =?UTF-8?Q?caf=C3=A9?=\r\n  continued\r\nFROM: \"Q, R\" <q@r.example>,\r\n s@t.example\r\ncc: a@b.example\r\nreply-to: c@d.example\r\nIn-Reply-To: <a@b> <c@d>\r\nmessage-id: <m@id>\r\ndate: 5 Mar 2024 10:00 -0000 (comment)\r\n\r\n",
	// Duplicates: the first one counts.
	"Subject: one\r\nSubject: two\r\nFrom: a@b.example\r\nFrom: c@d.example\r\n\r\n",
	// LF only, no blank line at the end, no final newline.
	"From: a@b.example\nSubject: lf\nTo: x@y.example",
	"From: a@b.example\nSubject: folded\n at the end",
	// Malformed: the parser fails, and so must the filter's answer.
	" leading: continuation\r\nSubject: x\r\n\r\n",
	"Subject: x\r\nno colon here\r\nFrom: a@b.example\r\n\r\n",
	"Subject: x\r\nBad Name: y\r\nFrom: a@b.example\r\n\r\n",
	"Subject: x\r\nX-\x01: y\r\n\r\n",
	"Subject: x\r\n: empty name\r\nFrom: a@b.example\r\n\r\n",
	"Subject: x\r\r\nFrom: a@b.example\r\n\r\n",
	"Subject: x\r\n\r\nFrom: after@blank.example\r\n",
	"",
	"\r\n",
	"Sender: s@x.example\r\nBcc: b@x.example\r\nTo: undisclosed-recipients:;\r\n\r\n",
}

func TestEnvelopeOf_sameAsWholeHeader(t *testing.T) {
	for _, h := range envelopeHeaders {
		got, want := envelopeOf([]byte(h)), envelopeWhole([]byte(h))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("header %q:\n got %+v\nwant %+v", h, got, want)
		}
	}
	// The filter is used (not the fallback) for well-formed headers.
	if small, ok := envelopeFields([]byte(envelopeHeaders[1])); !ok || strings.Contains(string(small), "DKIM") || !strings.Contains(string(small), "continued") {
		t.Errorf("filtered header: %q, %v", small, ok)
	}
}

func FuzzEnvelopeOf(f *testing.F) {
	for _, h := range envelopeHeaders {
		f.Add([]byte(h))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, want := envelopeOf(raw), envelopeWhole(raw)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("header %q:\n got %+v\nwant %+v", raw, got, want)
		}
	})
}

package store

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// summaryTests are the fixtures in testdata/mime. The expected structures are
// what Dovecot 2.3.19.1 reports for the same files delivered as-is into a
// Maildir (testdata/mime/dovecot-answers.txt has its raw answers), with type,
// subtype and parameter names lower-cased, and two deliberate deviations
// marked below.
var summaryTests = []struct {
	file            string
	size, headerLen int64
	body            *BodyPart
}{
	{
		file: "alternative.eml", size: 494, headerLen: 155,
		body: &BodyPart{Type: "multipart", Subtype: "alternative", Params: map[string]string{"boundary": "b1"}, Encoding: "7bit", Size: 339,
			Children: []*BodyPart{
				{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "UTF-8", "format": "flowed"}, Encoding: "7bit", Size: 28, Lines: 2},
				{Type: "text", Subtype: "html", Params: map[string]string{"charset": "utf-8"}, Encoding: "quoted-printable", Size: 49, Lines: 2},
			},
		},
	},
	{
		// deviation: Dovecot reports ("garbage" "" NIL NIL NIL "8bit" 6 NIL NIL NIL NIL).
		file: "bad-type.eml", size: 128, headerLen: 122,
		body: &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "8bit", Size: 6, Lines: 1},
	},
	{
		file: "bare-cr.eml", size: 36, headerLen: 22,
		body: &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 14, Lines: 1},
	},
	{
		file: "boundary-prefix.eml", size: 119, headerLen: 72,
		body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": "ab"}, Encoding: "7bit", Size: 47,
			Children: []*BodyPart{
				{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit"},
				{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 6},
			},
		},
	},
	{
		file: "boundary-spaces.eml", size: 96, headerLen: 72,
		body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": " sp "}, Encoding: "7bit", Size: 24,
			Children: []*BodyPart{
				{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 2},
			},
		},
	},
	{
		file: "boundary-trailing-space.eml", size: 132, headerLen: 76,
		body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": "q"}, Encoding: "7bit", Size: 56,
			Children: []*BodyPart{
				{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 3},
			},
		},
	},
	{
		file: "comments.eml", size: 89, headerLen: 86,
		body: &BodyPart{Type: "text", Subtype: "html", Params: map[string]string{"charset": "utf-8"}, Encoding: "7bit", Size: 3, Lines: 1},
	},
	{
		file: "digest-explicit-type.eml", size: 163, headerLen: 89,
		body: &BodyPart{Type: "multipart", Subtype: "digest", Params: map[string]string{"boundary": "d"}, Encoding: "7bit", Size: 74,
			Children: []*BodyPart{
				{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 5},
				{Type: "message", Subtype: "rfc822", Encoding: "7bit", Size: 18, Lines: 2,
					MessageHeader: []byte("Subject: m\r\n\r\n"),
					Message:       &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 4},
				},
			},
		},
	},
	{
		file: "digest.eml", size: 242, headerLen: 118,
		body: &BodyPart{Type: "multipart", Subtype: "digest", Params: map[string]string{"boundary": "dd"}, Encoding: "7bit", Size: 124,
			Children: []*BodyPart{
				{Type: "message", Subtype: "rfc822", Encoding: "7bit", Size: 57, Lines: 3,
					MessageHeader: []byte("From: Bob <bob@example.org>\r\nSubject: first\r\n\r\n"),
					Message:       &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 10},
				},
				{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 13},
			},
		},
	},
	{
		file: "duplicate-content-type.eml", size: 72, headerLen: 69,
		body: &BodyPart{Type: "text", Subtype: "html", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 3, Lines: 1},
	},
	{
		file: "empty-body.eml", size: 23, headerLen: 23,
		body: &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit"},
	},
	{
		file: "empty-boundary.eml", size: 78, headerLen: 71,
		body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": ""}, Encoding: "7bit", Size: 7,
			Children: []*BodyPart{
				{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit"},
			},
		},
	},
	{
		file: "empty-line-body.eml", size: 16, headerLen: 14,
		body: &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 2, Lines: 1},
	},
	{
		file: "header-no-colon.eml", size: 88, headerLen: 85,
		body: &BodyPart{Type: "text", Subtype: "html", Params: map[string]string{"charset": "utf-8"}, Encoding: "7bit", Size: 3, Lines: 1},
	},
	{
		file: "header-only.eml", size: 85, headerLen: 85,
		body: &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit"},
	},
	{
		// deviation: Dovecot reports ("" "" NIL NIL NIL "7bit" 3 NIL NIL NIL NIL) for "text/".
		file: "invalid-type.eml", size: 50, headerLen: 47,
		body: &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 3, Lines: 1},
	},
	{
		file: "malformed.eml", size: 196, headerLen: 119,
		body: &BodyPart{Type: "multipart", Subtype: "mixed", Encoding: "7bit", Size: 77,
			Children: []*BodyPart{
				{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit"},
			},
		},
	},
	{
		file: "message-global.eml", size: 70, headerLen: 49,
		body: &BodyPart{Type: "message", Subtype: "global", Encoding: "7bit", Size: 21},
	},
	{
		file: "mixed-base64.eml", size: 978, headerLen: 166,
		body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": "==outer=="}, Encoding: "7bit", Size: 812,
			Children: []*BodyPart{
				{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "iso-8859-1"}, Encoding: "quoted-printable", Size: 30, Lines: 2, Language: []string{"de", "en-GB"}},
				{Type: "application", Subtype: "pdf", Params: map[string]string{"name": "report.pdf"}, ID: "<part2@example.org>", Description: "The quarterly report", Encoding: "BASE64", Size: 180, MD5: "Q2hlY2sgSW50ZWdyaXR5IQ==", Disposition: "attachment", DispParams: map[string]string{"filename": "report.pdf", "size": "120"}, Location: "http://example.org/report.pdf"},
				{Type: "image", Subtype: "png", Encoding: "base64", Size: 12, Disposition: "inline"},
			},
		},
	},
	{
		file: "multipart-no-parts.eml", size: 78, headerLen: 71,
		body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": "z"}, Encoding: "7bit", Size: 7,
			Children: []*BodyPart{
				{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit"},
			},
		},
	},
	{
		file: "nested-rfc822.eml", size: 590, headerLen: 150,
		body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": "outer"}, Encoding: "7bit", Size: 440,
			Children: []*BodyPart{
				{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 28, Lines: 1},
				{Type: "message", Subtype: "rfc822", Encoding: "7bit", Size: 290, Lines: 15, Disposition: "inline",
					MessageHeader: []byte("From: Carol <carol@example.org>\r\nTo: Alice <alice@example.org>\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"),
					Message: &BodyPart{Type: "multipart", Subtype: "alternative", Params: map[string]string{"boundary": "inner"}, Encoding: "7bit", Size: 134,
						Children: []*BodyPart{
							{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 11},
							{Type: "text", Subtype: "html", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 17},
						},
					},
				},
			},
		},
	},
	{
		file: "no-trailing-newline.eml", size: 83, headerLen: 65,
		body: &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 18, Lines: 1},
	},
	{
		file: "plain-lf.eml", size: 254, headerLen: 173,
		body: &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 81, Lines: 5},
	},
	{
		file: "rfc2231.eml", size: 377, headerLen: 125,
		body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": "zz"}, Encoding: "7bit", Size: 252,
			Children: []*BodyPart{
				{Type: "application", Subtype: "octet-stream", Params: map[string]string{"name*": "utf-8''%C3%A4rger.bin"}, Encoding: "7bit", Size: 4, Disposition: "attachment", DispParams: map[string]string{"filename": "longname.bin"}},
				{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii", "delsp": "yes", "format": "Flowed"}, Encoding: "7bit", Size: 4},
			},
		},
	},
	{
		file: "rfc822-base64.eml", size: 110, headerLen: 88,
		body: &BodyPart{Type: "message", Subtype: "rfc822", Encoding: "base64", Size: 22, Lines: 1,
			Message: &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit"},
		},
	},
	{
		file: "rfc822-empty.eml", size: 123, headerLen: 79,
		body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": "z"}, Encoding: "7bit", Size: 44,
			Children: []*BodyPart{
				{Type: "message", Subtype: "rfc822", Encoding: "7bit",
					Message: &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit"},
				},
			},
		},
	},
	{
		file: "rfc822-header-at-boundary.eml", size: 136, headerLen: 79,
		body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": "z"}, Encoding: "7bit", Size: 57,
			Children: []*BodyPart{
				{Type: "message", Subtype: "rfc822", Encoding: "7bit", Size: 13, Lines: 1,
					MessageHeader: []byte("Subject: in\r\n"),
					Message:       &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit"},
				},
			},
		},
	},
	{
		file: "same-boundary.eml", size: 183, headerLen: 76,
		body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": "a"}, Encoding: "7bit", Size: 107,
			Children: []*BodyPart{
				{Type: "multipart", Subtype: "alternative", Params: map[string]string{"boundary": "a"}, Encoding: "7bit", Size: 42,
					Children: []*BodyPart{
						{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 2},
					},
				},
			},
		},
	},
	{
		file: "text-params-no-charset.eml", size: 60, headerLen: 57,
		body: &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii", "format": "flowed"}, Encoding: "7bit", Size: 3, Lines: 1},
	},
	{
		file: "unterminated-multipart.eml", size: 239, headerLen: 133,
		body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": "u"}, Encoding: "7bit", Size: 106,
			Children: []*BodyPart{
				{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 8},
				{Type: "text", Subtype: "html", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 21, Lines: 1},
			},
		},
	},
	{
		file: "upper-case-names.eml", size: 124, headerLen: 121,
		body: &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "UTF-8"}, Encoding: "Quoted-Printable", Size: 3, Lines: 1},
	},
	{
		file: "upper-case.eml", size: 164, headerLen: 161,
		body: &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "utf-8", "name": "a.txt"}, ID: "id", Encoding: "7bit", Size: 3, Lines: 1, Disposition: "ATTACHMENT", DispParams: map[string]string{"filename": "a.txt"}, Location: "a b "},
	},
}

func TestSummarize_fixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "mime", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(summaryTests) {
		t.Errorf("%d fixtures, %d table entries", len(files), len(summaryTests))
	}
	for _, tt := range summaryTests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "mime", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			crlf, err := io.ReadAll(newCRLFReader(bytes.NewReader(raw)))
			if err != nil {
				t.Fatal(err)
			}
			// The same result for the file, its CRLF form, and byte-wise reads.
			for name, r := range map[string]io.Reader{
				"raw":     bytes.NewReader(raw),
				"crlf":    bytes.NewReader(crlf),
				"onebyte": iotest.OneByteReader(bytes.NewReader(raw)),
			} {
				hdr, body, size, err := summarize(r)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if size != tt.size || int64(len(hdr)) != tt.headerLen {
					t.Errorf("%s: size %d, header %d bytes; want %d, %d", name, size, len(hdr), tt.size, tt.headerLen)
				}
				if !bytes.Equal(hdr, crlf[:len(hdr)]) {
					t.Errorf("%s: header is not the start of the CRLF message: %q", name, hdr)
				}
				if size != int64(len(hdr))+body.Size {
					t.Errorf("%s: size %d != header %d + body %d", name, size, len(hdr), body.Size)
				}
				checkMessageHeaders(t, body, crlf)
				if !reflect.DeepEqual(body, tt.body) {
					t.Errorf("%s: structure\n got %s\nwant %s", name, dumpPart(body), dumpPart(tt.body))
				}
			}
		})
	}
}

// checkMessageHeaders checks that each embedded message header is a piece
// of the message.
func checkMessageHeaders(t *testing.T, p *BodyPart, msg []byte) {
	t.Helper()
	if p.MessageHeader != nil && !bytes.Contains(msg, p.MessageHeader) {
		t.Errorf("embedded header %q is not in the message", p.MessageHeader)
	}
	if p.Message != nil {
		checkMessageHeaders(t, p.Message, msg)
	}
	for _, c := range p.Children {
		checkMessageHeaders(t, c, msg)
	}
}

func dumpPart(p *BodyPart) string {
	var b strings.Builder
	var walk func(p *BodyPart, ind string)
	walk = func(p *BodyPart, ind string) {
		c := *p
		c.Children, c.Message = nil, nil
		fmt.Fprintf(&b, "\n%s%+v", ind, c)
		if p.Message != nil {
			walk(p.Message, ind+"  message: ")
		}
		for _, ch := range p.Children {
			walk(ch, ind+"  ")
		}
	}
	walk(p, "")
	return b.String()
}

// patternReader produces n bytes of base64-like lines without holding them.
type patternReader struct {
	n    int64
	line []byte
	off  int
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	m := 0
	for m < len(p) && r.n > 0 {
		c := copy(p[m:min(len(p), m+int(min(r.n, int64(len(r.line)-r.off))))], r.line[r.off:])
		m += c
		r.n -= int64(c)
		r.off = (r.off + c) % len(r.line)
	}
	return m, nil
}

func TestSummarize_streamsLargeParts(t *testing.T) {
	const attach = 64 << 20 // 64 MiB of base64, LF line endings
	line := []byte(strings.Repeat("QUJD", 19) + "\n")
	head := "From: a@example.org\nSubject: big\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
	tail := "\n--b--\n"
	attachLen := int64(attach/len(line)) * int64(len(line))
	r := io.MultiReader(strings.NewReader(head), &patternReader{n: attachLen, line: line}, strings.NewReader(tail))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	hdr, body, size, err := summarize(r)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	lines := attachLen / int64(len(line))
	want := int64(len(head)+strings.Count(head, "\n")) + attachLen + lines + int64(len(tail)+strings.Count(tail, "\n"))
	if size != want {
		t.Errorf("size %d, want %d", size, want)
	}
	if len(body.Children) != 2 || body.Children[1].Size != attachLen+lines {
		t.Errorf("attachment part: %s", dumpPart(body))
	}
	if int64(len(hdr))+body.Size != size {
		t.Errorf("header %d + body %d != %d", len(hdr), body.Size, size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("allocated %d bytes for a %d-byte message: not streaming", alloc, size)
	}
}

func TestSummarize_deepNesting(t *testing.T) {
	var b strings.Builder
	b.WriteString("Subject: deep\n")
	const depth = 5000
	for i := 0; i < depth; i++ {
		if i%2 == 0 {
			b.WriteString("Content-Type: multipart/mixed; boundary=b" + strings.Repeat("x", i%7) + "\n\n--b" + strings.Repeat("x", i%7) + "\n")
		} else {
			b.WriteString("Content-Type: message/rfc822\n\nSubject: m\n")
		}
	}
	b.WriteString("\nend\n")
	in := b.String()
	_, body, size, err := summarize(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(in)+strings.Count(in, "\n")) {
		t.Errorf("size %d, want %d", size, len(in)+strings.Count(in, "\n"))
	}
	n := 0
	for p := body; p != nil; n++ {
		switch {
		case len(p.Children) > 0:
			p = p.Children[0]
		default:
			p = p.Message
		}
	}
	if n > maxMIMEDepth+2 {
		t.Errorf("structure is %d levels deep, limit %d", n, maxMIMEDepth)
	}
}

func TestSummarize_manyParts(t *testing.T) {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=p\n\n")
	for i := 0; i < maxMIMEParts; i++ {
		b.WriteString("--p\nContent-Type: multipart/alternative; boundary=q\n\n--q\n\nx\n--q--\n")
	}
	b.WriteString("--p--\n")
	in := b.String()
	_, body, size, err := summarize(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(in)+strings.Count(in, "\n")) {
		t.Errorf("wrong size %d", size)
	}
	n := 0
	var walk func(p *BodyPart)
	walk = func(p *BodyPart) {
		n++
		for _, c := range p.Children {
			walk(c)
		}
	}
	walk(body)
	if n > maxMIMEParts+1 { // +1: the placeholder child of an empty multipart
		t.Errorf("%d parts, limit %d", n, maxMIMEParts)
	}
	// The last part runs to the end of the message.
	last := body
	for len(last.Children) > 0 {
		last = last.Children[len(last.Children)-1]
	}
	if last.Size < int64(len(in)/4) {
		t.Errorf("last part is %d bytes; the rest of the message should be its body", last.Size)
	}
}

func TestSummarize_readError(t *testing.T) {
	r := io.MultiReader(strings.NewReader("Subject: x\n\nbody"), iotest.ErrReader(io.ErrClosedPipe))
	if _, _, _, err := summarize(r); err != io.ErrClosedPipe {
		t.Fatalf("err = %v, want %v", err, io.ErrClosedPipe)
	}
}

func TestSummarize_params(t *testing.T) {
	tests := []struct {
		ct     string
		typ    string
		params map[string]string
	}{
		{`text/plain; charset="utf-8"`, "text/plain", map[string]string{"charset": "utf-8"}},
		{`multipart/mixed; boundary=----=_Part_1_2.3`, "multipart/mixed", map[string]string{"boundary": "----=_Part_1_2.3"}},
		{`application/x; NAME="a \"q\" b"`, "application/x", map[string]string{"name": `a "q" b`}},
		{`application/x; name*=utf-8''%C3%A4.txt`, "application/x", map[string]string{"name*": "utf-8''%C3%A4.txt"}},
		{`application/x; name*0=a; name*1=b; name*2="c d"`, "application/x", map[string]string{"name": "abc d"}},
		{`application/x; name*1=b; name*0=a`, "application/x", map[string]string{"name": "ab"}},
		{`application/x; name*0*=utf-8''a; name*1=b`, "application/x", map[string]string{"name*": "utf-8''ab"}},
		{`application/x; a=1; A=2`, "application/x", map[string]string{"a": "1"}},
		{`application/x; =1; b; c=3`, "application/x", map[string]string{"c": "3"}},
		{`application/x; q="unterminated`, "application/x", map[string]string{"q": "unterminated"}},
		{`application/x (comment (nested)) ; a=1 (c)`, "application/x", map[string]string{"a": "1"}},
		{`application/x; name*99999999999999=a`, "application/x", nil},
		{`text/plain junk`, "text/plain", map[string]string{"charset": "us-ascii"}},
		{`text`, "text/plain", map[string]string{"charset": "us-ascii"}},
		{`/`, "text/plain", map[string]string{"charset": "us-ascii"}},
		{`tëxt/plain`, "text/plain", map[string]string{"charset": "us-ascii"}},
	}
	for _, tt := range tests {
		t.Run(tt.ct, func(t *testing.T) {
			_, body, _, err := summarize(strings.NewReader("Content-Type: " + tt.ct + "\n\nx\n"))
			if err != nil {
				t.Fatal(err)
			}
			if got := body.Type + "/" + body.Subtype; got != tt.typ || !reflect.DeepEqual(body.Params, tt.params) {
				t.Fatalf("got %s %v, want %s %v", got, body.Params, tt.typ, tt.params)
			}
		})
	}
}

func FuzzSummarize(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "mime", "*.eml"))
	for _, fn := range files {
		if b, err := os.ReadFile(fn); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\n\n--a\n--a--"))
	f.Add([]byte("Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		hdr, body, size, err := summarize(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := crlfSize(bytes.NewReader(in))
		if size != want {
			t.Fatalf("size %d, crlfSize %d", size, want)
		}
		if int64(len(hdr))+body.Size != size {
			t.Fatalf("header %d + body %d != size %d", len(hdr), body.Size, size)
		}
		var check func(p *BodyPart, max int64)
		check = func(p *BodyPart, max int64) {
			if p.Size < 0 || p.Size > max || p.Lines < 0 || p.Type == "" {
				t.Fatalf("bad part %+v (max size %d)", *p, max)
			}
			if p.Type == "multipart" && len(p.Children) == 0 {
				t.Fatalf("multipart without children")
			}
			if p.Type == "message" && p.Subtype == "rfc822" && p.Message == nil {
				t.Fatalf("message/rfc822 without message")
			}
			for _, c := range p.Children {
				check(c, p.Size)
			}
			if p.Message != nil {
				check(p.Message, p.Size)
			}
		}
		check(body, size)
	})
}

func BenchmarkSummarize(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "mime", "mixed-base64.eml"))
	if err != nil {
		b.Fatal(err)
	}
	// A 1 MiB attachment in LF form.
	big := bytes.Replace(raw, []byte("iVBORw0KGgo=\n"), bytes.Repeat([]byte(strings.Repeat("QUJD", 19)+"\n"), 1<<20/77), 1)
	b.SetBytes(int64(len(big)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := summarize(bytes.NewReader(big)); err != nil {
			b.Fatal(err)
		}
	}
}

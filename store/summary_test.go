package store

import (
	"bytes"
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
					&BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "UTF-8", "format": "flowed"}, Encoding: "7bit", Size: 28, Lines: 2},
					&BodyPart{Type: "text", Subtype: "html", Params: map[string]string{"charset": "utf-8"}, Encoding: "quoted-printable", Size: 49, Lines: 2},
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
					&BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit"},
					&BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 6},
				},
			},
	},
	{
			file: "boundary-spaces.eml", size: 96, headerLen: 72,
			body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": " sp "}, Encoding: "7bit", Size: 24,
				Children: []*BodyPart{
					&BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 2},
				},
			},
	},
	{
			file: "boundary-trailing-space.eml", size: 132, headerLen: 76,
			body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": "q"}, Encoding: "7bit", Size: 56,
				Children: []*BodyPart{
					&BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 3},
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
					&BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 5},
					&BodyPart{Type: "message", Subtype: "rfc822", Encoding: "7bit", Size: 18, Lines: 2,
						MessageHeader: []byte("Subject: m\r\n\r\n"),
						Message: &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 4},
					},
				},
			},
	},
	{
			file: "digest.eml", size: 242, headerLen: 118,
			body: &BodyPart{Type: "multipart", Subtype: "digest", Params: map[string]string{"boundary": "dd"}, Encoding: "7bit", Size: 124,
				Children: []*BodyPart{
					&BodyPart{Type: "message", Subtype: "rfc822", Encoding: "7bit", Size: 57, Lines: 3,
						MessageHeader: []byte("From: Bob <bob@example.org>\r\nSubject: first\r\n\r\n"),
						Message: &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 10},
					},
					&BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 13},
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
					&BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit"},
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
					&BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit"},
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
					&BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "iso-8859-1"}, Encoding: "quoted-printable", Size: 30, Lines: 2, Language: []string{"de", "en-GB"}},
					&BodyPart{Type: "application", Subtype: "pdf", Params: map[string]string{"name": "report.pdf"}, ID: "<part2@example.org>", Description: "The quarterly report", Encoding: "BASE64", Size: 180, MD5: "Q2hlY2sgSW50ZWdyaXR5IQ==", Disposition: "attachment", DispParams: map[string]string{"filename": "report.pdf", "size": "120"}, Location: "http://example.org/report.pdf"},
					&BodyPart{Type: "image", Subtype: "png", Encoding: "base64", Size: 12, Disposition: "inline"},
				},
			},
	},
	{
			file: "multipart-no-parts.eml", size: 78, headerLen: 71,
			body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": "z"}, Encoding: "7bit", Size: 7,
				Children: []*BodyPart{
					&BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit"},
				},
			},
	},
	{
			file: "nested-rfc822.eml", size: 590, headerLen: 150,
			body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": "outer"}, Encoding: "7bit", Size: 440,
				Children: []*BodyPart{
					&BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 28, Lines: 1},
					&BodyPart{Type: "message", Subtype: "rfc822", Encoding: "7bit", Size: 290, Lines: 15, Disposition: "inline",
						MessageHeader: []byte("From: Carol <carol@example.org>\r\nTo: Alice <alice@example.org>\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"),
						Message: &BodyPart{Type: "multipart", Subtype: "alternative", Params: map[string]string{"boundary": "inner"}, Encoding: "7bit", Size: 134,
							Children: []*BodyPart{
								&BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 11},
								&BodyPart{Type: "text", Subtype: "html", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 17},
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
					&BodyPart{Type: "application", Subtype: "octet-stream", Params: map[string]string{"name*": "utf-8''%C3%A4rger.bin"}, Encoding: "7bit", Size: 4, Disposition: "attachment", DispParams: map[string]string{"filename": "longname.bin"}},
					&BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii", "delsp": "yes", "format": "Flowed"}, Encoding: "7bit", Size: 4},
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
					&BodyPart{Type: "message", Subtype: "rfc822", Encoding: "7bit",
						Message: &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit"},
					},
				},
			},
	},
	{
			file: "rfc822-header-at-boundary.eml", size: 136, headerLen: 79,
			body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": "z"}, Encoding: "7bit", Size: 57,
				Children: []*BodyPart{
					&BodyPart{Type: "message", Subtype: "rfc822", Encoding: "7bit", Size: 13, Lines: 1,
						MessageHeader: []byte("Subject: in\r\n"),
						Message: &BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit"},
					},
				},
			},
	},
	{
			file: "same-boundary.eml", size: 183, headerLen: 76,
			body: &BodyPart{Type: "multipart", Subtype: "mixed", Params: map[string]string{"boundary": "a"}, Encoding: "7bit", Size: 98,
				Children: []*BodyPart{
					&BodyPart{Type: "multipart", Subtype: "alternative", Params: map[string]string{"boundary": "a"}, Encoding: "7bit", Size: 42,
						Children: []*BodyPart{
							&BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 2},
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
					&BodyPart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 8},
					&BodyPart{Type: "text", Subtype: "html", Params: map[string]string{"charset": "us-ascii"}, Encoding: "7bit", Size: 21, Lines: 1},
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
				stripMessageHeaders(body)
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

func stripMessageHeaders(p *BodyPart) {
	p.MessageHeader = nil
	if p.Message != nil {
		stripMessageHeaders(p.Message)
	}
	for _, c := range p.Children {
		stripMessageHeaders(c)
	}
}

func dumpPart(p *BodyPart) string {
	var b strings.Builder
	var walk func(p *BodyPart, ind string)
	walk = func(p *BodyPart, ind string) {
		c := *p
		c.Children, c.Message, c.MessageHeader = nil, nil, nil
		b.WriteString(ind)
		b.WriteString(strings.TrimPrefix(strings.ReplaceAll(strings.ReplaceAll(
			strings.TrimSpace(strings.ReplaceAll(fmtStruct(c), "\n", " ")), "  ", " "), "store.", ""), "&"))
		b.WriteString("\n")
		if p.Message != nil {
			walk(p.Message, ind+"  msg ")
		}
		for _, ch := range p.Children {
			walk(ch, ind+"  ")
		}
	}
	walk(p, "\n")
	return b.String()
}

func fmtStruct(p BodyPart) string {
	return strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(
		strings.ReplaceAll(reflectString(p), "\t", " "), "\n", " "), "  ", " "))
}

func reflectString(v any) string {
	var b bytes.Buffer
	writeValue(&b, reflect.ValueOf(v))
	return b.String()
}

func writeValue(b *bytes.Buffer, v reflect.Value) {
	t := v.Type()
	b.WriteString("{")
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.IsZero() {
			continue
		}
		b.WriteString(t.Field(i).Name + ":")
		switch f.Kind() {
		case reflect.String:
			b.WriteString(`"` + f.String() + `" `)
		default:
			b.WriteString(strings.ReplaceAll(strings.TrimSpace(reflectFmt(f)), "\n", " ") + " ")
		}
	}
	b.WriteString("}")
}

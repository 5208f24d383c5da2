package imapd

import (
	"strings"
	"testing"
)

// body returns the body range of part in msg, or "<nil>".
func locateBody(t *testing.T, msg string, part []int) string {
	t.Helper()
	loc, err := locatePart(strings.NewReader(msg), part, true)
	if err != nil {
		t.Fatalf("locate %v: %v", part, err)
	}
	if loc == nil {
		return "<nil>"
	}
	return msg[loc.bodyStart:loc.bodyEnd]
}

func TestLocatePart(t *testing.T) {
	long := strings.Repeat("x", 100<<10) // longer than the scanner buffer
	cases := []struct {
		name string
		msg  string
		part []int
		want string
	}{
		{"single part 1", "A: b\r\n\r\nbody\r\n", []int{1}, "body\r\n"},
		{"single part 2", "A: b\r\n\r\nbody\r\n", []int{2}, "<nil>"},
		{"no header", "\r\nbody", []int{1}, "body"},
		{"multipart", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\nX: y\r\n\r\ntwo\r\n--b--\r\n", []int{2}, "two"},
		{"transport padding", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b  \r\n\r\none\r\n--b--\t\r\n", []int{1}, "one"},
		{"no close delimiter", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n", []int{1}, "one\r\n"},
		{"empty body", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX: y\r\n\r\n--b--\r\n", []int{1}, ""},
		{"missing part", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b--\r\n", []int{3}, "<nil>"},
		{"no boundary parameter", "Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\none\r\n", []int{1}, "<nil>"},
		{"boundary prefix is not a delimiter", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n--bx\r\n--b--\r\n", []int{1}, "--bx"},
		{"long line", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n" + long + "\r\n--b--\r\n", []int{1}, long},
		{"nested rfc822 multipart", "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: message/rfc822\r\n\r\n" +
			"Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\nA\r\n--i\r\n\r\nB\r\n--i--\r\n--o--\r\n", []int{1, 2}, "B"},
		{"rfc822 single body", "Content-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\ninner", []int{1, 1}, "inner"},
		{"digest default type", "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: x\r\n\r\ndigest body\r\n--d--\r\n", []int{1, 1}, "digest body"},
		{"inner ends at outer boundary", "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\nin\r\n--o--\r\n", []int{1, 1}, "in"},
	}
	for _, tc := range cases {
		if got := locateBody(t, tc.msg, tc.part); got != tc.want {
			t.Errorf("%s: body of %v = %q, want %q", tc.name, tc.part, trunc(got), trunc(tc.want))
		}
	}
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

func TestFilterHeader(t *testing.T) {
	hdr := []byte("From: a\r\nSubject: one\r\n two\r\nTo: b\r\nsubject : again\r\n\r\n")
	cases := []struct {
		fields, not []string
		want        string
	}{
		{[]string{"SUBJECT"}, nil, "Subject: one\r\n two\r\nsubject : again\r\n\r\n"},
		{nil, []string{"subject", "to"}, "From: a\r\n\r\n"},
		{[]string{"X-None"}, nil, "\r\n"},
		{nil, nil, string(hdr)},
	}
	for _, tc := range cases {
		if got := string(filterHeader(hdr, tc.fields, tc.not)); got != tc.want {
			t.Errorf("filter %v / not %v = %q, want %q", tc.fields, tc.not, got, tc.want)
		}
	}
	// A header without the blank line (a message that is all header) gets
	// none added.
	if got := string(filterHeader([]byte("A: b\r\n"), []string{"a"}, nil)); got != "A: b\r\n" {
		t.Errorf("no blank line: %q", got)
	}
}

// FuzzLocatePart: no panic, and ranges stay inside the message.
func FuzzLocatePart(f *testing.F) {
	f.Add("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b--\r\n", uint8(1), uint8(0))
	f.Add("Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--", uint8(1), uint8(1))
	f.Add("A: b\r\n\r\nbody", uint8(1), uint8(0))
	f.Fuzz(func(t *testing.T, msg string, p1, p2 uint8) {
		part := []int{int(p1)}
		if p2 > 0 {
			part = append(part, int(p2))
		}
		loc, err := locatePart(strings.NewReader(msg), part, true)
		if err != nil || loc == nil {
			return
		}
		if loc.bodyStart < 0 || loc.bodyStart > loc.bodyEnd || loc.bodyEnd > int64(len(msg)) {
			t.Fatalf("range [%d,%d) outside %d", loc.bodyStart, loc.bodyEnd, len(msg))
		}
		if loc.emb != nil && (loc.emb.bodyStart < loc.bodyStart || loc.emb.bodyStart > int64(len(msg))) {
			t.Fatalf("embedded body at %d outside [%d,%d]", loc.emb.bodyStart, loc.bodyStart, len(msg))
		}
	})
}

package store

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"sync"
)

// Messages on disk may have bare LF line endings (most MTAs write them); IMAP
// and POP3 serve them with CRLF, and RFC822.SIZE is the CRLF size.

const crlfBufSize = 32 << 10

// crlfReader converts bare LF to CRLF. A CR not followed by LF and an
// existing CRLF pass through unchanged.
type crlfReader struct {
	r         io.Reader
	buf       []byte // allocated on first Read
	prevCR    bool   // the last byte written to the caller was '\r'
	lfPending bool   // a '\n' of an expanded LF still has to be written
	err       error  // sticky error from r
}

// crlfBufs recycles the readers' buffers; OpenMessage's Close returns them.
var crlfBufs = sync.Pool{New: func() any { return new([crlfBufSize]byte) }}

// release returns the buffer to the pool; the reader must not be used after.
func (c *crlfReader) release() {
	if c.buf != nil {
		crlfBufs.Put((*[crlfBufSize]byte)(c.buf))
		c.buf = nil
	}
}

// newCRLFReader returns a reader of r with every bare LF replaced by CRLF.
// It keeps at most one internal buffer of 32 KiB.
func newCRLFReader(r io.Reader) io.Reader {
	return &crlfReader{r: r}
}

func (c *crlfReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := 0
	if c.lfPending {
		p[0] = '\n'
		n = 1
		c.lfPending = false
		c.prevCR = false
		if len(p) == 1 {
			return n, nil
		}
	}
	if c.err != nil {
		return n, c.err
	}
	// Read at most half of the room left so that expansion always fits,
	// except when only one byte is left: then an LF is split over two reads.
	want := (len(p) - n) / 2
	if want == 0 {
		want = 1
	}
	if c.buf == nil {
		c.buf = crlfBufs.Get().(*[crlfBufSize]byte)[:]
	}
	want = min(want, len(c.buf))
	m, err := c.r.Read(c.buf[:want])
	src := c.buf[:m]
	for len(src) > 0 {
		i := bytes.IndexByte(src, '\n')
		if i < 0 {
			n += copy(p[n:], src)
			c.prevCR = src[len(src)-1] == '\r'
			break
		}
		if i > 0 {
			n += copy(p[n:], src[:i])
			c.prevCR = src[i-1] == '\r'
		}
		src = src[i+1:]
		if !c.prevCR {
			p[n] = '\r'
			n++
			if n == len(p) {
				c.lfPending = true
				break // src is empty here: want was 1
			}
		}
		p[n] = '\n'
		n++
		c.prevCR = false
	}
	if err != nil {
		c.err = err
		if n > 0 || c.lfPending {
			return n, nil
		}
		return 0, err
	}
	return n, nil
}

// crlfSize returns the size of the data read from r in CRLF form: its length
// plus one for every bare LF.
func crlfSize(r io.Reader) (int64, error) {
	var c crlfCounter
	_, err := io.Copy(&c, r)
	return c.size(), err
}

// parseSizesFromKey extracts the ",S=<size>" (file size) and ",W=<size>"
// (RFC822.SIZE, CRLF form) fields Dovecot and others put in Maildir file
// names, e.g. "1700000000.M1P2.host,S=1234,W=1260:2,S". Only the part before
// the first ':' is looked at. An absent or malformed field is -1; ok reports
// whether at least one was found.
func parseSizesFromKey(key string) (s, w int64, ok bool) {
	s, w = -1, -1
	if i := strings.IndexByte(key, ':'); i >= 0 {
		key = key[:i]
	}
	fields := strings.Split(key, ",")
	for _, f := range fields[1:] {
		if len(f) < 3 || f[1] != '=' || (f[0] != 'S' && f[0] != 'W') {
			continue
		}
		v := f[2:]
		if v[0] < '0' || v[0] > '9' { // no signs
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		switch {
		case f[0] == 'S' && s < 0:
			s = n
		case f[0] == 'W' && w < 0:
			w = n
		}
	}
	return s, w, s >= 0 || w >= 0
}

package pop3d

import (
	"bufio"
	"bytes"
	"io"
)

// dotWriter writes a message as a POP3 multi-line response body
// (RFC 1939 §3): lines starting with "." get another "." in front, bare LFs
// become CRLF, and Close ends the response with CRLF "." CRLF, adding a CRLF
// first when the message did not end with one.
//
// Unlike net/textproto's DotWriter it copies whole line runs with one call
// instead of byte by byte, which matters for RETR throughput.
type dotWriter struct {
	w *bufio.Writer
	// bol is true at the beginning of a line.
	bol bool
	// cr is true when the last byte written was a CR.
	cr bool
}

func newDotWriter(w *bufio.Writer) *dotWriter {
	return &dotWriter{w: w, bol: true}
}

// Write implements io.Writer. It returns len(p) on success.
//
// It copies runs of p that need no change with one call and breaks them only
// where a byte must be inserted: a "." at the beginning of a line, or a CR
// before a bare LF. CRLF input without leading dots (the common case) is
// copied whole.
func (d *dotWriter) Write(p []byte) (int, error) {
	n := len(p)
	if n == 0 {
		return 0, nil
	}
	if d.bol && p[0] == '.' {
		// RFC 1939 §3: byte-stuff a leading termination octet.
		if err := d.w.WriteByte('.'); err != nil {
			return 0, err
		}
	}
	start := 0 // p[start:] is not written yet
	for i := 0; ; {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			break
		}
		lf := i + j
		bareLF := lf > 0 && p[lf-1] != '\r' || lf == 0 && !d.cr
		dot := lf+1 < len(p) && p[lf+1] == '.'
		if bareLF {
			if _, err := d.w.Write(p[start:lf]); err != nil {
				return 0, err
			}
			if err := d.w.WriteByte('\r'); err != nil {
				return 0, err
			}
			start = lf
		}
		if dot {
			if _, err := d.w.Write(p[start : lf+1]); err != nil {
				return 0, err
			}
			if err := d.w.WriteByte('.'); err != nil {
				return 0, err
			}
			start = lf + 1
		}
		i = lf + 1
	}
	if _, err := d.w.Write(p[start:]); err != nil {
		return 0, err
	}
	last := p[n-1]
	d.bol = last == '\n'
	d.cr = last == '\r'
	return n, nil
}

// Close terminates the multi-line response. It does not flush.
func (d *dotWriter) Close() error {
	if !d.bol {
		// The message did not end with a line terminator. A trailing CR
		// already written just needs its LF.
		term := "\r\n"
		if d.cr {
			term = "\n"
		}
		if _, err := d.w.WriteString(term); err != nil {
			return err
		}
		d.bol, d.cr = true, false
	}
	_, err := d.w.WriteString(".\r\n")
	return err
}

// copyTop copies the header of the message in r, the blank line after it and
// then at most lines lines of the body to w (RFC 1939 §7 TOP). A message
// without a blank line is all header and is copied whole. It reads line by
// line with a bounded buffer, so long lines are copied in pieces.
func copyTop(w io.Writer, r *bufio.Reader, lines int) error {
	inHeader := true
	bol := true // at the beginning of a line
	for inHeader || lines > 0 {
		frag, err := r.ReadSlice('\n')
		if len(frag) > 0 {
			if _, werr := w.Write(frag); werr != nil {
				return werr
			}
			complete := frag[len(frag)-1] == '\n'
			if complete {
				if inHeader {
					if bol && (len(frag) == 1 || len(frag) == 2 && frag[0] == '\r') {
						inHeader = false // the blank line ends the header
					}
				} else {
					lines--
				}
			}
			bol = complete
		}
		switch err {
		case nil, bufio.ErrBufferFull:
		case io.EOF:
			return nil
		default:
			return err
		}
	}
	return nil
}

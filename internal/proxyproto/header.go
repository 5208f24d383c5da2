package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Header is a parsed PROXY protocol header.
type Header struct {
	// Version is 1 (text) or 2 (binary).
	Version int
	// Local is true for a v2 LOCAL command: the balancer opened the
	// connection itself (a health check); the peer address stays.
	Local bool
	// Source and Destination are the client's address and the address
	// it connected to. Both are invalid (zero) for LOCAL, v1 UNKNOWN and
	// v2 UNSPEC or AF_UNIX headers: the peer address stays.
	Source, Destination netip.AddrPort
}

// Limits from proxy-protocol.txt §2.1 and §2.2.
const (
	// maxV1 is the longest v1 header, CRLF included (§2.1: "107 bytes").
	maxV1 = 107
	// v2HeaderLen is the fixed part of a v2 header: signature, ver_cmd,
	// fam, len.
	v2HeaderLen = 16
	// maxV2Len is the largest v2 len field we accept: the addresses plus
	// TLVs, which we skip. The spec allows 65535; balancers send far
	// less, and bounding it bounds what a connection can make us read.
	maxV2Len = 1024
	// maxHeader is the most bytes a header can take.
	maxHeader = v2HeaderLen + maxV2Len
)

var (
	sigV1 = []byte("PROXY ")
	// sigV2 is the v2 signature (§2.2).
	sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// errIncomplete means the buffer holds the start of a header but not all
// of it: read more.
var errIncomplete = errors.New("proxyproto: incomplete header")

// ErrNoHeader means the connection does not start with a PROXY protocol
// signature.
var ErrNoHeader = errors.New("proxyproto: no PROXY protocol header")

// errInvalid wraps every malformed-header error.
var errInvalid = errors.New("proxyproto: invalid header")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInvalid, fmt.Sprintf(format, args...))
}

// parse parses the header at the start of b. It returns the header and
// its length n (b[n:] is the payload that followed it); errIncomplete when
// b is a proper prefix of a possible header; ErrNoHeader when b cannot
// start a header; or an invalid-header error. It never looks at more than
// maxHeader bytes of b.
func parse(b []byte) (Header, int, error) {
	switch {
	case len(b) == 0:
		return Header{}, 0, errIncomplete
	case hasPrefix(b, sigV1):
		return parseV1(b)
	case hasPrefix(b, sigV2):
		return parseV2(b)
	}
	return Header{}, 0, ErrNoHeader
}

// hasPrefix reports whether b agrees with sig on their common length: a b
// shorter than sig may still become a header.
func hasPrefix(b, sig []byte) bool {
	n := min(len(b), len(sig))
	return n > 0 && bytes.Equal(b[:n], sig[:n])
}

// parseV1 parses "PROXY TCP4 src dst sport dport\r\n" (§2.1).
func parseV1(b []byte) (Header, int, error) {
	if len(b) > maxV1 {
		b = b[:maxV1]
	}
	end := bytes.Index(b, []byte("\r\n"))
	if end < 0 {
		if len(b) == maxV1 {
			return Header{}, 0, invalid("v1 header longer than %d bytes", maxV1)
		}
		if bytes.IndexByte(b, '\n') >= 0 {
			return Header{}, 0, invalid("v1 header: bare LF")
		}
		return Header{}, 0, errIncomplete
	}
	n := end + 2
	line := string(b[len(sigV1):end])
	h := Header{Version: 1}
	// §2.1: UNKNOWN: the receiver must ignore anything up to the CRLF
	// and use the real connection addresses.
	if line == "UNKNOWN" || strings.HasPrefix(line, "UNKNOWN ") {
		return h, n, nil
	}
	f := strings.Split(line, " ")
	if len(f) != 5 {
		return Header{}, 0, invalid("v1 header: want 5 fields after PROXY, got %d", len(f))
	}
	src, err1 := netip.ParseAddr(f[1])
	dst, err2 := netip.ParseAddr(f[2])
	if err1 != nil || err2 != nil {
		return Header{}, 0, invalid("v1 header: bad address")
	}
	switch f[0] {
	case "TCP4":
		if !src.Is4() || !dst.Is4() {
			return Header{}, 0, invalid("v1 header: TCP4 with a non-IPv4 address")
		}
	case "TCP6":
		if !src.Is6() || !dst.Is6() || src.Zone() != "" || dst.Zone() != "" {
			return Header{}, 0, invalid("v1 header: TCP6 with a non-IPv6 address")
		}
	default:
		return Header{}, 0, invalid("v1 header: unknown protocol")
	}
	sp, err1 := parsePort(f[3])
	dp, err2 := parsePort(f[4])
	if err1 != nil || err2 != nil {
		return Header{}, 0, invalid("v1 header: bad port")
	}
	h.Source = netip.AddrPortFrom(src.Unmap(), sp)
	h.Destination = netip.AddrPortFrom(dst.Unmap(), dp)
	return h, n, nil
}

// parsePort parses a decimal port 0-65535: digits only, no sign, no
// leading zero (§2.1).
func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 || (len(s) > 1 && s[0] == '0') {
		return 0, errInvalid
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errInvalid
		}
	}
	p, err := strconv.ParseUint(s, 10, 16)
	return uint16(p), err
}

// v2 fields (§2.2).
const (
	cmdLocal = 0x0
	cmdProxy = 0x1

	afUnspec = 0x0
	afInet   = 0x1
	afInet6  = 0x2
	afUnix   = 0x3

	protoUnspec = 0x0
	protoStream = 0x1
)

// parseV2 parses the binary header (§2.2).
func parseV2(b []byte) (Header, int, error) {
	if len(b) < v2HeaderLen {
		return Header{}, 0, errIncomplete
	}
	verCmd, fam := b[12], b[13]
	if verCmd>>4 != 2 {
		return Header{}, 0, invalid("v2 header: version %d", verCmd>>4)
	}
	length := int(binary.BigEndian.Uint16(b[14:16]))
	if length > maxV2Len {
		return Header{}, 0, invalid("v2 header: length %d over %d", length, maxV2Len)
	}
	n := v2HeaderLen + length
	if len(b) < n {
		return Header{}, 0, errIncomplete
	}
	body := b[v2HeaderLen:n]
	h := Header{Version: 2}
	switch verCmd & 0xf {
	case cmdLocal:
		// §2.2: LOCAL: the receiver must use the real connection
		// endpoints and ignore the address block.
		h.Local = true
		return h, n, nil
	case cmdProxy:
	default:
		return Header{}, 0, invalid("v2 header: command %d", verCmd&0xf)
	}
	af, proto := fam>>4, fam&0xf
	if proto != protoUnspec && proto != protoStream {
		return Header{}, 0, invalid("v2 header: transport %d is not a stream", proto)
	}
	switch af {
	case afUnspec:
		// §2.2: unknown family: use the real endpoints.
		return h, n, nil
	case afInet:
		if len(body) < 12 {
			return Header{}, 0, invalid("v2 header: length %d too short for IPv4", length)
		}
		src := netip.AddrFrom4([4]byte(body[0:4]))
		dst := netip.AddrFrom4([4]byte(body[4:8]))
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[8:10]))
		h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[10:12]))
	case afInet6:
		if len(body) < 36 {
			return Header{}, 0, invalid("v2 header: length %d too short for IPv6", length)
		}
		src := netip.AddrFrom16([16]byte(body[0:16])).Unmap()
		dst := netip.AddrFrom16([16]byte(body[16:32])).Unmap()
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[32:34]))
		h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[34:36]))
	case afUnix:
		if len(body) < 216 {
			return Header{}, 0, invalid("v2 header: length %d too short for AF_UNIX", length)
		}
		// A client on a local socket has no IP address: keep the peer's.
	default:
		return Header{}, 0, invalid("v2 header: address family %d", af)
	}
	// The rest of body is TLVs (§2.2.x), which we do not use.
	return h, n, nil
}

package proxyproto

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// v2 builds a v2 header: ver_cmd, fam, then body (addresses and TLVs).
func v2(verCmd, fam byte, body []byte) []byte {
	b := append([]byte{}, sigV2...)
	b = append(b, verCmd, fam, 0, 0)
	binary.BigEndian.PutUint16(b[14:], uint16(len(body)))
	return append(b, body...)
}

func inet4Body(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sp)
	return binary.BigEndian.AppendUint16(b, dp)
}

func inet6Body(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sp)
	return binary.BigEndian.AppendUint16(b, dp)
}

func TestParse(t *testing.T) {
	ap := netip.MustParseAddrPort
	tlv := []byte{0x04, 0x00, 0x03, 'a', 'b', 'c'} // PP2_TYPE_NOOP with 3 bytes
	tests := []struct {
		name    string
		in      string
		want    Header
		n       int // header length; 0 means len(in)
		wantErr error
	}{
		{name: "v1 tcp4", in: "PROXY TCP4 192.0.2.1 198.51.100.2 56324 993\r\n",
			want: Header{Version: 1, Source: ap("192.0.2.1:56324"), Destination: ap("198.51.100.2:993")}},
		{name: "v1 tcp6", in: "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n",
			want: Header{Version: 1, Source: ap("[2001:db8::1]:1"), Destination: ap("[2001:db8::2]:65535")}},
		{name: "v1 tcp6 v4-mapped unmapped", in: "PROXY TCP6 ::ffff:192.0.2.1 ::1 0 143\r\n",
			want: Header{Version: 1, Source: ap("192.0.2.1:0"), Destination: ap("[::1]:143")}},
		{name: "v1 payload follows", in: "PROXY TCP4 192.0.2.1 192.0.2.2 1000 143\r\na001 NOOP\r\n",
			want: Header{Version: 1, Source: ap("192.0.2.1:1000"), Destination: ap("192.0.2.2:143")}, n: 41},
		{name: "v1 unknown", in: "PROXY UNKNOWN\r\n", want: Header{Version: 1}},
		{name: "v1 unknown with junk", in: "PROXY UNKNOWN whatever 1 2 3\r\n", want: Header{Version: 1}},
		{name: "v1 max length", in: "PROXY UNKNOWN " + strings.Repeat("x", maxV1-16) + "\r\n", want: Header{Version: 1}},
		{name: "v1 too long", in: "PROXY UNKNOWN " + strings.Repeat("x", maxV1) + "\r\n", wantErr: errInvalid},
		{name: "v1 incomplete", in: "PROXY TCP4 192.0.2.1", wantErr: errIncomplete},
		{name: "v1 sig prefix", in: "PRO", wantErr: errIncomplete},
		{name: "v1 bare LF", in: "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n", wantErr: errInvalid},
		{name: "v1 tcp4 with v6", in: "PROXY TCP4 ::1 ::1 1 2\r\n", wantErr: errInvalid},
		{name: "v1 tcp6 with v4", in: "PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n", wantErr: errInvalid},
		{name: "v1 zone", in: "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", wantErr: errInvalid},
		{name: "v1 port too big", in: "PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n", wantErr: errInvalid},
		{name: "v1 port leading zero", in: "PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n", wantErr: errInvalid},
		{name: "v1 port sign", in: "PROXY TCP4 192.0.2.1 192.0.2.2 +1 2\r\n", wantErr: errInvalid},
		{name: "v1 double space", in: "PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n", wantErr: errInvalid},
		{name: "v1 missing port", in: "PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n", wantErr: errInvalid},
		{name: "v1 udp", in: "PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n", wantErr: errInvalid},
		{name: "v1 lower case", in: "proxy TCP4 192.0.2.1 192.0.2.2 1 2\r\n", wantErr: ErrNoHeader},
		{name: "imap command", in: "a001 LOGIN x y\r\n", wantErr: ErrNoHeader},
		{name: "tls client hello", in: "\x16\x03\x01\x00\xa5\x01", wantErr: ErrNoHeader},

		{name: "v2 inet", in: string(v2(0x21, 0x11, inet4Body("192.0.2.1", "192.0.2.2", 40000, 995))),
			want: Header{Version: 2, Source: ap("192.0.2.1:40000"), Destination: ap("192.0.2.2:995")}},
		{name: "v2 inet unspec proto", in: string(v2(0x21, 0x10, inet4Body("192.0.2.1", "192.0.2.2", 1, 2))),
			want: Header{Version: 2, Source: ap("192.0.2.1:1"), Destination: ap("192.0.2.2:2")}},
		{name: "v2 inet6", in: string(v2(0x21, 0x21, inet6Body("2001:db8::1", "2001:db8::2", 40000, 993))),
			want: Header{Version: 2, Source: ap("[2001:db8::1]:40000"), Destination: ap("[2001:db8::2]:993")}},
		{name: "v2 inet with tlvs", in: string(v2(0x21, 0x11, append(inet4Body("192.0.2.1", "192.0.2.2", 1, 2), tlv...))) + "payload",
			want: Header{Version: 2, Source: ap("192.0.2.1:1"), Destination: ap("192.0.2.2:2")}, n: 16 + 12 + len(tlv)},
		{name: "v2 local", in: string(v2(0x20, 0x00, nil)), want: Header{Version: 2, Local: true}},
		{name: "v2 local ignores addresses", in: string(v2(0x20, 0x11, inet4Body("192.0.2.1", "192.0.2.2", 1, 2))),
			want: Header{Version: 2, Local: true}},
		{name: "v2 unspec", in: string(v2(0x21, 0x00, nil)), want: Header{Version: 2}},
		{name: "v2 unix", in: string(v2(0x21, 0x31, make([]byte, 216))), want: Header{Version: 2}},
		{name: "v2 unix short", in: string(v2(0x21, 0x31, make([]byte, 100))), wantErr: errInvalid},
		{name: "v2 inet short", in: string(v2(0x21, 0x11, make([]byte, 11))), wantErr: errInvalid},
		{name: "v2 inet6 short", in: string(v2(0x21, 0x21, make([]byte, 12))), wantErr: errInvalid},
		{name: "v2 dgram", in: string(v2(0x21, 0x12, inet4Body("192.0.2.1", "192.0.2.2", 1, 2))), wantErr: errInvalid},
		{name: "v2 bad family", in: string(v2(0x21, 0x41, make([]byte, 12))), wantErr: errInvalid},
		{name: "v2 version 1", in: string(v2(0x11, 0x11, inet4Body("192.0.2.1", "192.0.2.2", 1, 2))), wantErr: errInvalid},
		{name: "v2 bad command", in: string(v2(0x22, 0x11, inet4Body("192.0.2.1", "192.0.2.2", 1, 2))), wantErr: errInvalid},
		{name: "v2 too long", in: string(v2(0x21, 0x11, make([]byte, maxV2Len+1))), wantErr: errInvalid},
		{name: "v2 max length", in: string(v2(0x21, 0x11, make([]byte, maxV2Len))),
			want: Header{Version: 2, Source: ap("0.0.0.0:0"), Destination: ap("0.0.0.0:0")}},
		{name: "v2 truncated body", in: string(v2(0x21, 0x11, inet4Body("192.0.2.1", "192.0.2.2", 1, 2))[:20]), wantErr: errIncomplete},
		{name: "v2 truncated fixed part", in: string(sigV2) + "\x21", wantErr: errIncomplete},
		{name: "v2 sig prefix", in: "\r\n\r\n", wantErr: errIncomplete},
		{name: "empty", in: "", wantErr: errIncomplete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := parse([]byte(tt.in))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("parse(%q) error = %v, want %v", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse(%q): %v", tt.in, err)
			}
			if h != tt.want {
				t.Errorf("parse(%q) = %+v, want %+v", tt.in, h, tt.want)
			}
			wantN := tt.n
			if wantN == 0 {
				wantN = len(tt.in)
			}
			if n != wantN {
				t.Errorf("parse(%q) length = %d, want %d", tt.in, n, wantN)
			}
		})
	}
}

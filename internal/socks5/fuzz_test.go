package socks5

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
)

// FuzzReadRequest feeds ReadRequest any client bytes. It must not panic,
// must read at most maxHandshakeLen bytes, and on success must have read
// exactly the handshake it returns, answered as the protocol says. mode
// selects how reads are split (its low bits) and whether, and from which,
// a write fails (bit 7, bits 4-6).
func FuzzReadRequest(f *testing.F) {
	seeds := [][]byte{
		cat(greetNoAuth, x("05 01 00 03 09"), "127.0.0.1", x("20 8d")),
		cat(greetNoAuth, x("05 01 00 03 0b"), "2001:db8::1", x("20 8d")),
		cat(greetNoAuth, x("05 01 00 03 3e"), onionV3, x("20 8d")),
		cat(greetNoAuth, x("05 01 00 03 09"), "localhost", x("48 0c")),
		cat(greetAuth, x("01 01"), "0", x("01"), "0", x("05 01 00 03 0b"), "203.0.113.7", x("20 8d")),
		cat(greetAuth, x("01 ff"), strings.Repeat("u", 255), x("ff"), strings.Repeat("p", 255),
			x("05 01 00 03 ff"), strings.Repeat("n", 255), x("ff ff"), "trailing stream bytes"),
		cat(greetNoAuth, x("05 01 00 01 cb 00 71 07 20 8d")),
		cat(greetNoAuth, x("05 01 00 04 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 20 8d")),
		cat(greetNoAuth, x("05 02 00 01 7f 00 00 01 20 8d")),
		cat(greetNoAuth, x("05 01 00 09 7f 00 00 01 20 8d")),
		cat(greetNoAuth, x("05 01 00 03 00 20 8d")),
		x("04 01 20 8d 7f 00 00 01 00"),
		x("05 01 01"),
		x("05 00"),
	}
	for _, s := range seeds {
		f.Add(s, byte(0))
		f.Add(s, byte(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode byte) {
		c := newFakeConn(data, readers[int(mode&0x0f)%len(readers)].wrap)
		if mode&0x80 != 0 {
			c.failAt = int(mode>>4&7) + 1
		}
		req, err := ReadRequest(c)
		n := c.consumed()
		if n > maxHandshakeLen {
			t.Fatalf("read %d bytes, more than %d", n, maxHandshakeLen)
		}
		out := c.out.Bytes()
		if len(out) > 2+2+10 {
			t.Fatalf("wrote %d bytes: % x", len(out), out)
		}
		if err != nil {
			if req != nil {
				t.Fatalf("request %+v with error %v", *req, err)
			}
			return
		}

		// Rebuild the handshake from what came back: it must be the
		// bytes read, all of them.
		nmethods := int(data[1])
		methods := data[2 : 2+nmethods]
		want := append([]byte{0x05, byte(nmethods)}, methods...)
		if bytes.IndexByte(methods, methodUserPass) >= 0 {
			want = append(want, authVersion, byte(len(req.User)))
			want = append(append(want, req.User...), byte(len(req.Pass)))
			want = append(want, req.Pass...)
			if !bytes.Equal(out, x("05 02 01 00")) {
				t.Fatalf("wrote % x, want 05 02 01 00", out)
			}
		} else if !bytes.Equal(out, x("05 00")) {
			t.Fatalf("wrote % x, want 05 00", out)
		}
		want = append(want, 0x05, cmdConnect, data[len(want)+2], req.ATYP)
		switch req.ATYP {
		case AddrTypeDomain:
			if len(req.Host) == 0 || strings.IndexByte(req.Host, 0) >= 0 {
				t.Fatalf("bad name %q accepted", req.Host)
			}
			want = append(append(want, byte(len(req.Host))), req.Host...)
		case AddrTypeIPv4:
			a := netip.MustParseAddr(req.Host).As4()
			want = append(want, a[:]...)
		case AddrTypeIPv6:
			a := netip.MustParseAddr(req.Host).As16()
			want = append(want, a[:]...)
		default:
			t.Fatalf("ATYP %d accepted", req.ATYP)
		}
		want = binary.BigEndian.AppendUint16(want, req.Port)
		if n != len(want) || !bytes.Equal(data[:n], want) {
			t.Fatalf("read % x\nrebuilt % x", data[:n], want)
		}
	})
}

package socks5

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

// The client's messages, as Bitcoin Core's Socks5 (src/netbase.cpp)
// writes them.
var (
	greetNoAuth = x("05 01 00")    // no credentials
	greetAuth   = x("05 02 00 02") // -proxyrandomize credentials
	// onionV3 is a name of the .onion v3 form: 56 base32 characters.
	onionV3 = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
)

// The server's answers.
var (
	methodNoneOut     = x("05 00")
	methodUserPassOut = x("05 02")
	authOKOut         = x("01 00")
	// replyOK is WriteReply(Succeeded, 127.0.0.1:54321).
	replyOK    = x("05 00 00 01 7f 00 00 01 d4 31")
	boundLocal = netip.MustParseAddrPort("127.0.0.1:54321")
)

// failure returns the reply ReadRequest sends with code: bound 0.0.0.0:0.
func failure(code byte) []byte { return cat(x("05"), []byte{code}, x("00 01 00 00 00 00 00 00")) }

func TestReadRequest_Bitcoind(t *testing.T) {
	if len(onionV3) != 0x3e {
		t.Fatalf("onion name is %d bytes, the test's LEN says 0x3e", len(onionV3))
	}
	name255 := strings.Repeat("a", 255)
	tests := []struct {
		name string
		in   []byte // what the client sends, up to its request
		out  []byte // what the server sends, reply included
		want Request
	}{
		{
			name: "ipv4 literal",
			in:   cat(greetNoAuth, x("05 01 00 03 09"), "127.0.0.1", x("20 8d")),
			out:  cat(methodNoneOut, replyOK),
			want: Request{Host: "127.0.0.1", Port: 8333, ATYP: AddrTypeDomain},
		},
		{
			name: "ipv6 literal",
			in:   cat(greetNoAuth, x("05 01 00 03 0b"), "2001:db8::1", x("20 8d")),
			out:  cat(methodNoneOut, replyOK),
			want: Request{Host: "2001:db8::1", Port: 8333, ATYP: AddrTypeDomain},
		},
		{
			name: "onion",
			in:   cat(greetNoAuth, x("05 01 00 03 3e"), onionV3, x("20 8d")),
			out:  cat(methodNoneOut, replyOK),
			want: Request{Host: onionV3, Port: 8333, ATYP: AddrTypeDomain},
		},
		{
			name: "localhost",
			in:   cat(greetNoAuth, x("05 01 00 03 09"), "localhost", x("48 0c")),
			out:  cat(methodNoneOut, replyOK),
			want: Request{Host: "localhost", Port: 18444, ATYP: AddrTypeDomain},
		},
		{
			// Core's counter credentials: "0" and "0" for the first connection.
			name: "credentials ipv4 literal",
			in:   cat(greetAuth, x("01 01"), "0", x("01"), "0", x("05 01 00 03 0b"), "203.0.113.7", x("20 8d")),
			out:  cat(methodUserPassOut, authOKOut, replyOK),
			want: Request{Host: "203.0.113.7", Port: 8333, ATYP: AddrTypeDomain, User: "0", Pass: "0"},
		},
		{
			name: "credentials onion",
			in: cat(greetAuth, x("01 10"), "5c2a9e7b0d13f46a", x("10"), "f00dfeedc0ffee42",
				x("05 01 00 03 3e"), onionV3, x("20 8d")),
			out: cat(methodUserPassOut, authOKOut, replyOK),
			want: Request{Host: onionV3, Port: 8333, ATYP: AddrTypeDomain,
				User: "5c2a9e7b0d13f46a", Pass: "f00dfeedc0ffee42"},
		},
		{
			name: "credentials ipv6 literal",
			in:   cat(greetAuth, x("01 02"), "17", x("02"), "17", x("05 01 00 03 03"), "::1", x("47 9d")),
			out:  cat(methodUserPassOut, authOKOut, replyOK),
			want: Request{Host: "::1", Port: 18333, ATYP: AddrTypeDomain, User: "17", Pass: "17"},
		},
		{
			name: "credentials empty",
			in:   cat(greetAuth, x("01 00 00"), x("05 01 00 03 09"), "localhost", x("20 8d")),
			out:  cat(methodUserPassOut, authOKOut, replyOK),
			want: Request{Host: "localhost", Port: 8333, ATYP: AddrTypeDomain},
		},
		{
			name: "credentials 255 bytes",
			in: cat(greetAuth, x("01 ff"), name255, x("ff"), name255,
				x("05 01 00 03 09"), "localhost", x("20 8d")),
			out:  cat(methodUserPassOut, authOKOut, replyOK),
			want: Request{Host: "localhost", Port: 8333, ATYP: AddrTypeDomain, User: name255, Pass: name255},
		},
		{
			name: "name 255 bytes",
			in:   cat(greetNoAuth, x("05 01 00 03 ff"), name255, x("00 50")),
			out:  cat(methodNoneOut, replyOK),
			want: Request{Host: name255, Port: 80, ATYP: AddrTypeDomain},
		},
		{
			name: "atyp 1",
			in:   cat(greetNoAuth, x("05 01 00 01 cb 00 71 07 20 8d")),
			out:  cat(methodNoneOut, replyOK),
			want: Request{Host: "203.0.113.7", Port: 8333, ATYP: AddrTypeIPv4},
		},
		{
			name: "atyp 4",
			in:   cat(greetNoAuth, x("05 01 00 04 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 20 8d")),
			out:  cat(methodNoneOut, replyOK),
			want: Request{Host: "2001:db8::1", Port: 8333, ATYP: AddrTypeIPv6},
		},
		{
			name: "atyp 4 ipv4-mapped",
			in:   cat(greetNoAuth, x("05 01 00 04 00 00 00 00 00 00 00 00 00 00 ff ff cb 00 71 07 00 01")),
			out:  cat(methodNoneOut, replyOK),
			want: Request{Host: "::ffff:203.0.113.7", Port: 1, ATYP: AddrTypeIPv6},
		},
		{
			// curl, Firefox and others offer several methods; 00 it is.
			name: "methods 00 01 80",
			in:   cat(x("05 03 00 01 80"), x("05 01 00 03 09"), "localhost", x("20 8d")),
			out:  cat(methodNoneOut, replyOK),
			want: Request{Host: "localhost", Port: 8333, ATYP: AddrTypeDomain},
		},
		{
			name: "methods 02 before 00",
			in:   cat(x("05 02 02 00"), x("01 01"), "u", x("01"), "p", x("05 01 00 03 09"), "localhost", x("20 8d")),
			out:  cat(methodUserPassOut, authOKOut, replyOK),
			want: Request{Host: "localhost", Port: 8333, ATYP: AddrTypeDomain, User: "u", Pass: "p"},
		},
		{
			name: "rsv ignored",
			in:   cat(greetNoAuth, x("05 01 ff 01 7f 00 00 01 20 8d")),
			out:  cat(methodNoneOut, replyOK),
			want: Request{Host: "127.0.0.1", Port: 8333, ATYP: AddrTypeIPv4},
		},
	}
	stream := []byte("\x0b\x11\x09\x07version") // the peer's first bytes follow
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				c := newFakeConn(cat(tt.in, stream), rd.wrap)
				req, err := ReadRequest(c)
				if err != nil {
					t.Fatalf("ReadRequest: %v", err)
				}
				if *req != tt.want {
					t.Errorf("request = %+v, want %+v", *req, tt.want)
				}
				if err := WriteReply(c, Succeeded, boundLocal); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(c.out.Bytes(), tt.out) {
					t.Errorf("server sent % x\nwant        % x", c.out.Bytes(), tt.out)
				}
				if rest := c.rest(); !bytes.Equal(rest, stream) {
					t.Errorf("left % x unread, want the stream % x", rest, stream)
				}
			})
		}
	}
}

func TestReadRequest_Bad(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		out    []byte // everything the server sends
		unread int    // bytes of in left unread
		wantIs error  // ErrBadRequest, or an I/O error
	}{
		{
			name:   "bind",
			in:     cat(greetNoAuth, x("05 02 00 01 7f 00 00 01 20 8d")),
			out:    cat(methodNoneOut, failure(CommandNotSupported)),
			wantIs: ErrBadRequest,
		},
		{
			name:   "udp associate",
			in:     cat(greetNoAuth, x("05 03 00 03 09"), "localhost", x("00 00")),
			out:    cat(methodNoneOut, failure(CommandNotSupported)),
			wantIs: ErrBadRequest,
		},
		{
			name:   "bind after credentials",
			in:     cat(greetAuth, x("01 01 61 01 62"), x("05 02 00 04"), make([]byte, 16), x("20 8d")),
			out:    cat(methodUserPassOut, authOKOut, failure(CommandNotSupported)),
			wantIs: ErrBadRequest,
		},
		{
			name:   "command 0",
			in:     cat(greetNoAuth, x("05 00 00 01 7f 00 00 01 20 8d")),
			out:    cat(methodNoneOut, failure(CommandNotSupported)),
			wantIs: ErrBadRequest,
		},
		{
			// The address cannot be framed, so its bytes stay unread.
			name:   "atyp 9",
			in:     cat(greetNoAuth, x("05 01 00 09 7f 00 00 01 20 8d")),
			out:    cat(methodNoneOut, failure(AddressTypeNotSupported)),
			unread: 6,
			wantIs: ErrBadRequest,
		},
		{
			name:   "atyp 2",
			in:     cat(greetNoAuth, x("05 01 00 02 7f 00 00 01 20 8d")),
			out:    cat(methodNoneOut, failure(AddressTypeNotSupported)),
			unread: 6,
			wantIs: ErrBadRequest,
		},
		{
			name:   "empty name",
			in:     cat(greetNoAuth, x("05 01 00 03 00 20 8d")),
			out:    cat(methodNoneOut, failure(GeneralFailure)),
			wantIs: ErrBadRequest,
		},
		{
			name:   "name with NUL",
			in:     cat(greetNoAuth, x("05 01 00 03 0a"), "localhost\x00", x("20 8d")),
			out:    cat(methodNoneOut, failure(GeneralFailure)),
			wantIs: ErrBadRequest,
		},
		{
			name:   "request version 4",
			in:     cat(greetNoAuth, x("04 01 00 01 7f 00 00 01 20 8d")),
			out:    cat(methodNoneOut, failure(GeneralFailure)),
			unread: 6,
			wantIs: ErrBadRequest,
		},
		{
			// SOCKS4: VN CD DSTPORT DSTIP USERID NUL. RFC 1928 defines no
			// answer and a SOCKS4 one would be a second protocol: silence.
			name:   "socks4",
			in:     x("04 01 20 8d 7f 00 00 01 00"),
			unread: 7,
			wantIs: ErrBadRequest,
		},
		{
			name:   "http",
			in:     []byte("CONNECT 127.0.0.1:8333 HTTP/1.1\r\n\r\n"),
			unread: 33,
			wantIs: ErrBadRequest,
		},
		{
			name:   "gssapi only",
			in:     x("05 01 01"),
			out:    x("05 ff"),
			wantIs: ErrBadRequest,
		},
		{
			name:   "no methods",
			in:     x("05 00"),
			out:    x("05 ff"),
			wantIs: ErrBadRequest,
		},
		{
			name:   "auth version 5",
			in:     cat(greetAuth, x("05 01 00 03 09"), "localhost", x("20 8d")),
			out:    cat(methodUserPassOut, x("01 01")),
			unread: 14,
			wantIs: ErrBadRequest,
		},
		{
			name:   "empty",
			wantIs: io.EOF,
		},
		{
			name:   "greeting cut",
			in:     x("05 02 00"),
			wantIs: io.ErrUnexpectedEOF,
		},
		{
			name:   "name cut",
			in:     cat(greetNoAuth, x("05 01 00 03 09"), "local"),
			out:    methodNoneOut,
			wantIs: io.ErrUnexpectedEOF,
		},
		{
			// LEN says 255, only 250 follow: the largest name is 255 bytes
			// and an oversize one is a short one as far as the wire goes.
			name:   "name longer than sent",
			in:     cat(greetNoAuth, x("05 01 00 03 ff"), strings.Repeat("a", 250)),
			out:    methodNoneOut,
			wantIs: io.ErrUnexpectedEOF,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeConn(tt.in, nil)
			req, err := ReadRequest(c)
			if err == nil {
				t.Fatalf("ReadRequest = %+v, want an error", *req)
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %v", err, tt.wantIs)
			}
			if tt.wantIs != ErrBadRequest && errors.Is(err, ErrBadRequest) {
				t.Errorf("I/O error %q wraps ErrBadRequest", err)
			}
			if !bytes.Equal(c.out.Bytes(), tt.out) {
				t.Errorf("server sent % x\nwant        % x", c.out.Bytes(), tt.out)
			}
			if n := len(c.rest()); n != tt.unread {
				t.Errorf("left %d bytes unread, want %d", n, tt.unread)
			}
		})
	}
}

// TestReadRequest_Truncated cuts a full exchange at every byte: each
// prefix is an I/O error, never ErrBadRequest, never a reply.
func TestReadRequest_Truncated(t *testing.T) {
	full := cat(greetAuth, x("01 01"), "0", x("01"), "0", x("05 01 00 03 09"), "127.0.0.1", x("20 8d"))
	for n := range len(full) {
		c := newFakeConn(full[:n], nil)
		_, err := ReadRequest(c)
		want := io.ErrUnexpectedEOF
		if n == 0 {
			want = io.EOF
		}
		if !errors.Is(err, want) || errors.Is(err, ErrBadRequest) {
			t.Errorf("cut at %d: error %v, want %v", n, err, want)
		}
		if bytes.Contains(c.out.Bytes(), []byte{0x05, 0x00, 0x00}) {
			t.Errorf("cut at %d: server sent a reply: % x", n, c.out.Bytes())
		}
	}
}

func TestReadRequest_WriteFails(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		failAt int
	}{
		{"method", cat(greetNoAuth, x("05 01 00 01 7f 00 00 01 20 8d")), 1},
		{"no acceptable method", x("05 01 01"), 1},
		{"auth", cat(greetAuth, x("01 01 61 01 62 05 01 00 01 7f 00 00 01 20 8d")), 2},
		{"auth refusal", cat(greetAuth, x("05 01 00 01 7f 00 00 01 20 8d")), 2},
		{"refusal", cat(greetNoAuth, x("05 02 00 01 7f 00 00 01 20 8d")), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeConn(tt.in, nil)
			c.failAt = tt.failAt
			if _, err := ReadRequest(c); !errors.Is(err, errWrite) {
				t.Errorf("error %v, want %v", err, errWrite)
			}
		})
	}
}

func TestWriteReply(t *testing.T) {
	tests := []struct {
		name  string
		code  byte
		bound netip.AddrPort
		want  []byte
	}{
		{"ipv4", Succeeded, boundLocal, x("05 00 00 01 7f 00 00 01 d4 31")},
		{"ipv6", Succeeded, netip.MustParseAddrPort("[2001:db8::7]:8333"),
			x("05 00 00 04 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 07 20 8d")},
		{"ipv6 zone dropped", Succeeded, netip.MustParseAddrPort("[fe80::1%eth0]:1"),
			x("05 00 00 04 fe 80 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 01")},
		{"ipv4-mapped", Succeeded, netip.MustParseAddrPort("[::ffff:10.0.0.2]:443"),
			x("05 00 00 01 0a 00 00 02 01 bb")},
		{"invalid", ConnectionRefused, netip.AddrPort{}, x("05 05 00 01 00 00 00 00 00 00")},
		{"ttl", TTLExpired, netip.AddrPort{}, x("05 06 00 01 00 00 00 00 00 00")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteReply(&b, tt.code, tt.bound); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Bytes(), tt.want) {
				t.Errorf("wrote % x\nwant  % x", b.Bytes(), tt.want)
			}
		})
	}
	c := newFakeConn(nil, nil)
	c.failAt = 1
	if err := WriteReply(c, Succeeded, boundLocal); !errors.Is(err, errWrite) {
		t.Errorf("failing writer: error %v, want %v", err, errWrite)
	}
}

func TestRequest_AddrIP(t *testing.T) {
	tests := []struct {
		req  Request
		addr string
		ip   string // "" for a name
	}{
		{Request{Host: "127.0.0.1", Port: 8333, ATYP: AddrTypeDomain}, "127.0.0.1:8333", "127.0.0.1"},
		{Request{Host: "2001:db8::1", Port: 8333, ATYP: AddrTypeDomain}, "[2001:db8::1]:8333", "2001:db8::1"},
		{Request{Host: "::1", Port: 18444, ATYP: AddrTypeDomain}, "[::1]:18444", "::1"},
		{Request{Host: "[::1]", Port: 18444, ATYP: AddrTypeDomain}, "[::1]:18444", "::1"},
		{Request{Host: "[127.0.0.1]", Port: 1, ATYP: AddrTypeDomain}, "[127.0.0.1]:1", ""},
		{Request{Host: "[]", Port: 1, ATYP: AddrTypeDomain}, "[]:1", ""},
		{Request{Host: onionV3, Port: 8333, ATYP: AddrTypeDomain}, onionV3 + ":8333", ""},
		{Request{Host: "localhost", Port: 0, ATYP: AddrTypeDomain}, "localhost:0", ""},
		{Request{Host: "127.1", Port: 80, ATYP: AddrTypeDomain}, "127.1:80", ""},
		{Request{Host: "203.0.113.7", Port: 8333, ATYP: AddrTypeIPv4}, "203.0.113.7:8333", "203.0.113.7"},
		{Request{Host: "::ffff:203.0.113.7", Port: 8333, ATYP: AddrTypeIPv6}, "[::ffff:203.0.113.7]:8333", "::ffff:203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.req.Host, func(t *testing.T) {
			if got := tt.req.Addr(); got != tt.addr {
				t.Errorf("Addr() = %q, want %q", got, tt.addr)
			}
			ip, ok := tt.req.IP()
			if ok != (tt.ip != "") || (ok && ip.String() != tt.ip) {
				t.Errorf("IP() = %v, %v; want %q", ip, ok, tt.ip)
			}
		})
	}
}

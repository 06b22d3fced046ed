package socks5

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/internal/testutil"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// TestConnect_Bytes checks that the client writes what Bitcoin Core
// writes, byte for byte, and reads the server's answers and nothing after.
func TestConnect_Bytes(t *testing.T) {
	reqLocal := cat(x("05 01 00 03 09"), "127.0.0.1", x("20 8d"))
	tests := []struct {
		name       string
		user, pass string
		server     []byte // the server's answers, all of them
		want       []byte // what the client must write
	}{
		{
			name:   "no auth, reply atyp 1",
			server: cat(methodNoneOut, replyOK),
			want:   cat(greetNoAuth, reqLocal),
		},
		{
			name: "credentials, server picks 02",
			user: "0", pass: "0",
			server: cat(methodUserPassOut, authOKOut, replyOK),
			want:   cat(greetAuth, x("01 01"), "0", x("01"), "0", reqLocal),
		},
		{
			name: "credentials, server picks 00",
			user: "0", pass: "0",
			server: cat(methodNoneOut, replyOK),
			want:   cat(greetAuth, reqLocal),
		},
		{
			name:   "password only",
			pass:   "p",
			server: cat(methodUserPassOut, authOKOut, replyOK),
			want:   cat(greetAuth, x("01 00 01"), "p", reqLocal),
		},
		{
			name:   "reply atyp 3",
			server: cat(methodNoneOut, x("05 00 00 03 04"), "abcd", x("00 50")),
			want:   cat(greetNoAuth, reqLocal),
		},
		{
			name:   "reply atyp 4",
			server: cat(methodNoneOut, x("05 00 00 04"), make([]byte, 16), x("00 50")),
			want:   cat(greetNoAuth, reqLocal),
		},
	}
	stream := []byte("stream")
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				c := newFakeConn(cat(tt.server, stream), rd.wrap)
				if err := connect(c, "127.0.0.1", 8333, tt.user, tt.pass); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(c.out.Bytes(), tt.want) {
					t.Errorf("client sent % x\nwant        % x", c.out.Bytes(), tt.want)
				}
				if rest := c.rest(); !bytes.Equal(rest, stream) {
					t.Errorf("left % x unread, want % x", rest, stream)
				}
			})
		}
	}
}

func TestConnect_Errors(t *testing.T) {
	tests := []struct {
		name       string
		user, pass string
		server     []byte
		reply      byte // the ReplyError expected, or 0 for another error
	}{
		{name: "no acceptable method", server: x("05 ff")},
		{name: "02 not offered", server: x("05 02")},
		{name: "gssapi", user: "u", pass: "p", server: x("05 01")},
		{name: "socks4 answer", server: x("00 5a")},
		{name: "auth refused", user: "u", pass: "p", server: x("05 02 01 01")},
		{name: "auth bad version", user: "u", pass: "p", server: x("05 02 05 00")},
		{name: "refused", server: cat(methodNoneOut, failure(ConnectionRefused)), reply: ConnectionRefused},
		{name: "ttl expired", server: cat(methodNoneOut, failure(TTLExpired)), reply: TTLExpired},
		{name: "unassigned", server: cat(methodNoneOut, failure(0x42)), reply: 0x42},
		{name: "reply version", server: cat(methodNoneOut, x("04 00 00 01 00 00 00 00 00 00"))},
		{name: "reply atyp 9", server: cat(methodNoneOut, x("05 00 00 09 00 00 00 00 00 00"))},
		{name: "reply cut", server: cat(methodNoneOut, x("05 00 00 01 7f 00"))},
		{name: "silent", server: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeConn(tt.server, nil)
			err := connect(c, "localhost", 8333, tt.user, tt.pass)
			if err == nil {
				t.Fatal("connect succeeded")
			}
			var re ReplyError
			if errors.As(err, &re) != (tt.reply != 0) || byte(re) != tt.reply {
				t.Errorf("error %q, want ReplyError 0x%02x", err, tt.reply)
			}
		})
	}
	if got, want := ReplyError(HostUnreachable).Error(), "socks5: proxy replied 0x04 (host unreachable)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// server is a SOCKS5 server on loopback for Dial to reach: each
// connection runs handle, and is closed after it.
func server(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(testTimeout))
				handle(c)
			})
		}
	})
	return ln.Addr().String()
}

// TestDial runs Dial against ReadRequest and WriteReply over loopback,
// then sends a line through and back.
func TestDial(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	got := make(chan Request, 1)
	proxy := server(t, func(c net.Conn) {
		req, err := ReadRequest(c)
		if err != nil {
			t.Errorf("ReadRequest: %v", err)
			return
		}
		got <- *req
		bound := netip.MustParseAddrPort(c.LocalAddr().String())
		if err := WriteReply(c, Succeeded, bound); err != nil {
			t.Error(err)
			return
		}
		io.Copy(c, c)
	})
	tests := []struct {
		host       string
		user, pass string
	}{
		{"127.0.0.1", "", ""},
		{"2001:db8::1", "", ""},
		{onionV3, "0", "0"},
		{"localhost", "user", "pass"},
		{strings.Repeat("n", 255), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.host[:min(len(tt.host), 20)], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			c, err := Dial(ctx, proxy, tt.host, 8333, tt.user, tt.pass)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			want := Request{Host: tt.host, Port: 8333, ATYP: AddrTypeDomain, User: tt.user, Pass: tt.pass}
			if req := <-got; req != want {
				t.Errorf("server read %+v, want %+v", req, want)
			}
			// ctx's deadline must not outlive the handshake.
			cancel()
			if _, err := io.WriteString(c, "hello\n"); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 6)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello\n" {
				t.Errorf("echo = %q, %v", buf, err)
			}
		})
	}
}

func TestDial_Refused(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	proxy := server(t, func(c net.Conn) {
		if _, err := ReadRequest(c); err != nil {
			t.Errorf("ReadRequest: %v", err)
			return
		}
		WriteReply(c, HostUnreachable, netip.AddrPort{})
	})
	c, err := Dial(t.Context(), proxy, "localhost", 8333, "", "")
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded")
	}
	var re ReplyError
	if !errors.As(err, &re) || re != ReplyError(HostUnreachable) {
		t.Errorf("error %v, want ReplyError(HostUnreachable)", err)
	}
	if code := ReplyFor(err); code != HostUnreachable {
		t.Errorf("ReplyFor = 0x%02x, want the proxy's 0x04", code)
	}
}

// TestDial_Context checks that ctx ends a handshake the proxy never
// answers.
func TestDial_Context(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	proxy := server(t, func(c net.Conn) {
		if _, err := ReadRequest(c); err != nil {
			return
		}
		io.Copy(io.Discard, c) // never reply; wait for the client to go
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := Dial(ctx, proxy, "localhost", 8333, "", "")
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("error %v, want a deadline", err)
		}
		if code := ReplyFor(err); code != TTLExpired {
			t.Errorf("ReplyFor = 0x%02x, want TTLExpired", code)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := Dial(ctx, proxy, "localhost", 8333, "", "")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})
}

func TestDial_BadArgs(t *testing.T) {
	tests := []struct {
		name, host, user, pass string
	}{
		{"name 256 bytes", strings.Repeat("a", 256), "", ""},
		{"empty name", "", "", ""},
		{"name with NUL", "local\x00host", "", ""},
		{"user 256 bytes", "localhost", strings.Repeat("u", 256), "p"},
		{"password 256 bytes", "localhost", "u", strings.Repeat("p", 256)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A proxy address that cannot be dialled: any error from
			// dialling it would be a *net.OpError.
			_, err := Dial(t.Context(), "no port", tt.host, 8333, tt.user, tt.pass)
			var op *net.OpError
			if err == nil || errors.As(err, &op) {
				t.Errorf("error %v, want one from checking the arguments", err)
			}
		})
	}
}

package ptspec

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/internal/copyloop"
)

// fakeProxy is an upstream proxy that wants the credentials user:pass
// (none if user is empty) and records what it was asked for.
type fakeProxy struct {
	addr       string
	user, pass string
	targets    chan string
}

// newSOCKS5Proxy starts a SOCKS5 proxy (RFC 1928, 1929).
func newSOCKS5Proxy(t *testing.T, user, pass string) *fakeProxy {
	ln := listen(t)
	p := &fakeProxy{addr: ln.Addr().String(), user: user, pass: pass, targets: make(chan string, 10)}
	serveConns(t, ln, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(testTimeout))
		target, err := p.socks5(c)
		if err != nil {
			return
		}
		p.relay(c, target, func(ok bool) {
			if ok {
				c.Write([]byte{5, 0, 0, 3, 9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 0, 1})
			} else {
				c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
			}
		})
	})
	return p
}

func (p *fakeProxy) socks5(c net.Conn) (string, error) {
	r := bufio.NewReader(c)
	b := make([]byte, 262)
	read := func(n int) []byte {
		if _, err := io.ReadFull(r, b[:n]); err != nil {
			return nil
		}
		return b[:n]
	}
	h := read(2)
	if h == nil || h[0] != 5 {
		return "", errors.New("bad greeting")
	}
	methods := read(int(h[1]))
	want := byte(0)
	if p.user != "" {
		want = 2
	}
	if methods == nil || methods[0] != want {
		c.Write([]byte{5, 0xff})
		return "", errors.New("bad method")
	}
	c.Write([]byte{5, want})
	if want == 2 {
		h := read(2)
		if h == nil {
			return "", errors.New("short auth")
		}
		user := string(read(int(h[1])))
		n := read(1)
		if n == nil {
			return "", errors.New("short auth")
		}
		pass := string(read(int(n[0])))
		if user != p.user || pass != p.pass {
			c.Write([]byte{1, 1})
			return "", errors.New("bad credentials")
		}
		c.Write([]byte{1, 0})
	}
	h = read(4)
	if h == nil || h[1] != 1 {
		return "", errors.New("bad request")
	}
	var host string
	switch h[3] {
	case 1:
		host = net.IP(read(4)).String()
	case 4:
		host = net.IP(read(16)).String()
	case 3:
		n := read(1)
		host = string(read(int(n[0])))
	}
	port := read(2)
	if port == nil {
		return "", errors.New("short request")
	}
	return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port)))), nil
}

// newHTTPProxy starts an HTTP CONNECT proxy.
func newHTTPProxy(t *testing.T, user, pass string) *fakeProxy {
	ln := listen(t)
	p := &fakeProxy{addr: ln.Addr().String(), user: user, pass: pass, targets: make(chan string, 10)}
	serveConns(t, ln, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(testTimeout))
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil || req.Method != "CONNECT" {
			return
		}
		if p.user != "" {
			want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.pass))
			if req.Header.Get("Proxy-Authorization") != want {
				io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
				return
			}
		}
		p.relay(c, req.Host, func(ok bool) {
			if ok {
				io.WriteString(c, "HTTP/1.1 200 Connection established\r\nVia: fake\r\n\r\n")
			} else {
				io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
			}
		})
	})
	return p
}

// relay connects to target, answers with reply, and copies both ways.
func (p *fakeProxy) relay(c net.Conn, target string, reply func(ok bool)) {
	p.targets <- target
	up, err := net.Dial("tcp", target)
	reply(err == nil)
	if err != nil {
		return
	}
	up.SetDeadline(time.Now().Add(testTimeout))
	copyloop.Join(c, up)
}

func TestProxyDialer(t *testing.T) {
	target := echoServer(t)
	closed := listen(t)
	closed.Close()
	tests := []struct {
		name       string
		proxy      func(t *testing.T, user, pass string) *fakeProxy
		scheme     string
		user, pass string        // what the proxy wants
		creds      *url.Userinfo // what TOR_PT_PROXY gives
		target     string
		wantErr    bool
	}{
		{"socks5", newSOCKS5Proxy, "socks5", "", "", nil, target, false},
		{"socks5 auth", newSOCKS5Proxy, "socks5", "u", "p w", url.UserPassword("u", "p w"), target, false},
		{"socks5 bad auth", newSOCKS5Proxy, "socks5", "u", "p", url.UserPassword("u", "wrong"), target, true},
		{"socks5 no auth offered", newSOCKS5Proxy, "socks5", "u", "p", nil, target, true},
		{"socks5 unreachable", newSOCKS5Proxy, "socks5", "", "", nil, closed.Addr().String(), true},
		{"socks5 host name", newSOCKS5Proxy, "socks5", "", "", nil, "localhost:" + portOf(target), false},
		{"http", newHTTPProxy, "http", "", "", nil, target, false},
		{"http auth", newHTTPProxy, "http", "u", "p", url.UserPassword("u", "p"), target, false},
		{"http bad auth", newHTTPProxy, "http", "u", "p", url.UserPassword("u", "wrong"), target, true},
		{"http unreachable", newHTTPProxy, "http", "", "", nil, closed.Addr().String(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			p := tt.proxy(t, tt.user, tt.pass)
			d, err := proxyDialer(&url.URL{Scheme: tt.scheme, User: tt.creds, Host: p.addr}, directDial)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			c, err := d(ctx, tt.target)
			if tt.wantErr {
				if err == nil {
					c.Close()
					t.Fatal("dial succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := <-p.targets; got != tt.target {
				t.Errorf("proxy asked for %q; want %q", got, tt.target)
			}
			checkEcho(t, c, "through the proxy")
		})
	}
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// TestProxyDialer_Timeout: a proxy that never answers is bounded by ctx.
func TestProxyDialer_Timeout(t *testing.T) {
	checkLeaks(t)
	ln := listen(t)
	serveConns(t, ln, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(testTimeout))
		io.Copy(io.Discard, c)
	})
	d, err := proxyDialer(&url.URL{Scheme: "socks5", Host: ln.Addr().String()}, directDial)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if c, err := d(ctx, "127.0.0.1:1"); err == nil {
		c.Close()
		t.Fatal("dial succeeded")
	}
}

// TestRunClient_Proxy: with TOR_PT_PROXY, RunClient says PROXY DONE and
// reaches the bridge through the proxy.
func TestRunClient_Proxy(t *testing.T) {
	for _, scheme := range []string{"socks5", "http"} {
		t.Run(scheme, func(t *testing.T) {
			checkLeaks(t)
			var p *fakeProxy
			if scheme == "socks5" {
				p = newSOCKS5Proxy(t, "tor", "hunter2")
			} else {
				p = newHTTPProxy(t, "tor", "hunter2")
			}
			clientEnv(t)
			t.Setenv("TOR_PT_PROXY", fmt.Sprintf("%s://tor:hunter2@%s", scheme, p.addr))
			logger, logs := testLogger()
			out := newLineWriter()
			in, inW := stdinPipe(t)
			done := run(t, func() error {
				return RunClient(context.Background(), Config{Stdout: out, Stdin: in, Logger: logger}, &recordingClients{})
			})
			for _, want := range []string{"VERSION 1", "PROXY DONE"} {
				if l := out.next(t); l != want {
					t.Fatalf("stdout %q; want %q", l, want)
				}
			}
			socksAddr := addrOf(t, out.next(t), "CMETHOD bip324 socks5 ")
			if l := out.next(t); l != "CMETHODS DONE" {
				t.Fatalf("stdout %q", l)
			}
			bridge := echoServer(t)
			c, rep := socks5(t, socksAddr, "secret=abc", "\x00", bridge)
			if rep != 0 {
				t.Fatalf("SOCKS reply %d", rep)
			}
			checkEcho(t, c, "via proxy")
			if got := <-p.targets; got != bridge {
				t.Errorf("proxy asked for %q; want %q", got, bridge)
			}
			inW.Close()
			if err := done(); err != nil {
				t.Error(err)
			}
			if text := logs.String(); !containsAll(text, "scheme="+scheme, "proxy=[scrubbed]") || containsAny(text, "hunter2", p.addr) {
				t.Errorf("logs:\n%s", text)
			}
		})
	}
}

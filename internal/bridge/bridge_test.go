package bridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/eval/fet"
	"github.com/bip324pt/bip324-pt/eval/wiretap"
	"github.com/bip324pt/bip324-pt/internal/bridgeauth"
	"github.com/bip324pt/bip324-pt/profiles"
)

// testBridge runs a bridge on loopback that echoes what authenticated
// clients send.
type testBridge struct {
	rec    *wiretap.Recorder // the bridge's writes
	addr   string
	secret bridgeauth.Secret
	srv    *Server
	wg     sync.WaitGroup
	ln     net.Listener

	stopOnce sync.Once
}

func startBridge(t testing.TB, mod func(*ServerConfig)) *testBridge {
	t.Helper()
	s, _ := bridgeauth.NewSecret(rand.Reader)
	cfg := ServerConfig{
		Secret:        s,
		ProbeCloseMin: 300 * time.Millisecond,
		ProbeCloseMax: 400 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &testBridge{addr: ln.Addr().String(), secret: s, srv: srv, ln: ln, rec: wiretap.New(time.Now(), 0)}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				c, err := srv.WrapConn(context.Background(), wiretap.Tap(raw, b.rec, false))
				if err != nil {
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(b.stop)
	return b
}

// stop closes the bridge: its listener, its connections, the Server.
func (b *testBridge) stop() {
	b.stopOnce.Do(func() { b.ln.Close(); b.srv.Close(); b.wg.Wait() })
}

// TestBridge_EmptyVersionPacket: a client that asks for nothing sends
// Bitcoin Core's 36-byte second flight (terminator and an empty version
// packet), and the bridge serves it with its default profile.
func TestBridge_EmptyVersionPacket(t *testing.T) {
	b := startBridge(t, nil)
	raw, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	rec := wiretap.New(time.Now(), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Client(ctx, wiretap.Tap(raw, rec, true), &ClientConfig{Secret: b.secret})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := wiretap.Filter(rec.Events(), wiretap.Sent)
	if len(w) != 2 || w[1].Size != 36 {
		t.Fatalf("client writes %+v, want the first flight and then 36 bytes", w)
	}
	echoOnce(t, c, 1000)
}

// firstWriteConn keeps a copy of the first Write.
type firstWriteConn struct {
	net.Conn
	first []byte
}

func (c *firstWriteConn) Write(p []byte) (int, error) {
	if c.first == nil {
		c.first = append([]byte{}, p...)
	}
	return c.Conn.Write(p)
}

func dialClient(t *testing.T, b *testBridge, cc *ClientConfig) (*Conn, []byte, error) {
	t.Helper()
	raw, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	fw := &firstWriteConn{Conn: raw}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Client(ctx, fw, cc)
	if err != nil {
		raw.Close()
	}
	return c, fw.first, err
}

func echoOnce(t *testing.T, c net.Conn, n int) {
	t.Helper()
	msg := make([]byte, n)
	rand.Read(msg)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go c.Write(msg)
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo of %d bytes: %v", n, err)
	}
}

func TestBridge_Client(t *testing.T) {
	b := startBridge(t, nil)
	for _, name := range []string{"none", "bitcoin", "cbr", "fet", "jitter"} {
		t.Run(name, func(t *testing.T) {
			p, err := profiles.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := p.Compile()
			if err != nil {
				t.Fatal(err)
			}
			c, first, err := dialClient(t, b, &ClientConfig{Secret: b.secret, Shape: cfg, Request: Request{Profile: name}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			echoOnce(t, c, 100_000)
			if name == "fet" {
				if r := fet.Check(first); r == fet.Blocked {
					t.Fatalf("fet first flight blocked")
				}
				if r := fet.Check(first[:min(len(first), 1448)]); r == fet.Blocked {
					t.Fatalf("fet first segment blocked")
				}
			}
		})
	}
}

// TestBridge_FETWithAuth: the fet profile's first flight, mark and MAC
// included, is exempt every time.
func TestBridge_FETWithAuth(t *testing.T) {
	p, _ := profiles.Load("fet")
	cfg, _ := p.Compile()
	keys := bridgeauth.Secret{7}.Keys()
	_ = keys
	for i := range 300 {
		a, b := net.Pipe()
		fw := &firstWriteConn{Conn: a}
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 8192)
			b.Read(buf)
			b.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		Client(ctx, fw, &ClientConfig{Secret: bridgeauth.Secret{7}, Shape: cfg})
		cancel()
		<-done
		a.Close()
		if fet.Check(fw.first) == fet.Blocked || fet.Check(fw.first[:min(1448, len(fw.first))]) == fet.Blocked {
			t.Fatalf("flight %d blocked", i)
		}
	}
}

// TestBridge_Negotiate: the bridge shapes its direction with the profile
// the client asked for, and with its own default for a profile outside
// its allow-list.
func TestBridge_Negotiate(t *testing.T) {
	for _, c := range []struct {
		ask   string
		cells bool
	}{{"cbr", true}, {"video", false}} {
		b := startBridge(t, func(c *ServerConfig) { c.Allowed = []string{"cbr", "none"} })
		cl, _, err := dialClient(t, b, &ClientConfig{Secret: b.secret, Request: Request{Profile: c.ask}})
		if err != nil {
			t.Fatal(err)
		}
		echoOnce(t, cl, 20_000)
		cl.Close()
		ev := wiretap.Filter(b.rec.Events(), wiretap.Received)
		all := len(ev) > 2
		for _, e := range ev[min(2, len(ev)):] {
			all = all && e.Size == 1448
		}
		if all != c.cells {
			t.Errorf("asked for %s: bridge writes all 1448-byte cells = %v, want %v", c.ask, all, c.cells)
		}
	}
}

func TestRequest(t *testing.T) {
	r := Request{Profile: "cbr", Seed: [32]byte{1, 2, 3}}
	back, err := ParseRequest(r.Marshal())
	if err != nil || back != r {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	for _, bad := range []string{"bip324-pt/1 profile=../etc/passwd", "bip324-pt/1 seed=zz", "bip324-pt/1 junk"} {
		if _, err := ParseRequest([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseRequest(nil); !errors.Is(err, ErrNoRequest) {
		t.Errorf("empty: %v", err)
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("bip324-pt/1 profile=cbr seed=0000000000000000000000000000000000000000000000000000000000000000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			return
		}
		if r == (Request{}) {
			// The zero request is an empty version packet.
			if _, err := ParseRequest(r.Marshal()); !errors.Is(err, ErrNoRequest) {
				t.Fatalf("zero request of %q re-parses as %v", b, err)
			}
			return
		}
		if back, err := ParseRequest(r.Marshal()); err != nil || back != r {
			t.Fatalf("round trip of %q: %+v %v", b, back, err)
		}
	})
}

package bridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
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
}

func startBridge(t testing.TB, mod func(*ServerConfig)) *testBridge {
	t.Helper()
	s, _ := bridgeauth.NewSecret(rand.Reader)
	cfg := ServerConfig{
		Secret:           s,
		ProbeCloseMin:    200 * time.Millisecond,
		ProbeCloseMax:    400 * time.Millisecond,
		FirstReadTimeout: 500 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
	t.Cleanup(func() { ln.Close(); b.wg.Wait(); srv.Close() })
	return b
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

// expectSilentClose checks that the bridge sends nothing and closes within
// the window.
func expectSilentClose(t *testing.T, c net.Conn, max time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(max + 2*time.Second))
	got, err := io.ReadAll(c)
	took := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("still open after %v", took)
	}
	if len(got) != 0 {
		t.Fatalf("bridge sent %d bytes to a probe", len(got))
	}
	if took > max+500*time.Millisecond {
		t.Fatalf("closed after %v, want within %v", took, max)
	}
	return took
}

func TestBridge_Probes(t *testing.T) {
	b := startBridge(t, nil)
	max := 900 * time.Millisecond // first read timeout + close window
	for _, n := range []int{0, 1, 16, 63, 64, 65, 4159, 4160, 10000} {
		t.Run(fmt.Sprintf("random-%d", n), func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", b.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			junk := make([]byte, n)
			rand.Read(junk)
			c.Write(junk)
			expectSilentClose(t, c, max)
		})
	}
	// A valid client's flight, captured and replayed.
	valid, first, err := dialClient(t, b, &ClientConfig{Secret: b.secret})
	if err != nil {
		t.Fatal(err)
	}
	valid.Close()
	t.Run("replay", func(t *testing.T) {
		c, _ := net.Dial("tcp", b.addr)
		defer c.Close()
		c.Write(first)
		expectSilentClose(t, c, max)
	})
	t.Run("stale", func(t *testing.T) {
		_, _, err := dialClient(t, b, &ClientConfig{Secret: b.secret, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
		if err == nil {
			t.Fatal("a flight two hours old was accepted")
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		other, _ := bridgeauth.NewSecret(rand.Reader)
		_, _, err := dialClient(t, b, &ClientConfig{Secret: other})
		if err == nil {
			t.Fatal("a flight with another secret was accepted")
		}
	})
	// Clock skew within the hour window is fine.
	t.Run("skew", func(t *testing.T) {
		c, _, err := dialClient(t, b, &ClientConfig{Secret: b.secret, Now: func() time.Time { return time.Now().Add(50 * time.Minute) }})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
}

// fakeNode records what it reads and answers each read with a marker.
type fakeNode struct {
	ln   net.Listener
	mu   sync.Mutex
	got  []byte
	done chan struct{}
}

func startFakeNode(t *testing.T) *fakeNode {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNode{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			f.mu.Lock()
			f.got = append(f.got, buf[:n]...)
			f.mu.Unlock()
			if n > 0 {
				c.Write([]byte("genuine node answer"))
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { ln.Close(); <-f.done })
	return f
}

func TestBridge_Fallback(t *testing.T) {
	node := startFakeNode(t)
	b := startBridge(t, func(c *ServerConfig) { c.Fallback = node.ln.Addr().String() })
	c, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	probe := make([]byte, 200)
	rand.Read(probe)
	start := time.Now()
	c.Write(probe)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	ans := make([]byte, len("genuine node answer"))
	if _, err := io.ReadFull(c, ans); err != nil || string(ans) != "genuine node answer" {
		t.Fatalf("prober got %q, %v", ans, err)
	}
	t.Logf("the fallback answered after %v", time.Since(start))
	more := []byte("and more bytes")
	c.Write(more)
	io.ReadFull(c, ans)
	c.Close()
	<-node.done
	node.mu.Lock()
	defer node.mu.Unlock()
	if want := append(probe, more...); !bytes.Equal(node.got, want) {
		t.Fatalf("fallback got %d bytes, want the prober's %d unchanged", len(node.got), len(want))
	}
	// An authenticated client is not handed over.
	cl, _, err := dialClient(t, b, &ClientConfig{Secret: b.secret})
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, cl, 1000)
	cl.Close()
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

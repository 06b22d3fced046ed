package v2core

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/bip324pt/bip324-pt/internal/testutil"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// splitConn cuts every Write into pieces of at most w bytes and every Read
// to at most r bytes, so the peer sees the stream in small segments.
type splitConn struct {
	net.Conn
	r, w int
}

func (c *splitConn) Read(p []byte) (int, error) {
	if c.r > 0 && len(p) > c.r {
		p = p[:c.r]
	}
	return c.Conn.Read(p)
}

func (c *splitConn) Write(p []byte) (int, error) {
	if c.w <= 0 {
		return c.Conn.Write(p)
	}
	n := 0
	for n < len(p) {
		m, err := c.Conn.Write(p[n:min(len(p), n+c.w)])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func pipePair(t *testing.T) (net.Conn, net.Conn) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// roundTrip runs a handshake between c and s and sends data both ways at
// once, reading into buffers of rbuf bytes.
func roundTrip(t *testing.T, c, s *Conn, data []byte, rbuf int) {
	t.Helper()
	roundTripDecoys(t, c, s, data, rbuf, 1)
}

// roundTripDecoys is roundTrip where the server should count wantDecoys
// decoys: the one roundTrip sends plus the client's handshake decoys.
func roundTripDecoys(t *testing.T, c, s *Conn, data []byte, rbuf, wantDecoys int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	c.SetDeadline(deadline)
	s.SetDeadline(deadline)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	sum := sha256.Sum256(data)
	for _, pair := range [][2]*Conn{{c, s}, {s, c}} {
		wg.Add(2)
		go func(w *Conn) {
			defer wg.Done()
			half := len(data) / 2
			if _, err := w.Write(data[:half]); err != nil {
				errs <- fmt.Errorf("write: %w", err)
				return
			}
			if err := w.WriteDecoy(33); err != nil {
				errs <- fmt.Errorf("decoy: %w", err)
				return
			}
			if _, err := w.Write(data[half:]); err != nil {
				errs <- fmt.Errorf("write: %w", err)
			}
		}(pair[0])
		go func(r *Conn) {
			defer wg.Done()
			h := sha256.New()
			buf := make([]byte, rbuf)
			got := 0
			for got < len(data) {
				n, err := r.Read(buf)
				h.Write(buf[:n])
				got += n
				if err != nil {
					errs <- fmt.Errorf("read after %d bytes: %w", got, err)
					return
				}
			}
			if [32]byte(h.Sum(nil)) != sum {
				errs <- errors.New("data differs")
			}
		}(pair[1])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	cid, ok1 := c.SessionID()
	sid, ok2 := s.SessionID()
	if !ok1 || !ok2 || cid != sid {
		t.Fatalf("session ids: %x (%v) and %x (%v)", cid, ok1, sid, ok2)
	}
	if d := s.Stats().DecoysIn; d != uint64(wantDecoys) {
		t.Fatalf("server counted %d decoys, want %d", d, wantDecoys)
	}
}

func testData(n int) []byte {
	b := make([]byte, n)
	newTestRand(uint64(n)).Read(b)
	return b
}

func TestConn_Pipe(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	for _, g := range []int{0, 1, 4094, 4095} {
		t.Run(fmt.Sprintf("garbage=%d", g), func(t *testing.T) {
			a, b := pipePair(t)
			c := Client(a, &Config{Hooks: &testHooks{garbage: garbageOf(g), decoys: []int{10}}})
			s := Server(b, &Config{Hooks: &testHooks{garbage: garbageOf(4095 - g)}})
			roundTripDecoys(t, c, s, testData(200_000), 4096, 2)
		})
	}
}

func TestConn_TCP(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	for _, g := range []int{0, 1, 4094, 4095} {
		for _, n := range Networks {
			t.Run(fmt.Sprintf("garbage=%d/%s", g, n), func(t *testing.T) {
				a, b := testutil.TCPPair(t)
				c := Client(a, &Config{Network: n, Hooks: &testHooks{garbage: garbageOf(g), version: []byte("hello")}})
				s := Server(b, &Config{Network: n, Hooks: &testHooks{garbage: garbageOf(g), decoys: []int{0, 1000}}})
				roundTrip(t, c, s, testData(300_000), 32<<10)
				if string(s.PeerVersion()) != "hello" || len(c.PeerVersion()) != 0 {
					t.Fatalf("peer versions %q, %q", s.PeerVersion(), c.PeerVersion())
				}
			})
		}
	}
}

// TestConn_Splits cuts writes and reads at every size from 1 byte up.
func TestConn_Splits(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	for _, k := range []int{1, 2, 3, 4, 5, 7, 16, 17, 20, 21, 64, 65, 1000} {
		t.Run(fmt.Sprintf("split=%d", k), func(t *testing.T) {
			a, b := testutil.TCPPair(t)
			c := Client(&splitConn{Conn: a, r: k, w: k}, &Config{Hooks: &testHooks{garbage: garbageOf(100)}})
			s := Server(&splitConn{Conn: b, r: k, w: k}, nil)
			size := 5000
			if k >= 16 {
				size = 50_000
			}
			roundTrip(t, c, s, testData(size), k)
		})
	}
}

// TestConn_SplitWritesEveryByte sends everything, handshake included, as
// one-byte writes; the reader takes 1 byte at a time too. (Not over
// net.Pipe: it has no buffer, and a responder that answers the first byte
// while the initiator still writes its key would block both, which TCP's
// buffers never do.)
func TestConn_SplitWritesEveryByte(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	a, b := testutil.TCPPair(t)
	c := Client(&splitConn{Conn: a, r: 1, w: 1}, nil)
	s := Server(&splitConn{Conn: b, r: 1, w: 1}, nil)
	roundTrip(t, c, s, testData(3000), 1)
}

func TestConn_HandshakeContext(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	a, b := testutil.TCPPair(t)
	_ = b // the server never answers
	c := Client(a, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.HandshakeContext(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("handshake did not stop at the context's deadline")
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("write after a failed handshake succeeded")
	}
}

func TestConn_ReadTimeoutRecoverable(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	a, b := testutil.TCPPair(t)
	c, s := Client(a, nil), Server(b, nil)
	errc := make(chan error, 1)
	go func() { errc <- s.Handshake() }()
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	buf := make([]byte, 10)
	_, err := s.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	n, err := io.ReadFull(s, buf[:5])
	if err != nil || string(buf[:n]) != "after" {
		t.Fatalf("read after timeout: %q %v", buf[:n], err)
	}
}

// rawPeer is one end of a TCP connection driven by hand, for bad input.
type rawPeer struct {
	t    *testing.T
	conn net.Conn
}

// expectClosed checks that the other end closes without sending a byte
// (or, with sent set, after whatever it sent), within the deadline.
func (p *rawPeer) expectClosed(d time.Duration) []byte {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(d))
	got, err := io.ReadAll(p.conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		p.t.Fatalf("connection still open after %v", d)
	}
	return got
}

// serverSide starts a Server on one end of a TCP pair and returns the raw
// other end and a channel with the server's first error from a read loop.
func serverSide(t *testing.T, cfg *Config) (*rawPeer, <-chan error) {
	a, b := testutil.TCPPair(t)
	s := Server(b, cfg)
	errc := make(chan error, 1)
	go func() {
		s.SetDeadline(time.Now().Add(10 * time.Second))
		_, err := io.Copy(io.Discard, s)
		if err == nil {
			err = io.EOF
		}
		errc <- err
	}()
	return &rawPeer{t: t, conn: a}, errc
}

// completeAsClient does a real handshake from the raw end and returns a
// Conn to craft packets with (AppendPacket), written to p.conn by hand.
func completeAsClient(t *testing.T, p *rawPeer, cfg *Config) *Conn {
	t.Helper()
	c := Client(p.conn, cfg)
	if err := c.HandshakeContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// mustAppend is c.AppendPacket(nil, contents) for a test.
func mustAppend(t *testing.T, c *Conn, contents []byte) []byte {
	t.Helper()
	pkt, err := c.AppendPacket(nil, contents)
	if err != nil {
		t.Fatal(err)
	}
	return pkt
}

func TestConn_BadInput(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	t.Run("no terminator", func(t *testing.T) {
		p, errc := serverSide(t, nil)
		ini, _ := NewInitiator(nil)
		p.conn.Write(ini.Output(nil)[:EllswiftKeySize])
		// Wait for the server's key, as a real initiator does; had the
		// junk come in the same read, the server would close without
		// writing, as Bitcoin Core does.
		if _, err := io.ReadFull(p.conn, make([]byte, EllswiftKeySize)); err != nil {
			t.Fatal(err)
		}
		p.conn.Write(garbageOf(maxScanLen))
		if err := <-errc; !errors.Is(err, ErrNoTerminator) {
			t.Fatalf("server: %v, want ErrNoTerminator", err)
		}
		p.expectClosed(5 * time.Second)
	})
	t.Run("bad tag", func(t *testing.T) {
		p, errc := serverSide(t, nil)
		c := completeAsClient(t, p, nil)
		pkt := mustAppend(t, c, []byte("hello"))
		pkt[len(pkt)-1] ^= 1
		p.conn.Write(pkt)
		if err := <-errc; !errors.Is(err, ErrAuth) {
			t.Fatalf("server: %v, want ErrAuth", err)
		}
		p.expectClosed(5 * time.Second)
	})
	t.Run("length over the limit", func(t *testing.T) {
		p, errc := serverSide(t, &Config{MaxContentLen: 1000})
		c := completeAsClient(t, p, nil)
		p.conn.Write(mustAppend(t, c, make([]byte, 1001))[:10])
		var tooLong *ContentTooLongError
		if err := <-errc; !errors.As(err, &tooLong) {
			t.Fatalf("server: %v, want *ContentTooLongError", err)
		}
		p.expectClosed(5 * time.Second)
	})
	t.Run("cut mid-packet", func(t *testing.T) {
		p, errc := serverSide(t, nil)
		c := completeAsClient(t, p, nil)
		pkt := mustAppend(t, c, make([]byte, 500))
		p.conn.Write(pkt[:100])
		p.conn.(*net.TCPConn).CloseWrite()
		if err := <-errc; !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("server: %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("cut mid-handshake", func(t *testing.T) {
		p, errc := serverSide(t, nil)
		p.conn.Write(make([]byte, 40))
		p.conn.(*net.TCPConn).CloseWrite()
		if err := <-errc; !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("server: %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("v1 prefix of another network", func(t *testing.T) {
		p, errc := serverSide(t, nil)
		pre := Testnet3.V1Prefix()
		p.conn.Write(append(pre[:], make([]byte, 100)...))
		if err := <-errc; !errors.Is(err, ErrV1WrongNetwork) {
			t.Fatalf("server: %v, want ErrV1WrongNetwork", err)
		}
		if got := p.expectClosed(5 * time.Second); len(got) != 0 {
			t.Fatalf("server sent %d bytes before closing", len(got))
		}
	})
	t.Run("v1 prefix of our network", func(t *testing.T) {
		p, errc := serverSide(t, nil)
		pre := Mainnet.V1Prefix()
		p.conn.Write(append(pre[:], make([]byte, 100)...))
		err := <-errc
		var v1 *V1Error
		if !errors.As(err, &v1) || v1.Prefix != pre {
			t.Fatalf("server: %v, want *V1Error with the prefix", err)
		}
		// Whatever came with the prefix in the same read is handed back.
		if len(v1.Rest) > 100 || !bytes.Equal(v1.Rest, make([]byte, len(v1.Rest))) {
			t.Fatalf("Rest = %x, want a prefix of the 100 zero bytes sent", v1.Rest)
		}
	})
}

// TestConn_Close: errors after Close unwrap to net.ErrClosed.
func TestConn_Close(t *testing.T) {
	a, b := testutil.TCPPair(t)
	c, s := Client(a, nil), Server(b, nil)
	go s.Handshake()
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

// TestConn_PeerFlight: after the handshake each end holds the other's key
// and garbage, exactly as sent; before it, nothing.
func TestConn_PeerFlight(t *testing.T) {
	for _, n := range []int{0, 1, 1000, MaxGarbageLen} {
		a, b := pipePair(t)
		g := garbageOf(n)
		fw := &firstWrite{Conn: a}
		c := Client(fw, &Config{Hooks: &testHooks{garbage: g}})
		s := Server(b, nil)
		if _, _, ok := s.PeerFlight(); ok {
			t.Fatal("PeerFlight before the handshake")
		}
		errc := make(chan error, 1)
		go func() { errc <- c.Handshake() }()
		if err := s.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		key, garbage, ok := s.PeerFlight()
		if !ok || !bytes.Equal(garbage, g) {
			t.Fatalf("garbage of %d: PeerFlight = %d bytes, %v", n, len(garbage), ok)
		}
		if !bytes.Equal(key[:], fw.first[:EllswiftKeySize]) {
			t.Fatalf("garbage of %d: PeerFlight key differs from the client's", n)
		}
	}
}

// firstWrite keeps a copy of the first Write.
type firstWrite struct {
	net.Conn
	first []byte
}

func (w *firstWrite) Write(p []byte) (int, error) {
	if w.first == nil {
		w.first = append([]byte{}, p...)
	}
	return w.Conn.Write(p)
}

// TestConn_Buffered: bytes that arrive in the same read as the end of the
// handshake are reported by Buffered, then decoded by ReadPacket.
func TestConn_Buffered(t *testing.T) {
	a, b := pipePair(t)
	s := Server(b, nil)
	hs, err := NewInitiator(nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		a.Write(hs.Output(nil))
		buf := make([]byte, 8192)
		for !hs.Done() {
			n, err := a.Read(buf)
			if err != nil {
				return
			}
			hs.Feed(buf[:n])
		}
		// The terminator, the version packet and a packet after it, in
		// one write.
		out := hs.Output(nil)
		out = hs.Session().Seal(out, []byte("after"), false)
		a.Write(out)
	}()
	if err := s.Handshake(); err != nil {
		t.Fatal(err)
	}
	if n := s.Buffered(); n != SealedLen(len("after")) {
		t.Errorf("Buffered = %d, want %d (the packet after the handshake)", n, SealedLen(len("after")))
	}
	got, err := s.ReadPacket()
	if err != nil || string(got) != "after" {
		t.Fatalf("ReadPacket = %q, %v", got, err)
	}
}

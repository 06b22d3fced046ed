package v2core

// Tests of Conn's packet-level API (AppendPacket, AppendDecoy, Stats,
// ReadPacket's errors), its first-write hook, its handshake timeout and
// the decoder's memory after a large packet. Timing tests run in a
// testing/synctest bubble over memconn, whose deadlines follow the
// bubble's clock.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bip324pt/bip324-pt/internal/memconn"
	"github.com/bip324pt/bip324-pt/internal/testutil"
)

// handshakeConns returns a Client and a Server over a memconn pair whose
// directions buffer bufSize bytes each, with both handshakes done. It
// works inside a synctest bubble.
func handshakeConns(t *testing.T, ccfg, scfg *Config, bufSize int) (c, s *Conn) {
	t.Helper()
	a, b := memconn.Pipe(bufSize)
	t.Cleanup(func() { a.Close(); b.Close() })
	c, s = Client(a, ccfg), Server(b, scfg)
	errc := make(chan error, 1)
	go func() { errc <- s.Handshake() }()
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return c, s
}

// pieces cuts b into n parts of about equal length.
func pieces(b []byte, n int) [][]byte {
	var out [][]byte
	for i := range n {
		out = append(out, b[i*len(b)/n:(i+1)*len(b)/n])
	}
	return out
}

// TestConn_AppendPacket seals packets from parts, and decoys, into one
// buffer, writes the buffer to NetConn as an owner does, and checks what
// the peer reads and what both ends count.
func TestConn_AppendPacket(t *testing.T) {
	cases := []struct {
		name  string
		parts [][]byte
		decoy int // contents length of a decoy sealed before the packet
	}{
		{"no parts", nil, 0},
		{"one empty part", [][]byte{{}}, 1},
		{"one part", [][]byte{[]byte("hello")}, 33},
		{"record byte and ring halves", [][]byte{{0xff}, testData(1000), testData(349)}, 0},
		{"empty parts between", [][]byte{{}, []byte("a"), nil, []byte("bc"), {}}, 5},
		{"16 KiB in 7 pieces", pieces(testData(16384), 7), 4096},
	}
	c, s := handshakeConns(t, nil, nil, 1<<20)
	before := c.Stats()

	const prefix = "owner's bytes"
	wire := []byte(prefix)
	for _, tc := range cases {
		var err error
		if wire, err = c.AppendDecoy(wire, tc.decoy); err != nil {
			t.Fatalf("%s: AppendDecoy: %v", tc.name, err)
		}
		if wire, err = c.AppendPacket(wire, tc.parts...); err != nil {
			t.Fatalf("%s: AppendPacket: %v", tc.name, err)
		}
	}
	if string(wire[:len(prefix)]) != prefix {
		t.Fatalf("dst's bytes changed: %q", wire[:len(prefix)])
	}
	sealed := wire[len(prefix):]
	if _, err := c.NetConn().Write(sealed); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ReadPacket()
			if err != nil {
				t.Fatal(err)
			}
			if want := bytes.Join(tc.parts, nil); !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, want %d bytes of the parts joined", len(got), len(want))
			}
		})
	}

	cs, ss := c.Stats(), s.Stats()
	n := uint64(len(cases))
	if cs.PacketsOut-before.PacketsOut != 2*n || cs.DecoysOut-before.DecoysOut != n {
		t.Errorf("client counted %d packets, %d decoys more, want %d, %d",
			cs.PacketsOut-before.PacketsOut, cs.DecoysOut-before.DecoysOut, 2*n, n)
	}
	if cs.BytesOut-before.BytesOut != uint64(len(sealed)) {
		t.Errorf("client counted %d bytes out, want %d", cs.BytesOut-before.BytesOut, len(sealed))
	}
	// Every packet sealed reached the peer: the counts agree, the
	// handshake's version packet included.
	if ss.PacketsIn != cs.PacketsOut || ss.DecoysIn != cs.DecoysOut || ss.BytesIn != cs.BytesOut {
		t.Errorf("server counted %+v, client %+v", ss, cs)
	}
}

// TestConn_AppendBeforeHandshake: AppendPacket and AppendDecoy fail, and
// leave dst as it was, before the handshake and after it failed.
func TestConn_AppendBeforeHandshake(t *testing.T) {
	cases := []struct {
		name string
		// setup returns a Conn whose handshake has not succeeded, and
		// the error to expect.
		setup func(t *testing.T) (*Conn, error)
	}{
		{"not started", func(t *testing.T) (*Conn, error) {
			a, _ := pipePair(t)
			return Client(a, nil), ErrHandshakeIncomplete
		}},
		{"failed", func(t *testing.T) (*Conn, error) {
			a, b := memconn.Pipe(64 << 10)
			b.Close()
			t.Cleanup(func() { a.Close() })
			c := Client(a, nil)
			err := c.Handshake()
			if err == nil {
				t.Fatal("handshake with a closed peer succeeded")
			}
			return c, err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, want := tc.setup(t)
			dst := []byte("kept")
			got, err := c.AppendPacket(dst, []byte("x"))
			if !errors.Is(err, want) || string(got) != "kept" {
				t.Errorf("AppendPacket: %q, %v; want %q, %v", got, err, "kept", want)
			}
			got, err = c.AppendDecoy(dst, 10)
			if !errors.Is(err, want) || string(got) != "kept" {
				t.Errorf("AppendDecoy: %q, %v; want %q, %v", got, err, "kept", want)
			}
			if st := c.Stats(); st.PacketsOut != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestConn_TooLong: contents over MaxLengthField (and negative decoy
// lengths) are errors, not panics, and leave the connection usable.
func TestConn_TooLong(t *testing.T) {
	big := make([]byte, MaxLengthField+1)
	cases := []struct {
		name    string
		op      func(c *Conn) error
		tooLong bool // the error is ErrPacketTooLong
	}{
		{"WritePacket", func(c *Conn) error { return c.WritePacket(big) }, true},
		{"WriteDecoy", func(c *Conn) error { return c.WriteDecoy(MaxLengthField + 1) }, true},
		{"WriteDecoy negative", func(c *Conn) error { return c.WriteDecoy(-1) }, false},
		{"AppendPacket", func(c *Conn) error {
			_, err := c.AppendPacket(nil, big)
			return err
		}, true},
		{"AppendPacket in parts", func(c *Conn) error {
			_, err := c.AppendPacket(nil, big[:1<<23], nil, big[1<<23:])
			return err
		}, true},
		{"AppendDecoy", func(c *Conn) error {
			_, err := c.AppendDecoy(nil, MaxLengthField+1)
			return err
		}, true},
		{"AppendDecoy negative", func(c *Conn) error {
			_, err := c.AppendDecoy(nil, -1)
			return err
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, s := handshakeConns(t, nil, nil, 64<<10)
			before := c.Stats()
			err := tc.op(c)
			if err == nil || errors.Is(err, ErrPacketTooLong) != tc.tooLong {
				t.Fatalf("err = %v, want an error (ErrPacketTooLong: %v)", err, tc.tooLong)
			}
			if st := c.Stats(); st != before {
				t.Errorf("stats moved: %+v, were %+v", st, before)
			}
			// Nothing was sealed: the next packet opens.
			if err := c.WritePacket([]byte("still usable")); err != nil {
				t.Fatal(err)
			}
			if got, err := s.ReadPacket(); err != nil || string(got) != "still usable" {
				t.Fatalf("peer read %q, %v", got, err)
			}
		})
	}
}

// TestConn_AppendAllocs: with room in dst, sealing allocates nothing.
func TestConn_AppendAllocs(t *testing.T) {
	c, _ := handshakeConns(t, nil, nil, 64<<10)
	hdr, body := []byte{0xff}, testData(1350)
	dst := make([]byte, 0, 2*SealedLen(1+len(body)))
	for name, f := range map[string]func(){
		"AppendPacket": func() { dst, _ = c.AppendPacket(dst[:0], hdr, body) },
		"AppendDecoy":  func() { dst, _ = c.AppendDecoy(dst[:0], len(body)) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs, want 0", name, n)
		}
	}
}

// TestConn_StatsConcurrent reads Stats while both directions run (for
// -race), checks that counters only grow, and that in the end each side
// counted what the other sent.
func TestConn_StatsConcurrent(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	a, b := testutil.TCPPair(t)
	c, s := Client(a, nil), Server(b, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, conn := range []*Conn{c, s} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last Stats
			for {
				st := conn.Stats()
				if st.PacketsIn < last.PacketsIn || st.DecoysIn < last.DecoysIn || st.PacketsOut < last.PacketsOut ||
					st.DecoysOut < last.DecoysOut || st.BytesIn < last.BytesIn || st.BytesOut < last.BytesOut {
					t.Errorf("counters went back: %+v after %+v", st, last)
					return
				}
				last = st
				select {
				case <-stop:
					return
				default:
					runtime.Gosched()
				}
			}
		}()
	}
	roundTrip(t, c, s, testData(100_000), 4096)
	close(stop)
	wg.Wait()
	for _, p := range [][2]*Conn{{c, s}, {s, c}} {
		out, in := p[0].Stats(), p[1].Stats()
		if out.PacketsOut != in.PacketsIn || out.DecoysOut != in.DecoysIn || out.BytesOut != in.BytesIn {
			t.Errorf("sender counted %+v, receiver %+v", out, in)
		}
		// Two data writes of 50,000 bytes (one packet each), a decoy,
		// and the version packet.
		if out.PacketsOut != 4 || out.DecoysOut != 1 {
			t.Errorf("sender counted %d packets, %d decoys; want 4, 1", out.PacketsOut, out.DecoysOut)
		}
	}
}

// firstWriteHooks adds FirstWriteHook to testHooks.
type firstWriteHooks struct {
	*testHooks
	n int
}

func (h *firstWriteHooks) FirstWriteSize() int { return h.n }

// writeLog records the size of every Write to the inner conn.
type writeLog struct {
	net.Conn
	mu     sync.Mutex
	writes []int
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, len(p))
	w.mu.Unlock()
	return w.Conn.Write(p)
}

// TestConn_FirstWriteHook: the first flight goes out as n bytes and the
// rest when 64 <= n < its length, and whole otherwise.
func TestConn_FirstWriteHook(t *testing.T) {
	const garbage = 200
	const flight = EllswiftKeySize + garbage // the initiator's first flight
	cases := []struct {
		name   string
		server bool // the hooked end is the responder
		hooks  Hooks
		first  int // the first write's size; 0: the whole flight
	}{
		{"no hook", false, &testHooks{garbage: garbageOf(garbage)}, 0},
		{"zero", false, &firstWriteHooks{&testHooks{garbage: garbageOf(garbage)}, 0}, 0},
		{"below the key", false, &firstWriteHooks{&testHooks{garbage: garbageOf(garbage)}, 63}, 0},
		{"the key", false, &firstWriteHooks{&testHooks{garbage: garbageOf(garbage)}, 64}, 64},
		{"inside the garbage", false, &firstWriteHooks{&testHooks{garbage: garbageOf(garbage)}, 100}, 100},
		{"all but one byte", false, &firstWriteHooks{&testHooks{garbage: garbageOf(garbage)}, flight - 1}, flight - 1},
		{"the whole flight", false, &firstWriteHooks{&testHooks{garbage: garbageOf(garbage)}, flight}, 0},
		{"past the flight", false, &firstWriteHooks{&testHooks{garbage: garbageOf(garbage)}, 5000}, 0},
		{"negative", false, &firstWriteHooks{&testHooks{garbage: garbageOf(garbage)}, -1}, 0},
		{"responder, the key", true, &firstWriteHooks{&testHooks{garbage: garbageOf(garbage)}, 64}, 64},
		{"responder, zero", true, &firstWriteHooks{&testHooks{garbage: garbageOf(garbage)}, 0}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := memconn.Pipe(64 << 10)
			t.Cleanup(func() { a.Close(); b.Close() })
			la, lb := &writeLog{Conn: a}, &writeLog{Conn: b}
			ccfg, scfg, log := &Config{Hooks: tc.hooks}, (*Config)(nil), la
			if tc.server {
				ccfg, scfg, log = nil, &Config{Hooks: tc.hooks}, lb
			}
			c, s := Client(la, ccfg), Server(lb, scfg)
			errc := make(chan error, 1)
			go func() { errc <- s.Handshake() }()
			if err := c.Handshake(); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			log.mu.Lock()
			writes := log.writes
			log.mu.Unlock()
			if tc.first != 0 {
				if writes[0] != tc.first {
					t.Fatalf("writes %v, want %d bytes first", writes, tc.first)
				}
				return
			}
			// Whole: at least key and garbage in the first write (a
			// responder may add its terminator and version packet).
			if writes[0] < flight || (!tc.server && writes[0] != flight) {
				t.Fatalf("writes %v, want the whole flight (%d bytes) first", writes, flight)
			}
		})
	}
}

// TestConn_HandshakeTimeout: the handshake gives up after
// Config.HandshakeTimeout (60 s by default), or at an earlier deadline of
// the caller's, and closes the inner conn; a negative timeout waits
// forever.
func TestConn_HandshakeTimeout(t *testing.T) {
	isTimeout := func(d time.Duration) func(error) bool {
		return func(err error) bool {
			var te *HandshakeTimeoutError
			var ne net.Error
			return errors.As(err, &te) && te.After == d && errors.Is(err, os.ErrDeadlineExceeded) &&
				errors.As(err, &ne) && ne.Timeout()
		}
	}
	cases := []struct {
		name    string
		server  bool          // the end under test is the responder
		timeout time.Duration // Config.HandshakeTimeout
		ctx     time.Duration // a context deadline, if not zero
		inner   time.Duration // a deadline set on the inner conn first, if not zero
		sendKey bool          // the peer sends a key, then stalls
		closeAt time.Duration // the peer closes then, if not zero
		after   time.Duration // when the handshake should fail
		check   func(error) bool
	}{
		{name: "default", after: 60 * time.Second, check: isTimeout(60 * time.Second)},
		{name: "default, responder", server: true, after: 60 * time.Second, check: isTimeout(60 * time.Second)},
		{name: "peer stalls after its key", sendKey: true, after: 60 * time.Second, check: isTimeout(60 * time.Second)},
		{name: "configured", timeout: 5 * time.Second, after: 5 * time.Second, check: isTimeout(5 * time.Second)},
		{name: "context first", ctx: time.Second, after: time.Second,
			check: func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{name: "inner deadline first", inner: 2 * time.Second, after: 2 * time.Second,
			check: func(err error) bool {
				var te *HandshakeTimeoutError
				return errors.Is(err, os.ErrDeadlineExceeded) && !errors.As(err, &te)
			}},
		{name: "none", timeout: -1, closeAt: 10 * time.Minute, after: 10 * time.Minute,
			check: func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := memconn.Pipe(64 << 10)
				defer a.Close()
				cfg := &Config{HandshakeTimeout: tc.timeout}
				c := Client(a, cfg)
				if tc.server {
					c = Server(a, cfg)
				}
				peerDone := make(chan error, 1)
				go func() {
					if tc.server {
						// Differ from the v1 prefix, then say no more.
						b.Write([]byte{0})
					}
					if tc.sendKey {
						hs, _ := NewResponder(nil)
						key := hs.OurKey()
						b.Write(key[:])
					}
					_, err := io.Copy(io.Discard, b)
					peerDone <- err
				}()
				if tc.closeAt > 0 {
					go func() {
						time.Sleep(tc.closeAt)
						b.Close()
					}()
				} else {
					defer b.Close()
				}
				ctx := context.Background()
				if tc.ctx > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.ctx)
					defer cancel()
				}
				if tc.inner > 0 {
					a.SetDeadline(time.Now().Add(tc.inner))
				}
				start := time.Now()
				err := c.HandshakeContext(ctx)
				if got := time.Since(start); got != tc.after {
					t.Errorf("failed after %v, want %v", got, tc.after)
				}
				if !tc.check(err) {
					t.Errorf("err = %v (%T)", err, err)
				}
				if tc.closeAt == 0 {
					// The inner conn was closed: the peer reads EOF.
					if err := <-peerDone; err != nil {
						t.Errorf("peer: %v, want EOF", err)
					}
				}
			})
		})
	}
}

// TestConn_HandshakeKeepsDeadlines: a handshake that finishes in time
// leaves the inner conn's deadlines as the caller set them, and sets
// none of its own.
func TestConn_HandshakeKeepsDeadlines(t *testing.T) {
	cases := []struct {
		name     string
		deadline time.Duration // the caller's read deadline on the inner conn, if not zero
		sendAt   time.Duration // when the peer sends a packet
		timedOut bool          // the read times out at the deadline
	}{
		{"caller's deadline survives", 90 * time.Second, 5 * time.Minute, true},
		{"no deadline left behind", 0, 5 * time.Minute, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := memconn.Pipe(64 << 10)
				defer a.Close()
				defer b.Close()
				start := time.Now()
				if tc.deadline > 0 {
					a.SetReadDeadline(start.Add(tc.deadline))
				}
				c, s := Client(a, nil), Server(b, nil)
				errc := make(chan error, 1)
				go func() { errc <- s.Handshake() }()
				if err := c.Handshake(); err != nil {
					t.Fatal(err)
				}
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				sent := make(chan struct{})
				go func() {
					defer close(sent)
					time.Sleep(tc.sendAt)
					s.WritePacket([]byte("late"))
				}()
				defer func() { <-sent }()
				got, err := c.ReadPacket()
				elapsed := time.Since(start)
				if tc.timedOut {
					if !errors.Is(err, os.ErrDeadlineExceeded) || elapsed != tc.deadline {
						t.Fatalf("read: %q, %v after %v; want a timeout after %v", got, err, elapsed, tc.deadline)
					}
					return
				}
				if err != nil || string(got) != "late" || elapsed != tc.sendAt {
					t.Fatalf("read: %q, %v after %v; want %q after %v", got, err, elapsed, "late", tc.sendAt)
				}
			})
		})
	}
}

// TestConn_ReadPacketErrors: how ReadPacket ends, for each way the peer's
// bytes end or go wrong.
func TestConn_ReadPacketErrors(t *testing.T) {
	closeWrite := func(c *Conn) { c.NetConn().(interface{ CloseWrite() error }).CloseWrite() }
	raw := func(c *Conn, b []byte) { c.NetConn().Write(b) }
	// packet seals contents; it runs on the peer's goroutine.
	packet := func(t *testing.T, c *Conn, contents []byte) []byte {
		t.Helper()
		b, err := c.AppendPacket(nil, contents)
		if err != nil {
			t.Error(err)
		}
		return b
	}
	type read struct {
		deadline time.Duration // a read deadline from now, if not zero
		want     string        // the contents, when check is nil
		check    func(error) bool
	}
	timeout := func(err error) bool {
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout()
	}
	is := func(target error) func(error) bool { return func(err error) bool { return err == target } }
	cases := []struct {
		name   string
		scfg   *Config
		peer   func(t *testing.T, p *Conn)
		reads  []read
		closed bool // the inner conn ends up closed
	}{
		{name: "timeout, then the packet",
			peer: func(t *testing.T, p *Conn) {
				time.Sleep(2 * time.Second)
				raw(p, packet(t, p, []byte("x")))
			},
			reads: []read{{deadline: time.Second, check: timeout}, {want: "x"}}},
		{name: "timeout mid-packet",
			peer: func(t *testing.T, p *Conn) {
				pkt := packet(t, p, bytes.Repeat([]byte("y"), 1000))
				raw(p, pkt[:500])
				time.Sleep(2 * time.Second)
				raw(p, pkt[500:])
			},
			reads: []read{{deadline: time.Second, check: timeout}, {want: string(bytes.Repeat([]byte("y"), 1000))}}},
		{name: "EOF between packets",
			peer: func(t *testing.T, p *Conn) {
				d, _ := p.AppendDecoy(nil, 7)
				raw(p, d)
				raw(p, packet(t, p, []byte("a")))
				d, _ = p.AppendDecoy(nil, 9)
				raw(p, d)
				closeWrite(p)
			},
			reads: []read{{want: "a"}, {check: is(io.EOF)}, {check: is(io.EOF)}}},
		{name: "EOF inside the length",
			peer: func(t *testing.T, p *Conn) {
				raw(p, packet(t, p, []byte("abc"))[:2])
				closeWrite(p)
			},
			reads: []read{{check: is(io.ErrUnexpectedEOF)}, {check: is(io.ErrUnexpectedEOF)}}},
		{name: "EOF inside the body",
			peer: func(t *testing.T, p *Conn) {
				raw(p, packet(t, p, []byte("abc"))[:10])
				closeWrite(p)
			},
			reads: []read{{check: is(io.ErrUnexpectedEOF)}, {check: is(io.ErrUnexpectedEOF)}}},
		{name: "bad tag",
			peer: func(t *testing.T, p *Conn) {
				pkt := packet(t, p, []byte("abc"))
				pkt[len(pkt)-1] ^= 1
				raw(p, pkt)
			},
			reads:  []read{{check: is(ErrAuth)}, {check: is(ErrAuth)}},
			closed: true},
		{name: "length over the limit", scfg: &Config{MaxContentLen: 1000},
			peer: func(t *testing.T, p *Conn) { raw(p, packet(t, p, make([]byte, 1001))) },
			reads: []read{
				{check: func(err error) bool { return errors.As(err, new(*ContentTooLongError)) }},
				{check: func(err error) bool { return errors.As(err, new(*ContentTooLongError)) }},
			},
			closed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, s := handshakeConns(t, nil, tc.scfg, 64<<10)
				go tc.peer(t, p)
				for i, r := range tc.reads {
					if r.deadline > 0 {
						s.SetReadDeadline(time.Now().Add(r.deadline))
					} else {
						s.SetReadDeadline(time.Time{})
					}
					got, err := s.ReadPacket()
					if r.check == nil {
						if err != nil || string(got) != r.want {
							t.Fatalf("read %d: %d bytes, %v; want %d bytes", i, len(got), err, len(r.want))
						}
					} else if !r.check(err) {
						t.Fatalf("read %d: %q, %v", i, got, err)
					}
				}
				_, err := s.NetConn().Write([]byte{0})
				if closed := errors.Is(err, net.ErrClosed); closed != tc.closed {
					t.Errorf("inner conn closed: %v, want %v (write: %v)", closed, tc.closed, err)
				}
				synctest.Wait()
			})
		})
	}
}

// TestDecoder_GivesBackLargeBuffers: after a packet over 256 KiB, the
// next smaller packet leaves the decoder's buffer small again, while
// large packets in a row reuse one buffer; for every chunking.
func TestDecoder_GivesBackLargeBuffers(t *testing.T) {
	const large = 4_000_000
	for _, chunk := range []int{1 << 30, 64 << 10, 1000} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) {
			ini, res := handshakePair(t, nil, nil, 1<<20)
			send, d := ini.Session(), res.Session().Decoder()
			open := func(n int) {
				t.Helper()
				pkts := decodeChunks(t, d, send.Seal(nil, make([]byte, n), false), chunk)
				if len(pkts) != 1 || len(pkts[0].Contents) != n {
					t.Fatalf("decoded %d packets", len(pkts))
				}
			}
			open(large)
			if cap(d.buf) < large {
				t.Fatalf("buffer of %d bytes after a %d-byte packet", cap(d.buf), large)
			}
			first := &d.buf[:1][0]
			open(large)
			if chunk >= SealedLen(large) && &d.buf[:1][0] != first {
				t.Error("a second large packet took a new buffer")
			}
			for _, n := range []int{100, 0, 20_000} {
				open(n)
				if cap(d.buf) > maxRetainedBuffer {
					t.Fatalf("buffer of %d bytes after a %d-byte packet", cap(d.buf), n)
				}
			}
		})
	}
}

// TestConn_GivesBackLargeBuffers: a Conn that read a 4 MB packet holds a
// small buffer again once a small packet follows, or once the connection
// goes quiet.
func TestConn_GivesBackLargeBuffers(t *testing.T) {
	for _, quiet := range []bool{false, true} {
		name := "small packet follows"
		if quiet {
			name = "connection goes quiet"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, s := handshakeConns(t, nil, nil, 1<<20)
				go func() {
					c.WritePacket(make([]byte, 4_000_000))
					if !quiet {
						c.WritePacket([]byte("small"))
					}
				}()
				got, err := s.ReadPacket()
				if err != nil || len(got) != 4_000_000 {
					t.Fatalf("read %d bytes, %v", len(got), err)
				}
				if quiet {
					s.SetReadDeadline(time.Now().Add(time.Second))
					if _, err := s.ReadPacket(); !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatalf("read: %v, want a timeout", err)
					}
				} else if got, err := s.ReadPacket(); err != nil || string(got) != "small" {
					t.Fatalf("read %q, %v", got, err)
				}
				if n := cap(s.sess.dec.buf); n > maxRetainedBuffer {
					t.Fatalf("decoder holds %d bytes", n)
				}
			})
		})
	}
}

package shaper

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/bip324pt/bip324-pt/internal/testutil"
	"io"
	mrand "math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bip324pt/bip324-pt/eval/wiretap"
	"github.com/bip324pt/bip324-pt/internal/memconn"
	"github.com/bip324pt/bip324-pt/padding"
	"github.com/bip324pt/bip324-pt/schedule"
	"github.com/bip324pt/bip324-pt/v2core"
)

func cbr(cell int, interval time.Duration) func(schedule.Role, *mrand.Rand) (schedule.Schedule, error) {
	return func(schedule.Role, *mrand.Rand) (schedule.Schedule, error) {
		return schedule.NewConstantRate(schedule.ConstantRateParams{CellSize: cell, Interval: interval})
	}
}

// pair is a shaped client and server over a net.Pipe, both tapped.
type pair struct {
	cli, srv *stream
	rec      *wiretap.Recorder
	// handshake writes of each side, to skip in the trace
	cliHS, srvHS int
}

func newPair(t *testing.T, ccfg, scfg *Config) *pair {
	t.Helper()
	// 256 KiB a direction, like loopback TCP's buffers; net.Pipe has none,
	// and two ends that both write before reading would block it.
	a, b := memconn.Pipe(256 << 10)
	return pairOver(t, a, b, ccfg, scfg)
}

// pairOver makes the tapped, handshaken pair over the two ends a and b.
func pairOver(t *testing.T, a, b net.Conn, ccfg, scfg *Config) *pair {
	t.Helper()
	rec := wiretap.New(time.Now(), 0)
	p := &pair{
		cli: newStream(Client(wiretap.Tap(a, rec, true), ccfg)),
		srv: newStream(Server(wiretap.Tap(b, rec, false), scfg)),
		rec: rec,
	}
	errc := make(chan error, 1)
	go func() { errc <- p.srv.Handshake() }()
	if err := p.cli.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	// A constant-rate end sends its first cell in the handshake's
	// instant, from its send loop: let the loops settle, then count the
	// handshake's writes by its bytes (every byte sent since is a decoy).
	synctest.Wait()
	p.cliHS = handshakeWrites(rec.Events(), wiretap.Sent, p.cli.Stats())
	p.srvHS = handshakeWrites(rec.Events(), wiretap.Received, p.srv.Stats())
	return p
}

// handshakeWrites counts the writes of direction d that carried the
// handshake of the end with stats st, which has sent no data yet.
func handshakeWrites(ev []wiretap.Event, d wiretap.Dir, st Stats) int {
	left, n := st.WireOut-st.DecoyOut, 0
	for _, e := range wiretap.Filter(ev, d) {
		if left <= 0 {
			break
		}
		left -= int64(e.Size)
		n++
	}
	return n
}

// sink reads c until an error and hashes what it read.
type sink struct {
	mu   sync.Mutex
	h    []byte
	n    int
	done chan struct{}
}

func drain(c net.Conn) *sink {
	s := &sink{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		h := sha256.New()
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			h.Write(buf[:n])
			s.mu.Lock()
			s.n += n
			s.mu.Unlock()
			if err != nil {
				s.mu.Lock()
				s.h = h.Sum(nil)
				s.mu.Unlock()
				return
			}
		}
	}()
	return s
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// writesAfter returns the events of direction d after the first skip.
func writesAfter(ev []wiretap.Event, d wiretap.Dir, skip int) []wiretap.Event {
	w := wiretap.Filter(ev, d)
	if skip > len(w) {
		return nil
	}
	return w[skip:]
}

// TestConn_ConstantRate checks the constant-rate profile on the wire: every
// tick carries exactly the cell size, idle, half loaded and saturated, and
// the data arrives intact.
func TestConn_ConstantRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const cell, tick = 1448, 10 * time.Millisecond
		cfg := &Config{Shape: &Shape{Schedule: cbr(cell, tick)}, Seed: [32]byte{1}}
		p := newPair(t, cfg, cfg)
		got := drain(p.srv)
		back := drain(p.cli)

		all := sha256.New()
		write := func(b []byte) {
			t.Helper()
			all.Write(b)
			if _, err := p.cli.Write(b); err != nil {
				t.Fatal(err)
			}
		}
		data := make([]byte, 600_000)
		mrand.NewChaCha8([32]byte{2}).Read(data)

		// Idle: the cells started with the handshake; one byte, then a
		// second of decoys.
		write(data[:1])
		time.Sleep(time.Second)
		idleCells := len(writesAfter(p.rec.Events(), wiretap.Sent, p.cliHS))
		// Half loaded: 700 bytes a tick, about half a cell's payload.
		for i := range 100 {
			write(data[1+i*700 : 1+(i+1)*700])
			time.Sleep(tick)
		}
		halfEnd := len(writesAfter(p.rec.Events(), wiretap.Sent, p.cliHS))
		// Saturated.
		sat := data[70_001:]
		before := got.count()
		start := time.Now()
		write(sat)
		for got.count() < before+len(sat) {
			time.Sleep(tick)
		}
		satTime := time.Since(start)
		if err := p.cli.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		p.srv.Close()
		<-got.done
		<-back.done

		if got.n != len(data) || !bytes.Equal(got.h, all.Sum(nil)) {
			t.Fatalf("server got %d bytes (hash match %v), want %d", got.n, bytes.Equal(got.h, all.Sum(nil)), len(data))
		}
		cells := writesAfter(p.rec.Events(), wiretap.Sent, p.cliHS)
		if idleCells < 99 || idleCells > 102 {
			t.Errorf("%d cells in the idle second, want 100", idleCells)
		}
		if halfEnd-idleCells < 99 || halfEnd-idleCells > 102 {
			t.Errorf("%d cells in the half-loaded second, want 100", halfEnd-idleCells)
		}
		for i, c := range cells {
			if c.Size != cell {
				t.Fatalf("cell %d is %d bytes, want %d", i, c.Size, cell)
			}
			if i > 0 {
				if gap := c.Time - cells[i-1].Time; gap != tick {
					t.Fatalf("cell %d came %v after the previous, want %v", i, gap, tick)
				}
			}
		}
		// Saturated goodput: every cell but the last carries
		// cell - 21 bytes of stream (20 bytes of BIP324 framing and
		// our record byte).
		perCell := cell - v2core.PacketOverhead - 1
		maxCells := (len(sat)+perCell-1)/perCell + 1
		if satTime > time.Duration(maxCells)*tick {
			t.Errorf("saturated: %d bytes took %v, want at most %d cells (%v)", len(sat), satTime, maxCells, time.Duration(maxCells)*tick)
		}
		st := p.cli.Stats()
		if st.DataOut != int64(len(data)) {
			t.Errorf("DataOut = %d, want %d", st.DataOut, len(data))
		}
		if st.DataOut+st.Packets*int64(v2core.PacketOverhead+1)+st.DecoyOut != int64(len(cells)*cell) {
			t.Errorf("counters do not add up to the cells: %+v, %d cells", st, len(cells))
		}
		// The server shaped its own direction: its cells are all
		// decoys here and all of the cell size.
		for _, c := range writesAfter(p.rec.Events(), wiretap.Received, p.srvHS) {
			if c.Size != cell {
				t.Fatalf("server cell of %d bytes", c.Size)
			}
		}
	})
}

// TestConn_None checks the unshaped path: data both ways, any sizes.
func TestConn_None(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	a, b := testutil.TCPPair(t)
	cli, srv := newStream(Client(a, nil)), newStream(Server(b, nil))
	data := make([]byte, 3<<20)
	mrand.NewChaCha8([32]byte{3}).Read(data)
	var wg sync.WaitGroup
	var got []byte
	var rerr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		got, rerr = io.ReadAll(srv)
	}()
	for off := 0; off < len(data); {
		n := min(len(data)-off, 1+off%70_000)
		if _, err := cli.Write(data[off : off+n]); err != nil {
			t.Fatal(err)
		}
		off += n
	}
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	srv.Close()
	if rerr != nil && !errors.Is(rerr, io.ErrUnexpectedEOF) {
		t.Fatalf("read: %v", rerr)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, want %d, equal=%v", len(got), len(data), bytes.Equal(got, data))
	}
	if d := cli.Stats().DecoyOut; d != 0 {
		t.Fatalf("none sent %d decoy bytes", d)
	}
}

// TestConn_SameSeedSameDecisions runs a jitter-shaped exchange twice with
// one seed and once with another: the wire (sizes and times) repeats
// exactly with the seed and differs without it.
func TestConn_SameSeedSameDecisions(t *testing.T) {
	run := func(seed byte) []string {
		var out []string
		synctest.Test(t, func(t *testing.T) {
			jit := func(_ schedule.Role, r *mrand.Rand) (schedule.Schedule, error) {
				return schedule.NewJitter(schedule.JitterParams{}, r)
			}
			cfg := &Config{Shape: &Shape{Schedule: jit}, Seed: [32]byte{seed}}
			p := newPair(t, cfg, cfg)
			got := drain(p.srv)
			back := drain(p.cli)
			data := make([]byte, 100_000)
			p.cli.Write(data)
			p.cli.Close()
			p.srv.Close()
			<-got.done
			<-back.done
			start := p.rec.Events()[0].Time
			for _, e := range wiretap.Filter(p.rec.Events(), wiretap.Sent) {
				out = append(out, fmt.Sprintf("%v %d", e.Time-start, e.Size))
			}
		})
		return out
	}
	a, b, c := run(5), run(5), run(6)
	if len(a) < 10 {
		t.Fatalf("only %d writes", len(a))
	}
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("same seed, different wire:\n%v\n%v", a, b)
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatal("different seeds, same wire")
	}
}

// TestConn_SlowReader: a peer that never reads makes Write block once the
// queue is full, and the write deadline ends the wait; memory stays at the
// queue size.
func TestConn_SlowReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &Config{Shape: &Shape{QueueSize: 64 << 10, Linger: -1}}
		p := newPair(t, cfg, &Config{})
		p.cli.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := p.cli.Write(make([]byte, 50<<20))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("err = %v, want a timeout", err)
		}
		// The queue, the socket's buffer and one packet in flight.
		if limit := 64<<10 + 256<<10 + DefaultMaxPacket; n > limit {
			t.Errorf("Write took %d bytes, more than the %d the queue and socket hold", n, limit)
		}
		if err := p.cli.Close(); err == nil {
			t.Fatal("Close reported no unsent bytes")
		}
		p.srv.Close()
	})
}

// TestConn_Close: no goroutine is left after Close, on either end, and
// use after Close reports net.ErrClosed.
func TestConn_Close(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	a, b := testutil.TCPPair(t)
	cfg := &Config{Shape: &Shape{Schedule: cbr(512, time.Millisecond)}}
	cli, srv := newStream(Client(a, cfg)), newStream(Server(b, cfg))
	go srv.Handshake()
	if _, err := cli.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}
	cli.Close()
	srv.Close()
	if _, err := cli.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

// TestConn_HandshakeShaping: garbage length and filler, handshake decoys,
// version contents and a split first flight all reach the wire.
func TestConn_HandshakeShaping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &Config{
			Shape: &Shape{
				GarbageLen:      fixedDist(1000),
				HandshakeDecoys: fixedDist(3),
				DecoySize:       fixedDist(100),
				FirstWriteSize:  100,
			},
			VersionContents: []byte("profile=cbr"),
			Seed:            [32]byte{9},
		}
		p := newPair(t, cfg, &Config{})
		w := wiretap.Filter(p.rec.Events(), wiretap.Sent)
		if len(w) != 3 || w[0].Size != 100 || w[1].Size != 64+1000-100 {
			t.Fatalf("client writes %v, want 100, 964, then the rest", w)
		}
		if want := 16 + 3*(20+100) + 20 + len("profile=cbr"); w[2].Size != want {
			t.Fatalf("second flight %d bytes, want %d", w[2].Size, want)
		}
		if string(p.srv.PeerVersion()) != "profile=cbr" {
			t.Fatalf("peer version %q", p.srv.PeerVersion())
		}
		if p.srv.Stats().DecoysIn != 3 {
			t.Fatalf("server saw %d decoys", p.srv.Stats().DecoysIn)
		}
		if p.cli.Stats().Garbage != 1000 {
			t.Fatalf("garbage counter %d", p.cli.Stats().Garbage)
		}
		p.cli.Close()
		p.srv.Close()
	})
}

// TestConn_Negotiate: the server shapes its send side with the Config its
// Negotiate picks from the client's version packet.
func TestConn_Negotiate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked []byte
		scfg := &Config{Negotiate: func(v []byte) (*Shape, [32]byte, error) {
			asked = append([]byte(nil), v...)
			if string(v) != "cbr please" {
				return nil, [32]byte{}, errors.New("unknown request")
			}
			return &Shape{Schedule: cbr(600, 5*time.Millisecond)}, [32]byte{}, nil
		}}
		p := newPair(t, &Config{VersionContents: []byte("cbr please")}, scfg)
		back := drain(p.cli)
		got := drain(p.srv)
		p.srv.Write([]byte("x"))
		time.Sleep(100 * time.Millisecond)
		p.cli.Close()
		p.srv.Close()
		<-back.done
		<-got.done
		if string(asked) != "cbr please" {
			t.Fatalf("Negotiate saw %q", asked)
		}
		cells := writesAfter(p.rec.Events(), wiretap.Received, p.srvHS)
		if len(cells) < 19 {
			t.Fatalf("%d server cells in 100ms, want about 20", len(cells))
		}
		for _, c := range cells {
			if c.Size != 600 {
				t.Fatalf("server cell of %d bytes, want 600", c.Size)
			}
		}
	})
	// A refused request fails the server's handshake.
	synctest.Test(t, func(t *testing.T) {
		a, b := memconn.Pipe(1 << 16)
		cli := Client(a, &Config{VersionContents: []byte("warp 9")})
		srv := Server(b, &Config{Negotiate: func([]byte) (*Shape, [32]byte, error) { return nil, [32]byte{}, errors.New("no") }})
		go cli.Handshake()
		if err := srv.Handshake(); err == nil || !strings.Contains(err.Error(), "negotiation") {
			t.Fatalf("server handshake: %v", err)
		}
		cli.Close()
	})
}

// TestConn_MaxDecoyRatio: with a decoy cap, an idle constant-rate
// connection stops padding once its decoys reach the cap, and real data
// still goes out.
func TestConn_MaxDecoyRatio(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &Config{Shape: &Shape{Schedule: cbr(1000, 10*time.Millisecond), MaxDecoyRatio: 2}}
		p := newPair(t, cfg, &Config{})
		got := drain(p.srv)
		back := drain(p.cli)
		p.cli.Write(make([]byte, 5000))
		time.Sleep(time.Second)
		st := p.cli.Stats()
		// The cap: twice the data sent, plus one cell.
		if limit := 2*st.DataOut + 1000; st.DecoyOut > limit {
			t.Errorf("decoys %d bytes, cap %d", st.DecoyOut, limit)
		}
		if st.DecoyOut == 0 {
			t.Error("no decoys at all: the cap is not a ban")
		}
		p.cli.Write([]byte("more"))
		time.Sleep(100 * time.Millisecond)
		p.cli.Close()
		p.srv.Close()
		<-got.done
		<-back.done
		if got.n != 5004 {
			t.Fatalf("server got %d bytes, want 5004", got.n)
		}
	})
}

// TestConn_CloseWrite: a half-close reaches the peer as io.EOF after the
// bytes before it, while the other direction goes on at the profile's
// rate; writes after it fail; and each end's stream ends on its own.
func TestConn_CloseWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &Config{Shape: &Shape{Schedule: cbr(1448, 10*time.Millisecond)}}
		p := newPair(t, cfg, cfg)
		if _, err := p.cli.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		if err := p.cli.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if _, err := p.cli.Write([]byte("x")); !errors.Is(err, ErrEnded) {
			t.Errorf("write after End: %v, want ErrEnded", err)
		}
		got, err := io.ReadAll(p.srv)
		if err != nil || string(got) != "hello" {
			t.Fatalf("server read %q, %v; want \"hello\" then EOF", got, err)
		}
		// The other direction still carries data, 100 kB at the rate.
		data := bytes.Repeat([]byte("w"), 100_000)
		go func() {
			p.srv.Write(data)
			p.srv.CloseWrite()
		}()
		back, err := io.ReadAll(p.cli)
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("client read %d bytes, %v; want %d then EOF", len(back), err, len(data))
		}
		if n, err := p.srv.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Errorf("read after the end: %d, %v; want 0, EOF", n, err)
		}
		if err := p.cli.Close(); err != nil {
			t.Errorf("client close: %v", err)
		}
		if err := p.srv.Close(); err != nil {
			t.Errorf("server close: %v", err)
		}
		if st := p.srv.Stats(); st.DataOut != int64(len(data)) || st.Dropped != 0 {
			t.Errorf("server stats: %d delivered, %d dropped", st.DataOut, st.Dropped)
		}
	})
}

// TestConn_EOF: a connection that ends between packets gives io.EOF from
// ReadPacket (whether the stream ended is its caller's framing to say).
func TestConn_EOF(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, nil, nil)
		if err := p.srv.WritePacket([]byte{7}, []byte("partial")); err != nil {
			t.Fatal(err)
		}
		b, err := p.cli.ReadPacket()
		if err != nil || string(b) != "\x07partial" {
			t.Fatalf("ReadPacket = %q, %v", b, err)
		}
		p.srv.NetConn().Close()
		if _, err := p.cli.ReadPacket(); err != io.EOF {
			t.Fatalf("ReadPacket = %v, want io.EOF", err)
		}
		p.cli.Conn.Close()
		p.srv.Conn.Close()
	})
}

// TestConn_CloseDeliversAll: Close with a full queue on a constant-rate
// connection waits as long as the rate needs, well past the linger, and
// every byte arrives: the linger bounds only a peer that stops reading.
func TestConn_CloseDeliversAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &Config{Shape: &Shape{Schedule: cbr(1448, 10*time.Millisecond), Linger: time.Second}}
		p := newPair(t, cfg, cfg)
		got := drain(p.srv)
		const total = 1 << 20
		data := make([]byte, total)
		mrand.NewChaCha8([32]byte{9}).Read(data)
		if _, err := p.cli.Write(data); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := p.cli.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		took := time.Since(start)
		<-got.done
		want := sha256.Sum256(data)
		if got.n != total || !bytes.Equal(got.h, want[:]) {
			t.Fatalf("server got %d bytes, want %d intact", got.n, total)
		}
		// 1 MiB in cells of 1427 bytes of stream every 10 ms.
		if min := 7 * time.Second; took < min {
			t.Errorf("Close took %v; the rate needs at least %v", took, min)
		}
		if st := p.cli.Stats(); st.DataOut != total || st.Dropped != 0 {
			t.Errorf("stats: %d delivered, %d dropped", st.DataOut, st.Dropped)
		}
		p.srv.Close()
	})
}

// TestConn_LargeMessageConstantRate: a 4 MB message, one packet, spans
// thousands of constant-rate cells, every one of them exactly the cell
// size (the write policy cuts ciphertext, not messages), and arrives
// whole, in order with the small messages around it, with its type.
func TestConn_LargeMessageConstantRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const cell, tick = 1448, 10 * time.Millisecond
		cfg := &Config{Shape: &Shape{Schedule: cbr(cell, tick), QueueSize: 1 << 20}}
		p := newPair(t, cfg, &Config{})
		block := make([]byte, 4_000_000)
		mrand.NewChaCha8([32]byte{4}).Read(block)
		msgs := []struct {
			typ  byte
			body []byte
		}{{1, []byte("before")}, {2, block}, {3, []byte("after")}}
		done := make(chan error, 1)
		go func() {
			for _, m := range msgs {
				if err := p.cli.WritePacket([]byte{m.typ}, m.body); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		for i, m := range msgs {
			got, err := p.srv.ReadPacket()
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if got[0] != m.typ || !bytes.Equal(got[1:], m.body) {
				t.Fatalf("message %d: type %d, %d bytes; want type %d, %d bytes", i, got[0], len(got)-1, m.typ, len(m.body))
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // a few idle cells too
		cells := writesAfter(p.rec.Events(), wiretap.Sent, p.cliHS)
		if min := (4_000_000 + 21) / cell; len(cells) < min {
			t.Fatalf("%d cells, want at least %d for the block", len(cells), min)
		}
		for i, c := range cells {
			if c.Size != cell {
				t.Fatalf("cell %d of %d is %d bytes, want %d", i, len(cells), c.Size, cell)
			}
			if i > 0 && c.Time-cells[i-1].Time != tick {
				t.Fatalf("cell %d came %v after the previous, want %v", i, c.Time-cells[i-1].Time, tick)
			}
		}
		st := p.cli.Stats()
		if want := int64(len("before") + len(block) + len("after")); st.DataOut != want || st.Packets != 3 {
			t.Errorf("DataOut %d in %d packets, want %d in 3", st.DataOut, st.Packets, want)
		}
		p.cli.Conn.Close()
		p.srv.Conn.Close()
	})
}

// TestConn_Admit: a server whose Admit refuses the peer's flight fails
// its handshake with a *NotAdmittedError that hands over the BIP324
// session, socket open; Admit sees the client's garbage as sent.
func TestConn_Admit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := memconn.Pipe(1 << 16)
		var seen []byte
		cli := Client(a, &Config{Shape: &Shape{GarbageLen: fixedDist(100), Garbage: padding.PrintableFiller{}}})
		srv := Server(b, &Config{Admit: func(key *[v2core.EllswiftKeySize]byte, g []byte) error {
			seen = append([]byte{}, g...)
			return errors.New("no mark")
		}})
		go func() {
			cli.Handshake()
			cli.WritePacket([]byte{1}, []byte("hello node"))
		}()
		err := srv.Handshake()
		var na *NotAdmittedError
		if !errors.As(err, &na) || na.Conn == nil {
			t.Fatalf("server handshake: %v, want a *NotAdmittedError with the session", err)
		}
		if len(seen) != 100 {
			t.Fatalf("Admit saw %d bytes of garbage, want 100", len(seen))
		}
		got, err := na.Conn.ReadPacket()
		if err != nil || string(got) != "\x01hello node" {
			t.Fatalf("the handed-over session read %q, %v", got, err)
		}
		na.Conn.Close()
		cli.Close()
	})
}

// TestConn_CloseSlowReader: Close waits for a peer that reads slowly but
// steadily, well past the linger: the linger bounds a stall, not the
// delivery (a 3 MiB packet to a peer reading 16 KiB every 10 ms, with a
// 300 ms linger).
func TestConn_CloseSlowReader(t *testing.T) {
	a, b := testutil.TCPPair(t)
	a.(*net.TCPConn).SetWriteBuffer(32 << 10)
	b.(*net.TCPConn).SetReadBuffer(32 << 10)
	cli := Client(a, &Config{Shape: &Shape{Linger: 300 * time.Millisecond}})
	srv := Server(&slowReader{Conn: b}, nil)
	go srv.Handshake()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 3<<20)
	mrand.NewChaCha8([32]byte{5}).Read(block)
	got := make(chan []byte, 1)
	go func() {
		// The peer reads at about 1.6 MB/s (slowReader).
		var b []byte
		for {
			p, err := srv.ReadPacket()
			if err != nil {
				got <- b
				return
			}
			b = append(b, p...)
		}
	}()
	if err := cli.WritePacket([]byte{1}, block); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := cli.Close(); err != nil {
		t.Fatalf("Close: %v (the peer was reading all along)", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("Close took %v: the peer was not slow, the test shows nothing", d)
	}
	b0 := <-got
	if len(b0) != 1+len(block) || !bytes.Equal(b0[1:], block) {
		t.Fatalf("peer got %d bytes, want %d intact", len(b0), 1+len(block))
	}
	srv.Close()
}

// TestConn_CloseDuringHandshake: Close cuts a handshake in progress short
// instead of waiting out its timeout.
func TestConn_CloseDuringHandshake(t *testing.T) {
	a, _ := testutil.TCPPair(t) // the peer never answers
	c := Client(a, &Config{HandshakeTimeout: 30 * time.Second})
	errc := make(chan error, 1)
	go func() { errc <- c.Handshake() }()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	c.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v with a handshake in progress", d)
	}
	if err := <-errc; err == nil {
		t.Fatal("the handshake succeeded after Close")
	}
}

// slowReader reads at most 16 KiB every 10 ms from its socket.
type slowReader struct{ net.Conn }

func (c *slowReader) Read(p []byte) (int, error) {
	time.Sleep(10 * time.Millisecond)
	return c.Conn.Read(p[:min(len(p), 16<<10)])
}

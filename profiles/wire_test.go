package profiles_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bip324pt/bip324-pt/eval/fet"
	"github.com/bip324pt/bip324-pt/eval/wiretap"
	"github.com/bip324pt/bip324-pt/internal/bridge"
	"github.com/bip324pt/bip324-pt/internal/memconn"
	"github.com/bip324pt/bip324-pt/padding"
	"github.com/bip324pt/bip324-pt/profiles"
	"github.com/bip324pt/bip324-pt/schedule"
	"github.com/bip324pt/bip324-pt/shaper"
	"github.com/bip324pt/bip324-pt/v2core"
)

// compile loads a profile and compiles it with a sample seed.
func compile(t testing.TB, name string, seed [32]byte) *shaper.Config {
	t.Helper()
	p, err := profiles.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	shape, err := p.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return &shaper.Config{Shape: shape, Seed: seed}
}

// wirePair is a shaped client and server over a buffered in-memory pipe
// (256 KiB a direction, like loopback TCP), both ends tapped, each a byte
// stream in the bridge's framing.
type wirePair struct {
	cli, srv *bridge.Conn
	rec      *wiretap.Recorder
	// socket writes each end made in its handshake, to skip in traces
	cliHS, srvHS int
}

func newWirePair(t *testing.T, ccfg, scfg *shaper.Config) *wirePair {
	t.Helper()
	a, b := memconn.Pipe(256 << 10)
	rec := wiretap.New(time.Now(), 0)
	p := &wirePair{
		cli: bridge.NewConn(shaper.Client(wiretap.Tap(a, rec, true), ccfg), nil),
		srv: bridge.NewConn(shaper.Server(wiretap.Tap(b, rec, false), scfg), nil),
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
	p.cliHS = int(p.cli.Stats().Writes)
	p.srvHS = int(p.srv.Stats().Writes)
	return p
}

// after returns the events of direction d that follow the first skip.
func after(ev []wiretap.Event, d wiretap.Dir, skip int) []wiretap.Event {
	w := wiretap.Filter(ev, d)
	if skip > len(w) {
		return nil
	}
	return w[skip:]
}

// reader reads a conn until an error, hashing and counting what it reads.
// It closes first when the first bytes arrive, and done when it stops.
type reader struct {
	mu    sync.Mutex
	n     int
	sum   []byte
	first chan struct{}
	done  chan struct{}
}

func readAll(c net.Conn) *reader {
	r := &reader{first: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		h := sha256.New()
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			h.Write(buf[:n])
			r.mu.Lock()
			if r.n == 0 && n > 0 {
				close(r.first)
			}
			r.n += n
			r.mu.Unlock()
			if err != nil {
				r.mu.Lock()
				r.sum = h.Sum(nil)
				r.mu.Unlock()
				return
			}
		}
	}()
	return r
}

func (r *reader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// burst is a run of downstream writes with less than the quiet gap
// between them.
type burst struct {
	start, end time.Duration
	writes     int
	bytes      int
}

// segmentRange is the range of one segment's wire bytes at rung r, as
// schedule.Video draws it: bitrate/8 × duration × a VBR factor in steps of
// a thousandth. A segment whose last piece is under one packet's framing
// leaves that piece unsent, so the low end allows for it.
func segmentRange(vp schedule.VideoParams, r int) (lo, hi int) {
	base := int64(vp.Ladder[r]) * int64(vp.SegmentDuration) / (8 * int64(time.Second))
	vbr := int64(vp.VBR*1000 + 0.5)
	return int(base*(1000-vbr)/1000) - (v2core.PacketOverhead - 1), int(base * (1000 + vbr) / 1000)
}

// TestWire_Video plays the video profile: the client asks for a stream
// with a few bytes, the server answers with 20 MB, and the wire must show
// schedule.Video's segment model. Downstream: at least 90% of the writes
// are exactly the MTU; they come in bursts, the first StartupSegments a
// quiet gap apart, then one a segment duration apart, each one segment at
// some ladder rung (never two back to back), the first at the start
// rung, the ladder climbed while data waits. Upstream: one request-sized
// write per burst, at its start.
func TestWire_Video(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ccfg := compile(t, "video", [32]byte{'v', 1})
		scfg := compile(t, "video", [32]byte{'v', 2})
		// The model's parameters, as the profile compiled them.
		s, err := scfg.Shape.Schedule(schedule.Server, mrand.New(mrand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		vp := s.(*schedule.Video).Params()
		reqLo, reqHi := vp.RequestSize.(padding.Dist).Bounds()

		p := newWirePair(t, ccfg, scfg)
		down := readAll(p.cli)
		up := readAll(p.srv)

		const total = 20 << 20
		data := make([]byte, total)
		mrand.NewChaCha8([32]byte{'d'}).Read(data)
		request := []byte("GET /stream.m3u8 HTTP/1.1\r\n\r\n")
		if _, err := p.cli.Write(request); err != nil {
			t.Fatal(err)
		}
		// The server answers the request, as a web server would.
		<-up.first
		werr := make(chan error, 1)
		go func() {
			_, err := p.srv.Write(data)
			werr <- err
		}()
		start := time.Now()
		for down.count() < total {
			time.Sleep(100 * time.Millisecond)
		}
		elapsed := time.Since(start)
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
		// The stream's end is one more write each way after this: the
		// end-of-stream record, padded to the opportunity it takes.
		closeAt := time.Since(p.rec.Start())
		if err := p.srv.Close(); err != nil {
			t.Fatalf("server close: %v", err)
		}
		if err := p.cli.Close(); err != nil {
			t.Fatalf("client close: %v", err)
		}
		<-down.done
		<-up.done
		want := sha256.Sum256(data)
		if down.n != total || !bytes.Equal(down.sum, want[:]) {
			t.Fatalf("client read %d bytes, want %d intact", down.n, total)
		}
		if up.n != len(request) {
			t.Fatalf("server read %d bytes, want %d", up.n, len(request))
		}

		ev := p.rec.Events()
		var ends []wiretap.Event
		for i, e := range ev {
			if e.Time >= closeAt {
				ends = ev[i:]
				ev = ev[:i]
				break
			}
		}
		if len(wiretap.Filter(ends, wiretap.Sent)) != 1 || len(wiretap.Filter(ends, wiretap.Received)) != 1 ||
			wiretap.Filter(ends, wiretap.Sent)[0].Size > reqHi || wiretap.Filter(ends, wiretap.Received)[0].Size > vp.MTU {
			t.Errorf("after Close: %v, want one write each way (the end of each stream, within an MTU and a request)", ends)
		}
		dw := after(ev, wiretap.Received, p.srvHS)
		uw := after(ev, wiretap.Sent, p.cliHS)

		// Write sizes.
		atMTU := 0
		for _, e := range dw {
			if e.Size > vp.MTU {
				t.Fatalf("downstream write of %d bytes, over the %d-byte MTU", e.Size, vp.MTU)
			}
			if e.Size == vp.MTU {
				atMTU++
			}
		}
		if 10*atMTU < 9*len(dw) {
			t.Errorf("%d of %d downstream writes are %d bytes, want at least 90%%", atMTU, len(dw), vp.MTU)
		}

		// Bursts: writes with less than the quiet gap between them.
		var bursts []burst
		for i, e := range dw {
			if i == 0 || e.Time-dw[i-1].Time >= vp.QuietGap {
				bursts = append(bursts, burst{start: e.Time})
			}
			b := &bursts[len(bursts)-1]
			b.end = e.Time
			b.writes++
			b.bytes += e.Size
		}
		t.Logf("%d MiB in %v (virtual): %d downstream writes, %d of %d bytes; %d bursts; %d upstream writes",
			total>>20, elapsed, len(dw), atMTU, vp.MTU, len(bursts), len(uw))
		if least := vp.StartupSegments + 3; len(bursts) < least {
			t.Fatalf("%d bursts, want at least %d", len(bursts), least)
		}
		const slack = 10 * time.Millisecond
		top := len(vp.Ladder) - 1
		topLo, _ := segmentRange(vp, top)
		largest := 0
		for i, b := range bursts {
			if d := b.end - b.start; d >= vp.SegmentDuration {
				t.Errorf("burst %d lasted %v, a segment's duration or more", i, d)
			}
			if i > 0 {
				gap := b.start - bursts[i-1].start
				want := vp.SegmentDuration
				if i < vp.StartupSegments {
					want = vp.QuietGap // startup: the next request once a segment is in
				}
				if gap < want-slack || gap > want+slack {
					t.Errorf("burst %d began %v after the previous, want %v", i, gap, want)
				}
			}
			// One segment per burst: the server's unprompted burst falls
			// due with the client's request, and whichever comes first,
			// the request gets that one segment, not a second one after
			// it.
			single := false
			for r := range vp.Ladder {
				if lo, hi := segmentRange(vp, r); b.bytes >= lo && b.bytes <= hi {
					single = true
				}
			}
			switch {
			case i == 0:
				if lo, hi := segmentRange(vp, vp.StartRung); b.bytes < lo || b.bytes > hi {
					t.Errorf("first burst of %d bytes, want one segment at the start rung: %d..%d", b.bytes, lo, hi)
				}
			case !single:
				t.Errorf("burst %d of %d bytes is not one segment at any rung", i, b.bytes)
			}
			largest = max(largest, b.bytes)
			t.Logf("burst %d at %v: %d writes, %d bytes", i, b.start, b.writes, b.bytes)
		}
		if largest < topLo {
			t.Errorf("largest burst %d bytes: the ladder never reached its top (%d bytes a segment) with data waiting", largest, topLo)
		}

		// Upstream: one request per burst, at its start.
		if len(uw) != len(bursts) {
			t.Errorf("%d upstream writes for %d bursts, want one request each", len(uw), len(bursts))
		}
		for i, e := range uw {
			if e.Size < reqLo || e.Size > reqHi {
				t.Errorf("request %d of %d bytes, want %d..%d", i, e.Size, reqLo, reqHi)
			}
			if i < len(bursts) {
				if d := bursts[i].start - e.Time; d < 0 || d > time.Millisecond {
					t.Errorf("request %d at %v, burst at %v", i, e.Time, bursts[i].start)
				}
			}
		}
	})
}

// flightConn takes the client's first write and fails it, which ends the
// handshake there: a censor's view of the first flight, without the
// responder's half of the handshake (two more scalar multiplications).
type flightConn struct {
	net.Conn
	first []byte
}

var errFlightTaken = errors.New("flight taken")

func (c *flightConn) Write(p []byte) (int, error) {
	if c.first == nil {
		c.first = append([]byte{}, p...)
	}
	return 0, errFlightTaken
}

// raceEnabled reports whether the test binary has the race detector,
// under which a handshake's scalar multiplications cost ten times more.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// flightCount is how many handshakes the statistical tests make: 10,000,
// or 2,000 under the race detector, where 10,000 would take a minute.
func flightCount() int {
	if raceEnabled() {
		return 2_000
	}
	return 10_000
}

// firstFlights returns the first write of n client handshakes with the
// named profile, each with its own sample seed and key source, spread
// over GOMAXPROCS goroutines.
func firstFlights(t *testing.T, name string, n int) [][]byte {
	t.Helper()
	p, err := profiles.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, n)
	workers := runtime.GOMAXPROCS(0)
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := w; i < n; i += workers {
				var seed [32]byte
				copy(seed[:], name)
				binary.LittleEndian.PutUint64(seed[24:], uint64(i))
				shape, err := p.Compile()
				if err != nil {
					errs <- err
					return
				}
				cfg := &shaper.Config{Shape: shape, Seed: seed}
				keySeed := seed
				keySeed[23] = 'k'
				cfg.Rand = mrand.NewChaCha8(keySeed)
				a, _ := memconn.Pipe(1)
				fc := &flightConn{Conn: a}
				if err := shaper.Client(fc, cfg).Handshake(); !errors.Is(err, errFlightTaken) {
					errs <- fmt.Errorf("handshake %d: %v, want the flight taken", i, err)
					return
				}
				out[i] = fc.first
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// segmentSize is what a censor sees of the first flight in the first
// TCP segment on a 1500-byte path.
const segmentSize = 1448

// TestWire_FETFirstFlight: every first flight of the fet profile is
// exempt from the fully-encrypted-traffic rule, whole and in its first
// TCP segment. As a control, most first flights of "none" (random
// garbage) are not.
func TestWire_FETFirstFlight(t *testing.T) {
	t.Parallel()
	n := flightCount()
	start := time.Now()
	flights := firstFlights(t, "fet", n)
	rules := map[fet.Rule]int{}
	for i, f := range flights {
		if len(f) < v2core.EllswiftKeySize {
			t.Fatalf("flight %d: first write of %d bytes, shorter than the key", i, len(f))
		}
		whole := fet.Check(f)
		seg := fet.Check(f[:min(len(f), segmentSize)])
		if whole == fet.Blocked || seg == fet.Blocked {
			t.Errorf("flight %d (%d bytes): whole %s, first segment %s", i, len(f), whole, seg)
		}
		rules[seg]++
	}
	t.Logf("%d fet first flights in %v; first segment exempt by %v", n, time.Since(start), rules)

	const controls = 200
	blocked := 0
	for _, f := range firstFlights(t, "none", controls) {
		if fet.Check(f[:min(len(f), segmentSize)]) == fet.Blocked {
			blocked++
		}
	}
	t.Logf("control: %d of %d none first flights blocked", blocked, controls)
	if blocked < controls*9/10 {
		t.Errorf("only %d of %d random first flights blocked: the check cannot tell", blocked, controls)
	}
}

// TestWire_BitcoinGarbage: the garbage lengths of the bitcoin profile's
// first flights, read off the wire (first write minus the 64-byte key),
// pass a Kolmogorov-Smirnov test against the uniform distribution on
// 0..4095, as Bitcoin Core draws them: D < 2/sqrt(n), which is 0.02 at
// 10,000 flights (p ≈ 0.0007 for a continuous law; conservative for a
// discrete one).
func TestWire_BitcoinGarbage(t *testing.T) {
	t.Parallel()
	n := flightCount()
	start := time.Now()
	flights := firstFlights(t, "bitcoin", n)
	var counts [v2core.MaxGarbageLen + 1]int
	for i, f := range flights {
		g := len(f) - v2core.EllswiftKeySize
		if g < 0 || g > v2core.MaxGarbageLen {
			t.Fatalf("flight %d: first write of %d bytes, want the key and 0..%d bytes of garbage", i, len(f), v2core.MaxGarbageLen)
		}
		counts[g]++
	}
	d := ksUniform(counts[:], n)
	limit := 2 / math.Sqrt(float64(n))
	t.Logf("%d bitcoin first flights in %v: KS D = %.4f against uniform 0..%d (limit %.4f)", n, time.Since(start), d, v2core.MaxGarbageLen, limit)
	if d >= limit {
		t.Errorf("garbage lengths: KS D = %.4f, want below %.4f", d, limit)
	}
}

// ksUniform returns the Kolmogorov-Smirnov statistic of n samples, given
// as counts per value, against the discrete uniform law on
// 0..len(counts)-1. Both CDFs step only at the integers, so the supremum
// is reached at one of them.
func ksUniform(counts []int, n int) float64 {
	d, cum := 0.0, 0
	for x, c := range counts {
		cum += c
		d = max(d, math.Abs(float64(cum)/float64(n)-float64(x+1)/float64(len(counts))))
	}
	return d
}

func TestKSUniform(t *testing.T) {
	counts := make([]int, 4)
	for i := range counts {
		counts[i] = 25
	}
	if d := ksUniform(counts, 100); d > 1e-12 {
		t.Errorf("uniform counts: D = %v, want 0", d)
	}
	if d := ksUniform([]int{100, 0, 0, 0}, 100); math.Abs(d-0.75) > 1e-12 {
		t.Errorf("all at 0: D = %v, want 0.75", d)
	}
	if d := ksUniform([]int{0, 0, 0, 100}, 100); math.Abs(d-0.75) > 1e-12 {
		t.Errorf("all at 3: D = %v, want 0.75", d)
	}
}

// TestWire_BitcoinNoDecoys: full handshakes with the bitcoin profile at
// both ends, data both ways and idle time between: no decoy in the
// handshake (the initiator's second flight is the 16-byte terminator and
// an empty version packet, nothing else) or after it (every byte written
// is a data packet's), and the peers count none.
func TestWire_BitcoinNoDecoys(t *testing.T) {
	pairs := 50
	if raceEnabled() {
		pairs = 20
	}
	synctest.Test(t, func(t *testing.T) {
		for i := range pairs {
			ccfg := compile(t, "bitcoin", [32]byte{'b', 'c', byte(i)})
			scfg := compile(t, "bitcoin", [32]byte{'b', 's', byte(i)})
			p := newWirePair(t, ccfg, scfg)
			cw := wiretap.Filter(p.rec.Events(), wiretap.Sent)
			if len(cw) != 2 {
				t.Fatalf("pair %d: client handshake in %d writes, want 2", i, len(cw))
			}
			g := p.cli.Stats().Garbage
			if cw[0].Size != v2core.EllswiftKeySize+int(g) {
				t.Fatalf("pair %d: first flight %d bytes with %d of garbage", i, cw[0].Size, g)
			}
			if want := v2core.GarbageTerminatorSize + v2core.PacketOverhead; cw[1].Size != want {
				t.Fatalf("pair %d: second flight %d bytes, want %d (terminator and empty version, no decoys)", i, cw[1].Size, want)
			}
			cliHSWire, srvHSWire := p.cli.Stats().WireOut, p.srv.Stats().WireOut
			if want := int64(v2core.EllswiftKeySize) + p.srv.Stats().Garbage + v2core.GarbageTerminatorSize + v2core.PacketOverhead; srvHSWire != want {
				t.Fatalf("pair %d: responder's handshake %d bytes, want %d", i, srvHSWire, want)
			}
			got := readAll(p.srv)
			back := readAll(p.cli)
			r := mrand.New(mrand.NewPCG(uint64(i), 0))
			sent, echoed := 0, 0
			for range 10 {
				n := 1 + r.IntN(100_000)
				if _, err := p.cli.Write(make([]byte, n)); err != nil {
					t.Fatal(err)
				}
				sent += n
				m := 1 + r.IntN(5_000)
				if _, err := p.srv.Write(make([]byte, m)); err != nil {
					t.Fatal(err)
				}
				echoed += m
				time.Sleep(time.Duration(r.IntN(3000)) * time.Millisecond)
			}
			synctest.Wait()
			if err := p.cli.Close(); err != nil {
				t.Fatal(err)
			}
			if err := p.srv.Close(); err != nil {
				t.Fatal(err)
			}
			<-got.done
			<-back.done
			if got.n != sent || back.n != echoed {
				t.Fatalf("pair %d: read %d and %d bytes, want %d and %d", i, got.n, back.n, sent, echoed)
			}
			for _, side := range []struct {
				name   string
				c      *bridge.Conn
				hsWire int64
			}{{"client", p.cli, cliHSWire}, {"server", p.srv, srvHSWire}} {
				st := side.c.Stats()
				if st.Decoys != 0 || st.DecoyOut != 0 || st.DecoysIn != 0 {
					t.Fatalf("pair %d %s: %d decoys (%d bytes) sent, %d received", i, side.name, st.Decoys, st.DecoyOut, st.DecoysIn)
				}
				if want := st.DataOut + st.Packets*(v2core.PacketOverhead+1); st.WireOut-side.hsWire != want {
					t.Fatalf("pair %d %s: %d bytes on the wire after the handshake, data packets account for %d", i, side.name, st.WireOut-side.hsWire, want)
				}
			}
		}
	})
}

// TestWire_SameSeed: through Load and Compile, every built-in profile
// repeats its wire exactly (the size and time of every write, both ways)
// under one sample seed, and changes it under another. Each app write has
// its own odd nanosecond offset, so no two schedules' grids (anchored at
// the writes) and no write share an instant, and the order in which the
// bubble runs goroutines cannot matter. Upstream writes are small enough
// for video's requests to carry them.
func TestWire_SameSeed(t *testing.T) {
	run := func(name string, seed byte) string {
		var trace strings.Builder
		synctest.Test(t, func(t *testing.T) {
			p := newWirePair(t, compile(t, name, [32]byte{'c', seed}), compile(t, name, [32]byte{'s', seed}))
			up, down := readAll(p.srv), readAll(p.cli)
			start := time.Now()
			at := func(d time.Duration) { time.Sleep(time.Until(start.Add(d))) }
			for _, w := range []struct {
				at  time.Duration
				cli bool
				n   int
			}{{0, true, 100}, {50*time.Millisecond + 333, false, 30_000}, {60*time.Millisecond + 777, true, 200},
				{150*time.Millisecond + 1_111, false, 30_000}, {170*time.Millisecond + 2_222, true, 50}} {
				at(w.at)
				c := p.srv
				if w.cli {
					c = p.cli
				}
				if _, err := c.Write(make([]byte, w.n)); err != nil {
					t.Fatal(err)
				}
			}
			// The closes too, at an instant no cell shares.
			at(3*time.Second + 555)
			if err := p.cli.Close(); err != nil {
				t.Fatal(err)
			}
			if err := p.srv.Close(); err != nil {
				t.Fatal(err)
			}
			<-up.done
			<-down.done
			for _, d := range []wiretap.Dir{wiretap.Sent, wiretap.Received} {
				for _, e := range wiretap.Filter(p.rec.Events(), d) {
					fmt.Fprintf(&trace, "%v %v %d\n", d, e.Time, e.Size)
				}
			}
		})
		return trace.String()
	}
	for _, name := range profiles.Builtins() {
		t.Run(name, func(t *testing.T) {
			a, b, c := run(name, 1), run(name, 1), run(name, 2)
			if n := strings.Count(a, "\n"); n < 6 {
				t.Fatalf("only %d writes:\n%s", n, a)
			}
			if a != b {
				t.Errorf("same seed, different wire:\n%s\n---\n%s", a, b)
			}
			if a == c {
				t.Errorf("different seeds, same wire:\n%s", a)
			}
		})
	}
}

// TestWire_SlowReaderClose: a cbr sender whose peer never reads. Write
// blocks once the queue and the socket's buffer are full, having taken
// no more than they hold; Close while it blocks keeps sending for the
// profile's linger (5 s with no byte taken), then gives up, reports the
// undelivered bytes, and wakes
// the blocked Write with an error that unwraps to net.ErrClosed. The
// bubble checks that no goroutine is left.
func TestWire_SlowReaderClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := compile(t, "cbr", [32]byte{'r'})
		p := newWirePair(t, cfg, compile(t, "cbr", [32]byte{'R'}))
		type result struct {
			n   int
			err error
		}
		done := make(chan result, 1)
		go func() {
			buf := make([]byte, 64<<10)
			total := 0
			for {
				n, err := p.cli.Write(buf)
				total += n
				if err != nil {
					done <- result{total, err}
					return
				}
			}
		}()
		// 256 KiB of pipe fill in 181 cells of 10 ms.
		time.Sleep(3 * time.Second)
		synctest.Wait()
		select {
		case r := <-done:
			t.Fatalf("Write returned %d, %v with the peer not reading", r.n, r.err)
		default:
		}
		limit := 1<<20 + 256<<10 + 2*1448 // queue, pipe, a cell in flight
		start := time.Now()
		var ue *shaper.UnsentError
		if err := p.cli.Close(); !errors.As(err, &ue) || ue.Bytes == 0 {
			t.Fatalf("Close = %v, want the undelivered bytes reported", err)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("Close took %v, want the profile's 5s linger", d)
		}
		r := <-done
		t.Logf("Write took %d bytes before blocking (limit %d), then returned %v", r.n, limit, r.err)
		if r.n > limit {
			t.Errorf("Write took %d bytes, more than the %d the queue and pipe hold", r.n, limit)
		}
		if !errors.Is(r.err, net.ErrClosed) {
			t.Errorf("blocked Write returned %v after Close, want net.ErrClosed", r.err)
		}
		// Every byte Write took is either delivered or counted as
		// dropped, and Close's error says how many were dropped.
		if st := p.cli.Stats(); st.Dropped != ue.Bytes || st.DataOut+st.Dropped != int64(r.n) {
			t.Errorf("Close reports %d undelivered; Stats: %d delivered, %d dropped; Write took %d", ue.Bytes, st.DataOut, st.Dropped, r.n)
		}
		p.srv.Close()
	})
}

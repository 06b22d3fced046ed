package profiles_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
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

// segmentRange is the range of one segment's wire bytes at bitrate
// rate, as schedule.Video draws it: rate/8 × duration × a VBR factor in
// steps of a thousandth. A segment whose last piece is under one packet's
// framing leaves that piece unsent, so the low end allows for it.
func segmentRange(vp schedule.VideoParams, rate int) (lo, hi int) {
	base := int64(rate) * int64(vp.SegmentDuration) / (8 * int64(time.Second))
	vbr := int64(vp.VBR*1000 + 0.5)
	return int(base*(1000-vbr)/1000) - (v2core.PacketOverhead - 1), int(base * (1000 + vbr) / 1000)
}

// videoParams returns the video profile's schedule parameters, as
// compiled.
func videoParams(t *testing.T, cfg *shaper.Config) schedule.VideoParams {
	t.Helper()
	s, err := cfg.Shape.Schedule(schedule.Server, mrand.New(mrand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	return s.(*schedule.Video).Params()
}

// bursts groups writes with less than gap between them.
func bursts(ws []wiretap.Event, gap time.Duration) []burst {
	var bs []burst
	for i, e := range ws {
		if i == 0 || e.Time-ws[i-1].Time >= gap {
			bs = append(bs, burst{start: e.Time})
		}
		b := &bs[len(bs)-1]
		b.end = e.Time
		b.writes++
		b.bytes += e.Size
	}
	return bs
}

// TestWire_Video plays the video profile: the tunnel stays idle for 20 s
// after the handshake, then the client asks for a stream with a few
// bytes and the server answers with 4 MiB. The wire must show
// schedule.Video's player from the handshake on, idle or not.
// Downstream: at least 90% of the writes are exactly the MTU; they come
// in bursts, each one segment, video at some ladder rung and audio
// alternately, never two back to back; the first 2×StartupSegments a
// quiet gap after the burst before ends (startup), then one every half
// segment duration, except at a seek, which starts up again; the first at
// the start rung, the ladder at its top on this fast link before any data
// flows. Upstream: every write is one whole request, and every burst
// begins within a millisecond of its own request: none comes unasked.
func TestWire_Video(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ccfg := compile(t, "video", [32]byte{'v', 1})
		scfg := compile(t, "video", [32]byte{'v', 2})
		vp := videoParams(t, scfg)
		reqLo, reqHi := vp.RequestSize.(padding.Dist).Bounds()
		if vp.AudioBitrate == 0 {
			t.Fatal("the built-in has no audio stream")
		}

		p := newWirePair(t, ccfg, scfg)
		down := readAll(p.cli)
		up := readAll(p.srv)

		const idle = 20 * time.Second
		time.Sleep(idle)
		idleAt := time.Since(p.rec.Start())

		const total = 4 << 20
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
		// Poll off the model's instants (all whole milliseconds), so the
		// closes below never share one with a request or a burst.
		time.Sleep(333)
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
		if len(wiretap.Filter(ends, wiretap.Sent)) > 1 || len(wiretap.Filter(ends, wiretap.Received)) > 1 {
			t.Errorf("after Close: %v, want at most one write each way (the end of each stream)", ends)
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

		bs := bursts(dw, vp.QuietGap)
		t.Logf("%d MiB in %v (virtual) after %v idle: %d downstream writes, %d of %d bytes; %d bursts; %d upstream writes",
			total>>20, elapsed, idle, len(dw), atMTU, vp.MTU, len(bs), len(uw))
		startup := 2 * vp.StartupSegments
		if least := startup + 10; len(bs) < least {
			t.Fatalf("%d bursts, want at least %d", len(bs), least)
		}
		const slack = 10 * time.Millisecond
		period := vp.SegmentDuration / 2 // audio and video alternate
		top := len(vp.Ladder) - 1
		topLo, _ := segmentRange(vp, vp.Ladder[top])
		audioLo, audioHi := segmentRange(vp, vp.AudioBitrate)
		largestIdle, seeks := 0, 0
		inStartup := startup - 1 // bursts of the current startup still to come
		for i, b := range bs {
			if d := b.end - b.start; d >= period {
				t.Errorf("burst %d lasted %v, a request period or more", i, d)
			}
			if i > 0 {
				gap := b.start - bs[i-1].start
				afterEnd := b.start - bs[i-1].end
				switch {
				case inStartup > 0 && afterEnd >= vp.QuietGap && afterEnd <= vp.QuietGap+slack:
					inStartup--
				case inStartup == 0 && gap >= period-slack && gap <= period+slack:
				case inStartup == 0 && gap > vp.QuietGap && gap < period-slack:
					// A seek: a new startup follows.
					seeks++
					inStartup = startup - 1
				default:
					t.Errorf("burst %d began %v after the previous began (%v after it ended); startup bursts to come %d", i, gap, afterEnd, inStartup)
				}
			}
			// One segment per burst: video (at some rung) and audio
			// alternately.
			single := false
			if i%2 == 1 {
				single = b.bytes >= audioLo && b.bytes <= audioHi
			} else {
				for _, rate := range vp.Ladder {
					if lo, hi := segmentRange(vp, rate); b.bytes >= lo && b.bytes <= hi {
						single = true
					}
				}
			}
			switch {
			case i == 0:
				if lo, hi := segmentRange(vp, vp.Ladder[vp.StartRung]); b.bytes < lo || b.bytes > hi {
					t.Errorf("first burst of %d bytes, want one segment at the start rung: %d..%d", b.bytes, lo, hi)
				}
			case !single:
				t.Errorf("burst %d (audio %v) of %d bytes is not one segment", i, i%2 == 1, b.bytes)
			}
			t.Logf("burst %d at %v: %d writes, %d bytes", i, b.start, b.writes, b.bytes)
			if b.end < idleAt {
				largestIdle = max(largestIdle, b.bytes)
			}
		}
		t.Logf("%d seeks", seeks)
		if largestIdle < topLo {
			t.Errorf("largest burst while idle %d bytes: the ladder never reached its top (%d bytes a segment) on a fast link", largestIdle, topLo)
		}

		// Upstream: one whole request before each burst, none between.
		if len(uw) != len(bs) && len(uw) != len(bs)+1 {
			t.Errorf("%d upstream writes for %d bursts, want one request each", len(uw), len(bs))
		}
		for i, e := range uw {
			if e.Size < reqLo || e.Size > reqHi {
				t.Errorf("request %d of %d bytes, want %d..%d", i, e.Size, reqLo, reqHi)
			}
			if i < len(bs) {
				if d := bs[i].start - e.Time; d < 0 || d > time.Millisecond {
					t.Errorf("request %d at %v, burst at %v", i, e.Time, bs[i].start)
				}
			}
		}
	})
}

// TestWire_VideoInteractive: through the video profile, in virtual time,
// 500-byte messages written at random every 1 to 3 s, each way at once
// for 5 minutes, arrive within the segment duration at the 90th
// percentile: upstream they wait for the next request (one every half
// segment), downstream for the next segment.
func TestWire_VideoInteractive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		scfg := compile(t, "video", [32]byte{'i', 2})
		vp := videoParams(t, scfg)
		p := newWirePair(t, compile(t, "video", [32]byte{'i', 1}), scfg)
		const (
			msg  = 500
			span = 5 * time.Minute
		)
		type dir struct {
			name string
			w, r *bridge.Conn
			sent []time.Time
			lat  []time.Duration
		}
		dirs := []*dir{{name: "upstream", w: p.cli, r: p.srv}, {name: "downstream", w: p.srv, r: p.cli}}
		var wg sync.WaitGroup
		for k, d := range dirs {
			wg.Add(2)
			var mu sync.Mutex
			go func() { // writer
				defer wg.Done()
				r := mrand.New(mrand.NewPCG(uint64(k), 7))
				end := time.Now().Add(span)
				for time.Now().Before(end) {
					time.Sleep(time.Second + time.Duration(r.Int64N(int64(2*time.Second))))
					mu.Lock()
					d.sent = append(d.sent, time.Now())
					mu.Unlock()
					if _, err := d.w.Write(make([]byte, msg)); err != nil {
						t.Error(err)
						return
					}
				}
				d.w.CloseWrite()
			}()
			go func() { // reader
				defer wg.Done()
				buf := make([]byte, 64<<10)
				got := 0
				for {
					n, err := d.r.Read(buf)
					got += n
					mu.Lock()
					for len(d.lat) < got/msg {
						d.lat = append(d.lat, time.Since(d.sent[len(d.lat)]))
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
		wg.Wait()
		p.cli.Close()
		p.srv.Close()
		for _, d := range dirs {
			if len(d.lat) != len(d.sent) || len(d.lat) < 100 {
				t.Fatalf("%s: %d of %d messages arrived", d.name, len(d.lat), len(d.sent))
			}
			l := slices.Clone(d.lat)
			slices.Sort(l)
			p50, p90, worst := l[len(l)/2], l[len(l)*9/10], l[len(l)-1]
			t.Logf("%s: %d messages of %d bytes, latency p50 %v, p90 %v, max %v", d.name, len(l), msg, p50, p90, worst)
			if p90 > vp.SegmentDuration {
				t.Errorf("%s: p90 latency %v, over the %v segment duration", d.name, p90, vp.SegmentDuration)
			}
		}
	})
}

// TestWire_VideoThroughput measures what the video profile carries in
// bulk, one way at a time, in virtual time: 1 MiB upstream (requests
// only) and 4 MiB downstream (segments). It checks the figures the
// profile's docs give: upstream at least 4 KB/s, about 5 KB/s of requests
// less framing, enough for Tor's SENDMEs at the downstream rate (3.4%),
// and downstream at least 100 KB/s.
func TestWire_VideoThroughput(t *testing.T) {
	for _, tt := range []struct {
		name  string
		up    bool
		n     int
		least float64 // bytes/s
	}{
		{"upstream", true, 1 << 20, 4_000},
		{"downstream", false, 4 << 20, 100_000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newWirePair(t, compile(t, "video", [32]byte{'t', 1}), compile(t, "video", [32]byte{'t', 2}))
				w, r := p.srv, p.cli
				if tt.up {
					w, r = p.cli, p.srv
				}
				got := readAll(r)
				readAll(w) // the server hears requests only as it reads
				start := time.Now()
				if _, err := w.Write(make([]byte, tt.n)); err != nil {
					t.Fatal(err)
				}
				for got.count() < tt.n {
					time.Sleep(10 * time.Millisecond)
				}
				d := time.Since(start)
				rate := float64(tt.n) / d.Seconds()
				t.Logf("%s: %d bytes in %v (virtual): %.0f bytes/s", tt.name, tt.n, d, rate)
				if rate < tt.least {
					t.Errorf("%s: %.0f bytes/s, want at least %.0f", tt.name, rate, tt.least)
				}
				p.cli.Close()
				p.srv.Close()
				<-got.done
			})
		})
	}
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
				// The first flight's contents, not its timing (real
				// time here; TestWire_BitcoinFirstFlightDelay has it).
				shape.FirstFlightDelay = nil
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

// coreSize reports whether n is the wire size of a message the bitcoin
// schedule sends: Core's opening sizes, ping 29, addrv2 37, headers 103,
// an inv or getdata (22+36k), or a block of 1-2 MB.
func coreSize(n int) bool {
	switch {
	case n == 135 || n == 33 || n == 30 || n == 29 || n == 37 || n == 103:
		return true
	case n >= 58 && (n-22)%36 == 0:
		return true
	}
	return n >= 1_000_000 && n <= 2_000_000
}

// TestWire_BitcoinCore replaces TestWire_BitcoinNoDecoys: the bitcoin
// profile now pads Core's messages with decoys by design, so what it
// promises is Core's sizes, not the absence of decoys. Full handshakes
// with the bitcoin profile at both ends: no decoy in the handshake (the
// initiator's second flight is the 16-byte terminator and an empty
// version packet, nothing else) and the initiator's first flight
// delayed by one of Core's measured delays; after it, each end's first
// writes are Core's opening in Core's order (post_handshake_messages.csv:
// client version, wtxidrelay, sendaddrv2, verack, getaddr, sendcmpct,
// ping, feefilter; server the same without getaddr), at Core's gaps,
// though 100 kB of data waits each way; every later write is the size
// of a Core message; and the data gets through intact.
// The built-in bitcoin profile and the bitcoin-peer example (Core's
// cadence kept under load).
func TestWire_BitcoinCore(t *testing.T) {
	for _, name := range []string{"bitcoin", "examples/bitcoin-peer.toml"} {
		t.Run(name, func(t *testing.T) { testWireBitcoinCore(t, name) })
	}
}

func testWireBitcoinCore(t *testing.T, name string) {
	pairs := 5
	if raceEnabled() {
		pairs = 2
	}
	delays := coreFirstFlightDelays(t)
	synctest.Test(t, func(t *testing.T) {
		for i := range pairs {
			ccfg := compile(t, name, [32]byte{'b', 'c', byte(i)})
			scfg := compile(t, name, [32]byte{'b', 's', byte(i)})
			p := newWirePair(t, ccfg, scfg)
			hsDone := time.Since(p.rec.Start())
			cw := wiretap.Filter(p.rec.Events(), wiretap.Sent)
			if len(cw) != 2 {
				t.Fatalf("pair %d: client handshake in %d writes, want 2", i, len(cw))
			}
			if !delays[cw[0].Time] {
				t.Errorf("pair %d: first flight after %v, none of Core's delays", i, cw[0].Time)
			}
			g := p.cli.Stats().Garbage
			if cw[0].Size != v2core.EllswiftKeySize+int(g) {
				t.Fatalf("pair %d: first flight %d bytes with %d of garbage", i, cw[0].Size, g)
			}
			if want := v2core.GarbageTerminatorSize + v2core.PacketOverhead; cw[1].Size != want {
				t.Fatalf("pair %d: second flight %d bytes, want %d (terminator and empty version, no decoys)", i, cw[1].Size, want)
			}
			if want := int64(v2core.EllswiftKeySize) + p.srv.Stats().Garbage + v2core.GarbageTerminatorSize + v2core.PacketOverhead; p.srv.Stats().WireOut != want {
				t.Fatalf("pair %d: responder's handshake %d bytes, want %d", i, p.srv.Stats().WireOut, want)
			}

			got := readAll(p.srv)
			back := readAll(p.cli)
			up := make([]byte, 100_000)
			down := make([]byte, 100_000)
			mrand.NewChaCha8([32]byte{'u', byte(i)}).Read(up)
			mrand.NewChaCha8([32]byte{'d', byte(i)}).Read(down)
			if _, err := p.cli.Write(up); err != nil {
				t.Fatal(err)
			}
			if _, err := p.srv.Write(down); err != nil {
				t.Fatal(err)
			}
			for got.count() < len(up) || back.count() < len(down) {
				time.Sleep(time.Second)
			}
			elapsed := time.Since(p.rec.Start()) - hsDone
			if err := p.cli.Close(); err != nil {
				t.Fatal(err)
			}
			if err := p.srv.Close(); err != nil {
				t.Fatal(err)
			}
			<-got.done
			<-back.done
			wantUp, wantDown := sha256.Sum256(up), sha256.Sum256(down)
			if got.n != len(up) || !bytes.Equal(got.sum, wantUp[:]) || back.n != len(down) || !bytes.Equal(back.sum, wantDown[:]) {
				t.Fatalf("pair %d: read %d and %d bytes, want 100000 each way intact", i, got.n, back.n)
			}

			ev := p.rec.Events()
			for _, side := range []struct {
				name  string
				dir   wiretap.Dir
				skip  int
				role  schedule.Role
				first time.Duration // when the opening starts
			}{{"client", wiretap.Sent, p.cliHS, schedule.Client, hsDone}, {"server", wiretap.Received, p.srvHS, schedule.Server, -1}} {
				w := after(ev, side.dir, side.skip)
				sizes, offsets := schedule.BitcoinOpening(side.role)
				if len(w) < len(sizes) {
					t.Fatalf("pair %d %s: %d writes after the handshake", i, side.name, len(w))
				}
				start := side.first
				if start < 0 { // the server starts on the client's version
					start = after(ev, wiretap.Sent, p.cliHS)[0].Time
				}
				for j, size := range sizes {
					if w[j].Size != size || w[j].Time-start != offsets[j] {
						t.Errorf("pair %d %s: write %d of %d bytes at +%v, want %d at +%v", i, side.name, j, w[j].Size, w[j].Time-start, size, offsets[j])
					}
				}
				// A block leaves in packets of the profile's packet size,
				// written at one instant: a burst of full segments, as
				// Core's one message of a block leaves. So writes at one
				// instant count as one message when they are not each
				// one.
				rest := w[len(sizes):]
				for len(rest) > 0 {
					n, sum, each := 0, 0, true
					for n < len(rest) && rest[n].Time == rest[0].Time {
						sum += rest[n].Size
						each = each && coreSize(rest[n].Size)
						n++
					}
					if !each && !coreSize(sum) && rest[0].Time < elapsed+hsDone {
						t.Errorf("pair %d %s: %d writes of %d bytes at %v, no Core message's size", i, side.name, n, sum, rest[0].Time)
					}
					rest = rest[n:]
				}
				t.Logf("pair %d %s: %d writes after the handshake; 100 kB each way in %v", i, side.name, len(w), elapsed)
			}
		}
	})
}

// coreFirstFlightDelays returns the delays of Bitcoin Core's initiator
// from connect to its first flight, to the microsecond, from
// testdata/bitcoin-core-wire/initiator_conns.csv (v2 rows).
func coreFirstFlightDelays(t *testing.T) map[time.Duration]bool {
	t.Helper()
	f, err := os.Open("../testdata/bitcoin-core-wire/initiator_conns.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	out := map[time.Duration]bool{}
	for _, r := range rows[1:] {
		if r[col["kind"]] != "v2" {
			continue
		}
		ms, err := strconv.ParseFloat(r[col["ack_to_first_data_ms"]], 64)
		if err != nil {
			t.Fatal(err)
		}
		out[time.Duration(math.Round(ms*1000))*time.Microsecond] = true
	}
	if len(out) < 150 {
		t.Fatalf("%d distinct delays", len(out))
	}
	return out
}

// TestWire_BitcoinFirstFlightDelay: the bitcoin profile's initiator
// writes its first flight after one of Core's measured delays, in Core's
// two modes: of 210 measured, 107 within 0.17-17.4 ms and 103 at
// 37-52.3 ms (initiator_conns.csv). Over 600 seeded handshakes the
// shares are within 0.07 of 0.51 and 0.49 (about 2.5 standard errors),
// and every delay is one of Core's. A responder never waits.
func TestWire_BitcoinFirstFlightDelay(t *testing.T) {
	delays := coreFirstFlightDelays(t)
	const n = 600
	synctest.Test(t, func(t *testing.T) {
		low, high := 0, 0
		for i := range n {
			cfg := compile(t, "bitcoin", [32]byte{'f', byte(i), byte(i >> 8)})
			cfg.Rand = mrand.NewChaCha8([32]byte{'k', byte(i), byte(i >> 8)})
			a, _ := memconn.Pipe(1)
			fc := &flightConn{Conn: a}
			start := time.Now()
			if err := shaper.Client(fc, cfg).Handshake(); !errors.Is(err, errFlightTaken) {
				t.Fatalf("handshake %d: %v", i, err)
			}
			d := time.Since(start)
			if !delays[d] {
				t.Fatalf("handshake %d: first flight after %v, none of Core's delays", i, d)
			}
			switch {
			case d <= 17400*time.Microsecond:
				low++
			case d >= 37*time.Millisecond && d <= 52400*time.Microsecond:
				high++
			}
		}
		lo, hi := float64(low)/n, float64(high)/n
		t.Logf("%d handshakes: %.3f within 17.4 ms (Core 0.510), %.3f at 37-52.4 ms (Core 0.490)", n, lo, hi)
		if math.Abs(lo-107.0/210) > 0.07 || math.Abs(hi-103.0/210) > 0.07 || low+high != n {
			t.Errorf("shares %.3f and %.3f, want near 0.510 and 0.490", lo, hi)
		}

		// The responder answers at once.
		a, b := memconn.Pipe(1 << 16)
		cli := shaper.Client(a, &shaper.Config{})
		srv := shaper.Server(b, compile(t, "bitcoin", [32]byte{'r'}))
		errc := make(chan error, 1)
		go func() { errc <- cli.Handshake() }()
		start := time.Now()
		if err := srv.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("handshake with a bitcoin responder took %v, want no wait", d)
		}
		cli.Close()
		srv.Close()
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
			// The closes too, at an instant no cell shares. Both ends
			// end their streams and hear the other's end before either
			// closes its socket: two cbr ends' cells start in the same
			// instant here, the handshake's, so a socket closed at one
			// end's cell would race the other's cell.
			at(3*time.Second + 555)
			p.cli.CloseWrite()
			p.srv.CloseWrite()
			<-up.done
			<-down.done
			if err := p.cli.Close(); err != nil {
				t.Fatal(err)
			}
			if err := p.srv.Close(); err != nil {
				t.Fatal(err)
			}
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

package schedule

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

type burst struct {
	at     time.Duration
	end    time.Duration // the last write
	rung   int
	audio  bool
	writes []int
}

func (b burst) bytes() int {
	n := 0
	for _, w := range b.writes {
		n += w
	}
	return n
}

// videoSession runs a client and a server Video against each other over a
// network with no delay and unlimited bandwidth, each end served by a
// perfect shaper, for d. serverData bytes wait at the server from the
// start; the client has a little data at the start, which begins the
// session.
func videoSession(t *testing.T, p VideoParams, serverData int, d time.Duration) (requests []write, bursts []burst, srv *Video) {
	t.Helper()
	return videoLink(t, p, linkSetup{clientData: 100, serverData: serverData}, d)
}

// linkSetup is what videoLink runs a session with.
type linkSetup struct {
	clientData int           // bytes waiting at the client from the start
	serverData int           // and at the server
	spacing    time.Duration // the least time between two server writes: the link's speed
}

// videoLink is videoSession with data waiting at each end as ls says,
// and the server's writes at least ls.spacing apart. It fails the test if
// a segment begins with no request left unanswered (the server never
// sends one unasked), or if the client sends a request with no byte of a
// response since the one before, unless that request came a request
// period (a segment duration, or half of one with audio) or more after
// it, or is a seek.
func videoLink(t *testing.T, p VideoParams, ls linkSetup, d time.Duration) (requests []write, bursts []burst, srv *Video) {
	t.Helper()
	cp, sp := p, p
	cp.Role, sp.Role = Client, Server
	c, err := NewVideo(cp, seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewVideo(sp, seeded(2))
	if err != nil {
		t.Fatal(err)
	}
	seg := c.Params().SegmentDuration
	if p.AudioBitrate > 0 {
		seg /= 2
	}
	qc, qs := ls.clientData, ls.serverData
	c.Queued(t0, qc)
	s.Queued(t0, qs)
	now := t0
	var lastWrite time.Time
	answered := false // the client has received bytes since its last request
	for steps := 0; steps < 1_000_000; steps++ {
		oc, os := c.Next(now), s.Next(now)
		sAt := os.At
		if !os.Idle() && !lastWrite.IsZero() {
			sAt = later(sAt, lastWrite.Add(ls.spacing))
		}
		// The client's request goes first when both are due: the
		// server only hears it once it has been written.
		useClient := !oc.Idle() && (os.Idle() || !sAt.Before(oc.At))
		if useClient {
			now = oc.At
			if now.Sub(t0) > d {
				break
			}
			if n := len(requests); n > 0 && !answered && now.Sub(t0)-requests[n-1].at < seg && p.SeekEvery == 0 {
				t.Fatalf("request at %v with no response since the one at %v", now.Sub(t0), requests[n-1].at)
			}
			data := min(qc, oc.Size)
			qc -= data
			c.Sent(now, data, false)
			c.Sent(now, oc.Size-data, true)
			requests = append(requests, write{now.Sub(t0), oc.Size, data})
			answered = false
			s.Received(now, oc.Size)
			continue
		}
		if os.Idle() || sAt.Sub(t0) > d {
			break
		}
		now = sAt
		if !s.burst {
			t.Fatalf("server opportunity %v outside a burst", show(os))
		}
		if len(bursts) == 0 || s.segLeft == s.segSize {
			if len(bursts) >= len(requests) {
				t.Fatalf("segment %d at %v with %d requests made: a segment nobody asked for", len(bursts), now.Sub(t0), len(requests))
			}
			bursts = append(bursts, burst{at: now.Sub(t0), rung: s.rung, audio: s.audio})
		}
		data := min(qs, os.Size)
		qs -= data
		s.Sent(now, data, false)
		s.Sent(now, os.Size-data, true)
		lastWrite = now
		b := &bursts[len(bursts)-1]
		b.writes = append(b.writes, os.Size)
		b.end = now.Sub(t0)
		c.Received(now, os.Size)
		answered = true
	}
	return requests, bursts, s
}

// TestVideo_session: a player and its server, from the first event on.
// Startup: three segments back to back, each asked for a quiet gap
// after the previous one arrived; then one per segment duration, each
// request answered by one segment and no segment unasked. The ladder
// climbs by the model on a fast link whether data flows or not: an idle
// tunnel and a busy one look the same on the wire.
func TestVideo_session(t *testing.T) {
	const seg = 4 * time.Second
	ms := time.Millisecond
	p := VideoParams{SegmentDuration: seg}
	wantRungs := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 8}
	var wires []string
	for _, tt := range []struct {
		name                   string
		clientData, serverData int
	}{
		{"idle", 0, 0},
		{"client data only", 100, 0},
		{"busy", 100, 100 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			requests, bursts, _ := videoLink(t, p, linkSetup{clientData: tt.clientData, serverData: tt.serverData}, 30*time.Second)
			// The first a quiet gap after the first event.
			wantAt := []time.Duration{100 * ms, 200 * ms, 300 * ms}
			for at := 300*ms + seg; at <= 30*time.Second; at += seg {
				wantAt = append(wantAt, at)
			}
			if len(requests) != len(wantAt) || len(bursts) != len(wantAt) {
				t.Fatalf("%d requests, %d bursts, want %d of each", len(requests), len(bursts), len(wantAt))
			}
			var wire strings.Builder
			for i, at := range wantAt {
				if requests[i].at != at || bursts[i].at != at {
					t.Errorf("request %d at %v, burst at %v, want %v", i, requests[i].at, bursts[i].at, at)
				}
				if n := requests[i].size; n < 300 || n > 800 {
					t.Errorf("request %d is %d bytes, want 300..800", i, n)
				}
				b := bursts[i]
				if b.rung != wantRungs[i] {
					t.Errorf("segment %d at rung %d, want %d", i, b.rung, wantRungs[i])
				}
				for j, w := range b.writes {
					if j < len(b.writes)-1 && w != DefaultMTU || w < 1 || w > DefaultMTU {
						t.Fatalf("segment %d write %d is %d bytes, want %d but for the last", i, j, w, DefaultMTU)
					}
				}
				base := float64(DefaultLadder()[b.rung]) / 8 * seg.Seconds()
				if f := float64(b.bytes()) / base; f < 0.8-1e-3 || f > 1.2+1e-3 {
					t.Errorf("segment %d is %d bytes, %.3f of bitrate × duration, want 0.8..1.2", i, b.bytes(), f)
				}
				fmt.Fprintf(&wire, "%v %d %v %d\n", requests[i].at, requests[i].size, b.at, b.bytes())
			}
			if requests[0].data != min(tt.clientData, requests[0].size) {
				t.Errorf("the first request carried %d bytes of the client's data, want %d", requests[0].data, tt.clientData)
			}
			wires = append(wires, wire.String())
		})
	}
	for i := 1; i < len(wires); i++ {
		if wires[i] != wires[0] {
			t.Errorf("the wire changes with the data:\n%s\n---\n%s", wires[0], wires[i])
		}
	}
}

// TestVideo_audio: with a separate audio stream the player asks for
// video and audio alternately: six segments back to back at startup,
// then a request every half segment, video on the grid and audio half a
// segment later; the server answers video requests with segments at the
// ladder's rungs and audio ones with segments of the audio bitrate.
func TestVideo_audio(t *testing.T) {
	const (
		seg   = 2 * time.Second
		audio = 128_000
		ms    = time.Millisecond
	)
	p := VideoParams{SegmentDuration: seg, AudioBitrate: audio, RequestSize: intSampler{2000, 8000}}
	requests, bursts, _ := videoLink(t, p, linkSetup{}, 20*time.Second)
	var wantAt []time.Duration
	for i := range 6 {
		wantAt = append(wantAt, time.Duration(i+1)*100*ms)
	}
	for at := 600*ms + seg/2; at <= 20*time.Second; at += seg / 2 {
		wantAt = append(wantAt, at)
	}
	if len(requests) != len(wantAt) || len(bursts) != len(wantAt) {
		t.Fatalf("%d requests, %d bursts, want %d of each", len(requests), len(bursts), len(wantAt))
	}
	rung := 0
	for i, at := range wantAt {
		if requests[i].at != at || bursts[i].at != at {
			t.Errorf("request %d at %v, burst at %v, want %v", i, requests[i].at, bursts[i].at, at)
		}
		if n := requests[i].size; n < 2000 || n > 8000 {
			t.Errorf("request %d is %d bytes, want 2000..8000", i, n)
		}
		b := bursts[i]
		if b.audio != (i%2 == 1) {
			t.Errorf("segment %d audio %v, want video and audio alternately", i, b.audio)
		}
		rate := DefaultLadder()[b.rung]
		if b.audio {
			rate = audio
		} else {
			if b.rung != rung {
				t.Errorf("video segment %d at rung %d, want %d", i, b.rung, rung)
			}
			rung = min(rung+1, len(DefaultLadder())-1)
		}
		base := float64(rate) / 8 * seg.Seconds()
		if f := float64(b.bytes()) / base; f < 0.8-1e-3 || f > 1.2+1e-3 {
			t.Errorf("segment %d (audio %v) is %d bytes, %.3f of bitrate × duration, want 0.8..1.2", i, b.audio, b.bytes(), f)
		}
	}
}

// TestVideo_seek: a viewer who seeks every so often starts up again:
// the seek's request and the ones after it follow one another a quiet
// gap after each segment, for a startup's worth; in between, one request
// per segment duration.
func TestVideo_seek(t *testing.T) {
	const seg = 4 * time.Second
	qg := DefaultQuietGap
	p := VideoParams{SegmentDuration: seg, SeekEvery: 20 * time.Second}
	requests, bursts, _ := videoLink(t, p, linkSetup{}, 5*time.Minute)
	seeks := 0
	for i := 1; i < len(requests); i++ {
		gap := requests[i].at - requests[i-1].at
		afterBurst := requests[i].at == bursts[i-1].end+qg
		switch {
		case gap == seg:
		case afterBurst:
			// startup: counted from the run's first request
		case gap > qg && gap < seg:
			seeks++
			// A startup: the next StartupSegments-1 a quiet gap after
			// each segment.
			for j := i + 1; j < i+DefaultStartupSegments && j < len(requests); j++ {
				if requests[j].at != bursts[j-1].end+qg {
					t.Errorf("request %d at %v, in the startup after the seek at %v, want %v", j, requests[j].at, requests[i].at, bursts[j-1].end+qg)
				}
			}
		default:
			t.Errorf("request %d at %v, %v after the one before", i, requests[i].at, gap)
		}
	}
	// 5 minutes at one seek every 20s on average; the seeks are drawn.
	if seeks < 5 || seeks > 30 {
		t.Errorf("%d seeks in 5 minutes, want about 15", seeks)
	}
	t.Logf("%d requests, %d seeks", len(requests), seeks)
}

// TestVideo_abr: the ladder follows the link. Writes 5ms apart carry
// 1448 bytes each, 2.3 Mbit/s: the server climbs to the highest rung
// within 80% of it (1.1 Mbit/s, rung 3) and stays there, data or not.
func TestVideo_abr(t *testing.T) {
	for _, serverData := range []int{0, 1 << 30} {
		_, bursts, _ := videoLink(t, VideoParams{}, linkSetup{serverData: serverData, spacing: 5 * time.Millisecond}, time.Minute)
		var rungs []int
		for _, b := range bursts {
			rungs = append(rungs, b.rung)
		}
		if len(rungs) < 10 || !slices.Equal(rungs[:4], []int{0, 1, 2, 3}) {
			t.Fatalf("server data %d: rungs %v, want 0, 1, 2, 3, ...", serverData, rungs)
		}
		for i, r := range rungs[3:] {
			if r != 3 {
				t.Errorf("server data %d: segment %d at rung %d, want 3; rungs %v", serverData, i+3, r, rungs)
				break
			}
		}
	}
}

// TestVideo_sizesVary checks VBR: segment sizes at one rung differ. One
// rung, since on a fast link the ladder climbs.
func TestVideo_sizesVary(t *testing.T) {
	one := []int{145_000}
	_, bursts, _ := videoSession(t, VideoParams{Ladder: one}, 0, 60*time.Second)
	seen := map[int]bool{}
	for _, b := range bursts {
		seen[b.bytes()] = true
	}
	if len(seen) < len(bursts)-1 {
		t.Errorf("%d distinct segment sizes in %d segments", len(seen), len(bursts))
	}
	_, bursts, _ = videoSession(t, VideoParams{Ladder: one, VBR: -1}, 0, 60*time.Second)
	for _, b := range bursts {
		if b.bytes() != 145_000/8*4 {
			t.Errorf("constant-size segment of %d bytes, want %d", b.bytes(), 145_000/8*4)
		}
	}
}

func TestVideo_clientIdleStop(t *testing.T) {
	s, err := NewVideo(VideoParams{Role: Client, IdleStop: 10 * time.Second, StartupSegments: 1}, seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	got := simulate(t, s, []arrival{{0, 10}, {time.Minute, 10}}, 2*time.Minute)
	// Requests at 0.1, 4.1, 8.1 (the first a quiet gap after the first
	// event; due before 0+10s); then a new session, started by data, at
	// 60s: 60, 64, 68.
	want := []time.Duration{100, 4100, 8100, 60_000, 64_000, 68_000}
	if len(got) != len(want) {
		t.Fatalf("requests %v, want at %v ms", got, want)
	}
	for i := range want {
		if got[i].at != want[i]*time.Millisecond {
			t.Errorf("request %d at %v, want %vms", i, got[i].at, want[i])
		}
	}
}

// TestVideo_serverUnprompted checks the safety net: data at a server
// whose client never asks (not a video player) still goes out, one
// segment per segment duration and quiet gap.
func TestVideo_serverUnprompted(t *testing.T) {
	s, err := NewVideo(VideoParams{Role: Server}, seeded(4))
	if err != nil {
		t.Fatal(err)
	}
	got := simulate(t, s, []arrival{{time.Second, 100_000}}, 20*time.Second)
	var starts []time.Duration
	prev := time.Duration(-1)
	data := 0
	for _, w := range got {
		if w.at != prev {
			starts = append(starts, w.at)
			prev = w.at
		}
		data += w.data
	}
	if data != 100_000 {
		t.Errorf("sent %d bytes of data, want all 100000", data)
	}
	// Each burst a segment duration and a quiet gap after the start (the
	// first event, at 1s) or after the burst before: a video client's
	// request, even a little late, would come first.
	if len(starts) < 2 || starts[0] != 5100*time.Millisecond || starts[1] != 9200*time.Millisecond {
		t.Errorf("bursts at %v, want 5.1s, 9.2s, ...", starts)
	}
}

// TestVideo_serverLateRequest is the race between a server's unprompted
// burst and its client's request. With data waiting all along, the
// client's request falls due when the server would go unprompted anyway;
// if the timer wins, or the request is a little late, the request arrives
// during the burst or just after it, and must be taken as the request
// that burst answers, not as a new one: one segment per request, never
// two back to back.
func TestVideo_serverLateRequest(t *testing.T) {
	const (
		rounds = 10
		qg     = DefaultQuietGap
		ms     = time.Millisecond
	)
	tests := []struct {
		name string
		// late is when each request comes after the server's
		// unprompted burst falls due.
		late time.Duration
		// requestFirst: at a tie the request is heard before the
		// burst's first write, rather than just after it.
		requestFirst bool
		// spacing is the time between a burst's writes (a link's
		// speed); 0 sends a burst all at once.
		spacing time.Duration
		// extra is how many segments come on top of one per request.
		extra int
	}{
		{"at once, request first", 0, true, 0, 0},
		{"at once, timer first", 0, false, 0, 0},
		{"at once, timer first, slow link", 0, false, 5 * ms, 0},
		{"1ms late, burst done", ms, false, 0, 0},
		{"1ms late, mid-burst", ms, false, 5 * ms, 0},
		{"half a quiet gap late", qg / 2, false, 0, 0},
		{"a quiet gap late", qg, false, 0, 0},
		{"past the quiet gap, mid-burst", qg + qg/2, false, 5 * ms, 0},
		// The control: a request past the quiet gap, the unprompted
		// burst done, is a request of its own.
		{"past the quiet gap, burst done", qg + qg/2, false, 0, rounds - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One rung, constant size: 72,500 bytes, 51 writes, 255ms
			// at 5ms a write.
			s, err := NewVideo(VideoParams{Role: Server, Ladder: []int{145_000}, VBR: -1}, seeded(6))
			if err != nil {
				t.Fatal(err)
			}
			now := t0
			s.Queued(now, 1<<30)
			requests := 0
			request := func() {
				s.Received(now, 500)
				requests++
			}
			request() // the stream's first request starts the first burst
			var starts []time.Duration
			var reqAt, lastWrite time.Time // the next request; zero: none
			for steps := 0; ; steps++ {
				if steps > 1_000_000 {
					t.Fatalf("no end: %d requests, segments at %v", requests, starts)
				}
				o := s.Next(now)
				if o.Idle() {
					t.Fatalf("idle at %v with data waiting", now.Sub(t0))
				}
				if reqAt.IsZero() && !s.burst {
					if requests == rounds {
						break
					}
					// Between bursts o is the unprompted one.
					reqAt = o.At.Add(tt.late)
				}
				at := later(o.At, lastWrite.Add(tt.spacing))
				if !reqAt.IsZero() && (reqAt.Before(at) || reqAt.Equal(at) && (tt.requestFirst || s.burst)) {
					now, reqAt = later(reqAt, now), time.Time{}
					request()
					continue
				}
				now = at
				if !s.burst || s.segLeft == s.segSize {
					starts = append(starts, now.Sub(t0))
				}
				s.Sent(now, o.Size, false)
				lastWrite = now
			}
			if want := rounds + tt.extra; len(starts) != want {
				t.Errorf("%d segments for %d requests, want %d; segments at %v", len(starts), requests, want, starts)
			}
			if tt.extra == 0 {
				seg := s.Params().SegmentDuration
				for i := 1; i < len(starts); i++ {
					if gap := starts[i] - starts[i-1]; gap < seg {
						t.Errorf("segment %d began %v after the previous, want a segment duration or more", i, gap)
					}
				}
			}
		})
	}
}

// TestVideo_slowLink checks the fall when a segment goes out slowly: at
// 230 kbit/s, only the lowest rung (145 kbit/s) is within 80% of the
// throughput, and the server falls to it at once.
func TestVideo_slowLink(t *testing.T) {
	s, err := NewVideo(VideoParams{Role: Server, StartRung: 4}, seeded(5))
	if err != nil {
		t.Fatal(err)
	}
	s.Queued(t0, 1<<30)
	s.Received(t0, 500)
	now := t0
	for s.burst {
		o := s.Next(now)
		s.Sent(now, o.Size, false)
		now = now.Add(50 * time.Millisecond) // 1448 bytes / 50ms: 230 kbit/s
	}
	if s.Rung() != 0 {
		t.Errorf("rung %d after a slow segment, want 0", s.Rung())
	}
}

// TestVideo_rebuffer checks Rebuffer: a client with data waiting asks for
// the next segment a quiet gap after the last one ended, as in startup,
// until its buffer is full (MaxBuffer), and then one per segment again;
// with none waiting it keeps to one request per segment; without
// Rebuffer nothing changes.
func TestVideo_rebuffer(t *testing.T) {
	const (
		seg = 4 * time.Second
		qg  = DefaultQuietGap
		d   = 30 * time.Second
		ms  = time.Millisecond
	)
	// The requests without Rebuffer, or with no data waiting: startup,
	// then the grid.
	// The first request comes a quiet gap after the first event.
	grid := []time.Duration{qg, 2 * qg, 3 * qg}
	for at := 3*qg + seg; at <= d; at += seg {
		grid = append(grid, at)
	}
	// whole checks that every request is one write of a whole drawn
	// request (300..800 bytes), not a piece of one.
	whole := func(t *testing.T, requests []write) {
		t.Helper()
		for i, r := range requests {
			if r.size < 300 || r.size > 800 {
				t.Errorf("request %d at %v is %d bytes, want 300..800", i, r.at, r.size)
			}
		}
	}
	sameAs := func(t *testing.T, requests []write, want []time.Duration) {
		t.Helper()
		whole(t, requests)
		if len(requests) != len(want) {
			t.Fatalf("%d requests, want %d at %v", len(requests), len(want), want)
		}
		for i, at := range want {
			if requests[i].at != at {
				t.Errorf("request %d at %v, want %v", i, requests[i].at, at)
			}
		}
	}
	// followBursts checks that each request after the first follows the
	// end of the burst before it by exactly a quiet gap.
	followBursts := func(t *testing.T, requests []write, bursts []burst, from, to int) {
		t.Helper()
		for i := max(from, 1); i < to; i++ {
			if want := bursts[i-1].end + qg; requests[i].at != want {
				t.Errorf("request %d at %v, want %v: a quiet gap after burst %d ended at %v", i, requests[i].at, want, i-1, bursts[i-1].end)
			}
		}
	}
	busy := 1 << 30 // more data than a session sends
	// With the link's writes half a millisecond apart, the largest
	// segment (7.8 Mbit/s, 4.7 MB at most) takes 1.6s, less than a
	// segment: the server never goes unprompted.

	t.Run("data always waiting", func(t *testing.T) {
		// The buffer fills: requests follow the bursts while it has
		// room, about MaxBuffer/SegmentDuration of them, then come once
		// per segment duration, whatever waits.
		for _, maxBuffer := range []time.Duration{0, 12 * time.Second} {
			for _, spacing := range []time.Duration{0, ms / 2} {
				for _, serverData := range []int{0, busy} {
					p := VideoParams{Rebuffer: true, MaxBuffer: maxBuffer}
					requests, bursts, _ := videoLink(t, p, linkSetup{busy, serverData, spacing}, d)
					max := maxBuffer
					if max == 0 {
						max = DefaultMaxBuffer
					}
					name := fmt.Sprintf("max buffer %v, spacing %v, server data %d", max, spacing, serverData)
					if len(bursts) < len(requests)-1 {
						t.Fatalf("%s: %d requests, %d bursts; want a burst after each request", name, len(requests), len(bursts))
					}
					whole(t, requests)
					for i, r := range requests {
						if r.data != r.size {
							t.Errorf("%s: request %d carried %d bytes of data in %d", name, i, r.data, r.size)
						}
					}
					// The early requests: those a quiet gap after the
					// burst before.
					early := 1
					for early < len(requests) && requests[early].at == bursts[early-1].end+qg {
						early++
					}
					fill := int(max / seg) // segments the buffer holds
					if early < fill-1 || early > fill+1 {
						t.Errorf("%s: %d requests a quiet gap after a burst, want about %d (%v / %v)", name, early, fill, max, seg)
					}
					// Then one per segment duration, starting once the
					// buffer has room.
					for i := early; i < len(requests); i++ {
						if gap := requests[i].at - requests[i-1].at; i > early && gap != seg {
							t.Errorf("%s: request %d %v after the one before, want %v", name, i, gap, seg)
						}
					}
					if want := int(d/seg) + 1; len(requests) > want+fill+1 {
						t.Errorf("%s: %d requests in %v, want at most %d", name, len(requests), d, want+fill+1)
					}
					// The buffer after each request, what was asked
					// for less what has played since the start, never
					// goes over MaxBuffer, and once full stays full.
					for i, r := range requests {
						buf := time.Duration(i+1)*seg - (r.at - qg) // playback starts with the first request
						if i >= 3 && buf > max {                    // past startup
							t.Errorf("%s: request %d at %v fills the buffer to %v, over %v", name, i, r.at, buf, max)
						}
						if i >= early && buf != max {
							t.Errorf("%s: request %d at %v leaves the buffer at %v, want it full at %v", name, i, r.at, buf, max)
						}
					}
				}
			}
		}
	})

	t.Run("no data waiting", func(t *testing.T) {
		requests, _, _ := videoLink(t, VideoParams{Rebuffer: true}, linkSetup{100, busy, 0}, d)
		sameAs(t, requests, grid)
	})

	t.Run("data runs out", func(t *testing.T) {
		// 6000 bytes take about a dozen requests of 300..800; after the
		// one that empties the queue, the grid again, a segment after
		// it.
		const clientData = 6000
		// A buffer large enough not to bind meanwhile.
		requests, bursts, _ := videoLink(t, VideoParams{Rebuffer: true, MaxBuffer: 5 * time.Minute}, linkSetup{clientData, busy, ms / 2}, 60*time.Second)
		sent, last := 0, -1 // last: the request that emptied the queue
		for i, r := range requests {
			sent += r.data
			if sent == clientData {
				last = i
				break
			}
		}
		if last < 0 || last+5 > len(requests) {
			t.Fatalf("the queue emptied at request %d of %d", last, len(requests))
		}
		whole(t, requests)
		followBursts(t, requests, bursts, 1, last+1)
		for i := last + 1; i < len(requests); i++ {
			if gap := requests[i].at - requests[i-1].at; gap != seg {
				t.Errorf("request %d, with no data waiting, %v after the one before, want %v", i, gap, seg)
			}
		}
	})

	t.Run("without Rebuffer", func(t *testing.T) {
		for _, clientData := range []int{100, busy} {
			requests, _, _ := videoLink(t, VideoParams{}, linkSetup{clientData, busy, 0}, d)
			sameAs(t, requests, grid)
		}
	})

	t.Run("no response", func(t *testing.T) {
		// No server: data always waiting, and the requests fall back
		// to a segment apart, in startup and after.
		c, err := NewVideo(VideoParams{Role: Client, Rebuffer: true}, seeded(7))
		if err != nil {
			t.Fatal(err)
		}
		got := simulate(t, c, []arrival{{0, busy}}, 20*time.Second)
		want := []time.Duration{0, 4, 8, 12, 16}
		if len(got) != len(want) {
			t.Fatalf("requests %v, want at %v s and a quiet gap", got, want)
		}
		for i := range want {
			if got[i].at != want[i]*time.Second+qg {
				t.Errorf("request %d at %v, want %vs and a quiet gap", i, got[i].at, want[i])
			}
		}
	})
}

func TestVideo_maxBufferParam(t *testing.T) {
	for _, p := range []VideoParams{
		{Role: Client, MaxBuffer: 3 * time.Second},
		{Role: Client, MaxBuffer: -time.Second},
		{Role: Client, MaxBuffer: 5*time.Minute + 1},
		{Role: Server, SegmentDuration: 6 * time.Second, MaxBuffer: 5 * time.Second},
	} {
		_, err := NewVideo(p, seeded(1))
		var pe *ParamError
		if !errors.As(err, &pe) || pe.Param != "MaxBuffer" {
			t.Errorf("MaxBuffer %v, segment %v: error %v, want a ParamError for MaxBuffer", p.MaxBuffer, p.SegmentDuration, err)
		}
	}
	for _, p := range []VideoParams{
		{Role: Client},
		{Role: Client, MaxBuffer: 4 * time.Second},
		{Role: Client, MaxBuffer: 5 * time.Minute},
		{Role: Server, SegmentDuration: 10 * time.Second, MaxBuffer: 10 * time.Second},
	} {
		v, err := NewVideo(p, seeded(1))
		if err != nil {
			t.Errorf("MaxBuffer %v: %v", p.MaxBuffer, err)
			continue
		}
		if want := p.MaxBuffer; want != 0 && v.Params().MaxBuffer != want || want == 0 && v.Params().MaxBuffer != DefaultMaxBuffer {
			t.Errorf("MaxBuffer %v: params say %v", p.MaxBuffer, v.Params().MaxBuffer)
		}
	}
}

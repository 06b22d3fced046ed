package schedule

import (
	"testing"
	"time"
)

// slowVideo is the reference model of Video: it replays the history from
// the start, with a fresh source from the same seed, on every Next.
type slowVideo struct {
	history
	p    VideoParams
	seed uint64
}

func (m *slowVideo) Next(now time.Time) Opportunity {
	if m.p.Role == Client {
		return m.client(now)
	}
	return m.server(now)
}

func (m *slowVideo) streams() int {
	if m.p.AudioBitrate > 0 {
		return 2
	}
	return 1
}

func (m *slowVideo) client(now time.Time) Opportunity {
	p := m.p
	seg := p.SegmentDuration
	streams := m.streams()
	r := seeded(m.seed)
	drawReq := func() int { return min(max(p.RequestSize.Sample(r), 1), 65535) }
	drawSeek := func() time.Duration {
		if p.SeekEvery == 0 {
			return 0
		}
		d := time.Duration(r.ExpFloat64() * float64(p.SeekEvery))
		return min(max(d, seg), 100*p.SeekEvery)
	}

	var (
		started, active                  bool
		playStart, firstByteDue, lastEnd time.Time
		grid, lastRecv, lastData         time.Time
		done, size, sent, q              int
		gotResponse, seeking             bool
		seekAfter                        time.Duration
	)
	size = drawReq()
	seekAfter = drawSeek()
	due := func() (time.Time, bool) {
		switch {
		case sent > 0:
			return firstByteDue, seeking
		case done == 0:
			return playStart, false
		}
		earliest := lastEnd.Add(p.QuietGap)
		// Startup: every stream's first segments, each asked for as
		// soon as the one before is in.
		if done < p.StartupSegments*streams {
			if gotResponse {
				return later(lastRecv.Add(p.QuietGap), earliest), false
			}
			return lastEnd.Add(seg), false
		}
		at := grid
		if p.Rebuffer && q > 0 && gotResponse {
			// The buffer at the time the segment is in: what has been
			// requested less what has played since the play began.
			e := later(lastRecv.Add(p.QuietGap), earliest)
			buffer := max(time.Duration(done/streams)*seg-e.Sub(playStart), 0)
			// Too full for one more segment: wait for it to drain.
			if over := buffer + seg - p.MaxBuffer; over > 0 {
				e = e.Add(over)
			}
			if e.Before(at) {
				at = e
			}
		}
		if p.SeekEvery > 0 {
			if s := later(playStart.Add(seekAfter), earliest); s.Before(at) {
				return s, true
			}
		}
		return at, false
	}
	open := func() bool {
		at, _ := due()
		return active && (p.IdleStop == 0 || q > 0 || sent > 0 || at.Sub(lastData) < p.IdleStop)
	}
	newSession := func(at time.Time) {
		active, playStart, lastData, done, gotResponse = true, at, at, 0, false
	}
	for _, e := range m.evs {
		if !started {
			// The player starts with the connection, data or not.
			started = true
			newSession(e.at)
			playStart = e.at.Add(p.QuietGap) // the server hears it after its handshake
		}
		n := max(e.n, 0)
		switch e.kind {
		case evQueued:
			was := open()
			q = n
			if q > 0 {
				lastData = e.at
				if !was {
					newSession(e.at)
				}
			}
		case evSent:
			// The opportunity as it stood before these bytes left the
			// queue: with Rebuffer, emptying it moves the due time.
			at, seek := due()
			was := open() && !at.After(e.at)
			if !e.decoy {
				q = max(q-n, 0)
			}
			if !was || n == 0 {
				continue
			}
			if !e.decoy {
				lastData = e.at
			}
			if sent == 0 {
				firstByteDue, seeking = at, seek
			}
			sent += n
			if sent >= size {
				period := seg / time.Duration(streams)
				grid = firstByteDue.Add(period)
				if grid.Sub(e.at) < period/2 {
					grid = e.at.Add(period)
				}
				done++
				lastEnd = e.at
				gotResponse = false
				size, sent = drawReq(), 0
				if seeking {
					playStart, done = firstByteDue, 1
					seekAfter = drawSeek()
				}
			}
		case evReceived:
			if n > 0 && open() {
				gotResponse, lastRecv = true, e.at
			}
		}
	}
	if !open() {
		return Opportunity{}
	}
	at, _ := due()
	if at.Before(now) {
		at = now
	}
	return Opportunity{At: at, Size: size - sent, Pad: true}
}

func (m *slowVideo) server(now time.Time) Opportunity {
	p := m.p
	streams := m.streams()
	r := seeded(m.seed)
	permille := int64(p.VBR*1000 + 0.5)
	rung := p.StartRung
	segments := 0 // begun; with audio, the odd ones are audio
	drawSeg := func() int {
		rate := p.Ladder[rung]
		if streams == 2 && segments%2 == 1 {
			rate = p.AudioBitrate
		}
		bytes := int64(rate) * p.SegmentDuration.Nanoseconds() / 8e9
		f := int64(1000)
		if permille > 0 {
			f += r.Int64N(2*permille+1) - permille
		}
		return int(min(max(bytes*f/1000, 1), MaxSize))
	}
	var (
		next                                = drawSeg()
		started, burst, bursted, heard      bool
		audio                               bool
		answered                            bool // the last burst has had its request
		pending                             int
		segSize, segSent, q                 int
		start, burstStart, lastHeard, begun time.Time
	)
	// An unprompted burst is due a segment and a quiet gap after the
	// last one began, or after the start.
	unpromptedAt := func() time.Time {
		from := start
		if bursted {
			from = begun
		}
		return from.Add(p.SegmentDuration).Add(p.QuietGap)
	}
	begin := func(at time.Time, byRequest bool) {
		burst, bursted, answered = true, true, byRequest
		audio = streams == 2 && segments%2 == 1
		segments++
		burstStart, begun = at, at
		segSize, segSent = next, 0
	}
	for _, e := range m.evs {
		if !started {
			started, start = true, e.at
		}
		n := max(e.n, 0)
		switch e.kind {
		case evQueued:
			q = n
		case evReceived:
			if n == 0 {
				continue
			}
			request := !heard || e.at.Sub(lastHeard) >= p.QuietGap
			heard, lastHeard = true, e.at
			if !request {
				continue
			}
			// A request late for an unprompted burst, arriving during it
			// or at most a quiet gap after it began, is the one it
			// answers.
			late := bursted && !answered && (burst || !e.at.After(begun.Add(p.QuietGap)))
			switch {
			case late:
				answered = true
			case burst:
				pending = min(pending+1, 8)
			default:
				begin(e.at, true)
			}
		case evSent:
			before := q
			if !e.decoy {
				q = max(q-n, 0)
			}
			if n == 0 {
				continue
			}
			if !burst {
				if before == 0 || unpromptedAt().After(e.at) {
					continue
				}
				begin(e.at, false)
			}
			segSent += n
			if segSent < segSize {
				continue
			}
			burst = false
			if !audio {
				// The highest rung within 80% of the throughput the
				// segment went at, at most one up.
				target := len(p.Ladder) - 1
				if d := e.at.Sub(burstStart); d > 0 {
					bps := float64(segSize) * 8 * 1e9 / float64(d)
					for target > 0 && float64(p.Ladder[target])*1000 > bps*800 {
						target--
					}
				}
				rung = min(target, rung+1)
			}
			next = drawSeg()
			if pending > 0 {
				pending--
				begin(e.at, true)
			}
		}
	}
	var at time.Time
	var size int
	switch {
	case burst:
		at, size = burstStart, min(p.MTU, segSize-segSent)
	case q > 0 && started:
		at, size = unpromptedAt(), min(p.MTU, next)
	default:
		return Opportunity{}
	}
	if at.Before(now) {
		at = now
	}
	return Opportunity{At: at, Size: size, Pad: true}
}

func TestVideo_model(t *testing.T) {
	// Small segments make bursts short enough for the driver to finish
	// many: a 10 kbit/s rung is 5000 bytes a 4s segment.
	small := []int{10_000, 20_000, 40_000, 80_000}
	var params []VideoParams
	for _, role := range []Role{Client, Server} {
		params = append(params,
			VideoParams{Role: role, Ladder: small},
			VideoParams{Role: role, Ladder: small, StartRung: 2, VBR: -1, MTU: 500, StartupSegments: 1},
			VideoParams{Role: role, Ladder: small, StartupSegments: 5, QuietGap: 300 * time.Millisecond, IdleStop: 10 * time.Second, RequestSize: intSampler{1, 3000}},
			VideoParams{Role: role, Ladder: small, Rebuffer: true},
			VideoParams{Role: role, Ladder: small, StartupSegments: 1, Rebuffer: true, QuietGap: 50 * time.Millisecond, IdleStop: 6 * time.Second, RequestSize: intSampler{1, 2000}},
			// A small buffer target binds often: with 2s segments, at
			// most two segments ahead; startup alone can overfill it.
			VideoParams{Role: role, Ladder: small, SegmentDuration: 2 * time.Second, MaxBuffer: 4 * time.Second, Rebuffer: true},
			VideoParams{Role: role, Ladder: small, StartupSegments: 1, MaxBuffer: 10 * time.Second, Rebuffer: true, IdleStop: 20 * time.Second},
			// The built-in's shape: audio and video, seeks.
			VideoParams{Role: role, Ladder: small, SegmentDuration: 2 * time.Second, AudioBitrate: 8_000, SeekEvery: 5 * time.Second, RequestSize: intSampler{2000, 8000}},
			VideoParams{Role: role, Ladder: small, AudioBitrate: 16_000, SeekEvery: 4 * time.Second, Rebuffer: true, IdleStop: 10 * time.Second},
		)
	}
	for i, p := range params {
		for seed := range uint64(8) {
			s := uint64(i)*100 + seed
			fast, err := NewVideo(p, seeded(s))
			if err != nil {
				t.Fatal(err)
			}
			slow := &slowVideo{p: fast.Params(), seed: s}
			drive(t, fast, slow, seeded(s+1000), 400, 300*time.Millisecond)
		}
	}
}

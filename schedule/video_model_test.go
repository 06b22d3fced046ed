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

func (m *slowVideo) client(now time.Time) Opportunity {
	p := m.p
	r := seeded(m.seed)
	drawReq := func() int { return min(max(p.RequestSize.Sample(r), 1), 65535) }

	var (
		active                              bool
		sessionStart, firstByteDue, lastEnd time.Time
		grid, lastRecv, lastData            time.Time
		done, size, sent, q                 int
		gotResponse                         bool
	)
	size = drawReq()
	due := func() time.Time {
		switch {
		case sent > 0:
			return firstByteDue
		case done == 0:
			return sessionStart
		}
		// A player asks again as soon as a segment is in while its
		// buffer fills: in startup, and with Rebuffer while upstream
		// data waits and the buffer is under its target.
		startup := done < p.StartupSegments
		switch {
		case startup && gotResponse:
			return lastRecv.Add(p.QuietGap)
		case startup:
			return lastEnd.Add(p.SegmentDuration)
		case p.Rebuffer && q > 0 && gotResponse:
			// The buffer at the time the segment is in: what has been
			// requested less what has played since the session began.
			at := lastRecv.Add(p.QuietGap)
			buffer := max(time.Duration(done)*p.SegmentDuration-at.Sub(sessionStart), 0)
			// Too full for one more segment: wait for it to drain.
			if over := buffer + p.SegmentDuration - p.MaxBuffer; over > 0 {
				at = at.Add(over)
			}
			if at.After(grid) {
				return grid
			}
			return at
		}
		return grid
	}
	open := func() bool {
		return active && (p.IdleStop == 0 || q > 0 || sent > 0 || due().Sub(lastData) < p.IdleStop)
	}
	for _, e := range m.evs {
		n := max(e.n, 0)
		switch e.kind {
		case evQueued:
			was := open()
			q = n
			if q > 0 {
				lastData = e.at
				if !was {
					active, sessionStart, done, gotResponse = true, e.at, 0, false
				}
			}
		case evSent:
			// The opportunity as it stood before these bytes left the
			// queue: with Rebuffer, emptying it moves the due time.
			at := due()
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
				firstByteDue = at
			}
			sent += n
			if sent >= size {
				grid = firstByteDue.Add(p.SegmentDuration)
				if grid.Sub(e.at) < p.SegmentDuration/2 {
					grid = e.at.Add(p.SegmentDuration)
				}
				done++
				lastEnd = e.at
				gotResponse = false
				size, sent = drawReq(), 0
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
	at := due()
	if at.Before(now) {
		at = now
	}
	return Opportunity{At: at, Size: size - sent, Pad: true}
}

func (m *slowVideo) server(now time.Time) Opportunity {
	p := m.p
	r := seeded(m.seed)
	permille := int64(p.VBR*1000 + 0.5)
	rung := p.StartRung
	drawSeg := func() int {
		bytes := int64(p.Ladder[rung]) * p.SegmentDuration.Nanoseconds() / 8e9
		f := int64(1000)
		if permille > 0 {
			f += r.Int64N(2*permille+1) - permille
		}
		return int(min(max(bytes*f/1000, 1), MaxSize))
	}
	var (
		next                                = drawSeg()
		burst, bursted, pending, heard      bool
		answered                            bool // the last burst has had its request
		segSize, segSent, segData, q        int
		burstStart, lastHeard, lastBurstBeg time.Time
	)
	// An unprompted burst is due a segment and a quiet gap after the
	// last one began.
	unpromptedAt := func() time.Time { return lastBurstBeg.Add(p.SegmentDuration).Add(p.QuietGap) }
	begin := func(at time.Time, byRequest bool) {
		burst, bursted, answered = true, true, byRequest
		burstStart, lastBurstBeg = at, at
		segSize, segSent, segData = next, 0, 0
	}
	for _, e := range m.evs {
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
			late := bursted && !answered && (burst || !e.at.After(lastBurstBeg.Add(p.QuietGap)))
			switch {
			case late:
				answered = true
			case burst:
				pending = true
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
				if before == 0 || (bursted && unpromptedAt().After(e.at)) {
					continue
				}
				begin(e.at, false)
			}
			segSent += n
			if !e.decoy {
				segData += n
			}
			if segSent < segSize {
				continue
			}
			burst = false
			data := min(segData, segSize)
			if e.at.Sub(burstStart) > p.SegmentDuration || 4*data < segSize {
				rung = max(rung-1, 0)
			} else if 10*data >= 9*segSize && q > 0 {
				rung = min(rung+1, len(p.Ladder)-1)
			}
			next = drawSeg()
			if pending {
				pending = false
				begin(e.at, true)
			}
		}
	}
	var at time.Time
	var size int
	switch {
	case burst:
		at, size = burstStart, min(p.MTU, segSize-segSent)
	case q > 0:
		if bursted {
			at = unpromptedAt()
		}
		size = min(p.MTU, next)
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

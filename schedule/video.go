package schedule

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// VideoParams configures [NewVideo]. Apart from Role, the zero value
// gives the defaults.
type VideoParams struct {
	// Role says which end this is: the Client sends the requests, the
	// Server the segments. Required.
	Role Role
	// SegmentDuration is the play time of one segment, 2s to 10s, the
	// range HLS and DASH services use. Zero means 4s.
	SegmentDuration time.Duration
	// Ladder lists the bitrates a segment can be encoded at, in bits per
	// second, ascending, each from 10 kbit/s to 100 Mbit/s, at most 32.
	// Nil means [DefaultLadder].
	Ladder []int
	// StartRung is the index in Ladder of the first segment's bitrate.
	// Zero, the default, is the lowest: players start low and climb.
	StartRung int
	// StartupSegments is how many segments the client fetches back to
	// back to fill the player's buffer before it settles to one per
	// SegmentDuration, 1 to 30. Zero means 3.
	StartupSegments int
	// VBR is how much a segment's size varies around bitrate ×
	// duration: each is multiplied by a factor drawn uniformly from
	// [1-VBR, 1+VBR], in steps of 0.001. From 0 to 0.9; zero means 0.2,
	// negative means 0 (constant-size segments).
	VBR float64
	// MTU is the wire size of each write in a server's burst, 64 to
	// 65535; the last write of a segment is the remainder. Zero means
	// DefaultMTU (1448).
	MTU int
	// RequestSize draws the wire size of each client request, taken in
	// [1, 65535]. Nil means uniform over [300, 800] bytes: an HTTP/1.1 GET
	// with browser headers inside a TLS record.
	RequestSize Sampler
	// QuietGap is the silence that ends a burst, from 1ms to 1s. The
	// client takes a startup segment as delivered once nothing has
	// arrived for QuietGap; the server takes bytes that arrive less than
	// QuietGap after the previous ones as part of the same request. Zero
	// means 100ms.
	QuietGap time.Duration
	// IdleStop, if positive, ends the client's viewing session once no
	// real data has been queued or sent for that long: no more requests
	// until data is queued again, which starts a new session with a new
	// startup. Zero means the session never ends. The server needs no
	// such setting: it sends only when asked, or when data waits.
	IdleStop time.Duration
	// Rebuffer makes the client, after startup, act as a player whose
	// buffer has run low while real data waits to go upstream: once a
	// response has arrived since its last request, its next request is
	// due QuietGap after the last bytes arrived (the end of the burst),
	// as during startup, instead of on the SegmentDuration grid. With no
	// data waiting, or no response yet, requests keep to the grid. So an
	// application with a lot to send upstream gets a request per burst
	// rather than per segment; the server, answering each, sends a
	// segment per request too, so downstream then outruns the bitrate,
	// as a rebuffering player's does, until the player's buffer is full
	// (MaxBuffer). It changes only the client.
	Rebuffer bool
	// MaxBuffer is the player's buffer target, which bounds Rebuffer. The
	// client counts its buffer as a player would, with playback taken to
	// start when the session does (its first request is due), whether or
	// not any segment arrives: buffer = requests done in the session ×
	// SegmentDuration − time since the session began, floored at 0. A
	// Rebuffer request is then due no earlier than the time the buffer
	// has room for one more segment (buffer + SegmentDuration <=
	// MaxBuffer), and never later than the grid. So once the buffer is
	// full the client is back to one request per SegmentDuration, with
	// data waiting or not; a request that the grid makes due does not
	// wait for room. From 4s to 5m, and at least SegmentDuration; zero
	// means 30s. Without Rebuffer it has no effect.
	MaxBuffer time.Duration
}

// DefaultLadder is the ladder of recommended H.264 variants (average
// bitrates) in Apple's HLS Authoring Specification for Apple Devices
// (item 1.18 of the editions from 2017 on): 145 kbit/s at 416×234 up to
// 7.8 Mbit/s at 1920×1080. The same document lets a VOD segment's peak
// reach twice the average (item 1.19), which VBR imitates. Each call
// returns a new slice.
func DefaultLadder() []int {
	return []int{145_000, 365_000, 730_000, 1_100_000, 2_000_000, 3_000_000, 4_500_000, 6_000_000, 7_800_000}
}

// Limits and defaults of [VideoParams].
const (
	DefaultSegmentDuration = 4 * time.Second
	MinSegmentDuration     = 2 * time.Second
	MaxSegmentDuration     = 10 * time.Second
	DefaultStartupSegments = 3
	DefaultVBR             = 0.2
	DefaultQuietGap        = 100 * time.Millisecond
	DefaultMaxBuffer       = 30 * time.Second
	MinMaxBuffer           = 4 * time.Second
	MaxMaxBuffer           = 5 * time.Minute

	maxLadderRungs  = 32
	minLadderRate   = 10_000
	maxLadderRate   = 100_000_000
	maxStartup      = 30
	maxVBR          = 0.9
	minVideoMTU     = 64
	maxVideoMTU     = 65535
	maxRequestSize  = 65535
	minQuietGap     = time.Millisecond
	maxQuietGap     = time.Second
	defaultReqMin   = 300
	defaultReqMax   = 800
	vbrSteps        = 1000 // VBR is applied in thousandths
	abrDownFraction = 4    // a segment less than 1/4 real data steps down
	abrUpPermille   = 900  // one at least 90% real data, with more waiting, steps up
)

func (p VideoParams) withDefaults() (VideoParams, error) {
	const name = "video"
	if p.Role != Client && p.Role != Server {
		return p, &ParamError{name, "Role", p.Role, "Client or Server"}
	}
	if p.SegmentDuration == 0 {
		p.SegmentDuration = DefaultSegmentDuration
	}
	if p.SegmentDuration < MinSegmentDuration || p.SegmentDuration > MaxSegmentDuration {
		return p, &ParamError{name, "SegmentDuration", p.SegmentDuration, fmt.Sprintf("%v..%v", MinSegmentDuration, MaxSegmentDuration)}
	}
	if p.Ladder == nil {
		p.Ladder = DefaultLadder()
	} else {
		p.Ladder = slices.Clone(p.Ladder)
	}
	if len(p.Ladder) == 0 || len(p.Ladder) > maxLadderRungs {
		return p, &ParamError{name, "len(Ladder)", len(p.Ladder), fmt.Sprintf("1..%d", maxLadderRungs)}
	}
	for i, b := range p.Ladder {
		if b < minLadderRate || b > maxLadderRate || (i > 0 && b <= p.Ladder[i-1]) {
			return p, &ParamError{name, fmt.Sprintf("Ladder[%d]", i), b, fmt.Sprintf("%d..%d bit/s, above the rung before", minLadderRate, maxLadderRate)}
		}
	}
	if p.StartRung < 0 || p.StartRung >= len(p.Ladder) {
		return p, &ParamError{name, "StartRung", p.StartRung, fmt.Sprintf("0..%d", len(p.Ladder)-1)}
	}
	if p.StartupSegments == 0 {
		p.StartupSegments = DefaultStartupSegments
	}
	if p.StartupSegments < 1 || p.StartupSegments > maxStartup {
		return p, &ParamError{name, "StartupSegments", p.StartupSegments, fmt.Sprintf("1..%d", maxStartup)}
	}
	switch {
	case p.VBR == 0:
		p.VBR = DefaultVBR
	case p.VBR < 0:
		p.VBR = 0
	}
	if !(p.VBR <= maxVBR) { // also NaN
		return p, &ParamError{name, "VBR", p.VBR, fmt.Sprintf("0..%g", maxVBR)}
	}
	if p.MTU == 0 {
		p.MTU = DefaultMTU
	}
	if p.MTU < minVideoMTU || p.MTU > maxVideoMTU {
		return p, &ParamError{name, "MTU", p.MTU, fmt.Sprintf("%d..%d", minVideoMTU, maxVideoMTU)}
	}
	if p.RequestSize == nil {
		p.RequestSize = intSampler{defaultReqMin, defaultReqMax}
	}
	if p.QuietGap == 0 {
		p.QuietGap = DefaultQuietGap
	}
	if p.QuietGap < minQuietGap || p.QuietGap > maxQuietGap {
		return p, &ParamError{name, "QuietGap", p.QuietGap, fmt.Sprintf("%v..%v", minQuietGap, maxQuietGap)}
	}
	if p.IdleStop < 0 {
		return p, &ParamError{name, "IdleStop", p.IdleStop, "0 (never) or more"}
	}
	if p.MaxBuffer == 0 {
		p.MaxBuffer = DefaultMaxBuffer
	}
	if p.MaxBuffer < max(MinMaxBuffer, p.SegmentDuration) || p.MaxBuffer > MaxMaxBuffer {
		return p, &ParamError{name, "MaxBuffer", p.MaxBuffer, fmt.Sprintf("%v..%v and at least SegmentDuration (%v)", MinMaxBuffer, MaxMaxBuffer, p.SegmentDuration)}
	}
	return p, nil
}

// Video makes a connection look like adaptive streaming (HLS or DASH):
// the client asks for one segment at a time, the server answers each
// request with a burst of MTU-sized writes as fast as the link takes them,
// and both are quiet in between (ON/OFF). Real data rides in the requests
// and the segments; decoys make up the rest, so every request and every
// segment has its drawn size (Pad set).
//
// The client (upstream). A viewing session starts at the first Queued
// with data waiting. It sends StartupSegments requests back to back: the
// first at once, each next one when the previous segment has arrived (no
// bytes for QuietGap after some arrived) or, if nothing arrives, a
// SegmentDuration after the request. Then it sends one request per
// SegmentDuration, on a grid that, like [ConstantRate]'s, holds unless
// the shaper is half a period late. Each request is one opportunity of a
// RequestSize sample. With IdleStop, a request that would be due IdleStop
// or more after the last real data, with none waiting, ends the session.
// So upstream real data has RequestSize bytes per segment after startup;
// a profile that must carry more upstream picks larger requests, or sets
// Rebuffer: then, while real data waits and the previous request has
// been answered, the next request is due as in startup, QuietGap after
// the response's last bytes, but not before the player's buffer has
// room for another segment (see MaxBuffer) nor after the grid; the
// client is on the grid again once nothing waits or the buffer is full.
// Either way a request follows a response to the one before, unless
// none comes: then it is due on the grid (in startup, a SegmentDuration
// after the request).
//
// The server (downstream). Bytes that arrive after QuietGap of silence
// are a request. A request starts a burst at once, or right after the
// current one (one request is remembered); data queued with no request
// for a SegmentDuration and a QuietGap since the last burst began starts
// one too, so data never waits for a client that is not shaped like
// this. Such an unprompted burst takes the first request that arrives
// during it, or within QuietGap of its start, as the one it answers:
// a request a little late, as on a network with jitter, gets that
// segment rather than a second one straight after. A burst is
// one segment: bitrate/8 × SegmentDuration × a VBR factor wire bytes,
// offered MTU bytes at a time, each write due at once. When a segment is
// done, the server adapts the bitrate for the next, one rung at a time,
// as a player's rate adaptation would but on its own evidence: down if
// the burst took longer than a SegmentDuration (the link can't keep up)
// or carried less than a quarter real data; up if it carried at least 90%
// real data and more waits.
//
// Randomness: the client draws a request size when constructed and
// after each request; the server draws a segment's VBR factor when
// constructed and after each segment. Those are the only draws.
//
// It is not safe for concurrent use.
type Video struct {
	p           VideoParams
	rng         *rand.Rand
	vbrPermille int64
	queued      int
	lastData    time.Time // client: last real data queued or sent in a session

	// client
	active       bool      // a viewing session is on
	sessionStart time.Time // when it began
	reqIndex     int       // requests completed in this session
	reqSize      int       // the current request's drawn size
	reqLeft      int       // and what it still carries
	reqDue       time.Time // its due time, fixed when its first byte goes
	lastReqEnd   time.Time // when the previous request was done
	gridDue      time.Time // when a steady-state request is due
	gotResponse  bool      // bytes arrived since the previous request
	lastRecv     time.Time

	// server
	rung           int
	nextSeg        int  // size of the next segment, drawn ahead
	burst          bool // a segment is being sent
	segSize        int
	segLeft        int
	segData        int // real data in this segment
	burstStart     time.Time
	bursted        bool // a burst has begun at some time
	unprompted     bool // the last burst began with no request, and none has come for it yet
	pending        bool // a request arrived during the burst
	heard          bool // bytes have arrived at some time
	lastHeard      time.Time
	lastBurstStart time.Time
}

var _ Schedule = (*Video)(nil)

// NewVideo returns a Video schedule drawing from r, which it keeps: r
// must not be used elsewhere meanwhile. It fails with a *ParamError if p
// is out of range.
func NewVideo(p VideoParams, r *rand.Rand) (*Video, error) {
	if r == nil {
		return nil, ErrNilRand
	}
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Video{p: p, rng: r, vbrPermille: int64(p.VBR*vbrSteps + 0.5), rung: p.StartRung}
	if p.Role == Client {
		s.drawRequest()
	} else {
		s.drawSegment()
	}
	return s, nil
}

// Params returns the parameters with defaults filled in.
func (s *Video) Params() VideoParams {
	p := s.p
	p.Ladder = slices.Clone(p.Ladder)
	return p
}

// Rung returns the index in the ladder of the bitrate of the server's
// current segment, or of the next one between bursts. It is StartRung
// for a client.
func (s *Video) Rung() int { return s.rung }

// Next implements [Schedule].
func (s *Video) Next(now time.Time) Opportunity {
	if s.p.Role == Client {
		if !s.clientActive() {
			return Opportunity{}
		}
		return Opportunity{At: later(s.requestDue(), now), Size: s.reqLeft, Pad: true}
	}
	switch {
	case s.burst:
		return Opportunity{At: later(s.burstStart, now), Size: min(s.p.MTU, s.segLeft), Pad: true}
	case s.queued > 0:
		return Opportunity{At: later(s.unpromptedDue(), now), Size: min(s.p.MTU, s.nextSeg), Pad: true}
	}
	return Opportunity{}
}

// Queued implements [Schedule].
func (s *Video) Queued(now time.Time, n int) {
	wasActive := s.p.Role == Client && s.clientActive()
	s.queued = max(n, 0)
	if s.p.Role == Server || s.queued == 0 {
		return
	}
	s.lastData = now
	if !wasActive {
		s.active = true
		s.sessionStart = now
		s.reqIndex = 0
		s.gotResponse = false
	}
}

// Sent implements [Schedule].
func (s *Video) Sent(now time.Time, n int, decoy bool) {
	n = max(n, 0)
	if s.p.Role == Client {
		s.clientSent(now, n, decoy)
	} else {
		s.serverSent(now, n, decoy)
	}
}

// Received implements [Schedule].
func (s *Video) Received(now time.Time, n int) {
	if n <= 0 {
		return
	}
	if s.p.Role == Client {
		if s.clientActive() {
			s.gotResponse = true
			s.lastRecv = now
		}
		return
	}
	request := !s.heard || now.Sub(s.lastHeard) >= s.p.QuietGap
	s.heard = true
	s.lastHeard = now
	if !request {
		return
	}
	switch {
	case s.unprompted && (s.burst || now.Sub(s.lastBurstStart) <= s.p.QuietGap):
		// The request the unprompted burst went ahead of: that burst
		// answers it.
		s.unprompted = false
	case s.burst:
		s.pending = true
	default:
		s.beginBurst(now, false)
	}
}

func (s *Video) String() string {
	rebuffer := ""
	if s.p.Rebuffer {
		rebuffer = fmt.Sprintf(",rebuffer,max-buffer=%v", s.p.MaxBuffer)
	}
	return fmt.Sprintf("video(role=%v,segment=%v,ladder=%v,start-rung=%d,startup=%d,vbr=%g,mtu=%d,request=%s,quiet=%v,idle-stop=%v%s)",
		s.p.Role, s.p.SegmentDuration, s.p.Ladder, s.p.StartRung, s.p.StartupSegments, s.p.VBR, s.p.MTU,
		samplerString(s.p.RequestSize), s.p.QuietGap, s.p.IdleStop, rebuffer)
}

// Client side.

func (s *Video) drawRequest() {
	s.reqSize = clampSample(s.p.RequestSize, s.rng, 1, maxRequestSize)
	s.reqLeft = s.reqSize
}

// requestDue is when the current request is due.
func (s *Video) requestDue() time.Time {
	switch {
	case s.reqLeft < s.reqSize:
		return s.reqDue
	case s.reqIndex == 0:
		return s.sessionStart
	case s.reqIndex < s.p.StartupSegments:
		if s.gotResponse {
			return s.lastRecv.Add(s.p.QuietGap)
		}
		return s.lastReqEnd.Add(s.p.SegmentDuration)
	case s.p.Rebuffer && s.queued > 0 && s.gotResponse:
		// The buffer is below its target: ask again once this segment
		// is in and the buffer has room for the next, or on the grid if
		// that comes first.
		at := later(s.lastRecv.Add(s.p.QuietGap), s.bufferRoom())
		if s.gridDue.Before(at) {
			return s.gridDue
		}
		return at
	}
	return s.gridDue
}

// bufferRoom is when the player's buffer, reqIndex segments played from
// sessionStart on, has drained to MaxBuffer − SegmentDuration: room for
// one more segment. Before then the buffer is over it; the floor at 0
// never matters, since MaxBuffer is at least a SegmentDuration.
func (s *Video) bufferRoom() time.Time {
	return s.sessionStart.Add(time.Duration(s.reqIndex+1)*s.p.SegmentDuration - s.p.MaxBuffer)
}

// clientActive reports whether a session is on and not ended by
// IdleStop. A request already begun always finishes.
func (s *Video) clientActive() bool {
	if !s.active {
		return false
	}
	if s.p.IdleStop == 0 || s.queued > 0 || s.reqLeft < s.reqSize {
		return true
	}
	return s.requestDue().Before(s.lastData.Add(s.p.IdleStop))
}

func (s *Video) clientSent(now time.Time, n int, decoy bool) {
	open := due(s.Next(now), now)
	// Read before the data leaves the queue: with Rebuffer, an empty
	// queue moves a request's due time back to the grid.
	reqDue := s.requestDue()
	if !decoy {
		s.queued = max(s.queued-n, 0)
	}
	if !open || n == 0 {
		return
	}
	if !decoy {
		s.lastData = now
	}
	if s.reqLeft == s.reqSize {
		s.reqDue = reqDue
	}
	s.reqLeft -= n
	if s.reqLeft > 0 {
		return
	}
	s.gridDue = nextGrid(s.reqDue, now, s.p.SegmentDuration)
	s.reqIndex++
	s.lastReqEnd = now
	s.gotResponse = false
	s.drawRequest()
}

// Server side.

// drawSegment draws the size of the next segment at the current rung.
func (s *Video) drawSegment() {
	base := int64(s.p.Ladder[s.rung]) * int64(s.p.SegmentDuration) / (8 * int64(time.Second))
	factor := int64(vbrSteps)
	if s.vbrPermille > 0 {
		factor += s.rng.Int64N(2*s.vbrPermille+1) - s.vbrPermille
	}
	s.nextSeg = int(min(max(base*factor/vbrSteps, 1), MaxSize))
}

// unpromptedDue is when queued data starts a burst with no request. A
// client on its grid asks a SegmentDuration after the last burst began;
// the QuietGap on top lets its request, if a little late, come first.
func (s *Video) unpromptedDue() time.Time {
	if !s.bursted {
		return time.Time{} // at once: later(…, now) is now
	}
	return s.lastBurstStart.Add(s.p.SegmentDuration + s.p.QuietGap)
}

// beginBurst starts a segment at now, unprompted if no request asked
// for it.
func (s *Video) beginBurst(now time.Time, unprompted bool) {
	s.burst = true
	s.bursted = true
	s.unprompted = unprompted
	s.burstStart = now
	s.lastBurstStart = now
	s.segSize = s.nextSeg
	s.segLeft = s.segSize
	s.segData = 0
}

func (s *Video) serverSent(now time.Time, n int, decoy bool) {
	open := due(s.Next(now), now)
	if !decoy {
		s.queued = max(s.queued-n, 0)
	}
	if !open || n == 0 {
		return
	}
	if !s.burst {
		s.beginBurst(now, true) // data waited long enough to go unprompted
	}
	s.segLeft -= n
	if !decoy {
		s.segData += n
	}
	if s.segLeft > 0 {
		return
	}
	s.burst = false
	s.adapt(now)
	s.drawSegment()
	if s.pending {
		s.pending = false
		s.beginBurst(now, false)
	}
}

// adapt moves the rung for the next segment, at most one step.
func (s *Video) adapt(now time.Time) {
	data := min(s.segData, s.segSize)
	switch {
	case now.Sub(s.burstStart) > s.p.SegmentDuration, data*abrDownFraction < s.segSize:
		s.rung = max(s.rung-1, 0)
	case int64(data)*vbrSteps >= int64(s.segSize)*abrUpPermille && s.queued > 0:
		s.rung = min(s.rung+1, len(s.p.Ladder)-1)
	}
}

// UsesReceived reports that Video reacts to received bytes (a server's
// bursts answer requests), so the shaper wakes it on every read.
func (s *Video) UsesReceived() bool { return true }

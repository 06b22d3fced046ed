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
	// Role says which end this is: the Client plays the player and sends
	// the requests, the Server answers each with a segment. Required.
	Role Role
	// SegmentDuration is the play time of one segment, 2s to 10s, the
	// range HLS and DASH services use; 2s is what low-latency services
	// use. Zero means 4s.
	SegmentDuration time.Duration
	// Ladder lists the bitrates a video segment can be encoded at, in
	// bits per second, ascending, each from 10 kbit/s to 100 Mbit/s, at
	// most 32. Nil means [DefaultLadder].
	Ladder []int
	// StartRung is the index in Ladder of the first segment's bitrate.
	// Zero, the default, is the lowest: players start low and climb.
	StartRung int
	// StartupSegments is how many segments of each stream the player
	// fetches back to back to fill its buffer, at the start and after
	// each seek, before it settles to one per SegmentDuration, 1 to 30.
	// Zero means 3.
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
	// client takes a segment as delivered once nothing has arrived for
	// QuietGap, and never sends two requests less than QuietGap apart;
	// the server takes bytes that arrive less than QuietGap after the
	// previous ones as part of the same request. Zero means 100ms.
	QuietGap time.Duration
	// AudioBitrate, if positive, gives the stream a separate audio
	// track of that many bits per second (8 kbit/s to 1 Mbit/s), as
	// YouTube and most DASH services fetch it: the player then requests
	// audio and video segments alternately, the audio ones half a
	// SegmentDuration after the video ones, and the server answers every
	// second request with an audio segment (AudioBitrate × duration, ±
	// VBR) instead of a video one. It doubles the requests, and so the
	// room upstream, at the cost of a small segment downstream. Zero
	// means one muxed stream.
	AudioBitrate int
	// SeekEvery, if positive, is the mean time between the viewer's
	// seeks (or moves to the next video), each drawn from an
	// exponential law, at least a SegmentDuration: at a seek the player
	// drops its buffer and starts up again, StartupSegments of each
	// stream back to back. From SegmentDuration to 1h; zero means no
	// seeks. It changes only the client.
	SeekEvery time.Duration
	// IdleStop, if positive, ends the client's viewing session once no
	// real data has been queued or sent for that long: no more requests
	// until data is queued again, which starts a new session with a new
	// startup. Zero, the default, means the player never stops: it plays
	// from the handshake on, data or not. The server needs no such
	// setting: it sends only when asked.
	IdleStop time.Duration
	// Rebuffer trades leakage for upstream latency: it makes the client,
	// once past startup, act as a player whose buffer has run low while
	// real data waits to go upstream: once a response has arrived since
	// its last request, its next request is due QuietGap after the last
	// bytes arrived, as during startup, instead of on the grid. So
	// request timing then follows the application's (a censor can see
	// when it has more to send), bounded by MaxBuffer. It changes only
	// the client.
	Rebuffer bool
	// MaxBuffer is the player's buffer target, which bounds Rebuffer. The
	// client counts its buffer as a player would, with playback taken to
	// start when the play does (the session began or the last seek):
	// buffer = segments requested since × SegmentDuration − time since,
	// floored at 0. A Rebuffer request is then due no earlier than the
	// time the buffer has room for one more segment (buffer +
	// SegmentDuration <= MaxBuffer), and never later than the grid.
	// From 4s to 5m, and at least SegmentDuration; zero means 30s.
	// Without Rebuffer it has no effect.
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
	minAudioRate    = 8_000
	maxAudioRate    = 1_000_000
	maxSeekEvery    = time.Hour
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
	abrSafetyPermil = 800  // a rung fits if its bitrate is at most 80% of the measured throughput
	maxPending      = 8    // requests a server remembers while it sends
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
	if p.AudioBitrate != 0 && (p.AudioBitrate < minAudioRate || p.AudioBitrate > maxAudioRate) {
		return p, &ParamError{name, "AudioBitrate", p.AudioBitrate, fmt.Sprintf("0 (none) or %d..%d bit/s", minAudioRate, maxAudioRate)}
	}
	if p.SeekEvery != 0 && (p.SeekEvery < p.SegmentDuration || p.SeekEvery > maxSeekEvery) {
		return p, &ParamError{name, "SeekEvery", p.SeekEvery, fmt.Sprintf("0 (never) or SegmentDuration (%v)..%v", p.SegmentDuration, maxSeekEvery)}
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

// Video makes a connection look like an adaptive streaming player (HLS
// or DASH) and its server, after the facts in the project's note on
// video traffic: the client asks for one segment at a time, a request
// before every segment; the server answers each request with a burst of
// MTU-sized writes as fast as the link takes them, and never sends a
// segment unasked; both are quiet in between (ON/OFF). What goes on the
// wire follows the player model, not the application: the model runs
// from the connection's first event (the shaper's first Queued, right
// after the handshake) whether data flows or not, and real data rides in
// whatever the model sends, requests upstream and segments downstream,
// decoys making up the rest (Pad is always set). An idle tunnel looks
// like a player watching.
//
// The client (the player, upstream). At the start of a play (a QuietGap
// after the first event, data queued after IdleStop ended a session, or a
// seek) it fetches StartupSegments segments of each stream
// back to back: the first request at once, each next one QuietGap after
// the previous response stopped arriving, or a SegmentDuration after the
// request if none arrives. Then it settles to one request per stream per
// SegmentDuration, on a grid that, like [ConstantRate]'s, holds unless
// the shaper is half a period late; with AudioBitrate the streams
// alternate, video then audio half a segment later. Each request is one
// opportunity of a RequestSize sample. With SeekEvery, at drawn times
// the player seeks: startup again. With IdleStop, a request due IdleStop
// or more after the last real data, with none waiting, ends the session;
// data queued then starts a new one. With Rebuffer, a request is due
// early, as in startup, while real data waits and the buffer (see
// MaxBuffer) has room.
//
// The server (downstream). Bytes that arrive after QuietGap of silence
// are a request. A request starts a burst at once, or right after the
// current one (up to 8 are remembered). With AudioBitrate, the requests
// alternate video, audio, video, ... as the client sends them. A video
// burst is bitrate/8 × SegmentDuration × a VBR factor wire bytes, an
// audio one AudioBitrate/8 × SegmentDuration × a VBR factor; each is
// offered MTU bytes at a time, every write due at once. After each video
// segment the server picks the next one's rung from the throughput the
// segment went out at (its bytes over the time from its first write to
// its last, which a slow link's full socket stretches), as a player's
// throughput rule would: the highest rung at most 80% of it, climbing one
// rung a segment and falling at once. How much real data a segment
// carried plays no part. As a safety net for a peer that is not a video
// player, data queued with no request for a SegmentDuration and a
// QuietGap since the last burst began (or since the first event) starts
// a burst anyway; a video client's requests, at most a SegmentDuration
// apart, always come first. A request that arrives during such a burst,
// or within QuietGap of its start, is taken as the one it answers.
//
// Latency against leakage. Without Rebuffer and IdleStop the wire is a
// function of the seed and of the link only: request and segment times
// and sizes tell nothing about when the application sends. The price is
// latency and a throughput cap: upstream data waits for the next request
// (at most SegmentDuration, or half of it with AudioBitrate) and carries
// at most RequestSize bytes a request; downstream data waits for the
// response to the next request and gets at most the rung's bitrate.
// Shorter segments, a separate audio stream and larger requests lower
// the wait and raise the cap without making the timing depend on the
// application; Rebuffer and IdleStop buy more upstream, or less idle
// traffic, by letting the timing follow the application.
//
// Randomness: the client draws a request size when constructed and
// after each request, and, with SeekEvery, the time to the next seek
// when constructed and after each seek request; the server draws a
// segment's VBR factor when constructed and after each segment. Those
// are the only draws.
//
// It is not safe for concurrent use.
type Video struct {
	p           VideoParams
	rng         *rand.Rand
	vbrPermille int64
	streams     int // 1, or 2 with audio
	queued      int
	started     bool      // an event has come: the model runs
	start       time.Time // the first event
	lastData    time.Time // client: last real data queued or sent in a session

	// client
	active      bool      // a viewing session is on
	playStart   time.Time // when the current play began: the session or the last seek
	reqIndex    int       // requests completed in this play
	reqSize     int       // the current request's drawn size
	reqLeft     int       // and what it still carries
	reqDue      time.Time // its due time, fixed when its first byte goes
	reqSeek     bool      // it began as a seek
	lastReqEnd  time.Time // when the previous request was done
	gridDue     time.Time // when a steady-state request is due
	gotResponse bool      // bytes arrived since the previous request
	lastRecv    time.Time
	seekAfter   time.Duration // with SeekEvery: the next seek, after playStart

	// server
	rung           int
	nextSeg        int  // size of the next segment, drawn ahead
	burst          bool // a segment is being sent
	audio          bool // and it is an audio one
	segments       int  // bursts begun: with audio, odd ones are audio
	segSize        int
	segLeft        int
	burstStart     time.Time
	bursted        bool // a burst has begun at some time
	unprompted     bool // the last burst began with no request, and none has come for it yet
	pending        int  // requests that arrived during the burst
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
	s := &Video{p: p, rng: r, vbrPermille: int64(p.VBR*vbrSteps + 0.5), rung: p.StartRung, streams: 1}
	if p.AudioBitrate > 0 {
		s.streams = 2
	}
	if p.Role == Client {
		s.drawRequest()
		s.drawSeek()
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
// current video segment, or of the next one between bursts. It is
// StartRung for a client.
func (s *Video) Rung() int { return s.rung }

// Next implements [Schedule].
func (s *Video) Next(now time.Time) Opportunity {
	if s.p.Role == Client {
		if !s.clientActive() {
			return Opportunity{}
		}
		at, _ := s.requestDue()
		return Opportunity{At: later(at, now), Size: s.reqLeft, Pad: true}
	}
	switch {
	case s.burst:
		return Opportunity{At: later(s.burstStart, now), Size: min(s.p.MTU, s.segLeft), Pad: true}
	case s.queued > 0 && s.started:
		return Opportunity{At: later(s.unpromptedDue(), now), Size: min(s.p.MTU, s.nextSeg), Pad: true}
	}
	return Opportunity{}
}

// begin starts the model at the first event.
func (s *Video) begin(now time.Time) {
	if s.started {
		return
	}
	s.started = true
	s.start = now
	if s.p.Role == Client {
		// The first request a QuietGap after the handshake, not at the
		// same instant: bytes that reach the server with the end of its
		// handshake are read by it, and the shaper never reports them,
		// so the server would not hear that request.
		s.startSession(now)
		s.playStart = now.Add(s.p.QuietGap)
	}
}

// Queued implements [Schedule].
func (s *Video) Queued(now time.Time, n int) {
	s.begin(now)
	wasActive := s.p.Role == Client && s.clientActive()
	s.queued = max(n, 0)
	if s.p.Role == Server || s.queued == 0 {
		return
	}
	s.lastData = now
	if !wasActive {
		s.startSession(now)
	}
}

// Sent implements [Schedule].
func (s *Video) Sent(now time.Time, n int, decoy bool) {
	s.begin(now)
	n = max(n, 0)
	if s.p.Role == Client {
		s.clientSent(now, n, decoy)
	} else {
		s.serverSent(now, n, decoy)
	}
}

// Received implements [Schedule].
func (s *Video) Received(now time.Time, n int) {
	s.begin(now)
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
		s.pending = min(s.pending+1, maxPending)
	default:
		s.beginBurst(now, false)
	}
}

func (s *Video) String() string {
	extra := ""
	if s.p.AudioBitrate > 0 {
		extra += fmt.Sprintf(",audio=%d", s.p.AudioBitrate)
	}
	if s.p.SeekEvery > 0 {
		extra += fmt.Sprintf(",seek-every=%v", s.p.SeekEvery)
	}
	if s.p.Rebuffer {
		extra += fmt.Sprintf(",rebuffer,max-buffer=%v", s.p.MaxBuffer)
	}
	return fmt.Sprintf("video(role=%v,segment=%v,ladder=%v,start-rung=%d,startup=%d,vbr=%g,mtu=%d,request=%s,quiet=%v,idle-stop=%v%s)",
		s.p.Role, s.p.SegmentDuration, s.p.Ladder, s.p.StartRung, s.p.StartupSegments, s.p.VBR, s.p.MTU,
		samplerString(s.p.RequestSize), s.p.QuietGap, s.p.IdleStop, extra)
}

// Client side.

func (s *Video) drawRequest() {
	s.reqSize = clampSample(s.p.RequestSize, s.rng, 1, maxRequestSize)
	s.reqLeft = s.reqSize
}

// drawSeek draws the time from the start of a play to the next seek:
// exponential with mean SeekEvery, at least a SegmentDuration and at
// most 100 times the mean.
func (s *Video) drawSeek() {
	if s.p.SeekEvery <= 0 {
		return
	}
	d := time.Duration(s.rng.ExpFloat64() * float64(s.p.SeekEvery))
	s.seekAfter = min(max(d, s.p.SegmentDuration), 100*s.p.SeekEvery)
}

// startSession starts a viewing session, and its first play, at now.
func (s *Video) startSession(now time.Time) {
	s.active = true
	s.lastData = now
	s.playStart = now
	s.reqIndex = 0
	s.gotResponse = false
}

// startupRequests is how many requests a play's startup makes.
func (s *Video) startupRequests() int { return s.p.StartupSegments * s.streams }

// requestDue is when the current request is due, and whether it is a
// seek.
func (s *Video) requestDue() (time.Time, bool) {
	if s.reqLeft < s.reqSize {
		return s.reqDue, s.reqSeek
	}
	if s.reqIndex == 0 {
		return s.playStart, false
	}
	// Never two requests less than a quiet gap apart: the server could
	// not tell them apart.
	earliest := s.lastReqEnd.Add(s.p.QuietGap)
	if s.reqIndex < s.startupRequests() {
		if s.gotResponse {
			return later(s.lastRecv.Add(s.p.QuietGap), earliest), false
		}
		return s.lastReqEnd.Add(s.p.SegmentDuration), false
	}
	at := s.gridDue
	if s.p.Rebuffer && s.queued > 0 && s.gotResponse {
		// The buffer is below its target: ask again once this segment
		// is in and the buffer has room for the next, or on the grid if
		// that comes first.
		if early := later(later(s.lastRecv.Add(s.p.QuietGap), earliest), s.bufferRoom()); early.Before(at) {
			at = early
		}
	}
	if s.p.SeekEvery > 0 {
		if seek := later(s.playStart.Add(s.seekAfter), earliest); seek.Before(at) {
			return seek, true
		}
	}
	return at, false
}

// bufferRoom is when the player's buffer, the segments requested since
// playStart less what has played, has drained to MaxBuffer −
// SegmentDuration: room for one more segment.
func (s *Video) bufferRoom() time.Time {
	segments := time.Duration(s.reqIndex/s.streams + 1)
	return s.playStart.Add(segments*s.p.SegmentDuration - s.p.MaxBuffer)
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
	at, _ := s.requestDue()
	return at.Before(s.lastData.Add(s.p.IdleStop))
}

func (s *Video) clientSent(now time.Time, n int, decoy bool) {
	open := due(s.Next(now), now)
	// Read before the data leaves the queue: with Rebuffer, an empty
	// queue moves a request's due time back to the grid.
	reqDue, seek := s.requestDue()
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
		s.reqDue, s.reqSeek = reqDue, seek
	}
	s.reqLeft -= n
	if s.reqLeft > 0 {
		return
	}
	s.gridDue = nextGrid(s.reqDue, now, s.p.SegmentDuration/time.Duration(s.streams))
	s.reqIndex++
	s.lastReqEnd = now
	s.gotResponse = false
	s.drawRequest()
	if s.reqSeek {
		// The first request of a new play.
		s.playStart = s.reqDue
		s.reqIndex = 1
		s.drawSeek()
	}
}

// Server side.

// drawSegment draws the size of the next segment: an audio one, or a
// video one at the current rung.
func (s *Video) drawSegment() {
	rate := s.p.Ladder[s.rung]
	if s.streams == 2 && s.segments%2 == 1 {
		rate = s.p.AudioBitrate
	}
	base := int64(rate) * int64(s.p.SegmentDuration) / (8 * int64(time.Second))
	factor := int64(vbrSteps)
	if s.vbrPermille > 0 {
		factor += s.rng.Int64N(2*s.vbrPermille+1) - s.vbrPermille
	}
	s.nextSeg = int(min(max(base*factor/vbrSteps, 1), MaxSize))
}

// unpromptedDue is when queued data starts a burst with no request: a
// SegmentDuration and a QuietGap after the last burst began, or after
// the first event. A video client asks at least once a SegmentDuration,
// so its request comes first.
func (s *Video) unpromptedDue() time.Time {
	from := s.start
	if s.bursted {
		from = s.lastBurstStart
	}
	return from.Add(s.p.SegmentDuration + s.p.QuietGap)
}

// beginBurst starts a segment at now, unprompted if no request asked
// for it.
func (s *Video) beginBurst(now time.Time, unprompted bool) {
	s.burst = true
	s.bursted = true
	s.unprompted = unprompted
	s.audio = s.streams == 2 && s.segments%2 == 1
	s.segments++
	s.burstStart = now
	s.lastBurstStart = now
	s.segSize = s.nextSeg
	s.segLeft = s.segSize
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
	if s.segLeft > 0 {
		return
	}
	s.burst = false
	if !s.audio {
		s.adapt(now)
	}
	s.drawSegment()
	if s.pending > 0 {
		s.pending--
		s.beginBurst(now, false)
	}
}

// adapt picks the rung of the next video segment from the throughput
// the one just sent went out at: the highest rung at most
// abrSafetyPermil of it, at most one rung up.
func (s *Video) adapt(now time.Time) {
	d := now.Sub(s.burstStart)
	target := len(s.p.Ladder) - 1
	if d > 0 {
		// bits/s, in float: segSize × 8e9 can pass int64 for long bursts
		// only in theory, but float costs nothing here.
		bps := float64(s.segSize) * 8 * float64(time.Second) / float64(d)
		for target > 0 && float64(s.p.Ladder[target])*vbrSteps > bps*abrSafetyPermil {
			target--
		}
	}
	s.rung = min(target, s.rung+1)
}

// UsesReceived reports that Video reacts to received bytes (a server's
// bursts answer requests), so the shaper wakes it on every read.
func (s *Video) UsesReceived() bool { return true }

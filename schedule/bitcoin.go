package schedule

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// BitcoinParams configures [NewBitcoin]. The zero value (with a Role)
// gives a full-relay link of Bitcoin Core v28.1.
//
// Wire sizes are BIP324 packets: 3 bytes of length, a header byte, the
// message type (1 byte for a short id, 13 for the 12-byte long form),
// the payload and a 16-byte tag, so a message with a short id takes
// 21 bytes plus its payload (ping: 29, inv of one entry: 58).
type BitcoinParams struct {
	// Role picks Core's opening sequence (Client: the initiator's,
	// Server: the responder's) and the defaults that differ by role.
	Role Role
	// IBD makes the link one of initial block download: the server
	// sends blocks back to back as the client requests them, the client
	// requests them with getdata; neither relays transactions or
	// addresses.
	IBD bool
	// PingInterval is the time between pings (29 bytes). Zero means
	// 2 minutes, Core's PING_INTERVAL.
	PingInterval time.Duration
	// InvInterval is the mean time between inv trickles (exponential
	// gaps, as Core's Poisson timer). Zero means 2 s for the client and
	// 5 s for the server: Core's OUTBOUND_ and
	// INBOUND_INVENTORY_BROADCAST_INTERVAL (the initiator's peer is its
	// outbound peer, the responder's its inbound one).
	InvInterval time.Duration
	// TxRate is the transactions announced per second; an inv carries
	// a Poisson number of them for the time since the last one (at
	// least one). Zero means 7, Core's INVENTORY_BROADCAST_PER_SECOND
	// before PR #28592 (a cap in Core, a mean here).
	TxRate float64
	// AddrInterval is the mean time between addrv2 messages of one IPv4
	// address (37 bytes). Zero means 30 s, Core's
	// AVG_ADDRESS_BROADCAST_INTERVAL.
	AddrInterval time.Duration
	// BlockInterval is the mean time between the blocks this end
	// announces (headers, 103 bytes) and sends (a burst of BlockSize
	// bytes). Zero means 20 minutes: with both ends at 20 minutes the
	// link carries a block every 10 minutes, Bitcoin's target spacing,
	// each one way. Ignored with IBD.
	BlockInterval time.Duration
	// BlockSize draws a block's wire size; samples are taken in
	// [1, MaxSize]. Nil means uniform over 1,000,000..2,000,000 bytes,
	// the size of mainnet blocks (issue 10).
	BlockSize Sampler
	// InFlight is, with IBD, the most blocks the client has requested
	// and not received: its first getdata asks for that many, and the
	// server sends no more blocks than were asked for. Zero means 16,
	// Core's MAX_BLOCKS_IN_TRANSIT_PER_PEER.
	InFlight int
	// DemandWait, when not zero, bounds how long data waits for a
	// message to ride (relay links only): once the oldest waiting byte
	// has waited this long, the next inv goes at once (carrying up to
	// Core's 1000 entries, 36 kB); and once more waits than an inv
	// carries, a block is announced at once (headers, then the block a
	// round trip later), and again after it while the data lasts. Zero
	// keeps Core's cadence whatever waits: data then waits for the
	// trickle and the block clock.
	//
	// The price is the cadence: under load, invs come sooner than the
	// Poisson timer would send them and blocks more often than one per
	// BlockInterval, so a censor that counts blocks or times invs over
	// minutes sees more of them than Bitcoin makes. Sizes stay Core's.
	DemandWait time.Duration
}

// Wire sizes of Core's messages (BIP324 framing; see BitcoinParams).
const (
	bitcoinShortMsg = 21      // 3 length + 1 header + 1 short id + 16 tag
	bitcoinPingSize = 29      // ping, pong, feefilter: an 8-byte payload
	bitcoinAddrSize = 37      // addrv2 of one IPv4 address (16-byte payload): DESIGN.md's second most common size
	bitcoinHdrsSize = 103     // headers of one header (82-byte payload): DESIGN.md's 103
	bitcoinInvEntry = 36      // one inv or getdata entry: type and hash
	bitcoinInvMax   = 1000    // Core's INVENTORY_BROADCAST_MAX entries in one inv
	ibdBlockBytes   = 1 << 20 // a client's getdata follows each block's worth received
)

// bitcoinBlockLead is the time from a block's headers announcement to
// the block: a round trip for the peer's getdata, on a long path.
const bitcoinBlockLead = 100 * time.Millisecond

// bitcoinStep is one message of Core's opening: its offset from the
// opening's start and its wire size.
type bitcoinStep struct {
	at   time.Duration
	size int
}

// Core's opening after the BIP324 handshake, per role, from
// testdata/bitcoin-core-wire/post_handshake_messages.csv (session
// observer_35s; DESIGN.md, "How Bitcoin Core behaves on the wire"). The
// initiator starts when its handshake is done; the responder, as Core
// does with an inbound peer, once the initiator's first message arrives.
var (
	// version, wtxidrelay, sendaddrv2, verack, getaddr, sendcmpct, ping, feefilter
	bitcoinClientOpening = []bitcoinStep{
		{39_900 * time.Microsecond, 135}, {41_600 * time.Microsecond, 33}, {42_000 * time.Microsecond, 33},
		{44_000 * time.Microsecond, 33}, {44_700 * time.Microsecond, 33}, {45_200 * time.Microsecond, 30},
		{45_500 * time.Microsecond, 29}, {46_400 * time.Microsecond, 29},
	}
	// version, wtxidrelay, sendaddrv2, verack, sendcmpct, ping, feefilter
	bitcoinServerOpening = []bitcoinStep{
		{3_300 * time.Microsecond, 135}, {4_300 * time.Microsecond, 33}, {4_500 * time.Microsecond, 33},
		{4_700 * time.Microsecond, 33}, {4_900 * time.Microsecond, 30}, {5_100 * time.Microsecond, 29},
		{5_900 * time.Microsecond, 29},
	}
)

// BitcoinOpening returns the wire sizes and offsets of Core's opening for
// role: what a [Bitcoin] schedule sends first, in order.
func BitcoinOpening(role Role) (sizes []int, offsets []time.Duration) {
	steps := bitcoinServerOpening
	if role == Client {
		steps = bitcoinClientOpening
	}
	for _, s := range steps {
		sizes = append(sizes, s.size)
		offsets = append(offsets, s.at)
	}
	return sizes, offsets
}

func (p BitcoinParams) withDefaults() BitcoinParams {
	if p.PingInterval == 0 {
		p.PingInterval = 2 * time.Minute
	}
	if p.InvInterval == 0 {
		p.InvInterval = 5 * time.Second
		if p.Role == Client {
			p.InvInterval = 2 * time.Second
		}
	}
	if p.TxRate == 0 {
		p.TxRate = 7
	}
	if p.AddrInterval == 0 {
		p.AddrInterval = 30 * time.Second
	}
	if p.BlockInterval == 0 {
		p.BlockInterval = 20 * time.Minute
	}
	if p.BlockSize == nil {
		p.BlockSize = intSampler{1_000_000, 2_000_000}
	}
	if p.InFlight == 0 {
		p.InFlight = 16
	}
	return p
}

func (p BitcoinParams) check() error {
	bad := func(param string, v any, want string) error {
		return &ParamError{Schedule: "bitcoin", Param: param, Value: v, Want: want}
	}
	switch {
	case p.Role != Client && p.Role != Server:
		return bad("Role", p.Role, "client or server")
	case p.PingInterval < time.Second || p.PingInterval > time.Hour:
		return bad("PingInterval", p.PingInterval, "1s..1h")
	case p.InvInterval < 10*time.Millisecond || p.InvInterval > time.Hour:
		return bad("InvInterval", p.InvInterval, "10ms..1h")
	case p.TxRate < 0 || p.TxRate > 1000 || math.IsNaN(p.TxRate):
		return bad("TxRate", p.TxRate, "0..1000 per second")
	case p.AddrInterval < 100*time.Millisecond || p.AddrInterval > 24*time.Hour:
		return bad("AddrInterval", p.AddrInterval, "100ms..24h")
	case p.BlockInterval < time.Second || p.BlockInterval > 24*time.Hour:
		return bad("BlockInterval", p.BlockInterval, "1s..24h")
	case p.InFlight < 1 || p.InFlight > 1000:
		return bad("InFlight", p.InFlight, "1..1000")
	case p.DemandWait < 0 || p.DemandWait > time.Hour:
		return bad("DemandWait", p.DemandWait, "0..1h")
	case p.DemandWait > 0 && p.IBD:
		return bad("DemandWait", p.DemandWait, "0 with IBD (an IBD link is driven by its getdatas)")
	}
	return nil
}

// bitcoinEvent is a kind of message the schedule sends after the opening.
type bitcoinEvent uint8

const (
	evNone bitcoinEvent = iota
	evOpening
	evPing
	evInv
	evAddr
	evHeaders
	evBlock
	evGetdata
	evCount
)

// Bitcoin makes a connection look like a link between two Bitcoin Core
// nodes after the BIP324 handshake, in wire sizes and timing. Every
// opportunity pads: real data rides in it, decoys fill the rest, so the
// sizes on the wire are Core's whatever the data.
//
// First comes Core's opening (version 135 bytes, then 33-byte verack,
// wtxidrelay, sendaddrv2 and, from the initiator, getaddr, sendcmpct 30,
// ping and feefilter 29), each message at Core's offset (see
// [BitcoinOpening]). The client starts it at its first event; the
// server at the first bytes received, as Core answers an inbound peer's
// version (or, with data queued, a second after it was queued if no
// byte has come by then).
//
// Then a full-relay link: a ping every PingInterval; inv trickles at
// exponential gaps of mean InvInterval, each 22+36k bytes for k
// transactions (Poisson, TxRate per second since the last, at least 1;
// while data waits, k grows to carry it, up to Core's 1000); an addrv2
// at exponential gaps of mean AddrInterval; and at exponential gaps of
// mean BlockInterval a block: its headers (103 bytes), then a
// round trip later a burst of BlockSize bytes. DESIGN.md ("Bitcoin
// traffic on a real link", after Arowolokehinde,
// bip324-traffic-analysis-research, 2026) puts such a link at about
// 2,171 bytes/s, blocks arriving as bursts of full segments. Data beyond
// an opportunity waits for the next: an inv carries up to 36 kB, a
// block 1-2 MB.
//
// With IBD, after the opening: the client sends a getdata for InFlight
// blocks (22+36·InFlight bytes), and one more getdata each time a
// block's worth (1 MiB) has arrived since the last, for one block, or
// for as many as its waiting data fills, up to InFlight (and while data
// waits, one a second after the last even without a block); the server,
// from the end of its opening, sends blocks of BlockSize back to back
// while the client has asked for more than it got: InFlight at first,
// then (n-22)/36 blocks (at least 1) more for each n bytes received, at
// most InFlight outstanding (and while data waits, one a second after
// the last even without a getdata seen). Pings go on every PingInterval. Such a link moves megabytes
// per second for as long as it lasts, downstream; upstream it carries
// what the getdatas hold.
//
// Randomness: the constructor draws nothing. Each event, when it is
// sent, draws its successor's gap (ExpFloat64) and, for an inv, the
// Poisson count of its successor, for a block (and a headers) the next
// block's size; in the order the events are sent. So a seed and the same events give the same
// decisions.
//
// It is not safe for concurrent use.
type Bitcoin struct {
	p   BitcoinParams
	rng *rand.Rand

	started bool      // the opening's clock runs
	start   time.Time // the opening's start
	step    int       // the next message of the opening
	opening []bitcoinStep
	queued  int
	waiting time.Time // when the queue last went from empty to not (DemandWait)

	at   [evCount]time.Time // when each recurring event is next due; zero: not scheduled
	size [evCount]int       // its size
	cur  bitcoinEvent       // the event whose opportunity is being filled
	left int                // what the current opportunity still carries

	// IBD.
	credit      int       // server: blocks asked for and not sent
	received    int       // client: bytes received since the last getdata
	lastGetdata time.Time // client: when the last getdata went
	lastBlock   time.Time // server: when the last block went
}

// ibdRetry is how long after its last getdata an IBD client with data
// waiting asks again without a block's worth having arrived, as Core
// asks again for blocks that a stalling peer does not send.
const ibdRetry = time.Second

var _ Schedule = (*Bitcoin)(nil)

// NewBitcoin returns a Bitcoin schedule drawing from r, which it keeps:
// r must not be used elsewhere meanwhile.
func NewBitcoin(p BitcoinParams, r *rand.Rand) (*Bitcoin, error) {
	if r == nil {
		return nil, ErrNilRand
	}
	p = p.withDefaults()
	if err := p.check(); err != nil {
		return nil, err
	}
	s := &Bitcoin{p: p, rng: r, opening: bitcoinServerOpening}
	if p.Role == Client {
		s.opening = bitcoinClientOpening
	}
	return s, nil
}

// Params returns the parameters with defaults filled in.
func (s *Bitcoin) Params() BitcoinParams { return s.p }

// UsesReceived reports that the schedule reacts to received bytes: the
// server's opening and block credit, the client's getdatas.
func (s *Bitcoin) UsesReceived() bool { return true }

// serverFallback is how long a server with data waits for the
// client's first bytes before it opens anyway (a client whose first
// bytes the shaper did not see, say).
const serverFallback = time.Second

// begin starts the opening's clock at now, or moves a server's
// fallback start forward to now, while nothing of the opening went.
func (s *Bitcoin) begin(now time.Time) {
	if !s.started || (s.step == 0 && s.cur == evNone && s.start.After(now)) {
		s.started, s.start = true, now
	}
}

// next returns the event due first and when, evNone if none is.
func (s *Bitcoin) next() (bitcoinEvent, time.Time, int) {
	if !s.started {
		return evNone, time.Time{}, 0
	}
	if s.step < len(s.opening) {
		st := s.opening[s.step]
		return evOpening, s.start.Add(st.at), st.size
	}
	if s.p.IBD && s.p.Role == Client && s.queued > 0 && s.at[evGetdata].IsZero() && !s.lastGetdata.IsZero() {
		// Data waits and no block came to ask for the next one.
		s.at[evGetdata] = s.lastGetdata.Add(ibdRetry)
		s.size[evGetdata] = bitcoinShortMsg + 1 + bitcoinInvEntry
		defer func() { s.at[evGetdata] = time.Time{} }()
	}
	if s.p.IBD && s.p.Role == Server && s.queued > 0 && s.at[evBlock].IsZero() && !s.lastBlock.IsZero() {
		// Data waits and no getdata came (or its bytes were not read):
		// the next block a second after the last, as a peer with
		// requests outstanding that the shaper did not see.
		s.at[evBlock] = s.lastBlock.Add(ibdRetry)
		defer func() { s.at[evBlock] = time.Time{} }()
	}
	if s.p.DemandWait > 0 && s.queued > 0 {
		s.demand()
	}
	ev, at, size := evNone, time.Time{}, 0
	for e := evPing; e < evCount; e++ {
		if s.at[e].IsZero() {
			continue
		}
		if ev == evNone || s.at[e].Before(at) {
			ev, at, size = e, s.at[e], s.size[e]
		}
	}
	if ev == evInv {
		size = max(size, s.invFor(s.queued))
	}
	if ev == evGetdata {
		size = max(size, s.getdataFor(s.queued))
	}
	return ev, at, size
}

// demand brings the next inv or block forward for data that has waited
// (DemandWait). It changes the schedule only in ways that hold whatever
// the time (a block for more than an inv carries; an inv no later than
// the oldest byte's deadline), so calling it again changes nothing.
func (s *Bitcoin) demand() {
	if s.queued > bitcoinInvMax*bitcoinInvEntry && s.at[evBlock].IsZero() {
		// More than an inv carries: a block, announced as soon as
		// the waiting data is due.
		due := s.waiting.Add(s.p.DemandWait)
		if s.at[evHeaders].IsZero() || s.at[evHeaders].After(due) {
			s.at[evHeaders], s.size[evHeaders] = due, bitcoinHdrsSize
		}
	}
	if due := s.waiting.Add(s.p.DemandWait); !s.at[evInv].IsZero() && s.at[evInv].After(due) {
		s.at[evInv] = due
	}
}

// invFor is the size of an inv that carries n bytes: 22+36k, k up to
// Core's 1000.
func (s *Bitcoin) invFor(n int) int {
	k := min(max((n-bitcoinShortMsg-1+bitcoinInvEntry-1)/bitcoinInvEntry, 1), bitcoinInvMax)
	return bitcoinShortMsg + 1 + bitcoinInvEntry*k
}

// getdataFor is the size of a getdata that carries n bytes, for up to
// InFlight blocks.
func (s *Bitcoin) getdataFor(n int) int {
	k := min(max((n-bitcoinShortMsg-1+bitcoinInvEntry-1)/bitcoinInvEntry, 1), s.p.InFlight)
	return bitcoinShortMsg + 1 + bitcoinInvEntry*k
}

// Next implements [Schedule]: the earliest due message as {max(at, now),
// size, true}; for the one being filled, what it still carries.
func (s *Bitcoin) Next(now time.Time) Opportunity {
	ev, at, size := s.next()
	if ev == evNone {
		return Opportunity{}
	}
	if ev == s.cur && s.left > 0 {
		size = s.left
	}
	return Opportunity{At: later(at, now), Size: min(size, MaxSize), Pad: true}
}

// Queued implements [Schedule]. The client's first event starts its
// opening; data queued at the server starts its opening a second later
// if no byte from the client has come by then.
func (s *Bitcoin) Queued(now time.Time, n int) {
	if s.queued == 0 && n > 0 {
		s.waiting = now
	}
	s.queued = max(n, 0)
	switch {
	case s.p.Role == Client:
		s.begin(now)
	case s.queued > 0 && !s.started:
		s.started, s.start = true, now.Add(serverFallback)
	}
}

// Received implements [Schedule]. It starts the server's opening; with
// IBD it counts what the client asked for (server) and what arrived
// (client).
func (s *Bitcoin) Received(now time.Time, n int) {
	if n <= 0 {
		return
	}
	s.begin(now)
	if !s.p.IBD || s.step < len(s.opening) {
		return
	}
	switch s.p.Role {
	case Server:
		k := min(max((n-bitcoinShortMsg-1)/bitcoinInvEntry, 1), s.p.InFlight)
		s.credit = min(s.credit+k, s.p.InFlight)
		if s.at[evBlock].IsZero() {
			s.at[evBlock] = now // its size drawn when the last went
		}
	case Client:
		s.received += n
		if s.received >= ibdBlockBytes && s.at[evGetdata].IsZero() {
			s.received = 0
			s.at[evGetdata] = now
			s.size[evGetdata] = bitcoinShortMsg + 1 + bitcoinInvEntry
		}
	}
}

// Sent implements [Schedule].
func (s *Bitcoin) Sent(now time.Time, n int, decoy bool) {
	n = max(n, 0)
	// The opportunity as the shaper was given it: before the data sent
	// lowers the queue (an inv's size follows the queue).
	o := s.Next(now)
	ev, _, _ := s.next()
	if !decoy {
		s.queued = max(s.queued-n, 0)
		if s.queued > 0 && n > 0 {
			s.waiting = now // what is left waits from now
		}
	}
	if !due(o, now) || n == 0 {
		return
	}
	if ev != s.cur {
		s.cur, s.left = ev, o.Size
	}
	s.left -= n
	if s.left > 0 {
		return
	}
	s.cur, s.left = evNone, 0
	s.done(ev, now)
}

// exp draws an exponential gap of the given mean.
func (s *Bitcoin) exp(mean time.Duration) time.Duration {
	return time.Duration(s.rng.ExpFloat64() * float64(mean))
}

// poisson draws a Poisson count of the given mean, at least 1, at most
// Core's 1000 inv entries.
func (s *Bitcoin) poisson(mean float64) int {
	k, t := 0, 0.0
	for k < bitcoinInvMax {
		t += s.rng.ExpFloat64()
		if t > mean {
			break
		}
		k++
	}
	return max(k, 1)
}

// done moves on from event ev, sent whole at now, and draws its
// successor.
func (s *Bitcoin) done(ev bitcoinEvent, now time.Time) {
	switch ev {
	case evOpening:
		s.step++
		if s.step == len(s.opening) {
			s.afterOpening(now)
		}
	case evPing:
		s.at[evPing] = now.Add(s.p.PingInterval)
	case evInv:
		gap := s.exp(s.p.InvInterval)
		s.at[evInv] = now.Add(gap)
		s.size[evInv] = bitcoinShortMsg + 1 + bitcoinInvEntry*s.poisson(s.p.TxRate*gap.Seconds())
	case evAddr:
		s.at[evAddr] = now.Add(s.exp(s.p.AddrInterval))
	case evHeaders:
		s.at[evHeaders] = time.Time{}
		s.at[evBlock] = now.Add(bitcoinBlockLead)
		s.size[evBlock] = clampSample(s.p.BlockSize, s.rng, 1, MaxSize)
	case evBlock:
		s.at[evBlock] = time.Time{}
		if s.p.IBD {
			s.credit = max(s.credit-1, 0)
			s.lastBlock = now
			s.size[evBlock] = clampSample(s.p.BlockSize, s.rng, 1, MaxSize)
			if s.credit > 0 {
				s.at[evBlock] = now
			}
			return
		}
		s.at[evHeaders] = now.Add(s.exp(s.p.BlockInterval))
	case evGetdata:
		s.at[evGetdata] = time.Time{}
		s.lastGetdata = now
	}
}

// afterOpening schedules what follows the opening, whose last message
// (feefilter) went at now. The opening's ping starts the ping clock.
func (s *Bitcoin) afterOpening(now time.Time) {
	ping := s.opening[len(s.opening)-2].at // ping, then feefilter
	s.at[evPing], s.size[evPing] = later(s.start.Add(ping+s.p.PingInterval), now), bitcoinPingSize
	if s.p.IBD {
		// The client asks for InFlight blocks at once; the server,
		// which Core's protocol lets expect that getdata, counts it
		// asked for already, so that no race with its own opening
		// loses it.
		if s.p.Role == Client {
			s.at[evGetdata] = now
			s.size[evGetdata] = bitcoinShortMsg + 1 + bitcoinInvEntry*s.p.InFlight
		} else {
			s.credit = s.p.InFlight
			s.at[evBlock] = now
			s.size[evBlock] = clampSample(s.p.BlockSize, s.rng, 1, MaxSize)
		}
		return
	}
	gap := s.exp(s.p.InvInterval)
	s.at[evInv] = now.Add(gap)
	s.size[evInv] = bitcoinShortMsg + 1 + bitcoinInvEntry*s.poisson(s.p.TxRate*gap.Seconds())
	s.at[evAddr], s.size[evAddr] = now.Add(s.exp(s.p.AddrInterval)), bitcoinAddrSize
	s.at[evHeaders], s.size[evHeaders] = now.Add(s.exp(s.p.BlockInterval)), bitcoinHdrsSize
}

func (s *Bitcoin) String() string {
	mode := "relay"
	if s.p.IBD {
		mode = "ibd"
	}
	return fmt.Sprintf("bitcoin(%v,%s,ping=%v,inv=%v,tx=%g/s,addr=%v,block=%v,size=%s,in_flight=%d,demand_wait=%v)",
		s.p.Role, mode, s.p.PingInterval, s.p.InvInterval, s.p.TxRate, s.p.AddrInterval, s.p.BlockInterval,
		samplerString(s.p.BlockSize), s.p.InFlight, s.p.DemandWait)
}

package workload

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
)

// Bitcoin Core's timing, src/net_processing.cpp of v28 (the version
// whose wire DESIGN.md measured).
const (
	// pingInterval is PING_INTERVAL: each node pings each peer every 2
	// minutes, the first time right after the handshake.
	pingInterval = 2 * time.Minute
	// outboundInvInterval and inboundInvInterval are
	// OUTBOUND_INVENTORY_BROADCAST_INTERVAL and
	// INBOUND_INVENTORY_BROADCAST_INTERVAL: the mean gap of the Poisson
	// timer that trickles transaction invs to an outbound and to an
	// inbound peer. The client opened the connection, so the server is
	// its outbound peer (2 s) and it is the server's inbound peer (5 s).
	outboundInvInterval = 2 * time.Second
	inboundInvInterval  = 5 * time.Second
	// invPerSecond is INVENTORY_BROADCAST_PER_SECOND (7 in v28; later
	// releases raised it to 14). The model takes it as the rate at which
	// transactions to announce arrive, mainnet's order of magnitude
	// (several transactions a second).
	invPerSecond = 7
	// invMax is INVENTORY_BROADCAST_MAX, the most entries in one inv.
	invMax = 1000
	// addrInterval is AVG_ADDRESS_BROADCAST_INTERVAL, the mean gap of the
	// Poisson timer that sends queued addresses.
	addrInterval = 30 * time.Second
	// blockInterval is mainnet's mean block interval.
	blockInterval = 10 * time.Minute
)

// Sizes of the messages as BIP324 packets: 3 bytes of length, 1 of
// header, 1 of short message type, the payload and a 16-byte tag, so 21
// bytes around the payload. DESIGN.md ("Bitcoin traffic on a real link")
// lists the sizes seen on mainnet: 29 (ping, pong: an 8-byte nonce), 37
// (addrv2 with one IPv4 address), 65, 103 (headers).
const (
	bip324Overhead = 21
	pingSize       = bip324Overhead + 8
	addrSize       = 37
	invEntrySize   = 36 // a 4-byte type and a 32-byte hash
)

// Transaction sizes, serialised with witness. The model is an assumption:
// lognormal with median 250 bytes (a one-input, two-output P2WPKH spend,
// a common kind, is 222 bytes) and sigma 1, which puts the mean near 412
// bytes, the order of mainnet's average in 2023-2024 (blocks of about
// 1.6 MB holding 3,000-4,000 transactions). Sizes are clamped below at
// Core's MIN_STANDARD_TX_NONWITNESS_SIZE (65 bytes, src/policy/policy.h)
// and above at 100 kB, the standard limit in virtual bytes
// (MAX_STANDARD_TX_WEIGHT, 400,000 weight units); a witness-heavy
// transaction may be larger in bytes, which the cap ignores.
const (
	txMedianSize = 250
	txSigma      = 1.0
	txMinSize    = 65
	txMaxSize    = 100_000
)

// Block sizes: uniform between 1 and 2 MB, the usual range of mainnet
// blocks since segwit (larger ones, up to 4 MB, are rare).
const (
	// MinBlockSize is the smallest block the bitcoin workload sends;
	// every other message it sends is smaller than 101 kB, so a
	// DirReceived message at least this large is a block (see Blocks).
	MinBlockSize = 1_000_000
	maxBlockSize = 2_000_000
)

// fetchFraction is the share of the announced transactions the receiving
// end requests (getdata) and so receives over this link. A node fetches
// each transaction once, from whichever peer announces it first, so one
// of its links carries a fraction of them. The value calibrates the
// model's relay traffic (everything but blocks, both directions together)
// to the 2,171 bytes/s of a full-relay link in DESIGN.md. With f the
// fraction, and invs every 2.14 s and 5.14 s (see bitcoin's doc):
//
//	invs:      0.66/s * 22 B + 14 entries/s * 36 B        = 519 B/s
//	getdata:   0.57/s * 22 B + 14 f entries/s * 36 B       = 12.5 + 504 f B/s
//	tx:        14 f/s * (412 + 21) B                       = 6,062 f B/s
//	ping/pong: 2 ends * 2 * 29 B / 120 s                   = 1 B/s
//	addr:      2 ends * 37 B / 30 s                        = 2.5 B/s
//
// which is about 535 + 6,566 f B/s: 2,177 B/s at f = 1/4.
const fetchFraction = 0.25

// bitcoin is what a full-relay link between two Bitcoin Core nodes
// carries, at the application level (each message one BIP324 packet, of
// the packet's size, in one write). Each end, until Duration:
//
//   - pings every 2 minutes, starting at once, and answers each ping with
//     a pong;
//   - announces transactions in invs (21+1+36k bytes, k entries) on a
//     timer of exponential gaps (client 2 s, server 5 s), k drawn from a
//     Poisson law of mean 7/s times the gap; when k is 0 it sends
//     nothing, so invs come on average every 2.14 s and 5.14 s;
//   - requests a quarter of the transactions announced to it (a getdata
//     of the same shape), and answers a getdata with one tx message per
//     entry (21 bytes plus a lognormal size, median 250 bytes);
//   - sends an addrv2 of one address (37 bytes) at exponential gaps of
//     mean 30 s;
//
// and the server pushes blocks, uniform in 1-2 MB, at exponential gaps of
// mean min(10 min, Duration/3): mainnet's ten minutes, compressed for a
// run shorter than half an hour so it still shows a few blocks. See the
// constants for the sources. Without blocks the link averages about
// 2,171 bytes/s (DESIGN.md's full-relay figure), both ways together.
//
// At Duration both ends stop queueing messages, answers included, write
// what they have queued and end their streams; Run returns once that is
// delivered: shortly after Duration, or when a block still in flight
// arrives (at a shaped rate of a few kB/s, that can take many minutes).
// Completion is 0.
// [Blocks] picks the blocks out of Result.Messages.
type bitcoin struct{}

func (bitcoin) Name() string { return "bitcoin" }

func (bitcoin) Run(ctx context.Context, client, server net.Conn, p Params) (Result, error) {
	s, err := newSession(ctx, client, server, p)
	if err != nil {
		return Result{Site: -1}, err
	}
	for _, e := range []*peer{s.cli, s.srv} {
		e.onMsg = bitcoinReplies(e, p.Seed)
	}
	s.begin()
	for _, e := range []*peer{s.cli, s.srv} {
		plan := bitcoinPlan(p.Seed, p.Duration, e == s.srv)
		s.spawn(func() error {
			for _, m := range plan {
				if !s.sleepUntil(m.at, nil) {
					return nil
				}
				e.push(m.kind, m.size)
			}
			if s.afterDuration() {
				e.closeOutbox()
			}
			return nil
		})
	}
	return s.wait()
}

// Blocks returns the blocks of a bitcoin run: its DirReceived messages of
// at least MinBlockSize bytes, in the order sent. Each one's Sent is when
// the server began writing the block, its Recv when the client had it
// all.
func Blocks(r Result) []Message {
	var out []Message
	for _, m := range r.Messages {
		if m.Dir == schedule.DirReceived && m.Size >= MinBlockSize {
			out = append(out, m)
		}
	}
	return out
}

// role names an end in the labels of its random sources.
func role(server bool) string {
	if server {
		return "s"
	}
	return "c"
}

// bitcoinPlan is what one end sends on its own timers in a run of
// duration d, in time order.
func bitcoinPlan(seed uint64, d time.Duration, server bool) []planned {
	var out []planned
	for t := time.Duration(0); t < d; t += pingInterval {
		out = append(out, planned{at: t, kind: kindPing, size: pingSize})
	}

	invGap := outboundInvInterval
	if server {
		invGap = inboundInvInterval
	}
	r := newRand(seed, "btc/"+role(server)+"/inv")
	for t := time.Duration(0); ; {
		gap := expGap(r, invGap)
		if t += gap; t >= d {
			break
		}
		if k := min(poisson(r, invPerSecond*gap.Seconds()), invMax); k > 0 {
			out = append(out, planned{at: t, kind: kindInv, size: invSize(k)})
		}
	}

	r = newRand(seed, "btc/"+role(server)+"/addr")
	for t := expGap(r, addrInterval); t < d; t += expGap(r, addrInterval) {
		out = append(out, planned{at: t, kind: kindAddr, size: addrSize})
	}

	if server && d > 0 {
		mean := min(blockInterval, d/3)
		r = newRand(seed, "btc/s/block")
		for t := expGap(r, mean); t < d; t += expGap(r, mean) {
			out = append(out, planned{at: t, kind: kindBlock, size: MinBlockSize + r.IntN(maxBlockSize-MinBlockSize+1)})
		}
	}
	slices.SortStableFunc(out, func(a, b planned) int { return cmp.Compare(a.at, b.at) })
	return out
}

// bitcoinReplies returns e's reader callback: it answers pings, invs and
// getdatas, drawing from e's own sources in the order the messages
// arrive.
func bitcoinReplies(e *peer, seed uint64) func(k kind, seq uint64, size int) error {
	server := e.dir == schedule.DirReceived
	fetch := newRand(seed, "btc/"+role(server)+"/getdata")
	txs := newRand(seed, "btc/"+role(server)+"/tx")
	return func(k kind, seq uint64, size int) error {
		switch k {
		case kindPing:
			if size != pingSize {
				break
			}
			e.push(kindPong, pingSize)
			return nil
		case kindInv:
			n, ok := invCount(size)
			if !ok {
				break
			}
			if m := binomial(fetch, n, fetchFraction); m > 0 {
				e.push(kindGetdata, invSize(m))
			}
			return nil
		case kindGetdata:
			n, ok := invCount(size)
			if !ok {
				break
			}
			for range n {
				e.push(kindTx, txSize(txs))
			}
			return nil
		case kindPong, kindTx, kindAddr:
			return nil
		case kindBlock:
			if !server {
				return nil
			}
		}
		return fmt.Errorf("%w: %s: unexpected message %d: kind %d, %d bytes", ErrIntegrity, e.name, seq, k, size)
	}
}

// compactSizeLen is the length of Bitcoin's CompactSize encoding of n.
func compactSizeLen(n int) int {
	switch {
	case n < 0xfd:
		return 1
	case n <= 0xffff:
		return 3
	}
	return 5
}

// invSize is the size of an inv or getdata with n entries.
func invSize(n int) int { return bip324Overhead + compactSizeLen(n) + invEntrySize*n }

// invCount is the number of entries of an inv or getdata of size bytes.
func invCount(size int) (int, bool) {
	for _, cs := range []int{1, 3} {
		n := (size - bip324Overhead - cs) / invEntrySize
		if n > 0 && invSize(n) == size {
			return n, true
		}
	}
	return 0, false
}

// txSize draws the size of a tx message.
func txSize(r *rand.Rand) int {
	size := math.Exp(math.Log(txMedianSize) + txSigma*r.NormFloat64())
	return bip324Overhead + int(math.Round(min(max(size, txMinSize), txMaxSize)))
}

// poisson draws from a Poisson law of the given mean, by Knuth's
// multiplication method in steps of mean at most 20 (a Poisson variable
// is the sum of Poisson variables whose means add up), so e^-step never
// underflows. It takes O(mean) draws, which is small here.
func poisson(r *rand.Rand, mean float64) int {
	n := 0
	for mean > 0 {
		step := min(mean, 20)
		mean -= step
		limit, prod := math.Exp(-step), r.Float64()
		for prod > limit {
			n++
			prod *= r.Float64()
		}
	}
	return n
}

// binomial draws the number of successes in n trials of probability p.
func binomial(r *rand.Rand, n int, p float64) int {
	k := 0
	for range n {
		if r.Float64() < p {
			k++
		}
	}
	return k
}

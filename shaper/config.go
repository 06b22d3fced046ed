package shaper

import (
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"time"

	"github.com/bip324pt/bip324-pt/padding"
	"github.com/bip324pt/bip324-pt/schedule"
	"github.com/bip324pt/bip324-pt/v2core"
)

// Defaults for the zero Config.
const (
	// DefaultMaxPacket is the most contents (record byte included) a data
	// packet carries when Config.PacketSize is nil: 64 KiB, which makes
	// the 21 bytes of framing 0.03% and stays far below any peer's limit.
	DefaultMaxPacket = 64 << 10
	// DefaultQueueSize is the default send queue: 1 MiB.
	DefaultQueueSize = 1 << 20
	// DefaultLinger is how long a socket write may stay blocked during
	// Close before the peer counts as gone: long enough for a slow link
	// to take a 256 KiB write, short enough that a peer that stopped
	// reading does not hold the connection for long.
	DefaultLinger = 30 * time.Second
	// maxDecoyPacket caps one decoy's contents; larger padding is cut
	// into several decoys, so no peer's length limit is ever reached.
	maxDecoyPacket = 64 << 10
	// maxChunk is how many packet bytes the sender builds before it
	// writes them out, so a burst of megabytes needs no large buffer.
	maxChunk = 256 << 10
)

// Shape is what a profile compiles to ([profiles]): how one end shapes its
// send direction, the handshake included. The zero Shape is plain BIP324
// sent at once, in Bitcoin Core's handshake style. A Shape may be shared
// by any number of connections and must not change while they run.
type Shape struct {
	// Schedule makes the send schedule of one connection, from the
	// connection's role and its sampling source. Nil means
	// [schedule.Immediate]: no timing change.
	Schedule func(role schedule.Role, r *mrand.Rand) (schedule.Schedule, error)

	// GarbageLen draws the garbage length, clamped to 0..4095. Nil means
	// uniform over 0..4095, as Bitcoin Core.
	GarbageLen padding.Dist
	// Garbage fills the garbage. Nil means random bytes, as Bitcoin Core.
	Garbage padding.Filler
	// HandshakeDecoys draws how many decoys go between our terminator and
	// our version packet; nil means none, as Bitcoin Core.
	HandshakeDecoys padding.Dist
	// DecoySize draws the contents length of each handshake decoy. Nil
	// means uniform over 0..1024.
	DecoySize padding.Dist

	// PacketSize draws the largest contents (header included) of each
	// packet a stream is cut into. Nil means DefaultMaxPacket. Samples
	// are clamped to 2..4,000,013 (Bitcoin Core's limit). Whole packets
	// (Conn.WritePacket) are never cut.
	PacketSize padding.Dist
	// WriteSize draws the size of each write to the socket; the sender
	// cuts its ciphertext at these sizes, regardless of packet
	// boundaries. Nil means one write per send opportunity.
	WriteSize padding.Dist
	// FirstWriteSize, when at least 64, puts only that many bytes of the
	// first flight (key and garbage) in the first write and the rest in
	// the next. Zero sends the first flight in one write, as Bitcoin Core.
	FirstWriteSize int
	// FirstFlightDelay, for an initiator, draws how many microseconds
	// to wait before the first flight, from when the handshake starts
	// (before any byte goes); samples are clamped to
	// 0..10 s, and a cancelled context ends the wait. Nil means none.
	// Bitcoin Core waits for its 50 ms socket loop: its first flight
	// leaves in one of two modes (DESIGN.md, "How Bitcoin Core behaves
	// on the wire"). A responder never waits: Core answers at once.
	FirstFlightDelay padding.Dist

	// QueueSize is the send queue in bytes; writes block while it is
	// full. Zero means DefaultQueueSize.
	QueueSize int
	// Linger bounds how long one socket write may stay blocked while
	// Close delivers what is queued: a peer that takes no byte for that
	// long has stopped reading, and what is left is dropped and counted
	// (Close returns an *UnsentError). A peer that reads, however
	// slowly, gets everything at the schedule's pace. Zero means
	// DefaultLinger; negative means close at once, dropping the queue.
	Linger time.Duration
	// MaxDecoyRatio caps decoy bytes at this multiple of data bytes sent
	// so far (plus one opportunity's worth); beyond it, opportunities
	// carry real data only. Zero means no cap.
	MaxDecoyRatio float64
}

// Config is one connection's wiring: its shape, the seed of its
// decisions, its handshake hooks and its observers. The zero value is
// plain BIP324 on mainnet, sent at once. A Config may be shared by
// connections when its hooks allow it, and must not change while they run.
type Config struct {
	// Shape shapes our send direction. Nil means the zero Shape.
	Shape *Shape
	// Network salts the BIP324 keys. Zero means mainnet.
	Network v2core.Network
	// MaxContentLen caps a packet's contents from the peer; zero means
	// Bitcoin Core's 4,000,013.
	MaxContentLen int

	// Seed seeds the connection's sampling source, so the same seed
	// gives the same decisions. Zero means a fresh random seed for every
	// connection, which is what real use wants: the seed never touches
	// keys, and a fixed seed repeats garbage bytes across connections.
	Seed [32]byte
	// Rand is the source of keys. Nil means crypto/rand.
	Rand io.Reader
	// KeyPool, when set, supplies our ephemeral key, made ahead of time
	// (v2core.KeyPool): a bridge answers a first flight as fast as Core.
	KeyPool *v2core.KeyPool

	// VersionContents are our version packet's contents: empty for
	// Bitcoin peers, a negotiation between two bip324-pt ends.
	VersionContents []byte
	// GarbageMin is the least garbage this connection needs; lengths
	// the shape draws below it are drawn again (a few times, then
	// raised), so the rest of the distribution keeps its shape.
	GarbageMin int
	// MarkGarbage, when set, is given our garbage once the shape has
	// drawn its length (at least GarbageMin) and filled it, with our
	// key and the sampling source, and may rewrite it in place. Bridge
	// authentication hides its mark here.
	MarkGarbage func(garbage []byte, key *[v2core.EllswiftKeySize]byte, r *mrand.Rand)
	// HandshakeTimeout bounds the handshake; zero means v2core's default
	// (60 s, as Bitcoin Core), negative none.
	HandshakeTimeout time.Duration
	// Admit, when set, is called once the BIP324 handshake is done with
	// the peer's key and garbage, before Negotiate. An error fails
	// HandshakeContext with a *NotAdmittedError that hands the
	// established BIP324 session to the caller, socket open: a bridge
	// serves a peer that did not authenticate as a Bitcoin node would.
	Admit func(peerKey *[v2core.EllswiftKeySize]byte, peerGarbage []byte) error
	// Negotiate, when set, is called once the handshake is done with the
	// contents of the peer's version packet, and returns the Shape of our
	// send direction from then on (nil keeps Shape) and a seed (zero
	// keeps the connection's source; another reseeds it, so the seed
	// fixes every decision from then on). An error fails the handshake.
	// A bridge applies the profile and seed its client asked for this
	// way.
	Negotiate func(peerVersion []byte) (*Shape, [32]byte, error)

	// OnSend, when set, is called by the send loop just before it fills
	// each send opportunity, with the time the opportunity was due and
	// the time it is being filled: actual minus due is how late the loop
	// is (timer and scheduling delay). For measurement and benchmarks.
	// It runs on the connection's goroutine, so it must be quick and must
	// not block; with a shared Config it is called from every
	// connection's goroutine at once. Nil costs one comparison per send.
	OnSend func(due, actual time.Time)
}

// check validates the fields that can be wrong.
func (s *Shape) check() error {
	if s.FirstWriteSize != 0 && s.FirstWriteSize < v2core.EllswiftKeySize {
		return fmt.Errorf("shaper: FirstWriteSize %d is below the 64-byte key", s.FirstWriteSize)
	}
	if s.QueueSize < 0 {
		return fmt.Errorf("shaper: negative QueueSize %d", s.QueueSize)
	}
	if s.FirstFlightDelay != nil {
		if lo, _ := s.FirstFlightDelay.Bounds(); lo < 0 {
			return fmt.Errorf("shaper: FirstFlightDelay draws %d µs, below 0", lo)
		}
	}
	if s.MaxDecoyRatio < 0 {
		return fmt.Errorf("shaper: negative MaxDecoyRatio %v", s.MaxDecoyRatio)
	}
	return nil
}

// maxFirstFlightDelay bounds a FirstFlightDelay sample.
const maxFirstFlightDelay = 10 * time.Second

// firstFlightDelay draws the initiator's wait before its first flight
// from shape's FirstFlightDelay; zero when it has none.
func firstFlightDelay(shape *Shape, r *mrand.Rand) time.Duration {
	if shape.FirstFlightDelay == nil {
		return 0
	}
	d := time.Duration(shape.FirstFlightDelay.Sample(r)) * time.Microsecond
	return min(max(d, 0), maxFirstFlightDelay)
}

// newRand returns a sampling source seeded with seed, or with a fresh
// random seed when it is zero.
func newRand(seed [32]byte) *mrand.Rand {
	if seed == ([32]byte{}) {
		if _, err := io.ReadFull(rand.Reader, seed[:]); err != nil {
			panic("shaper: crypto/rand failed: " + err.Error())
		}
	}
	return padding.NewRand(seed)
}

// hooks shapes the handshake through v2core.Hooks.
type hooks struct {
	shape   *Shape
	cfg     *Config
	r       *mrand.Rand
	garbage int // bytes of garbage sent, for the counters
}

func (h *hooks) AppendGarbage(dst []byte, key *[v2core.EllswiftKeySize]byte) []byte {
	n := h.garbageLen()
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	filler := h.shape.Garbage
	if filler == nil {
		filler = padding.RandomFiller{}
	}
	filler.Fill(h.r, dst[start:])
	if h.cfg.MarkGarbage != nil {
		h.cfg.MarkGarbage(dst[start:], key, h.r)
	}
	h.garbage = n
	return dst
}

// garbageLen draws the garbage length from the shape, at least
// GarbageMin: lengths below it are drawn again a few times, then raised.
func (h *hooks) garbageLen() int {
	least := min(max(h.cfg.GarbageMin, 0), v2core.MaxGarbageLen)
	if least == 0 {
		if h.shape.GarbageLen == nil {
			return h.r.IntN(v2core.MaxGarbageLen + 1)
		}
		return min(max(h.shape.GarbageLen.Sample(h.r), 0), v2core.MaxGarbageLen)
	}
	n := least
	for range 16 {
		if h.shape.GarbageLen != nil {
			n = h.shape.GarbageLen.Sample(h.r)
		} else {
			n = h.r.IntN(v2core.MaxGarbageLen + 1)
		}
		if n >= least && n <= v2core.MaxGarbageLen {
			return n
		}
	}
	return min(max(n, least), v2core.MaxGarbageLen)
}

func (h *hooks) HandshakeDecoys() []int {
	if h.shape.HandshakeDecoys == nil {
		return nil
	}
	n := min(max(h.shape.HandshakeDecoys.Sample(h.r), 0), 64)
	sizes := make([]int, n)
	for i := range sizes {
		if h.shape.DecoySize != nil {
			sizes[i] = min(max(h.shape.DecoySize.Sample(h.r), 0), maxDecoyPacket)
		} else {
			sizes[i] = h.r.IntN(1025)
		}
	}
	return sizes
}

func (h *hooks) VersionContents() []byte { return h.cfg.VersionContents }

// FirstWriteSize says where v2core cuts our first flight (v2core.FirstWriteHook).
func (h *hooks) FirstWriteSize() int { return h.shape.FirstWriteSize }

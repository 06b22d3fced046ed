package v2core_test

// Benchmarks of the sans-io core, of raw ChaCha20-Poly1305 as the ceiling,
// of btcd's v2transport as the comparison, and of Conn end to end. Compare
// figures from one run only (see BENCHMARKS.md for the command).

import (
	"bytes"
	"github.com/bip324pt/bip324-pt/internal/memconn"
	"github.com/bip324pt/bip324-pt/internal/testutil"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/v2core"
	"github.com/btcsuite/btcd/v2transport"
	"golang.org/x/crypto/chacha20poly1305"
)

// benchSizes are packet contents sizes: a small message, a typical one,
// the 16 KiB of a stream write, and a large block-sized one.
var benchSizes = []int{64, 1024, 16384, 1 << 20}

// benchSessions runs an initiator and a responder against each other in
// memory and returns their sessions. The keys, and so every ciphertext,
// depend only on seed.
func benchSessions(tb testing.TB, seed uint64) (ini, resp *v2core.Session) {
	tb.Helper()
	hi, err := v2core.NewInitiator(&v2core.Config{Rand: newInteropRand(seed)})
	if err != nil {
		tb.Fatal(err)
	}
	hr, err := v2core.NewResponder(&v2core.Config{Rand: newInteropRand(seed + 1)})
	if err != nil {
		tb.Fatal(err)
	}
	if err := benchPump(hi, hr); err != nil {
		tb.Fatal(err)
	}
	return hi.Session(), hr.Session()
}

// benchPump passes output between two handshakes until both are done.
func benchPump(hi, hr *v2core.Handshake) error {
	var buf []byte
	for range 4 {
		if hi.Done() && hr.Done() {
			return nil
		}
		for _, p := range [2][2]*v2core.Handshake{{hi, hr}, {hr, hi}} {
			buf = p[0].Output(buf[:0])
			if len(buf) == 0 {
				continue
			}
			n, err := p[1].Feed(buf)
			if err != nil {
				return err
			}
			if n != len(buf) {
				return io.ErrShortWrite
			}
		}
	}
	if !hi.Done() || !hr.Done() {
		return io.ErrNoProgress
	}
	return nil
}

func benchName(n int) string { return strconv.Itoa(n) }

// BenchmarkSealOpen seals a packet into a reused buffer and decodes it with
// the peer's Decoder: one direction of a session, steady state.
func BenchmarkSealOpen(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(benchName(n), func(b *testing.B) {
			ini, resp := benchSessions(b, 1)
			dec := resp.Decoder()
			contents := make([]byte, n)
			buf := make([]byte, 0, v2core.SealedLen(n))
			// One packet outside the timing: the decoder grows its
			// buffer to the packet size once.
			buf = ini.Seal(buf[:0], contents, false)
			if _, _, err := dec.Decode(buf); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				buf = ini.Seal(buf[:0], contents, false)
				pkt, k, err := dec.Decode(buf)
				if err != nil || pkt == nil || k != len(buf) || len(pkt.Contents) != n {
					b.Fatalf("Decode: pkt %v, %d of %d bytes, %v", pkt, k, len(buf), err)
				}
			}
		})
	}
}

// BenchmarkRawAEAD is the ceiling for BenchmarkSealOpen: ChaCha20-Poly1305
// Seal and in-place Open of the same plaintext size with a reused buffer,
// no length cipher, header or rekeying.
func BenchmarkRawAEAD(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(benchName(n), func(b *testing.B) {
			key := make([]byte, chacha20poly1305.KeySize)
			aead, err := chacha20poly1305.New(key)
			if err != nil {
				b.Fatal(err)
			}
			var nonce [chacha20poly1305.NonceSize]byte
			pt := make([]byte, n)
			buf := make([]byte, 0, n+chacha20poly1305.Overhead)
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				ct := aead.Seal(buf[:0], nonce[:], pt, nil)
				if _, err := aead.Open(ct[:0], nonce[:], ct, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSeal is the send half of BenchmarkSealOpen.
func BenchmarkSeal(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(benchName(n), func(b *testing.B) {
			ini, _ := benchSessions(b, 1)
			contents := make([]byte, n)
			buf := make([]byte, 0, v2core.SealedLen(n))
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				buf = ini.Seal(buf[:0], contents, false)
			}
		})
	}
}

// BenchmarkOpen is the receive half of BenchmarkSealOpen. Packets must be
// opened in order, so a batch is sealed up front and the decoder is rewound
// to its saved state whenever the batch is used up. The rewind copies the
// Decoder value, which is sound because a Decoder holds its cipher state by
// value; were that to change, the next Decode would fail and so would the
// benchmark.
func BenchmarkOpen(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(benchName(n), func(b *testing.B) {
			ini, resp := benchSessions(b, 1)
			dec := resp.Decoder()
			contents := make([]byte, n)
			size := v2core.SealedLen(n)
			// One packet first, so the saved decoder has grown its
			// buffer and a rewind does not make it grow again.
			wire := ini.Seal(nil, contents, false)
			if _, _, err := dec.Decode(wire); err != nil {
				b.Fatal(err)
			}
			saved := *dec
			// Up to 256 packets or 8 MiB, whichever is fewer.
			batch := max(1, min(256, (8<<20)/size))
			wire = make([]byte, 0, batch*size)
			for range batch {
				wire = ini.Seal(wire, contents, false)
			}
			i := 0
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				if i == batch {
					*dec = saved
					i = 0
				}
				pkt, k, err := dec.Decode(wire[i*size : (i+1)*size])
				if err != nil || pkt == nil || k != size {
					b.Fatalf("Decode: pkt %v, %d of %d bytes, %v", pkt, k, size, err)
				}
				i++
			}
		})
	}
}

// BenchmarkHandshake is a whole handshake of both ends in memory: two key
// pairs with their ElligatorSwift encodings, two ECDHs, two key
// derivations, terminators and version packets. No garbage or decoys, as
// in BenchmarkHandshakeBtcd; keys come from crypto/rand, as btcd's do.
func BenchmarkHandshake(b *testing.B) {
	cfg := &v2core.Config{Hooks: &interopHooks{}}
	b.ReportAllocs()
	for b.Loop() {
		hi, err := v2core.NewInitiator(cfg)
		if err != nil {
			b.Fatal(err)
		}
		hr, err := v2core.NewResponder(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := benchPump(hi, hr); err != nil {
			b.Fatal(err)
		}
		if hi.Session().ID() != hr.Session().ID() {
			b.Fatal("session ids differ")
		}
	}
}

// benchQueue is one direction of an in-memory duplex pipe with an
// unbounded buffer, so btcd's write-everything-then-read handshake does not
// block on its writes. Safe for one writer and one reader goroutine.
type benchQueue struct {
	mu     sync.Mutex
	cond   sync.Cond
	buf    bytes.Buffer
	closed bool
}

func newBenchQueue() *benchQueue {
	q := new(benchQueue)
	q.cond.L = &q.mu
	return q
}

func (q *benchQueue) Read(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.buf.Len() == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.buf.Len() == 0 {
		return 0, io.EOF
	}
	return q.buf.Read(p)
}

func (q *benchQueue) Write(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, io.ErrClosedPipe
	}
	q.buf.Write(p)
	q.cond.Broadcast()
	return len(p), nil
}

// close wakes a blocked reader, which then sees io.EOF.
func (q *benchQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}

// benchEnd is one end of the pipe: reads from in, writes to out.
type benchEnd struct {
	in, out *benchQueue
}

func (e benchEnd) Read(p []byte) (int, error)  { return e.in.Read(p) }
func (e benchEnd) Write(p []byte) (int, error) { return e.out.Write(p) }

// btcdHandshake runs btcd's initiator here and its responder on a second
// goroutine, which it waits for. btcd's handshake blocks on reads, so it
// cannot run both ends on one goroutine as ours can.
func btcdHandshake() (ini, resp *v2transport.Peer, err error) {
	a, c := newBenchQueue(), newBenchQueue()
	ini, resp = v2transport.NewPeer(), v2transport.NewPeer()
	ini.UseReadWriter(benchEnd{in: c, out: a})
	resp.UseReadWriter(benchEnd{in: a, out: c})
	bnet := btcdNet(v2core.Mainnet)
	errc := make(chan error, 1)
	go func() {
		err := resp.RespondV2Handshake(0, bnet)
		if err == nil {
			err = resp.CompleteHandshake(false, nil, bnet)
		}
		if err != nil {
			c.close() // the initiator's reads end
		}
		errc <- err
	}()
	err = ini.InitiateV2Handshake(0)
	if err == nil {
		err = ini.CompleteHandshake(true, nil, bnet)
	}
	if err != nil {
		a.close() // the responder's reads end
	}
	if rerr := <-errc; err == nil {
		err = rerr
	}
	return ini, resp, err
}

// BenchmarkHandshakeBtcd is BenchmarkHandshake for btcd's v2transport,
// garbage length 0 and no decoys, over benchQueue pipes.
func BenchmarkHandshakeBtcd(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := btcdHandshake(); err != nil {
			b.Fatal(err)
		}
	}
}

// benchWire hands btcd's packets from its sender to its receiver on one
// goroutine without copying them: Write keeps the slice (V2EncPacket
// allocates a fresh one per packet and never touches it again), Read copies
// out of it, as a socket read would.
type benchWire struct {
	q    [][]byte
	head int
	off  int
}

func (w *benchWire) Write(p []byte) (int, error) {
	w.q = append(w.q, p)
	return len(p), nil
}

func (w *benchWire) Read(p []byte) (int, error) {
	if w.head == len(w.q) {
		return 0, io.EOF
	}
	n := copy(p, w.q[w.head][w.off:])
	w.off += n
	if w.off == len(w.q[w.head]) {
		w.q[w.head] = nil
		w.head++
		w.off = 0
		if w.head == len(w.q) {
			w.q, w.head = w.q[:0], 0
		}
	}
	return n, nil
}

// BenchmarkBtcdSealOpen is BenchmarkSealOpen for btcd: V2EncPacket, then
// V2ReceivePacket on the peer.
func BenchmarkBtcdSealOpen(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(benchName(n), func(b *testing.B) {
			ini, resp, err := btcdHandshake()
			if err != nil {
				b.Fatal(err)
			}
			w := new(benchWire)
			ini.UseReadWriter(w)
			resp.UseReadWriter(w)
			contents := make([]byte, n)
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				if _, _, err := ini.V2EncPacket(contents, nil, false); err != nil {
					b.Fatal(err)
				}
				got, err := resp.V2ReceivePacket(nil)
				if err != nil || len(got) != n {
					b.Fatalf("V2ReceivePacket: %d bytes, %v", len(got), err)
				}
			}
		})
	}
}

// BenchmarkConnThroughput sends 16 KiB Writes from a Client to a Server
// over loopback TCP, the server reading on its own goroutine. Timing ends
// when the server has read every byte.
func BenchmarkConnThroughput(b *testing.B) {
	const chunk = 16 << 10
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	rawClient, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer rawClient.Close()
	rawServer, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer rawServer.Close()
	deadline := time.Now().Add(2 * time.Minute)
	rawClient.SetDeadline(deadline)
	rawServer.SetDeadline(deadline)

	client := v2core.Client(rawClient, nil)
	server := v2core.Server(rawServer, nil)
	hsErr := make(chan error, 1)
	go func() { hsErr <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		rawClient.Close()
		<-hsErr
		b.Fatal(err)
	}
	if err := <-hsErr; err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	b.SetBytes(chunk)
	b.ResetTimer()
	if err := testutil.Transfer(client, server, b.N, chunk, func() { rawServer.Close() }); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}

// appendSizes are contents sizes for Conn.AppendPacket: a small message,
// a full-MTU packet and a 16 KiB stream write.
var appendSizes = []int{64, 1350, 16 << 10}

// benchConn returns a Client whose handshake with a Server over memconn
// is done.
func benchConn(b *testing.B) *v2core.Conn {
	b.Helper()
	x, y := memconn.Pipe(64 << 10)
	b.Cleanup(func() { x.Close(); y.Close() })
	c, s := v2core.Client(x, &v2core.Config{Rand: newInteropRand(1)}), v2core.Server(y, &v2core.Config{Rand: newInteropRand(2)})
	errc := make(chan error, 1)
	go func() { errc <- s.Handshake() }()
	if err := c.Handshake(); err != nil {
		b.Fatal(err)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkConnAppendPacket seals packets through Conn.AppendPacket into
// a reused buffer, the contents given as a record byte and a body (as a
// shaper gives them), and decoys through Conn.AppendDecoy. It writes
// nothing: this is the owner's sealing cost, lock included.
func BenchmarkConnAppendPacket(b *testing.B) {
	for _, n := range appendSizes {
		b.Run(benchName(n), func(b *testing.B) {
			c := benchConn(b)
			hdr, body := []byte{0xff}, make([]byte, n-1)
			dst := make([]byte, 0, v2core.SealedLen(n))
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				var err error
				if dst, err = c.AppendPacket(dst[:0], hdr, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, n := range appendSizes {
		b.Run("decoy/"+benchName(n), func(b *testing.B) {
			c := benchConn(b)
			dst := make([]byte, 0, v2core.SealedLen(n))
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				var err error
				if dst, err = c.AppendDecoy(dst[:0], n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

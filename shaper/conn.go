package shaper

import (
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
	"github.com/bip324pt/bip324-pt/v2core"
)

// Record types: the first contents byte of every non-decoy packet between
// two bip324-pt ends. BIP324 calls it the message-type byte; these are
// short ids no BIP assigns (1-28 are the BIP's own, 29-37 proposed, see
// v2core/testdata/message_type_ids.md), so a Bitcoin node that ever saw
// such a packet would take it for an unknown message and ignore it.
const (
	// recordStream carries stream bytes: everything after the record
	// byte.
	recordStream = 0xff
	// recordEnd ends the sender's stream, as a TCP FIN does: the
	// receiver's Read returns io.EOF after the bytes before it. What
	// follows the record byte is ignored (it pads the packet to the end
	// of a send opportunity). Nothing follows it on the wire: no stream
	// record, and no decoy either, so when both ends have ended their
	// streams neither holds unread bytes and both closes are FINs.
	recordEnd = 0xfe
)

// Other record types are control records between two bip324-pt ends,
// handed to Config.OnControl; without one, a record this version does not
// know is an error.

// packetWire is the wire size of a record packet with body bytes after
// its record byte.
func packetWire(body int) int { return v2core.PacketOverhead + 1 + body }

// readBufferSize is how much one read of the socket takes in: room for a
// whole packet of the default size, so the decoder opens it straight from
// this buffer without first copying it together.
const readBufferSize = 2 * DefaultMaxPacket

// ErrUnknownRecord is returned by Read when the peer sends a packet whose
// record type this version does not know.
var ErrUnknownRecord = errors.New("shaper: unknown record type from the peer")

// ErrTruncated is returned by Read when the connection ends without the
// peer's end-of-stream record: the peer's stream was cut short (a reset,
// a crash, or a machine in the middle), not ended. It wraps
// io.ErrUnexpectedEOF.
var ErrTruncated = fmt.Errorf("shaper: the peer's stream ended without its end-of-stream record: %w", io.ErrUnexpectedEOF)

// ErrDataAfterEnd is returned by Read when the peer sends stream bytes
// after its end-of-stream record.
var ErrDataAfterEnd = errors.New("shaper: stream bytes after the peer's end-of-stream record")

// ErrWriteClosed is returned by Write after CloseWrite.
var ErrWriteClosed = fmt.Errorf("shaper: write after CloseWrite: %w", net.ErrClosed)

// UnsentError is returned by Close when bytes that Write accepted could
// not be delivered: the peer stopped taking bytes for longer than
// Config.Linger, or the socket failed. Bytes counts them; they are also
// in Stats.Dropped.
type UnsentError struct {
	Bytes int64
	Err   error // why, if known
}

func (e *UnsentError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("shaper: closed with %d bytes undelivered: %v", e.Bytes, e.Err)
	}
	return fmt.Sprintf("shaper: closed with %d bytes undelivered", e.Bytes)
}

func (e *UnsentError) Unwrap() error { return e.Err }

// Unsent returns Bytes; ptspec finds it through this method.
func (e *UnsentError) Unsent() int64 { return e.Bytes }

// timeoutError is returned by Write when the write deadline passes while
// the queue is full.
type timeoutError struct{}

func (timeoutError) Error() string   { return "shaper: write deadline exceeded" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
func (timeoutError) Unwrap() error   { return os.ErrDeadlineExceeded }

// Conn is a shaped BIP324 connection: a net.Conn whose send side follows a
// schedule. Write puts bytes in a bounded queue; one goroutine per
// connection, with one timer, takes them out at each send opportunity,
// seals them into packets, fills what the opportunity leaves with decoys,
// and cuts the ciphertext into writes. Read decrypts the peer's packets and
// drops its decoys.
//
//	Write ─► queue ─► run: schedule.Next ─► seal data, then decoys ─► cut into writes ─► socket
//	Read  ◄─ drop decoys, strip record byte ◄─ v2core.Decoder ◄───────────────────────── socket
//
// The handshake runs on the first Read or Write, or on HandshakeContext.
// Read and Write may be called concurrently.
type Conn struct {
	conn     net.Conn
	cfg      *Config
	isClient bool

	once  v2core.HandshakeOnce
	sess  *v2core.Session
	peerV []byte

	// The send side. Only run touches sched, rand and wbuf.
	q        *queue
	sched    schedule.Schedule
	rand     *mrand.Rand
	wbuf     []byte
	wpkts    []sealed // the data packets in wbuf, not yet written
	nextCut  int      // bytes left in the current write piece
	ended    bool     // our end-of-stream record is on the wire
	dataSig  chan struct{}
	spaceSig chan struct{}
	recvSig  chan struct{}
	loopDone chan struct{}
	// closing is set by Close: from then on every socket write is
	// bounded by linger, and abort makes the loop stop at once.
	closing atomic.Bool
	abort   atomic.Bool
	linger  time.Duration
	endOnce sync.Once
	closed  atomic.Bool
	wdl     atomic.Pointer[time.Time] // write deadline for a Write blocked on the queue
	wdlSig  chan struct{}
	sendErr atomic.Pointer[error]
	recvd   atomic.Int64 // bytes read from the socket, not yet reported
	// wakeOnRecv is set when the schedule reacts to received bytes; other
	// schedules get them reported at their next wake-up.
	wakeOnRecv bool

	closeOnce sync.Once
	closeErr  error
	onControl func(rec byte, body []byte) error

	in struct {
		sync.Mutex
		r     *v2core.Reader
		plain []byte
		err   error
		eof   bool // the peer's end-of-stream record came
	}

	stats counters
}

var _ net.Conn = (*Conn)(nil)

// Client returns a shaped connection that initiates the BIP324 handshake
// over conn. cfg may be nil for the zero Config.
func Client(conn net.Conn, cfg *Config) *Conn { return newConn(conn, cfg, true) }

// Server returns a shaped connection that responds to the handshake.
func Server(conn net.Conn, cfg *Config) *Conn { return newConn(conn, cfg, false) }

func newConn(conn net.Conn, cfg *Config, client bool) *Conn {
	if cfg == nil {
		cfg = &Config{}
	}
	return &Conn{
		conn:      conn,
		cfg:       cfg,
		isClient:  client,
		onControl: cfg.OnControl,
		dataSig:   make(chan struct{}, 1),
		spaceSig:  make(chan struct{}, 1),
		recvSig:   make(chan struct{}, 1),
		loopDone:  make(chan struct{}),
		wdlSig:    make(chan struct{}, 1),
	}
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.conn }

// Handshake is HandshakeContext with context.Background.
func (c *Conn) Handshake() error { return c.HandshakeContext(context.Background()) }

// HandshakeContext runs the shaped BIP324 handshake if it has not run, and
// starts the send loop. Cancelling ctx interrupts it and leaves the
// connection unusable.
func (c *Conn) HandshakeContext(ctx context.Context) error {
	return c.once.Do(func() error {
		err := v2core.Interruptible(ctx, c.conn, c.handshake)
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("shaper: handshake: %w", err)
		}
		if err != nil {
			c.conn.Close()
			close(c.loopDone)
			return err
		}
		go c.run()
		return nil
	})
}

func (c *Conn) handshake() error {
	if err := c.cfg.check(); err != nil {
		return err
	}
	c.rand = c.cfg.newRand()

	h := &hooks{cfg: c.cfg, r: c.rand}
	vcfg := &v2core.Config{
		Network:       c.cfg.Network,
		Rand:          c.cfg.Rand,
		Hooks:         h,
		MaxContentLen: c.cfg.MaxContentLen,
	}
	var hs *v2core.Handshake
	var err error
	if c.isClient {
		hs, err = v2core.NewInitiator(vcfg)
	} else {
		hs, err = v2core.NewResponder(vcfg)
	}
	if err != nil {
		return err
	}
	c.in.Lock()
	defer c.in.Unlock()
	c.in.r = v2core.NewReader(c.conn, readBufferSize)
	c.in.r.OnRead = func(n int) {
		c.stats.wireIn.Add(int64(n))
		if c.sess != nil {
			c.recvd.Add(int64(n))
			if c.wakeOnRecv {
				signal(c.recvSig)
			}
		}
	}
	err = c.in.r.Handshake(hs, func(out []byte, first bool) error {
		if err := c.writeFlight(out, first); err != nil {
			return err
		}
		if first {
			c.stats.garbage.Add(int64(h.garbage))
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.sess = hs.Session()
	c.peerV = hs.PeerVersion()
	c.stats.decoysIn.Store(int64(c.sess.Decoder().Decoys()))
	return c.startSendSide()
}

// startSendSide settles the send side's Config (negotiated or not) and
// makes its schedule and queue.
func (c *Conn) startSendSide() error {
	if c.cfg.Negotiate != nil {
		next, err := c.cfg.Negotiate(c.peerV)
		if err != nil {
			return fmt.Errorf("shaper: negotiation: %w", err)
		}
		if next != nil {
			if err := next.check(); err != nil {
				return err
			}
			// The negotiated seed, if any, fixes every decision from
			// here on; the handshake's were drawn before it was known.
			if next.Seed != ([32]byte{}) && next.Seed != c.cfg.Seed {
				c.rand = next.newRand()
			}
			c.cfg = next
		}
	}
	c.linger = c.cfg.Linger
	if c.linger == 0 {
		c.linger = DefaultLinger
	}
	role := schedule.Server
	if c.isClient {
		role = schedule.Client
	}
	if c.cfg.Schedule != nil {
		s, err := c.cfg.Schedule(role, c.rand)
		if err != nil {
			return fmt.Errorf("shaper: making the schedule: %w", err)
		}
		c.sched = s
	} else {
		c.sched = schedule.NewImmediate()
	}
	if r, ok := c.sched.(interface{ UsesReceived() bool }); ok {
		c.wakeOnRecv = r.UsesReceived()
	}
	qs := c.cfg.QueueSize
	if qs == 0 {
		qs = DefaultQueueSize
	}
	c.q = newQueue(qs)
	return nil
}

// writeFlight writes handshake bytes: the first flight whole, or split at
// FirstWriteSize; later flights whole.
func (c *Conn) writeFlight(b []byte, first bool) error {
	if first && c.cfg.FirstWriteSize > 0 && len(b) > c.cfg.FirstWriteSize {
		if err := c.writeRaw(b[:c.cfg.FirstWriteSize]); err != nil {
			return err
		}
		b = b[c.cfg.FirstWriteSize:]
	}
	return c.writeRaw(b)
}

func (c *Conn) writeRaw(b []byte) error {
	if c.closing.Load() {
		// Close waits for a peer that takes bytes, however slowly, but
		// not for one that stopped reading.
		c.conn.SetWriteDeadline(time.Now().Add(c.linger))
	}
	n, err := c.conn.Write(b)
	c.stats.wireOut.Add(int64(n))
	c.stats.writes.Add(1)
	return err
}

// SessionID returns the BIP324 session id once the handshake is done.
func (c *Conn) SessionID() ([32]byte, bool) {
	if !c.once.Succeeded() {
		return [32]byte{}, false
	}
	return c.sess.ID(), true
}

// PeerVersion returns the contents of the peer's version packet once the
// handshake is done.
func (c *Conn) PeerVersion() []byte {
	if !c.once.Succeeded() {
		return nil
	}
	return c.peerV
}

// Write queues p for sending and returns once all of it is queued. It
// blocks while the queue is full, until the write deadline. Errors from
// the send loop (a failed socket write) are returned here. Part of the
// net.Conn interface.
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		return 0, err
	}
	n := 0
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if c.closed.Load() {
			return n, fmt.Errorf("shaper: write: %w", net.ErrClosed)
		}
		if ep := c.sendErr.Load(); ep != nil {
			return n, *ep
		}
		k, ok := c.q.push(p[n:])
		if !ok {
			if c.closed.Load() {
				return n, fmt.Errorf("shaper: write: %w", net.ErrClosed)
			}
			return n, ErrWriteClosed
		}
		n += k
		if k > 0 {
			signal(c.dataSig)
		}
		if n == len(p) {
			return n, nil
		}
		var deadline <-chan time.Time
		if d := c.wdl.Load(); d != nil && !d.IsZero() {
			wait := time.Until(*d)
			if wait <= 0 {
				return n, timeoutError{}
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			deadline = timer.C
		}
		select {
		case <-c.spaceSig:
		case <-deadline:
		case <-c.wdlSig:
		case <-c.loopDone:
		}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Read returns stream bytes from the peer's packets; decoys are dropped.
// It returns io.EOF once the peer has ended its stream (CloseWrite or
// Close), and ErrTruncated when the connection ends without that. A read
// timeout may be retried; every other error is final. Part of the
// net.Conn interface.
func (c *Conn) Read(p []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	c.in.Lock()
	defer c.in.Unlock()
	for len(c.in.plain) == 0 {
		if c.in.eof {
			return 0, io.EOF
		}
		if err := c.nextRecordLocked(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.in.plain)
	c.in.plain = c.in.plain[n:]
	c.stats.dataIn.Add(int64(n))
	return n, nil
}

func (c *Conn) nextRecordLocked() error {
	for {
		if c.in.err != nil {
			return c.in.err
		}
		pkt, err := c.in.r.Next()
		if err != nil {
			if err == io.EOF {
				// A clean end of the socket, but not of the stream.
				c.in.err = ErrTruncated
				return c.in.err
			}
			if v2core.IsProtocolError(err) {
				c.in.err = err
				c.conn.Close()
			}
			return err
		}
		switch {
		case pkt.Ignore:
			c.stats.decoysIn.Add(1)
		case len(pkt.Contents) == 0:
		case pkt.Contents[0] == recordStream:
			if c.in.eof {
				return c.failReadLocked(ErrDataAfterEnd)
			}
			c.in.plain = pkt.Contents[1:]
			return nil
		case pkt.Contents[0] == recordEnd:
			c.in.eof = true
			return nil
		case c.onControl != nil:
			if err := c.onControl(pkt.Contents[0], pkt.Contents[1:]); err != nil {
				return c.failReadLocked(err)
			}
		default:
			return c.failReadLocked(ErrUnknownRecord)
		}
	}
}

// failReadLocked makes err final for Read and closes the socket.
func (c *Conn) failReadLocked(err error) error {
	c.in.err = err
	c.conn.Close()
	return err
}

// CloseWrite ends our send direction, as a TCP half-close does: what Write
// has queued goes out at the schedule's pace, then an end-of-stream
// record, after which the peer's Read returns io.EOF. Read goes on until
// the peer ends its own stream. CloseWrite returns at once; Close waits
// for the delivery. Later Writes fail with ErrWriteClosed.
func (c *Conn) CloseWrite() error {
	if err := c.Handshake(); err != nil {
		return err
	}
	c.endStream()
	if ep := c.sendErr.Load(); ep != nil {
		return *ep
	}
	return nil
}

// endStream queues our end-of-stream record after everything queued.
func (c *Conn) endStream() {
	c.endOnce.Do(func() {
		c.q.pushControl(recordEnd, nil, true)
		signal(c.dataSig)
	})
}

// SendControl queues a control record of type rec, which must not be one
// of the shaper's own (0xfe, 0xff), after the bytes written so far. The
// peer's Config.OnControl receives it. It fails once our stream has ended.
func (c *Conn) SendControl(rec byte, body []byte) error {
	if rec == recordStream || rec == recordEnd {
		return fmt.Errorf("shaper: record type %#x is the shaper's own", rec)
	}
	if err := c.Handshake(); err != nil {
		return err
	}
	if !c.q.pushControl(rec, append([]byte(nil), body...), false) {
		return ErrWriteClosed
	}
	signal(c.dataSig)
	return nil
}

// Close ends our stream if CloseWrite has not, waits until everything
// queued has gone to the socket, followed by the end-of-stream record, and
// closes the socket. A peer that takes bytes at any pace gets them all;
// only a socket write blocked for Config.Linger (the peer stopped
// reading) or a failed one cuts delivery short, and then Close returns an
// *UnsentError with the count. Part of the net.Conn interface.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		// Waits for a handshake in progress; one that never started
		// now never will.
		c.once.Do(func() error {
			close(c.loopDone)
			return net.ErrClosed
		})
		if !c.once.Succeeded() {
			c.closeErr = c.conn.Close()
			return
		}
		c.endStream()
		c.q.close()
		c.closing.Store(true)
		if c.cfg.Linger < 0 {
			c.abort.Store(true)
			c.conn.SetWriteDeadline(time.Unix(1, 0))
		} else {
			// Bound a write already blocked, too.
			c.conn.SetWriteDeadline(time.Now().Add(c.linger))
		}
		signal(c.dataSig)
		<-c.loopDone
		c.countUnsent()
		err := c.conn.Close()
		var sendErr error
		if ep := c.sendErr.Load(); ep != nil {
			sendErr = *ep
		}
		// A failed write that lost no stream byte (the peer had closed
		// and our end-of-stream record found no reader) is no error:
		// everything the peer wanted arrived.
		switch {
		case c.stats.dropped.Load() > 0:
			c.closeErr = &UnsentError{Bytes: c.stats.dropped.Load(), Err: sendErr}
		case sendErr == nil && err != nil:
			c.closeErr = err
		}
	})
	return c.closeErr
}

// LocalAddr is part of the net.Conn interface.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr is part of the net.Conn interface.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets the read and write deadlines. Part of the net.Conn
// interface.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.SetReadDeadline(t)
}

// SetReadDeadline sets the deadline for Read. Part of the net.Conn
// interface.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline for Write to queue its bytes. The
// send loop writes to the socket on its own schedule, so the deadline
// bounds how long Write waits for room in the queue, not when the bytes
// reach the wire. Part of the net.Conn interface.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wdl.Store(&t)
	signal(c.wdlSig)
	return nil
}

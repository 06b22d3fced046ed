package shaper

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
	"github.com/bip324pt/bip324-pt/v2core"
)

// readBufferSize is how much one read of the socket takes in: room for a
// whole packet of the default size, so the decoder opens it straight from
// this buffer without first copying it together.
const readBufferSize = 2 * DefaultMaxPacket

// ErrEnded is returned by writes after End.
var ErrEnded = fmt.Errorf("shaper: write after End: %w", net.ErrClosed)

// UnsentError is returned by Close when bytes that were queued could not
// be delivered: the peer stopped taking bytes for longer than
// Shape.Linger, or the socket failed. Bytes counts the packet bodies
// (headers not included) that did not reach the socket; they are also in
// Stats.Dropped.
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

// NotAdmittedError is returned by HandshakeContext when Config.Admit
// refused the peer. The BIP324 handshake is done: Conn is the session,
// over the still open socket, and belongs to the caller from then on.
type NotAdmittedError struct {
	Err  error
	Conn *v2core.Conn
}

func (e *NotAdmittedError) Error() string { return "shaper: peer not admitted: " + e.Err.Error() }
func (e *NotAdmittedError) Unwrap() error { return e.Err }

// timeoutError is returned by writes when the write deadline passes while
// the queue is full.
type timeoutError struct{}

func (timeoutError) Error() string   { return "shaper: write deadline exceeded" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
func (timeoutError) Unwrap() error   { return os.ErrDeadlineExceeded }

// Conn is a shaped BIP324 connection that carries packets: its send side
// follows a schedule. Writes put packets in a bounded queue; one goroutine
// per connection, with one timer, takes them out at each send
// opportunity, seals them, fills what the opportunity leaves with decoys,
// and cuts the ciphertext into writes. What is inside the packets is the
// caller's: Bitcoin messages, or the bridge's stream records.
//
//	WritePacket, WriteStream, End ─► queue ─► run: schedule.Next ─► seal packets, then decoys ─► cut into writes ─► socket
//	ReadPacket ◄─ drop decoys ◄─ v2core.Decoder ◄────────────────────────────────────────────────────────────────── socket
//
// The write policy cuts ciphertext, not packets: a packet larger than an
// opportunity (a 4 MB block, say) goes out over as many opportunities as
// it needs, each of exactly its size, so a constant rate stays exact.
//
// The handshake runs on the first read or write, or on HandshakeContext.
// Reads and writes may be called concurrently.
type Conn struct {
	conn     net.Conn // the socket
	wire     *wireConn
	vc       *v2core.Conn // BIP324 over wire
	cfg      *Config
	shape    *Shape
	isClient bool

	// The handshake runs once; hs guards it, and established is set once
	// it has succeeded.
	hs struct {
		sync.Mutex
		done bool
		err  error
	}
	established atomic.Bool
	peerV       []byte

	// The send side. Only run touches sched, rand, wbuf and wpkts.
	q        *queue
	sched    schedule.Schedule
	rand     *mrand.Rand
	wbuf     []byte // sealed ciphertext; wbuf[wstart:] is not yet written
	wstart   int
	wpkts    []sealed // the packets in wbuf[wstart:]
	nextCut  int      // bytes left in the current write piece
	ended    bool     // our last packet is sealed: nothing follows it
	dataSig  chan struct{}
	spaceSig chan struct{}
	recvSig  chan struct{}
	loopDone chan struct{}
	// closing is set by Close: from then on every socket write is
	// bounded by linger, and abort makes the loop stop at once.
	closing atomic.Bool
	abort   atomic.Bool
	closed  atomic.Bool
	linger  time.Duration
	wdl     atomic.Pointer[time.Time] // write deadline for a write blocked on the queue
	wdlSig  chan struct{}
	sendErr atomic.Pointer[error]
	recvd   atomic.Int64 // bytes read from the socket, not yet reported
	// wakeOnRecv is set when the schedule reacts to received bytes; other
	// schedules get them reported at their next wake-up.
	wakeOnRecv atomic.Bool

	closeOnce sync.Once
	closeErr  error

	stats counters
}

// wireConn is the socket as v2core sees it: it counts what crosses it and
// tells the send loop about received bytes once the handshake is done.
type wireConn struct {
	net.Conn
	c *Conn
}

func (w *wireConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if n > 0 {
		c := w.c
		c.stats.wireIn.Add(int64(n))
		if c.established.Load() {
			c.recvd.Add(int64(n))
			if c.wakeOnRecv.Load() {
				signal(c.recvSig)
			}
		}
	}
	return n, err
}

func (w *wireConn) Write(p []byte) (int, error) {
	// Close waits for a peer that takes bytes, however slowly, but not
	// for one that stopped reading. So the socket gets at most
	// maxSocketWrite bytes a call, and while closing each call may stall
	// for linger; one that made progress before its deadline goes on.
	total := 0
	for total < len(p) {
		closing := w.c.closing.Load()
		if closing {
			w.Conn.SetWriteDeadline(time.Now().Add(w.c.linger))
		}
		n, err := w.Conn.Write(p[total:min(len(p), total+maxSocketWrite)])
		w.count(n)
		total += n
		if err == nil {
			continue
		}
		var ne net.Error
		if n == 0 || !closing || !errors.As(err, &ne) || !ne.Timeout() || w.c.abort.Load() {
			return total, err
		}
	}
	return total, nil
}

// maxSocketWrite bounds one write to the socket: a write begun before
// Close must end within Close's linger for a slow but reading peer too.
const maxSocketWrite = 64 << 10

func (w *wireConn) count(n int) {
	w.c.stats.wireOut.Add(int64(n))
	w.c.stats.writes.Add(1)
}

// Client returns a shaped connection that initiates the BIP324 handshake
// over conn. cfg may be nil for the zero Config.
func Client(conn net.Conn, cfg *Config) *Conn { return newConn(conn, cfg, true) }

// Server returns a shaped connection that responds to the handshake.
func Server(conn net.Conn, cfg *Config) *Conn { return newConn(conn, cfg, false) }

func newConn(conn net.Conn, cfg *Config, client bool) *Conn {
	if cfg == nil {
		cfg = &Config{}
	}
	shape := cfg.Shape
	if shape == nil {
		shape = &Shape{}
	}
	c := &Conn{
		conn:     conn,
		cfg:      cfg,
		shape:    shape,
		isClient: client,
		dataSig:  make(chan struct{}, 1),
		spaceSig: make(chan struct{}, 1),
		recvSig:  make(chan struct{}, 1),
		loopDone: make(chan struct{}),
		wdlSig:   make(chan struct{}, 1),
	}
	c.wire = &wireConn{Conn: conn, c: c}
	return c
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.conn }

// Handshake is HandshakeContext with context.Background.
func (c *Conn) Handshake() error { return c.HandshakeContext(context.Background()) }

// HandshakeContext runs the shaped BIP324 handshake if it has not run, and
// starts the send loop. Cancelling ctx interrupts it and leaves the
// connection unusable; so does v2core's handshake timeout (60 s, as
// Bitcoin Core).
func (c *Conn) HandshakeContext(ctx context.Context) error {
	c.hs.Lock()
	defer c.hs.Unlock()
	if c.hs.done {
		return c.hs.err
	}
	c.hs.done = true
	err := c.handshake(ctx)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("shaper: handshake: %w", err)
	}
	if err != nil {
		c.hs.err = err
		// A refused peer's session and a v1 peer's bytes are the
		// caller's to serve; every other failure closes the socket.
		var na *NotAdmittedError
		var v1 *v2core.V1Error
		if !errors.As(err, &na) && !errors.As(err, &v1) {
			c.conn.Close()
		}
		close(c.loopDone)
		return err
	}
	// Bytes that came in the same read as the end of the handshake were
	// counted before established was set: the schedule hears of them
	// now, as of every later read.
	c.recvd.Add(int64(c.vc.Buffered()))
	c.established.Store(true)
	go c.run()
	return nil
}

func (c *Conn) handshake(ctx context.Context) error {
	if err := c.shape.check(); err != nil {
		return err
	}
	c.rand = newRand(c.cfg.Seed)
	h := &hooks{shape: c.shape, cfg: c.cfg, r: c.rand}
	vcfg := &v2core.Config{
		Network:          c.cfg.Network,
		Rand:             c.cfg.Rand,
		Hooks:            h,
		MaxContentLen:    c.cfg.MaxContentLen,
		HandshakeTimeout: c.cfg.HandshakeTimeout,
		KeyPool:          c.cfg.KeyPool,
	}
	if c.isClient {
		c.vc = v2core.Client(c.wire, vcfg)
		// Shape.FirstFlightDelay: wait before the first flight, as
		// Bitcoin Core's initiator does for its socket loop.
		if d := firstFlightDelay(c.shape, c.rand); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
	} else {
		c.vc = v2core.Server(c.wire, vcfg)
	}
	if err := c.vc.HandshakeContext(ctx); err != nil {
		return err
	}
	c.stats.garbage.Store(int64(h.garbage))
	if c.cfg.Admit != nil {
		key, garbage, _ := c.vc.PeerFlight()
		if err := c.cfg.Admit(&key, garbage); err != nil {
			return &NotAdmittedError{Err: err, Conn: c.vc}
		}
	}
	c.peerV = c.vc.PeerVersion()
	return c.startSendSide()
}

// startSendSide settles the send side's Shape (negotiated or not) and
// makes its schedule and queue.
func (c *Conn) startSendSide() error {
	if c.cfg.Negotiate != nil {
		next, seed, err := c.cfg.Negotiate(c.peerV)
		if err != nil {
			return fmt.Errorf("shaper: negotiation: %w", err)
		}
		if next != nil {
			if err := next.check(); err != nil {
				return err
			}
			c.shape = next
		}
		// The negotiated seed fixes every decision from here on; the
		// handshake's were drawn before it was known.
		if seed != ([32]byte{}) {
			c.rand = newRand(seed)
		}
	}
	c.linger = c.shape.Linger
	if c.linger == 0 {
		c.linger = DefaultLinger
	}
	role := schedule.Server
	if c.isClient {
		role = schedule.Client
	}
	if c.shape.Schedule != nil {
		s, err := c.shape.Schedule(role, c.rand)
		if err != nil {
			return fmt.Errorf("shaper: making the schedule: %w", err)
		}
		c.sched = s
	} else {
		c.sched = schedule.NewImmediate()
	}
	if r, ok := c.sched.(interface{ UsesReceived() bool }); ok {
		c.wakeOnRecv.Store(r.UsesReceived())
	}
	qs := c.shape.QueueSize
	if qs == 0 {
		qs = DefaultQueueSize
	}
	c.q = newQueue(qs)
	return nil
}

// writeRaw writes b to the socket, counted (and bounded while closing).
func (c *Conn) writeRaw(b []byte) error {
	_, err := c.wire.Write(b)
	return err
}

// SessionID returns the BIP324 session id once the handshake is done.
func (c *Conn) SessionID() ([32]byte, bool) {
	if !c.established.Load() {
		return [32]byte{}, false
	}
	return c.vc.SessionID()
}

// PeerVersion returns the contents of the peer's version packet once the
// handshake is done.
func (c *Conn) PeerVersion() []byte {
	if !c.established.Load() {
		return nil
	}
	return c.peerV
}

// checkHeader rejects headers longer than a BIP324 message type.
func checkHeader(hdr []byte) error {
	if len(hdr) > maxHeader {
		return fmt.Errorf("shaper: packet header of %d bytes, more than %d", len(hdr), maxHeader)
	}
	return nil
}

// WriteStream queues p as stream bytes: one or more packets, each with
// contents hdr followed by a piece of p, cut to fit the send
// opportunities and Shape.PacketSize, so data goes out as soon as the
// schedule lets any of it. A receiver joins the pieces. It returns once
// all of p is queued, blocking while the queue is full, until the write
// deadline. Errors from the send loop (a failed socket write) are
// returned here.
func (c *Conn) WriteStream(hdr, p []byte) (int, error) {
	if err := checkHeader(hdr); err != nil {
		return 0, err
	}
	n := 0
	err := c.waitRoom(func() (bool, error) {
		k, ok := c.q.pushStream(hdr, p[n:])
		if !ok {
			return false, c.closedErr()
		}
		n += k
		if k > 0 {
			signal(c.dataSig)
		}
		return n == len(p), nil
	})
	return n, err
}

// WritePacket queues one packet whose contents are hdr followed by body:
// a Bitcoin message (hdr its message type, one short-id byte or 0x00 and
// a 12-byte command), or a control record. It is never cut into several
// packets; a packet larger than a send opportunity spans several. It
// blocks while the queue has no room for it (a packet larger than the
// whole queue waits until the queue is empty), until the write deadline.
func (c *Conn) WritePacket(hdr, body []byte) error {
	if err := checkHeader(hdr); err != nil {
		return err
	}
	if len(hdr)+len(body) > v2core.MaxLengthField {
		return fmt.Errorf("shaper: packet contents of %d bytes do not fit BIP324's length field", len(hdr)+len(body))
	}
	return c.waitRoom(func() (bool, error) {
		ok, full := c.q.pushPacket(hdr, body, false)
		if ok {
			signal(c.dataSig)
			return true, nil
		}
		if full {
			return false, nil
		}
		return false, c.closedErr()
	})
}

// End queues our last packet: contents hdr followed by padding up to the
// end of the send opportunity it goes in (its padding counts as decoy
// bytes). Nothing is sent after it, not even a decoy, so a peer that
// reads up to it holds no unread bytes from us. Later writes fail with
// ErrEnded. End returns at once; Close waits for the delivery.
func (c *Conn) End(hdr []byte) error {
	if err := checkHeader(hdr); err != nil {
		return err
	}
	if err := c.Handshake(); err != nil {
		return err
	}
	ok, _ := c.q.pushPacket(hdr, nil, true)
	if !ok {
		return c.closedErr()
	}
	signal(c.dataSig)
	if ep := c.sendErr.Load(); ep != nil {
		return *ep
	}
	return nil
}

// closedErr is the error of a write to a closed queue.
func (c *Conn) closedErr() error {
	if c.closed.Load() {
		return fmt.Errorf("shaper: write: %w", net.ErrClosed)
	}
	return ErrEnded
}

// waitRoom runs the handshake, then push until it reports done or an
// error, waiting for room in the queue between tries, until the write
// deadline.
func (c *Conn) waitRoom(push func() (done bool, err error)) error {
	if err := c.Handshake(); err != nil {
		return err
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if c.closed.Load() {
			return fmt.Errorf("shaper: write: %w", net.ErrClosed)
		}
		if ep := c.sendErr.Load(); ep != nil {
			return *ep
		}
		done, err := push()
		if err != nil || done {
			return err
		}
		var deadline <-chan time.Time
		if d := c.wdl.Load(); d != nil && !d.IsZero() {
			wait := time.Until(*d)
			if wait <= 0 {
				return timeoutError{}
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

// ReadPacket returns the contents of the peer's next packet that is not a
// decoy; decoys are dropped and counted. The slice is valid until the next
// ReadPacket. It returns io.EOF when the connection ends cleanly between
// packets, io.ErrUnexpectedEOF in the middle of one. A read timeout may be
// retried; every other error is final, and a protocol error (a bad tag, a
// length over the limit) closes the socket.
func (c *Conn) ReadPacket() ([]byte, error) {
	if err := c.Handshake(); err != nil {
		return nil, err
	}
	b, err := c.vc.ReadPacket()
	if err == nil {
		c.stats.dataIn.Add(int64(len(b)))
		if c.wakeOnRecv.Load() {
			signal(c.recvSig) // the packet is known now to be data
		}
	}
	return b, err
}

// Close waits until everything queued has gone to the socket (End's last
// packet included, if End was called), and closes the socket. A peer that
// takes bytes at any pace gets them all; only a socket write blocked for
// Shape.Linger (the peer stopped reading) or a failed one cuts delivery
// short, and then Close returns an *UnsentError with the count. With a
// negative Linger it drops the queue and closes at once.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		// A handshake in progress is cut short (closing the socket
		// ends its reads); one that never started now never will.
		if !c.established.Load() {
			c.conn.Close()
		}
		c.hs.Lock()
		if !c.hs.done {
			c.hs.done, c.hs.err = true, fmt.Errorf("shaper: %w", net.ErrClosed)
			close(c.loopDone)
		}
		c.hs.Unlock()
		if !c.established.Load() {
			c.closeErr = c.conn.Close()
			return
		}
		c.q.close()
		c.closing.Store(true)
		if c.shape.Linger < 0 {
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
		// A failed write that lost no body byte (the peer had closed and
		// only our last, empty packet found no reader) is no error:
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

// LocalAddr returns the local address of the socket.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.SetReadDeadline(t)
}

// SetReadDeadline sets the deadline for ReadPacket.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline for writes to queue their bytes. The
// send loop writes to the socket on its own schedule, so the deadline
// bounds how long a write waits for room in the queue, not when the bytes
// reach the wire.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wdl.Store(&t)
	signal(c.wdlSig)
	return nil
}

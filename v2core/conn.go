package v2core

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// readBufferSize is how much one Read of the inner conn takes in.
	readBufferSize = 64 << 10
	// maxStreamPacket is the largest packet contents Write makes: big
	// enough that the 20 bytes of overhead vanish (0.03%), small enough
	// that a reader holds little and a peer with a low limit accepts it.
	maxStreamPacket = 64 << 10
)

// Errors of [Conn]'s send side.
var (
	// ErrHandshakeIncomplete is returned by [Conn.AppendPacket] and
	// [Conn.AppendDecoy] before the handshake has succeeded: there are
	// no keys to seal with yet. Run [Conn.HandshakeContext] first.
	ErrHandshakeIncomplete = errors.New("v2core: the handshake has not completed")
	// ErrPacketTooLong is returned when asked to send packet contents
	// longer than MaxLengthField, which the 3-byte length field cannot
	// express. Nothing was sealed or sent: the connection stays usable.
	ErrPacketTooLong = errors.New("v2core: packet contents longer than the length field holds")
)

// HandshakeTimeoutError is returned by [Conn.HandshakeContext] when the
// handshake did not finish within [Config.HandshakeTimeout]. It is a
// net.Error whose Timeout is true, and it wraps os.ErrDeadlineExceeded.
type HandshakeTimeoutError struct {
	// After is the timeout that passed.
	After time.Duration
}

func (e *HandshakeTimeoutError) Error() string {
	return fmt.Sprintf("v2core: handshake not done within %v", e.After)
}

// Timeout is part of the net.Error interface; it is always true.
func (e *HandshakeTimeoutError) Timeout() bool { return true }

// Temporary is part of the net.Error interface; it is always true.
func (e *HandshakeTimeoutError) Temporary() bool { return true }

// Unwrap returns os.ErrDeadlineExceeded, as for a deadline set by hand.
func (e *HandshakeTimeoutError) Unwrap() error { return os.ErrDeadlineExceeded }

// Stats is a snapshot of a [Conn]'s counters. Each counter is read
// atomically, but the snapshot as a whole is not taken at one instant
// while Read or Write run.
type Stats struct {
	// PacketsIn counts the packets received and authenticated, the
	// peer's handshake decoys and version packet included; DecoysIn
	// counts the decoys among them.
	PacketsIn, DecoysIn uint64
	// PacketsOut counts the packets sealed, our handshake decoys and
	// version packet included, whether Conn wrote them or handed them
	// out through [Conn.AppendPacket] and [Conn.AppendDecoy]; DecoysOut
	// counts the decoys among them.
	PacketsOut, DecoysOut uint64
	// BytesIn counts the bytes read from the inner conn, handshake
	// included.
	BytesIn uint64
	// BytesOut counts the bytes Conn wrote to the inner conn (handshake,
	// Write, WritePacket, WriteDecoy) plus those it handed out through
	// AppendPacket and AppendDecoy, which the owner writes itself.
	BytesOut uint64
}

// Conn is a plain, unshaped BIP324 connection over a net.Conn, in the shape
// of crypto/tls.Conn. Its Read and Write carry a byte stream: each Write
// becomes one or more packets whose contents are the written bytes, and Read
// returns the contents of the peer's packets in order, with decoys dropped.
// To speak to Bitcoin nodes, which expect a message in each packet, use
// [Conn.WritePacket] and [Conn.ReadPacket] with [AppendMessage] and
// [ParseContents] instead. An owner that times its own writes, as a
// traffic shaper does, seals with [Conn.AppendPacket] and
// [Conn.AppendDecoy] and writes the result to [Conn.NetConn] itself.
//
// The handshake runs on the first Read or Write, or on
// [Conn.HandshakeContext], and is bounded by [Config.HandshakeTimeout].
// Read and Write may run concurrently with each other; Stats is safe for
// concurrent use with everything. A protocol error from the peer (a bad
// tag, a length over the limit, a missing terminator) closes the inner
// connection and is returned by every later call in that direction.
type Conn struct {
	conn     net.Conn
	cfg      *Config
	isClient bool

	once     handshakeOnce
	hs       *Handshake
	sess     *Session
	peerVers []byte
	// The peer's key and garbage, kept for the owner (PeerFlight).
	peerKey     [EllswiftKeySize]byte
	peerGarbage []byte

	in struct {
		sync.Mutex
		r     *reader
		plain []byte // contents of the current packet not yet returned by Read
	}
	out struct {
		sync.Mutex
		buf []byte
		err error
	}
	stats struct {
		packetsIn, decoysIn, packetsOut, decoysOut, bytesIn, bytesOut atomic.Uint64
	}
}

var _ net.Conn = (*Conn)(nil)

// Client returns a BIP324 connection that initiates the handshake over
// conn. cfg may be nil. The handshake has not run yet.
func Client(conn net.Conn, cfg *Config) *Conn {
	return &Conn{conn: conn, cfg: cfg, isClient: true}
}

// Server returns a BIP324 connection that responds to the handshake over
// conn. If the peer opens with the v1 prefix of cfg's network, the
// handshake fails with a [*V1Error] that holds the bytes read.
func Server(conn net.Conn, cfg *Config) *Conn {
	return &Conn{conn: conn, cfg: cfg}
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.conn }

// Handshake runs the handshake if it has not run yet. It is
// HandshakeContext with context.Background.
func (c *Conn) Handshake() error { return c.HandshakeContext(context.Background()) }

// HandshakeContext runs the handshake if it has not run yet, and returns its
// result. It gives up after [Config.HandshakeTimeout] (60 s by default)
// with a [*HandshakeTimeoutError]. Cancelling ctx or passing its deadline
// interrupts the handshake too, with ctx's cause. Either way the inner
// conn's deadline is then set in the past and the inner conn closed.
// Deadlines already set on the inner conn apply too, and a handshake that
// finishes in time leaves them as they were.
func (c *Conn) HandshakeContext(ctx context.Context) error {
	return c.once.Do(func() error {
		// The timeout goes through ctx, so interruptible touches the
		// inner conn's deadline only when it passes, and then the conn
		// is closed. Setting it up front and clearing it afterwards
		// would wipe a deadline the caller had set on the inner conn,
		// which net.Conn gives no way to read back.
		if d := c.handshakeTimeout(); d > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeoutCause(ctx, d, &HandshakeTimeoutError{After: d})
			defer cancel()
		}
		err := interruptible(ctx, c.conn, c.handshake)
		var v1 *V1Error
		if err != nil && !errors.As(err, &v1) {
			c.conn.Close()
		}
		return err
	})
}

func (c *Conn) handshakeTimeout() time.Duration {
	if c.cfg == nil || c.cfg.HandshakeTimeout == 0 {
		return DefaultHandshakeTimeout
	}
	return c.cfg.HandshakeTimeout
}

func (c *Conn) handshake() error {
	var err error
	if c.isClient {
		c.hs, err = NewInitiator(c.cfg)
	} else {
		c.hs, err = NewResponder(c.cfg)
	}
	if err != nil {
		return err
	}
	c.in.Lock()
	defer c.in.Unlock()
	c.in.r = newReader(c.conn, readBufferSize)
	c.in.r.OnRead = func(n int) { c.stats.bytesIn.Add(uint64(n)) }
	err = c.in.r.Handshake(c.hs, c.writeFlight)
	if err != nil {
		return err
	}
	c.sess = c.hs.Session()
	c.peerVers = c.hs.PeerVersion()
	c.peerKey, _ = c.hs.PeerKey()
	c.peerGarbage = c.hs.PeerGarbage()
	c.hs = nil
	c.countIn()
	c.countOut(0)
	return nil
}

// writeFlight writes a batch of handshake output: the first one in two
// writes when the hooks ask for it ([FirstWriteHook]), later ones whole.
func (c *Conn) writeFlight(out []byte, first bool) error {
	if first && c.cfg != nil {
		if h, ok := c.cfg.Hooks.(FirstWriteHook); ok {
			if n := h.FirstWriteSize(); n >= EllswiftKeySize && n < len(out) {
				if err := c.writeRaw(out[:n]); err != nil {
					return err
				}
				out = out[n:]
			}
		}
	}
	return c.writeRaw(out)
}

// writeRaw writes b to the inner conn and counts what went out.
func (c *Conn) writeRaw(b []byte) error {
	n, err := c.conn.Write(b)
	c.stats.bytesOut.Add(uint64(n))
	return err
}

// countIn copies the decoder's counters into the atomic ones. The caller
// holds c.in or runs the handshake.
func (c *Conn) countIn() {
	c.stats.packetsIn.Store(c.sess.dec.packets)
	c.stats.decoysIn.Store(c.sess.dec.decoys)
}

// countOut copies the session's send counters into the atomic ones and
// adds n bytes handed out. The caller holds c.out or runs the handshake.
func (c *Conn) countOut(n int) {
	c.stats.packetsOut.Store(c.sess.sent)
	c.stats.decoysOut.Store(c.sess.sentDecoys)
	c.stats.bytesOut.Add(uint64(n))
}

// SessionID returns the BIP324 session id once the handshake is done, and
// false before. Both ends compute the same id; compared out of band, it
// shows that no machine in the middle terminated the connection.
func (c *Conn) SessionID() ([32]byte, bool) {
	if !c.once.Succeeded() {
		return [32]byte{}, false
	}
	return c.sess.ID(), true
}

// Buffered returns how many bytes Conn has read from the inner conn and
// not yet decoded: after the handshake, what arrived in the same read as
// its end. A shaper tells its schedule about them, as it does about
// every byte it reads afterwards.
func (c *Conn) Buffered() int {
	c.in.Lock()
	defer c.in.Unlock()
	if c.in.r == nil {
		return 0
	}
	return c.in.r.end - c.in.r.start
}

// PeerFlight returns the peer's key and garbage once the handshake is
// done (ok false before): what a bridge checks its client's
// authentication in. The garbage is at most MaxGarbageLen bytes.
func (c *Conn) PeerFlight() (key [EllswiftKeySize]byte, garbage []byte, ok bool) {
	if !c.once.Succeeded() {
		return key, nil, false
	}
	return c.peerKey, c.peerGarbage, true
}

// PeerVersion returns the contents of the peer's version packet once the
// handshake is done: empty from a plain BIP324 peer, nil before the
// handshake and when the contents were longer than [MaxPeerVersionLen].
func (c *Conn) PeerVersion() []byte {
	if !c.once.Succeeded() {
		return nil
	}
	return c.peerVers
}

// Stats returns a snapshot of the connection's counters. Safe for
// concurrent use, at any time; before the handshake the counters are zero
// or count its bytes only.
func (c *Conn) Stats() Stats {
	return Stats{
		PacketsIn:  c.stats.packetsIn.Load(),
		DecoysIn:   c.stats.decoysIn.Load(),
		PacketsOut: c.stats.packetsOut.Load(),
		DecoysOut:  c.stats.decoysOut.Load(),
		BytesIn:    c.stats.bytesIn.Load(),
		BytesOut:   c.stats.bytesOut.Load(),
	}
}

// nextPacketLocked returns the next packet that is not a decoy. A
// protocol error closes the inner connection.
func (c *Conn) nextPacketLocked() ([]byte, error) {
	for {
		pkt, err := c.in.r.Next()
		c.countIn()
		if err != nil {
			if isProtocolError(err) {
				c.conn.Close()
			}
			return nil, err
		}
		if !pkt.Ignore {
			return pkt.Contents, nil
		}
	}
}

// Read reads the contents of the peer's packets as a byte stream.
// Decoys are dropped. A read timeout can be retried; every other error is
// final. Part of the net.Conn interface.
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
		b, err := c.nextPacketLocked()
		if err != nil {
			return 0, err
		}
		c.in.plain = b
	}
	n := copy(p, c.in.plain)
	c.in.plain = c.in.plain[n:]
	return n, nil
}

// ReadPacket returns the contents of the peer's next packet that is not a
// decoy. The slice is valid until the next read. Do not mix ReadPacket with
// Read on one Conn.
//
// A read timeout may be retried, even in the middle of a packet. The
// peer's close between packets is io.EOF, within a packet
// io.ErrUnexpectedEOF. A protocol error (a bad tag, a length over the
// limit) closes the inner conn. Every error but a timeout is final.
func (c *Conn) ReadPacket() ([]byte, error) {
	if err := c.Handshake(); err != nil {
		return nil, err
	}
	c.in.Lock()
	defer c.in.Unlock()
	return c.nextPacketLocked()
}

// Write sends p as one or more packets. A write error, a timeout included,
// may leave part of a packet on the wire, so it is final for the write
// side. Part of the net.Conn interface.
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		return 0, err
	}
	c.out.Lock()
	defer c.out.Unlock()
	n := 0
	for n < len(p) {
		chunk := p[n:min(len(p), n+maxStreamPacket)]
		if err := c.writePacketLocked(chunk, false, 0); err != nil {
			return n, err
		}
		n += len(chunk)
	}
	return n, nil
}

// WritePacket sends contents as one packet. Contents longer than
// MaxLengthField fail with [ErrPacketTooLong], which leaves the connection
// usable; a write error is final, as for Write.
func (c *Conn) WritePacket(contents []byte) error {
	if err := c.Handshake(); err != nil {
		return err
	}
	if err := checkContentsLen(len(contents)); err != nil {
		return err
	}
	c.out.Lock()
	defer c.out.Unlock()
	return c.writePacketLocked(contents, false, 0)
}

// WriteDecoy sends a decoy packet with n bytes of contents. Errors are as
// for WritePacket.
func (c *Conn) WriteDecoy(n int) error {
	if err := c.Handshake(); err != nil {
		return err
	}
	if err := checkContentsLen(n); err != nil {
		return err
	}
	c.out.Lock()
	defer c.out.Unlock()
	return c.writePacketLocked(nil, true, n)
}

func (c *Conn) writePacketLocked(contents []byte, decoy bool, n int) error {
	if c.out.err != nil {
		return c.out.err
	}
	if decoy {
		c.out.buf = c.sess.AppendDecoy(c.out.buf[:0], n)
	} else {
		if contents == nil {
			contents = []byte{}
		}
		c.out.buf = c.sess.Seal(c.out.buf[:0], contents, false)
	}
	c.countOut(0)
	if err := c.writeRaw(c.out.buf); err != nil {
		c.out.err = err
		return err
	}
	return nil
}

// AppendPacket seals one packet whose contents are parts joined, appends
// it to dst and returns the extended slice. It writes nothing: the owner
// writes the packet to [Conn.NetConn] itself, cut into writes and timed as
// it likes. It allocates only when dst lacks room for
// [SealedLen] of the contents.
//
// It fails with [ErrHandshakeIncomplete] before the handshake has
// succeeded (or with the handshake's error after it failed), and with
// [ErrPacketTooLong] when the contents exceed MaxLengthField; dst is then
// returned as it was and the connection stays usable.
//
// It takes the send lock, so it is safe to call concurrently with Read and
// with itself, but packets must reach the wire in the order they were
// sealed, each one whole: the peer can open a packet only after every
// packet sealed before it.
//
// NOTE: Do not mix AppendPacket or AppendDecoy with Write, WritePacket or
// WriteDecoy on one Conn: their packets would interleave with the owner's
// on the wire in another order than they were sealed.
func (c *Conn) AppendPacket(dst []byte, parts ...[]byte) ([]byte, error) {
	if err := c.established(); err != nil {
		return dst, err
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if err := checkContentsLen(n); err != nil {
		return dst, err
	}
	c.out.Lock()
	defer c.out.Unlock()
	before := len(dst)
	dst = c.sess.SealParts(dst, false, parts...)
	c.countOut(len(dst) - before)
	return dst, nil
}

// AppendDecoy is [Conn.AppendPacket] for a decoy with n bytes of contents,
// which the peer authenticates and drops.
func (c *Conn) AppendDecoy(dst []byte, n int) ([]byte, error) {
	if err := c.established(); err != nil {
		return dst, err
	}
	if err := checkContentsLen(n); err != nil {
		return dst, err
	}
	c.out.Lock()
	defer c.out.Unlock()
	before := len(dst)
	dst = c.sess.AppendDecoy(dst, n)
	c.countOut(len(dst) - before)
	return dst, nil
}

// established returns nil once the handshake has succeeded, its error if
// it failed, and ErrHandshakeIncomplete before it ended.
func (c *Conn) established() error {
	if !c.once.done.Load() {
		return ErrHandshakeIncomplete
	}
	return c.once.err
}

// checkContentsLen checks that n bytes of contents fit a packet.
func checkContentsLen(n int) error {
	if n < 0 {
		return fmt.Errorf("v2core: packet contents of %d bytes", n)
	}
	if n > MaxLengthField {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrPacketTooLong, n, MaxLengthField)
	}
	return nil
}

// Close closes the inner connection. Part of the net.Conn interface.
func (c *Conn) Close() error {
	return c.conn.Close()
}

// LocalAddr is part of the net.Conn interface.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr is part of the net.Conn interface.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets both deadlines on the inner conn. Part of the net.Conn
// interface.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline is part of the net.Conn interface. A read that times out
// may be retried.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline is part of the net.Conn interface. A write that times out
// may have sent part of a packet, so after it every Write fails.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

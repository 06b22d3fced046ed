package v2core

import (
	"context"
	"errors"
	"net"
	"sync"
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

// Conn is a plain, unshaped BIP324 connection over a net.Conn, in the shape
// of crypto/tls.Conn. Its Read and Write carry a byte stream: each Write
// becomes one or more packets whose contents are the written bytes, and Read
// returns the contents of the peer's packets in order, with decoys dropped.
// To speak to Bitcoin nodes, which expect a message in each packet, use
// [Conn.WritePacket] and [Conn.ReadPacket] with [AppendMessage] and
// [ParseContents] instead.
//
// The handshake runs on the first Read or Write, or on
// [Conn.HandshakeContext]. Read and Write may run concurrently with each
// other. A protocol error from the peer (a bad tag, a length over the limit,
// a missing terminator) closes the inner connection and is returned by every
// later call in that direction.
type Conn struct {
	conn     net.Conn
	cfg      *Config
	isClient bool

	once     HandshakeOnce
	hs       *Handshake
	sess     *Session
	peerVers []byte

	in struct {
		sync.Mutex
		r     *Reader
		plain []byte // contents of the current packet not yet returned by Read
	}
	out struct {
		sync.Mutex
		buf []byte
		err error
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
// result. Cancelling ctx or passing its deadline interrupts the handshake
// and leaves the connection unusable. Deadlines already set on the inner
// conn apply too.
func (c *Conn) HandshakeContext(ctx context.Context) error {
	return c.once.Do(func() error {
		err := Interruptible(ctx, c.conn, c.handshake)
		var v1 *V1Error
		if err != nil && !errors.As(err, &v1) {
			c.conn.Close()
		}
		return err
	})
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
	c.in.r = NewReader(c.conn, readBufferSize)
	err = c.in.r.Handshake(c.hs, func(out []byte, _ bool) error {
		_, err := c.conn.Write(out)
		return err
	})
	if err != nil {
		return err
	}
	c.sess = c.hs.Session()
	c.peerVers = c.hs.PeerVersion()
	c.hs = nil
	return nil
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

// PeerVersion returns the contents of the peer's version packet once the
// handshake is done.
func (c *Conn) PeerVersion() []byte {
	if !c.once.Succeeded() {
		return nil
	}
	return c.peerVers
}

// Session returns the established session, or nil before the handshake.
// Use it to read counters; sealing through it bypasses the Conn's locks.
func (c *Conn) Session() *Session {
	if !c.once.Succeeded() {
		return nil
	}
	return c.sess
}

// nextPacketLocked returns the next packet that is not a decoy. A
// protocol error closes the inner connection.
func (c *Conn) nextPacketLocked() ([]byte, error) {
	for {
		pkt, err := c.in.r.Next()
		if err != nil {
			if IsProtocolError(err) {
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

// WritePacket sends contents as one packet.
func (c *Conn) WritePacket(contents []byte) error {
	if err := c.Handshake(); err != nil {
		return err
	}
	c.out.Lock()
	defer c.out.Unlock()
	return c.writePacketLocked(contents, false, 0)
}

// WriteDecoy sends a decoy packet with n bytes of contents.
func (c *Conn) WriteDecoy(n int) error {
	if err := c.Handshake(); err != nil {
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
	if _, err := c.conn.Write(c.out.buf); err != nil {
		c.out.err = err
		return err
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

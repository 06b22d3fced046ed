package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/bip324pt/bip324-pt/internal/stats"
	"github.com/bip324pt/bip324-pt/shaper"
)

// Record types: the first contents byte of every packet between a client
// and its bridge that is not a decoy. BIP324 calls it the message-type
// byte; these are short ids no BIP assigns (1-28 are the BIP's own, 29-37
// proposed, see v2core/testdata/message_type_ids.md), so a Bitcoin node
// that ever saw such a packet would take it for an unknown message and
// ignore it.
const (
	// recordStream carries stream bytes: everything after the record
	// byte.
	recordStream = 0xff
	// recordEnd ends the sender's stream, as a TCP FIN does: the
	// receiver's Read returns io.EOF after the bytes before it. What
	// follows the record byte is padding, ignored. Nothing follows it on
	// the wire, not even a decoy, so when both ends have ended their
	// streams neither holds unread bytes and both closes are FINs.
	recordEnd = 0xfe
	// recordApplied tells a client that asked for a profile which one
	// shapes the bridge's direction: "profile=NAME" after the record
	// byte. It is the bridge's first packet after the handshake, sent
	// only to a client that asked.
	recordApplied = 0xfd
)

// streamHeader is the header of every stream packet.
var streamHeader = []byte{recordStream}

// ErrTruncated is returned by Read when the connection ends without the
// peer's end-of-stream record: the peer's stream was cut short (a reset,
// a crash, or a machine in the middle), not ended. It wraps
// io.ErrUnexpectedEOF.
var ErrTruncated = fmt.Errorf("bridge: the peer's stream ended without its end-of-stream record: %w", io.ErrUnexpectedEOF)

// ErrNotServed is wrapped by a client's Read error when the bridge ended
// the connection without ever sending a record: it completed the BIP324
// handshake, as a Bitcoin node does with anyone, but did not take us for
// its client.
var ErrNotServed = errors.New("bridge: the bridge completed the handshake but never served us, then closed (it answers everyone as a Bitcoin node would); a wrong secret= is the usual cause")

// ErrUnknownRecord is returned by Read when the peer sends a record type
// this version does not know.
var ErrUnknownRecord = errors.New("bridge: unknown record type from the peer")

// ErrWriteClosed is returned by Write after CloseWrite.
var ErrWriteClosed = fmt.Errorf("bridge: write after CloseWrite: %w", net.ErrClosed)

// Conn is a byte stream over a shaped connection, in the bridge's
// framing: stream records, an end-of-stream record for each direction's
// half-close, and control records. It is the net.Conn a bridge and its
// client hand to the applications at each end. Read and Write may be
// called concurrently.
type Conn struct {
	*shaper.Conn
	onControl func(rec byte, body []byte) error
	// client is set on a client's stream: a bridge that never sends a
	// record and then closes most likely did not take us for its client.
	client bool
	// onClosed, if set, gets the connection's stats once, after its
	// first Close.
	onClosed  func(shaper.Stats)
	closeOnce sync.Once

	endOnce sync.Once

	in struct {
		sync.Mutex
		plain []byte // stream bytes of the current packet not yet read
		eof   bool   // the peer's end-of-stream record came
		err   error
		any   bool // a record came
	}
}

var _ net.Conn = (*Conn)(nil)

// NewConn returns the stream over sc. onControl, if not nil, receives the
// peer's control records (types other than stream and end-of-stream);
// without it they are an error.
func NewConn(sc *shaper.Conn, onControl func(rec byte, body []byte) error) *Conn {
	return &Conn{Conn: sc, onControl: onControl}
}

// newClientConn is NewConn for a bridge's client.
func newClientConn(sc *shaper.Conn, onControl func(rec byte, body []byte) error) *Conn {
	c := NewConn(sc, onControl)
	c.client = true
	return c
}

// Shaper returns the shaped connection under the stream.
func (c *Conn) Shaper() *shaper.Conn { return c.Conn }

// Write queues p as stream bytes; they go out at the schedule's pace.
// Part of the net.Conn interface.
func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.Conn.WriteStream(streamHeader, p)
	if errors.Is(err, shaper.ErrEnded) {
		err = ErrWriteClosed
	}
	return n, err
}

// CloseWrite ends our direction, as a TCP half-close does: what Write has
// queued goes out at the schedule's pace, then the end-of-stream record,
// after which the peer's Read returns io.EOF. Read goes on until the peer
// ends its own stream. CloseWrite returns at once; Close waits for the
// delivery.
func (c *Conn) CloseWrite() error {
	var err error
	c.endOnce.Do(func() {
		err = c.Conn.End([]byte{recordEnd})
	})
	return err
}

// Close ends our stream if CloseWrite has not, waits until everything
// queued has reached the socket, and closes it (see shaper.Conn.Close:
// only a peer that stopped reading cuts delivery short, and then Close
// returns a *shaper.UnsentError). Part of the net.Conn interface.
func (c *Conn) Close() error {
	c.CloseWrite()
	err := c.Conn.Close()
	if c.onClosed != nil {
		c.closeOnce.Do(func() { c.onClosed(c.Conn.Stats()) })
	}
	return err
}

// countOn makes c report to counters when it closes.
func (c *Conn) countOn(counters *stats.Counters) {
	if counters == nil {
		return
	}
	c.onClosed = func(st shaper.Stats) {
		counters.Add(stats.Traffic{DataOut: st.DataOut, DataIn: st.DataIn, WireOut: st.WireOut, WireIn: st.WireIn,
			DecoyOut: st.DecoyOut, DecoysIn: st.DecoysIn, Dropped: st.Dropped})
		counters.Closed()
	}
}

// SendControl queues a control record of type rec after the stream bytes
// written so far.
func (c *Conn) SendControl(rec byte, body []byte) error {
	if rec == recordStream || rec == recordEnd {
		return fmt.Errorf("bridge: record type %#x is not a control record", rec)
	}
	return c.Conn.WritePacket([]byte{rec}, body)
}

// Read returns stream bytes from the peer's records. It returns io.EOF
// once the peer has ended its stream (CloseWrite or Close), and
// ErrTruncated when the connection ends without that. A read timeout may
// be retried; every other error is final. Part of the net.Conn interface.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.in.Lock()
	defer c.in.Unlock()
	for len(c.in.plain) == 0 {
		if c.in.eof {
			return 0, io.EOF
		}
		if c.in.err != nil {
			return 0, c.in.err
		}
		if err := c.nextRecordLocked(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.in.plain)
	c.in.plain = c.in.plain[n:]
	return n, nil
}

// nextRecordLocked reads one record from the peer.
func (c *Conn) nextRecordLocked() error {
	contents, err := c.Conn.ReadPacket()
	if err != nil {
		if err == io.EOF {
			// A clean end of the socket, but not of the stream.
			err = ErrTruncated
		}
		if c.client && !c.in.any && !isTimeout(err) {
			err = fmt.Errorf("%w: %w", ErrNotServed, err)
		}
		if !isTimeout(err) {
			c.in.err = err
		}
		return err
	}
	c.in.any = true
	if len(contents) == 0 {
		return nil
	}
	switch rec, body := contents[0], contents[1:]; {
	case rec == recordStream:
		c.in.plain = body
	case rec == recordEnd:
		c.in.eof = true
	case c.onControl != nil:
		if err := c.onControl(rec, body); err != nil {
			return c.failLocked(err)
		}
	default:
		return c.failLocked(ErrUnknownRecord)
	}
	return nil
}

// failLocked makes err final for Read and closes the socket.
func (c *Conn) failLocked(err error) error {
	c.in.err = err
	c.Conn.NetConn().Close()
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// HandshakeContext runs the shaped handshake; see shaper.Conn.
func (c *Conn) HandshakeContext(ctx context.Context) error { return c.Conn.HandshakeContext(ctx) }

// SetDeadline sets the read and write deadlines. Part of the net.Conn
// interface.
func (c *Conn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(t) }

package node

import (
	"errors"
	"net"

	"github.com/bip324pt/bip324-pt/v2core"
)

// MessageConn reads and writes Bitcoin P2P messages over one transport,
// v2 ([V2Conn]) or v1 ([V1Conn]). ReadMessage and WriteMessage may run
// concurrently with each other, but neither with itself.
type MessageConn interface {
	// ReadMessage returns the next message. The payload is valid until
	// the next call. A [*DroppedMessageError] concerns one message alone:
	// call again for the next. A read timeout may be retried; any other
	// error is final.
	ReadMessage() (command string, payload []byte, err error)
	// WriteMessage sends one message. Every error is final.
	WriteMessage(command string, payload []byte) error
	// Close closes the underlying connection.
	Close() error
}

// DroppedMessageError wraps an error that concerns one received message
// alone: a bad checksum, an invalid or unknown message type. The message
// was dropped and the connection is intact, as Bitcoin Core drops such a
// message and keeps the peer.
type DroppedMessageError struct {
	Err error
}

func (e *DroppedMessageError) Error() string { return "node: message dropped: " + e.Err.Error() }

func (e *DroppedMessageError) Unwrap() error { return e.Err }

// V2Conn carries messages in BIP324 packets over a [v2core.Conn], each
// packet's contents an encoded message type and a payload.
type V2Conn struct {
	conn *v2core.Conn
	wbuf []byte
}

var _ MessageConn = (*V2Conn)(nil)

// NewV2Conn returns a MessageConn over c. The handshake runs on first use
// if it has not run yet.
func NewV2Conn(c *v2core.Conn) *V2Conn { return &V2Conn{conn: c} }

// Conn returns the underlying v2 connection.
func (c *V2Conn) Conn() *v2core.Conn { return c.conn }

// ReadMessage is part of the MessageConn interface. Decoys are skipped.
func (c *V2Conn) ReadMessage() (string, []byte, error) { return parsePacket(c.conn.ReadPacket()) }

// parsePacket reads a v2 packet's contents as a message: a read error is
// final, contents that do not parse are one dropped message.
func parsePacket(pkt []byte, err error) (string, []byte, error) {
	if err != nil {
		return "", nil, err
	}
	cmd, payload, err := v2core.ParseContents(pkt)
	if err != nil {
		return "", nil, &DroppedMessageError{Err: err}
	}
	return cmd, payload, nil
}

// WriteMessage is part of the MessageConn interface.
func (c *V2Conn) WriteMessage(command string, payload []byte) error {
	b, err := v2core.AppendMessage(c.wbuf[:0], command, payload)
	if err != nil {
		return err
	}
	c.wbuf = b
	return c.conn.WritePacket(b)
}

// Close is part of the MessageConn interface.
func (c *V2Conn) Close() error { return c.conn.Close() }

// v1ReadBufferSize is how much one Read of a v1 connection takes in.
const v1ReadBufferSize = 64 << 10

// V1Conn carries messages in the v1 framing (24-byte header with magic and
// checksum) over a net.Conn.
type V1Conn struct {
	conn    net.Conn
	network v2core.Network

	// Read side.
	dec        v2core.V1Decoder
	rbuf       []byte
	start, end int
	rerr       error

	// Write side.
	wbuf []byte
}

var _ MessageConn = (*V1Conn)(nil)

// NewV1Conn returns a MessageConn for network over conn. readAhead holds
// bytes already read from conn (the 16-byte prefix of a [*v2core.V1Error],
// say); they are decoded first. A zero network means Mainnet.
func NewV1Conn(conn net.Conn, network v2core.Network, readAhead []byte) *V1Conn {
	if network == 0 {
		network = v2core.Mainnet
	}
	c := &V1Conn{conn: conn, network: network}
	c.dec.Network = network
	c.rbuf = make([]byte, max(v1ReadBufferSize, len(readAhead)))
	c.end = copy(c.rbuf, readAhead)
	return c
}

// ReadMessage is part of the MessageConn interface.
func (c *V1Conn) ReadMessage() (string, []byte, error) {
	for {
		if c.rerr != nil {
			return "", nil, c.rerr
		}
		if c.start < c.end {
			msg, n, err := c.dec.Decode(c.rbuf[c.start:c.end])
			c.start += n
			var ice *v2core.InvalidCommandError
			switch {
			case err == nil:
			case errors.Is(err, v2core.ErrV1Checksum), errors.As(err, &ice):
				return "", nil, &DroppedMessageError{Err: err}
			default:
				c.rerr = err
				return "", nil, err
			}
			if msg != nil {
				return msg.Command, msg.Payload, nil
			}
			continue
		}
		n, err := c.conn.Read(c.rbuf)
		c.start, c.end = 0, n
		if n > 0 || err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return "", nil, err
		}
		c.rerr = err
	}
}

// WriteMessage is part of the MessageConn interface.
func (c *V1Conn) WriteMessage(command string, payload []byte) error {
	b, err := v2core.AppendV1Message(c.wbuf[:0], c.network, command, payload)
	if err != nil {
		return err
	}
	c.wbuf = b
	_, err = c.conn.Write(b)
	return err
}

// Close is part of the MessageConn interface.
func (c *V1Conn) Close() error { return c.conn.Close() }

package node

import (
	"github.com/bip324pt/bip324-pt/shaper"
	"github.com/bip324pt/bip324-pt/v2core"
)

// ShapedConn carries messages in BIP324 packets over a [shaper.Conn]:
// each message one packet, written whole and sent when the conn's
// schedule lets it, decoys and padding around it as its profile says.
// The peer sees an ordinary v2 connection.
type ShapedConn struct {
	conn *shaper.Conn
	hdr  []byte
}

var _ MessageConn = (*ShapedConn)(nil)

// NewShapedConn returns a MessageConn over c. The handshake runs on first
// use if it has not run yet.
func NewShapedConn(c *shaper.Conn) *ShapedConn { return &ShapedConn{conn: c} }

// Conn returns the underlying shaped connection.
func (c *ShapedConn) Conn() *shaper.Conn { return c.conn }

// ReadMessage is part of the MessageConn interface. Decoys are skipped.
func (c *ShapedConn) ReadMessage() (string, []byte, error) { return parsePacket(c.conn.ReadPacket()) }

// WriteMessage is part of the MessageConn interface. The payload is
// copied into the send queue; a message larger than the queue waits for
// it to empty.
func (c *ShapedConn) WriteMessage(command string, payload []byte) error {
	hdr, err := v2core.AppendMessage(c.hdr[:0], command, nil)
	if err != nil {
		return err
	}
	c.hdr = hdr
	return c.conn.WritePacket(hdr, payload)
}

// Close is part of the MessageConn interface: it delivers what is queued
// (see [shaper.Conn.Close]) and closes the connection.
func (c *ShapedConn) Close() error { return c.conn.Close() }

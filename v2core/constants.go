package v2core

import "time"

// Sizes fixed by BIP324.
const (
	// EllswiftKeySize is the size of an ElligatorSwift-encoded public key.
	EllswiftKeySize = 64
	// GarbageTerminatorSize is the size of a garbage terminator.
	GarbageTerminatorSize = 16
	// MaxGarbageLen is the most garbage a party may send after its key.
	MaxGarbageLen = 4095
	// LengthFieldSize is the size of a packet's encrypted length field.
	LengthFieldSize = 3
	// HeaderSize is the size of the packet header byte (the ignore bit).
	HeaderSize = 1
	// TagSize is the size of the Poly1305 tag that ends every packet.
	TagSize = 16
	// PacketOverhead is what a packet adds to its contents on the wire.
	PacketOverhead = LengthFieldSize + HeaderSize + TagSize
	// MaxLengthField is the largest contents length the 3-byte field holds.
	MaxLengthField = 1<<24 - 1
	// V1PrefixSize is how many bytes a responder compares against the v1
	// prefix (magic + "version" + 5 NULs) before it commits to v2.
	V1PrefixSize = 16
	// RekeyInterval is the number of messages after which both the length
	// cipher and the packet cipher move to a new key.
	RekeyInterval = 224

	ignoreBit = 0x80
)

// Limits that follow Bitcoin Core rather than the BIP.
const (
	// DefaultMaxContentLen is the largest packet contents accepted by
	// default: 1 + 12 + 4,000,000 bytes, Bitcoin Core's MAX_CONTENTS_LEN
	// (a long message type and the largest protocol message). A decrypted
	// length above the limit fails before any allocation.
	DefaultMaxContentLen = 1 + 12 + 4_000_000
	// maxScanLen is how many bytes after the key the terminator search
	// reads before it gives up: all the garbage a peer may send plus the
	// terminator. Bitcoin Core disconnects at exactly this count.
	maxScanLen = MaxGarbageLen + GarbageTerminatorSize
	// DefaultHandshakeTimeout is how long [Conn] gives a handshake, from
	// its start to the peer's version packet: Bitcoin Core disconnects a
	// peer whose v2 handshake has not finished 60 s after connecting.
	DefaultHandshakeTimeout = 60 * time.Second
)

// Limits of our own.
const (
	// MaxPeerVersionLen is the most of the peer's version packet contents
	// kept for [Conn.PeerVersion] and [Handshake.PeerVersion]. BIP324
	// peers send them empty and Bitcoin Core ignores them; longer
	// contents are authenticated and then dropped, so that a peer cannot
	// make us hold megabytes for the connection's life.
	MaxPeerVersionLen = 4096
	// maxRetainedBuffer is the largest receive buffer a [Decoder] keeps
	// after the packet that needed it: four times a full-sized stream
	// packet, a fifteenth of the largest Bitcoin message.
	maxRetainedBuffer = 256 << 10
)

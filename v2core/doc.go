// Package v2core implements BIP324, the version 2 encrypted transport of
// the Bitcoin P2P protocol (bips/bip-0324.mediawiki, version 1.0.2), with
// hooks for the parts the BIP leaves free, and nothing else.
//
// # Layers
//
// At its heart the package is sans-io: [Handshake] is a state machine that
// consumes the peer's bytes ([Handshake.Feed]) and hands out bytes to send
// ([Handshake.Output]); [Session] seals packets into a caller's buffer
// ([Session.Seal], [Session.AppendDecoy]) and its [Decoder] opens them from
// chunks of any size. None of them reads a clock, starts a goroutine or
// touches a socket, so the owner of the socket decides how ciphertext is
// cut into writes and when each write goes out.
//
// On top sits [Conn], a net.Conn in the shape of crypto/tls.Conn
// ([Client], [Server], [Conn.HandshakeContext]). It serves three kinds of
// user:
//
//   - a byte stream, unshaped: [Conn.Read] and [Conn.Write];
//   - Bitcoin messages, one per packet: [Conn.ReadPacket] and
//     [Conn.WritePacket] with [AppendMessage] and [ParseContents];
//   - an owner that times its own writes, as a traffic shaper does:
//     [Conn.AppendPacket] seals one packet from parts (a record header
//     and the halves of a ring buffer, say) and [Conn.AppendDecoy] a
//     decoy, into the owner's buffer, without writing; the owner writes
//     the ciphertext to [Conn.NetConn] when and in what cuts it likes,
//     and reads with [Conn.ReadPacket]. With room in the buffer, sealing
//     allocates nothing.
//
// [Conn.Stats] counts packets, decoys and bytes both ways, safe to read
// from any goroutine. A handshake that has not finished within
// [Config.HandshakeTimeout] (60 s by default, as Bitcoin Core) fails with
// a [*HandshakeTimeoutError]. The v1 framing ([AppendV1Message],
// [V1Decoder]) serves translation between Bitcoin's v1 and v2 transports.
//
// # The wire
//
// The initiator I and the responder R each send, in order:
//
//	+----------+-----------+------------+---------+-----------+---------+-----
//	| key (64) | garbage   | terminator | decoys  | version   | packets  ...
//	|          | 0..4095   | (16)       | (0..n)  | packet    |
//	+----------+-----------+------------+---------+-----------+---------+-----
//	  ellswift   Hooks       derived      Hooks     Hooks       Seal,
//	  encoding   .Append-    from the     .Hand-    .Version-   AppendDecoy
//	             Garbage     shared       shake-    Contents
//	                         secret       Decoys
//
// R sends nothing until I's first bytes differ from the 16-byte v1 prefix
// of the network (magic, then "version" and five NULs); exactly that prefix
// means I speaks v1 (a [*V1Error] carries the bytes). Each side sends its
// terminator, decoys and version packet once it has the other's key, and may
// send packets right after its own version packet. The first packet after
// the terminator, decoy or not, carries the sender's garbage as its AAD.
//
// Every packet is:
//
//	+------------------+-------------------------------------------+----------+
//	| length (3 bytes) | header (1) | contents (length bytes)      | tag (16) |
//	| FSChaCha20       | FSChaCha20Poly1305, the AAD as above      |          |
//	+------------------+-------------------------------------------+----------+
//	  little-endian      bit 7 of the header is the ignore bit: set, the
//	  contents length    packet is a decoy, which the receiver drops
//
// Both ciphers move to a new key every 224 messages. The contents of a
// packet from a Bitcoin node are an encoded message type (a short id 1-28,
// or 0 and a 12-byte name) and the message payload; between two bip324-pt
// ends they are whatever the transport above puts there.
//
// # Shaping hooks
//
// A [Hooks] value in [Config] chooses the garbage (length 0..4095 and the
// bytes, which may depend on our key), the decoys between the terminator
// and the version packet, and the version packet's contents, which BIP324
// peers ignore and two bip324-pt ends use to negotiate (a peer's are kept
// up to [MaxPeerVersionLen] bytes). If the Hooks also implement
// [FirstWriteHook], [Conn] cuts its first flight into two writes where it
// says. Decoys after the handshake are [Conn.AppendDecoy] or
// [Conn.WriteDecoy] at any time. A nil Hooks is plain BIP324 as Bitcoin
// Core sends it.
//
// # Behaviour of Bitcoin Core that the package follows
//
//   - A responder compares at most 16 bytes with the v1 prefix before it
//     commits; the first mismatch releases its key and garbage.
//   - The terminator must end within 4095 bytes of garbage: the scan fails
//     at exactly 4111 bytes after the key.
//   - A responder whose first bytes are a v1 version message of another
//     network fails ([ErrV1WrongNetwork]).
//   - A decrypted length above the limit (default 4,000,013 bytes, Core's
//     MAX_CONTENTS_LEN) fails before any memory is set aside.
//   - A bad tag fails the connection, and nothing says why.
//   - [Conn] gives a handshake 60 s from its start to the peer's version
//     packet.
//
// # Memory
//
// A peer decides how much a connection holds only within limits: a
// packet's buffer grows as its bytes arrive, never past the announced
// length, and a buffer over 256 KiB is given back after the packet that
// needed it; the peer's version packet contents are kept up to 4096
// bytes.
package v2core

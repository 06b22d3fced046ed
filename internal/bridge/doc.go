// Package bridge is bip324-pt between two of its own ends: a client that
// authenticates to its bridge inside a BIP324 first flight
// (internal/bridgeauth) and asks for a downstream profile in its version
// packet, and a bridge that is a Bitcoin Core node's BIP324 responder to
// everyone else: it answers the first byte as Core does, closes where Core
// closes, completes the handshake, and only then looks for its client's
// mark and MAC. Whoever does not have them is served as a Bitcoin peer:
// relayed message by message to a real node (Relay), or left silent until
// Core's timeout. The decision:
//
//	accept ─► v2core responder (Core's garbage, empty version packet, Core's closes)
//	           ├─ protocol error (no terminator in 4111 bytes, another network's v1
//	           │  prefix, bad tag, oversize length) ─► close at once, as Core
//	           ├─ no handshake by 60-61 s after accept ─► close (FIN), as Core
//	           ├─ our network's 16-byte v1 prefix ─► a v1 peer: the node, or silent until 60-61 s
//	           └─ handshake done: mark and MAC in the peer's garbage?
//	                ├─ valid, fresh (replay set in the state directory) ─► shaped client session
//	                └─ no ─► a Bitcoin peer: relayed to the node, or silent until 60-61 s
//
// The whole wire between a client and its bridge, every byte a BIP324
// byte (BIP324's names; K the bridge's secret, E the hour since the epoch):
//
//	client ─► bridge   first flight, one write:
//	                   X (64-byte ElligatorSwift key)
//	                   garbage = P || mark || mac || Q         (0..4095 bytes, the profile's length and filler)
//	                     mark = HMAC-SHA256(k_mark, X)[:16]     (ends within the first 1448 bytes)
//	                     mac  = HMAC-SHA256(k_mac, X||P||mark||E)[:16]
//	bridge ─► client   its key and garbage at the first byte (as to anyone),
//	                   then its terminator and an empty version packet; the
//	                   mark and MAC are checked for E-1, E or E+1, and the
//	                   mark for freshness, once the client's garbage is in
//	client ─► bridge   garbage terminator, [decoys], version packet:
//	                     empty (the bitcoin profile: Core's 36-byte flight), or
//	                     "bip324-pt/1 profile=NAME [seed=HEX]"  (Request)
//	both ways          packets, each: 3-byte length, then encrypted
//	                   header byte (ignore bit) and contents, 16-byte tag
//	                     decoy (ignore bit): dropped by the receiver
//	                     0xfd "profile=NAME": the profile the bridge applied,
//	                          its first packet, only to a client that asked
//	                     0xff stream bytes: pieces of the byte stream, cut
//	                          to the send opportunities
//	                     0xfe end of stream (then padding): the sender's
//	                          half-close; nothing follows it on the wire
//
// The record bytes are BIP324 message types no BIP assigns, so a Bitcoin
// node would ignore such packets. Conn is the byte stream over a
// shaper.Conn in this framing; Client and Server.WrapConn make one.
//
// An operator's words reach the package as a bridge line
// (ParseBridgeLine; ClientFactory makes a ClientConfig from its
// arguments, with defaults) and as the bridge's settings (ServerOptions,
// from the command's flags or ParseServerOptions of tor's
// ServerTransportOptions, builds a Server). Arguments are plain
// map[string][]string, goptlib's pt.Args without goptlib. Each profile is
// loaded and compiled once per process.
package bridge

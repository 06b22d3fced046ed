// Package bridge is bip324-pt between two of its own ends: a client that
// authenticates to its bridge inside a BIP324 first flight
// (internal/bridgeauth) and asks for a downstream profile in its version
// packet, and a bridge that answers only such clients. Every other flight
// gets no byte from the bridge: it is read and dropped until a random
// delay or byte count, then closed, or, with a fallback address, handed
// whole to a real Bitcoin node, the bytes already read included.
//
// The whole wire between a client and its bridge, every byte a BIP324
// byte (BIP324's names; K the bridge's secret, E the hour since the epoch):
//
//	client ─► bridge   first flight, one write:
//	                   X (64-byte ElligatorSwift key)
//	                   garbage = P || mark || mac || Q         (0..4095 bytes, the profile's length and filler)
//	                     mark = HMAC-SHA256(k_mark, X)[:16]     (ends within the first 1448 bytes)
//	                     mac  = HMAC-SHA256(k_mac, X||P||mark||E)[:16]
//	bridge ─► client   its key and garbage (only once the mark and MAC check
//	                   out for E-1, E or E+1 and the mark is fresh), then its
//	                   terminator and an empty version packet
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

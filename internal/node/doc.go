// Package node speaks just enough of the Bitcoin P2P protocol to check a
// peer: the version handshake, ping and pong, over BIP324 (v2) through
// [v2core.Conn] or over the v1 framing, and [Ping], which does the whole
// exchange the way Bitcoin Core does as an outbound peer.
//
// The version message payload (Bitcoin Core src/net_processing.cpp,
// PushNodeVersion and the VERSION handler; all integers little-endian
// except the ports):
//
//	+---------+----------+-----------+-----------+-----------+-------+------------+--------+-------+
//	| version | services | timestamp | addr_recv | addr_from | nonce | user agent | start  | relay |
//	| int32   | uint64   | int64     | net_addr  | net_addr  | u64   | var_str    | height | u8    |
//	|         |          |           | (26)      | (26)      |       | (≤ 256)    | int32  |       |
//	+---------+----------+-----------+-----------+-----------+-------+------------+--------+-------+
//	|<------------ required (46 bytes) --------->|<---- optional groups, read while bytes remain --->|
//
//	net_addr (26 bytes): | services uint64 | IPv6 or IPv4-mapped address (16) | port, big-endian (2) |
//
// A var_str is a CompactSize length and that many bytes. Core reads the
// four groups after addr_recv (addr_from with nonce, user agent, start
// height, relay) only while bytes remain, so a shorter message is valid;
// a group cut in the middle is not.
//
// The exchange [Ping] performs, as Bitcoin Core's outbound side:
//
//	us                                  peer
//	(v2 handshake)              ◄──►    (v2 handshake)
//	version                     ───►
//	                            ◄───    version, wtxidrelay, sendaddrv2, verack
//	wtxidrelay, sendaddrv2,
//	verack                      ───►
//	                            ◄───    sendcmpct, ping, feefilter, ...
//	ping(nonce)                 ───►
//	                            ◄───    pong(nonce)
//
// A peer without v2 support (Bitcoin Core before 26, or with
// -v2transport=0) closes the connection when the first bytes are not a v1
// version message, without sending a byte; Ping then reconnects with v1, as
// Core does.
package node

// Package socks5 is the server side of a SOCKS5 CONNECT handshake (RFC
// 1928, with RFC 1929 username/password authentication), written for
// `bip324-pt node proxy`, which Bitcoin Core reaches through
// -proxy=127.0.0.1:9050, and a small client, [Dial], for a hop onward
// through tor.
//
// [ReadRequest] runs the server side up to the request and [WriteReply]
// sends the one reply:
//
//	client                                          server
//	05 NMETHODS METHODS (1-255)               ───►             greeting, RFC 1928 §3
//	                                          ◄───  05 METHOD  00 none, 02 username/password,
//	                                                           FF none acceptable (then close)
//	01 ULEN UNAME PLEN PASSWD                 ───►             only after METHOD 02, RFC 1929 §2
//	                                          ◄───  01 00      any credentials are accepted
//	05 CMD 00 ATYP DST.ADDR DST.PORT          ───►             request, RFC 1928 §4, §5
//	                                          ◄───  05 REP 00 ATYP BND.ADDR BND.PORT
//	                                                           reply, RFC 1928 §6
//	(stream)                                  ◄──►  (stream)   after REP 00 only
//
//	ATYP  DST.ADDR / BND.ADDR
//	01    4 bytes, IPv4
//	03    LEN (1 byte) and LEN bytes of name
//	04    16 bytes, IPv6
//	DST.PORT, BND.PORT: 2 bytes, big-endian
//
// What Bitcoin Core sends (src/netbase.cpp, Socks5): the greeting 05 01 00
// without credentials, or 05 02 00 02 with them, which it has for every
// connection under -proxyrandomize (the default): a fresh username and
// password per connection, so that tor puts each connection on its own
// circuit. Only if the server picks 02 does it send the RFC 1929 message,
// and it then requires the answer 01 00 exactly. Its request is always
// CONNECT with ATYP 03, whatever the destination: a name, an IPv4 or IPv6
// literal (as text, IPv6 without brackets) or a .onion name. It accepts a
// reply of ATYP 01, 03 or 04, reads the bound address and port and ignores
// them, and waits 20 seconds for each answer, the reply to CONNECT
// included, so the proxy's onward dial must end within that.
//
// Nothing here buffers: ReadRequest reads exactly the bytes of the
// handshake and no further, so whatever the client sends after its request
// is left on the connection for the caller.
//
// The package imports only the standard library.
package socks5

package node

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// Protocol versions (Bitcoin Core src/node/protocol_version.h).
const (
	// ProtocolVersion is the version we announce: Bitcoin Core's
	// PROTOCOL_VERSION since 0.21.
	ProtocolVersion = 70016
	// MinPeerProtocolVersion is the oldest version Bitcoin Core keeps a
	// connection with (MIN_PEER_PROTO_VERSION).
	MinPeerProtocolVersion = 31800
	// pongVersion is the first version that answers ping with pong: ping
	// gets a pong only when the version is above BIP0031_VERSION (60000).
	pongVersion = 60001
	// featureVersion is the common version from which Core sends
	// wtxidrelay (WTXID_RELAY_VERSION) and sendaddrv2 before verack.
	featureVersion = 70016
)

// Sizes and limits of the version message.
const (
	// MaxUserAgentLen is the longest user agent Bitcoin Core reads
	// (MAX_SUBVERSION_LENGTH); a longer one fails the whole message.
	MaxUserAgentLen = 256
	// NetAddrSize is the size of a net_addr without its time field, as
	// the version message carries it.
	NetAddrSize = 8 + 16 + 2
	// minVersionLen is version, services, timestamp and addr_recv: what
	// Core reads unconditionally.
	minVersionLen = 4 + 8 + 8 + NetAddrSize
)

// The commands this package sends or reads.
const (
	CmdVersion    = "version"
	CmdVerack     = "verack"
	CmdPing       = "ping"
	CmdPong       = "pong"
	CmdWtxidRelay = "wtxidrelay"
	CmdSendAddrV2 = "sendaddrv2"
	CmdSendCmpct  = "sendcmpct"
	CmdFeeFilter  = "feefilter"
)

// Services is a set of service bits, as a version message or an address
// carries them (Bitcoin Core src/protocol.h, ServiceFlags).
type Services uint64

// The service bits Bitcoin Core names.
const (
	ServiceNetwork        Services = 1 << 0
	ServiceBloom          Services = 1 << 2
	ServiceWitness        Services = 1 << 3
	ServiceCompactFilters Services = 1 << 6
	ServiceNetworkLimited Services = 1 << 10
	ServiceP2PV2          Services = 1 << 11
)

// serviceName is Bitcoin Core's serviceFlagToStr for one bit.
func serviceName(bit uint) string {
	switch Services(1) << bit {
	case ServiceNetwork:
		return "NETWORK"
	case ServiceBloom:
		return "BLOOM"
	case ServiceWitness:
		return "WITNESS"
	case ServiceCompactFilters:
		return "COMPACT_FILTERS"
	case ServiceNetworkLimited:
		return "NETWORK_LIMITED"
	case ServiceP2PV2:
		return "P2P_V2"
	}
	return fmt.Sprintf("UNKNOWN[2^%d]", bit)
}

// Names returns the names of the bits that are set, lowest first, as
// Bitcoin Core's getpeerinfo "servicesnames" gives them; an unnamed bit n
// is "UNKNOWN[2^n]".
func (s Services) Names() []string {
	var names []string
	for bit := uint(0); bit < 64; bit++ {
		if s&(1<<bit) != 0 {
			names = append(names, serviceName(bit))
		}
	}
	return names
}

// String returns the names joined by ", ", or "NONE" for no bits.
func (s Services) String() string {
	if s == 0 {
		return "NONE"
	}
	return strings.Join(s.Names(), ", ")
}

// NetAddr is an address as the version message carries it: services, a
// 16-byte IPv6 address (IPv4 as ::ffff:a.b.c.d) and a port. The zero value
// is what Bitcoin Core sends for an address it does not want to give:
// no services, ::, port 0.
type NetAddr struct {
	Services Services
	IP       [16]byte
	Port     uint16
}

// NetAddrFrom returns the NetAddr for ap, with IPv4 mapped into IPv6. An
// invalid ap gives the zero address with the services.
func NetAddrFrom(ap netip.AddrPort, services Services) NetAddr {
	a := NetAddr{Services: services}
	if ap.Addr().IsValid() {
		a.IP = ap.Addr().As16()
		a.Port = ap.Port()
	}
	return a
}

// AddrPort returns the address and port, IPv4-mapped addresses unmapped.
func (a NetAddr) AddrPort() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(a.IP).Unmap(), a.Port)
}

func appendNetAddr(dst []byte, a *NetAddr) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(a.Services))
	dst = append(dst, a.IP[:]...)
	return binary.BigEndian.AppendUint16(dst, a.Port)
}

// Version is the payload of a version message.
type Version struct {
	// Protocol is the protocol version, ProtocolVersion for current peers.
	Protocol int32
	// Services are the sender's service bits.
	Services Services
	// Timestamp is the sender's clock, in seconds since the Unix epoch.
	Timestamp int64
	// AddrRecv is the receiver's address as the sender sees it; Bitcoin
	// Core sends the zero address unless the peer's is routable.
	AddrRecv NetAddr
	// AddrFrom is the sender's address; Bitcoin Core sends the zero
	// address with its services.
	AddrFrom NetAddr
	// Nonce detects connections to self.
	Nonce uint64
	// UserAgent is the BIP14 user agent, as received: not sanitised (see
	// [SanitizeString]). At most MaxUserAgentLen bytes.
	UserAgent string
	// StartHeight is the sender's best block height.
	StartHeight int32
	// Relay asks for transaction announcements (BIP37).
	Relay bool
}

// UserAgentTooLongError reports a user agent longer than
// [MaxUserAgentLen]. The value is its length.
type UserAgentTooLongError uint64

func (e UserAgentTooLongError) Error() string {
	return fmt.Sprintf("node: user agent of %d bytes exceeds the limit of %d", uint64(e), MaxUserAgentLen)
}

// AppendVersion appends v as a version message payload, every field
// present, and returns the extended slice. It fails, returning dst
// unchanged, with a [UserAgentTooLongError] when the user agent is longer
// than Bitcoin Core reads.
func AppendVersion(dst []byte, v *Version) ([]byte, error) {
	if len(v.UserAgent) > MaxUserAgentLen {
		return dst, UserAgentTooLongError(len(v.UserAgent))
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(v.Protocol))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(v.Services))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(v.Timestamp))
	dst = appendNetAddr(dst, &v.AddrRecv)
	dst = appendNetAddr(dst, &v.AddrFrom)
	dst = binary.LittleEndian.AppendUint64(dst, v.Nonce)
	dst = AppendCompactSize(dst, uint64(len(v.UserAgent)))
	dst = append(dst, v.UserAgent...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(v.StartHeight))
	relay := byte(0)
	if v.Relay {
		relay = 1
	}
	return append(dst, relay), nil
}

// ParseVersion parses a version message payload the way Bitcoin Core
// reads it. The first 46 bytes (version, services, timestamp, addr_recv)
// are required; the groups after them are read only while bytes remain,
// and one that is absent takes Core's default: zero AddrFrom and Nonce, an
// empty user agent, StartHeight -1, Relay true. A group cut short gives
// [ErrTruncated]. Bytes after the relay flag are ignored, as Core ignores
// them. A relay byte other than 0 means true.
//
// The user agent must not exceed MaxUserAgentLen bytes
// ([UserAgentTooLongError]); its length is a CompactSize, checked as
// [ReadCompactSize] does. The payload is not retained.
func ParseVersion(payload []byte) (Version, error) {
	v := Version{StartHeight: -1, Relay: true}
	if len(payload) < minVersionLen {
		return Version{}, fmt.Errorf("%w: version message of %d bytes, need at least %d", ErrTruncated, len(payload), minVersionLen)
	}
	b := payload
	v.Protocol = int32(binary.LittleEndian.Uint32(b))
	v.Services = Services(binary.LittleEndian.Uint64(b[4:]))
	v.Timestamp = int64(binary.LittleEndian.Uint64(b[12:]))
	v.AddrRecv = parseNetAddr(b[20:])
	b = b[minVersionLen:]

	if len(b) > 0 {
		if len(b) < NetAddrSize+8 {
			return Version{}, fmt.Errorf("%w: addr_from and nonce", ErrTruncated)
		}
		v.AddrFrom = parseNetAddr(b)
		v.Nonce = binary.LittleEndian.Uint64(b[NetAddrSize:])
		b = b[NetAddrSize+8:]
	}
	if len(b) > 0 {
		l, n, err := ReadCompactSize(b)
		if err != nil {
			return Version{}, fmt.Errorf("node: user agent length: %w", err)
		}
		if l > MaxUserAgentLen {
			return Version{}, UserAgentTooLongError(l)
		}
		b = b[n:]
		if uint64(len(b)) < l {
			return Version{}, fmt.Errorf("%w: user agent of %d bytes, %d present", ErrTruncated, l, len(b))
		}
		v.UserAgent = string(b[:l])
		b = b[l:]
	}
	if len(b) > 0 {
		if len(b) < 4 {
			return Version{}, fmt.Errorf("%w: start height", ErrTruncated)
		}
		v.StartHeight = int32(binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) > 0 {
		v.Relay = b[0] != 0
	}
	return v, nil
}

func parseNetAddr(b []byte) NetAddr {
	var a NetAddr
	a.Services = Services(binary.LittleEndian.Uint64(b))
	copy(a.IP[:], b[8:24])
	a.Port = binary.BigEndian.Uint16(b[24:26])
	return a
}

// NonceSize is the size of a ping or pong payload.
const NonceSize = 8

// AppendNonce appends a ping or pong payload: the nonce, little-endian.
func AppendNonce(dst []byte, nonce uint64) []byte {
	return binary.LittleEndian.AppendUint64(dst, nonce)
}

// ParseNonce reads the nonce of a ping or pong payload. Bytes after the
// first 8 are ignored, as Bitcoin Core ignores them; fewer than 8 give
// [ErrTruncated].
func ParseNonce(payload []byte) (uint64, error) {
	if len(payload) < NonceSize {
		return 0, fmt.Errorf("%w: nonce of %d bytes, want %d", ErrTruncated, len(payload), NonceSize)
	}
	return binary.LittleEndian.Uint64(payload), nil
}

// SanitizeString keeps the characters Bitcoin Core's SanitizeString keeps
// by default (SAFE_CHARS_DEFAULT: letters, digits and " .,;-_/:?@()") and
// drops every other byte. Print a peer's user agent through it: it comes
// from the network and may hold terminal escapes.
func SanitizeString(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte(" .,;-_/:?@()", c) >= 0:
		default:
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// addrRecvOffset is where addr_recv starts in a version payload.
const addrRecvOffset = 4 + 8 + 8

// VersionAddrRecv returns the addr_recv field of a version message
// payload, without parsing the rest, and false when the payload is too
// short to hold it (46 bytes).
func VersionAddrRecv(payload []byte) (NetAddr, bool) {
	if len(payload) < minVersionLen {
		return NetAddr{}, false
	}
	return parseNetAddr(payload[addrRecvOffset:]), true
}

// SetVersionAddrRecv overwrites the addr_recv field of a version message
// payload in place, leaving every other byte as it was, and reports false
// (changing nothing) when the payload is too short to hold it.
func SetVersionAddrRecv(payload []byte, a NetAddr) bool {
	if len(payload) < minVersionLen {
		return false
	}
	appendNetAddr(payload[addrRecvOffset:addrRecvOffset], &a)
	return true
}

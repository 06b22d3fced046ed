package node

import "net/netip"

// Core's special-purpose ranges (src/netaddress.cpp, CNetAddr::IsRFC*),
// none of which it considers routable.
var unroutablePrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // IsLocal
	netip.MustParsePrefix("127.0.0.0/8"),     // IsLocal
	netip.MustParsePrefix("10.0.0.0/8"),      // RFC1918
	netip.MustParsePrefix("172.16.0.0/12"),   // RFC1918
	netip.MustParsePrefix("192.168.0.0/16"),  // RFC1918
	netip.MustParsePrefix("198.18.0.0/15"),   // RFC2544
	netip.MustParsePrefix("169.254.0.0/16"),  // RFC3927
	netip.MustParsePrefix("100.64.0.0/10"),   // RFC6598
	netip.MustParsePrefix("192.0.2.0/24"),    // RFC5737
	netip.MustParsePrefix("198.51.100.0/24"), // RFC5737
	netip.MustParsePrefix("203.0.113.0/24"),  // RFC5737
	netip.MustParsePrefix("255.255.255.255/32"),
	netip.MustParsePrefix("::/128"),        // unspecified
	netip.MustParsePrefix("::1/128"),       // IsLocal
	netip.MustParsePrefix("2001:db8::/32"), // RFC3849
	netip.MustParsePrefix("fe80::/64"),     // RFC4862
	netip.MustParsePrefix("fc00::/7"),      // RFC4193
	netip.MustParsePrefix("2001:10::/28"),  // RFC4843
	netip.MustParsePrefix("2001:20::/28"),  // RFC7343
}

// IsRoutable reports whether Bitcoin Core counts a as routable
// (CNetAddr::IsRoutable): valid, and in none of the local, private,
// link-local, shared, benchmarking or documentation ranges. An
// IPv4-mapped IPv6 address counts as the IPv4 address, as Core reads it.
func IsRoutable(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range unroutablePrefixes {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// AddrRecvFor returns the addr_recv Bitcoin Core puts in the version
// message it sends to a peer connected from ap (PushNodeVersion,
// addr_you): the peer's address and port when they are routable, else the
// zero address; no services, since Core knows none of an inbound peer's.
func AddrRecvFor(ap netip.AddrPort) NetAddr {
	if !IsRoutable(ap.Addr()) {
		return NetAddr{}
	}
	return NetAddrFrom(ap, 0)
}

package node

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// AddrWithPort turns HOST[:PORT] into HOST:PORT, with defaultPort when no
// port is given. HOST is a name, an IPv4 address or an IPv6 address, the
// last bracketed when a port follows ("[::1]:8333"); a bare IPv6 address
// ("::1") takes the default port.
func AddrWithPort(s string, defaultPort int) (string, error) {
	if s == "" {
		return "", fmt.Errorf("node: empty address")
	}
	if strings.ContainsAny(s, " \t\r\n/") {
		return "", fmt.Errorf("node: invalid address %q", s)
	}
	host, port, hasPort := s, "", false
	switch {
	case strings.HasPrefix(s, "["):
		if strings.HasSuffix(s, "]") {
			host = s[1 : len(s)-1]
			break
		}
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return "", fmt.Errorf("node: invalid address %q", s)
		}
		host, port, hasPort = h, p, true
	case strings.Count(s, ":") == 1:
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return "", fmt.Errorf("node: invalid address %q", s)
		}
		host, port, hasPort = h, p, true
	case strings.Count(s, ":") > 1:
		if _, err := netip.ParseAddr(s); err != nil {
			return "", fmt.Errorf("node: invalid address %q (put an IPv6 address in brackets before a port: [::1]:8333)", s)
		}
	}
	if host == "" {
		return "", fmt.Errorf("node: address %q has no host", s)
	}
	if strings.HasPrefix(s, "[") {
		if _, err := netip.ParseAddr(host); err != nil || !strings.Contains(host, ":") {
			return "", fmt.Errorf("node: invalid IPv6 address in %q", s)
		}
	}
	p := defaultPort
	if hasPort {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return "", fmt.Errorf("node: invalid port %q in %q", port, s)
		}
		p = int(n)
	}
	if p < 1 || p > 65535 {
		return "", fmt.Errorf("node: port %d out of range in %q", p, s)
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

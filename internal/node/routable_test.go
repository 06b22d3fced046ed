package node

import (
	"net/netip"
	"testing"
)

// TestIsRoutable checks Bitcoin Core's CNetAddr::IsRoutable ranges
// (src/netaddress.cpp).
func TestIsRoutable(t *testing.T) {
	cases := []struct {
		addr string
		want bool
	}{
		{"8.8.8.8", true},
		{"1.2.3.4", true},
		{"::ffff:8.8.4.4", true},
		{"2a01:4f8::1", true},
		{"127.0.0.1", false},
		{"127.1.2.3", false},
		{"::ffff:127.0.0.1", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"255.255.255.255", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"172.32.0.1", true},
		{"192.168.1.1", false},
		{"198.18.0.1", false},
		{"198.19.255.255", false},
		{"198.20.0.1", true},
		{"169.254.1.1", false},
		{"100.64.0.1", false},
		{"100.128.0.1", true},
		{"192.0.2.1", false},
		{"198.51.100.1", false},
		{"203.0.113.1", false},
		{"::", false},
		{"::1", false},
		{"2001:db8::1", false},
		{"fe80::1", false},
		{"fe80:0:0:1::1", true}, // Core's RFC4862 is fe80::/64 only
		{"fc00::1", false},
		{"fd6b:88c0:8724::1", false}, // Core's internal range, inside fc00::/7
		{"2001:10::1", false},
		{"2001:20::1", false},
		{"2001:30::1", true},
	}
	for _, c := range cases {
		if got := IsRoutable(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("IsRoutable(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
	if IsRoutable(netip.Addr{}) {
		t.Error("IsRoutable(invalid) = true")
	}
}

func TestAddrRecvFor(t *testing.T) {
	if got := AddrRecvFor(netip.MustParseAddrPort("127.0.0.1:8333")); got != (NetAddr{}) {
		t.Errorf("loopback: %+v, want the zero address", got)
	}
	ap := netip.MustParseAddrPort("8.8.4.4:50123")
	got := AddrRecvFor(ap)
	if got.AddrPort() != ap || got.Services != 0 {
		t.Errorf("routable: %+v", got)
	}
	want := [16]byte{10: 0xff, 11: 0xff, 12: 8, 13: 8, 14: 4, 15: 4}
	if got.IP != want {
		t.Errorf("IP %x, want IPv4-mapped %x", got.IP, want)
	}
}

func TestVersion_AddrRecv(t *testing.T) {
	v := Version{
		Protocol:  ProtocolVersion,
		Services:  ServiceNetwork,
		Timestamp: 1700000000,
		AddrRecv:  NetAddrFrom(netip.MustParseAddrPort("127.0.0.1:41000"), ServiceWitness),
		AddrFrom:  NetAddr{Services: ServiceNetwork},
		Nonce:     99,
		UserAgent: "/x:1/",
		Relay:     true,
	}
	payload, err := AppendVersion(nil, &v)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := VersionAddrRecv(payload)
	if !ok || got != v.AddrRecv {
		t.Fatalf("VersionAddrRecv = %+v, %v; want %+v", got, ok, v.AddrRecv)
	}
	repl := NetAddrFrom(netip.MustParseAddrPort("[2a01:4f8::1]:8333"), ServiceWitness)
	if !SetVersionAddrRecv(payload, repl) {
		t.Fatal("SetVersionAddrRecv failed")
	}
	parsed, err := ParseVersion(payload)
	if err != nil {
		t.Fatal(err)
	}
	v.AddrRecv = repl
	if parsed != v {
		t.Errorf("after SetVersionAddrRecv: %+v, want %+v", parsed, v)
	}
	// The port is big-endian on the wire, at the end of the field.
	if payload[20+24] != 0x20 || payload[20+25] != 0x8d {
		t.Errorf("port bytes %x", payload[44:46])
	}
	short := payload[:45]
	if _, ok := VersionAddrRecv(short); ok {
		t.Error("VersionAddrRecv of 45 bytes succeeded")
	}
	if SetVersionAddrRecv(short, repl) {
		t.Error("SetVersionAddrRecv of 45 bytes succeeded")
	}
}

package node

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestCompactSize_Edges(t *testing.T) {
	tests := []struct {
		name string
		in   string // hex
		want uint64
		n    int
		err  error
	}{
		{"zero", "00", 0, 1, nil},
		{"largest one byte", "fc", 0xfc, 1, nil},
		{"smallest fd", "fdfd00", 0xfd, 3, nil},
		{"largest fd", "fdffff", 0xffff, 3, nil},
		{"smallest fe", "fe00000100", 0x10000, 5, nil},
		{"max size", "fe00000002", MaxCompactSize, 5, nil},
		{"trailing bytes ignored", "0501020304", 5, 1, nil},
		{"empty", "", 0, 0, ErrTruncated},
		{"fd truncated", "fdfd", 0, 0, ErrTruncated},
		{"fe truncated", "fe000001", 0, 0, ErrTruncated},
		{"ff truncated", "ff00000000010000", 0, 0, ErrTruncated},
		{"fd non-canonical 0", "fd0000", 0, 0, ErrNonCanonical},
		{"fd non-canonical fc", "fdfc00", 0, 0, ErrNonCanonical},
		{"fe non-canonical", "feffff0000", 0, 0, ErrNonCanonical},
		{"ff non-canonical", "ffffffffff00000000", 0, 0, ErrNonCanonical},
		{"above max size", "fe01000002", 0, 0, CompactSizeTooLargeError(MaxCompactSize + 1)},
		{"ff canonical but huge", "ff0000000001000000", 0, 0, CompactSizeTooLargeError(1 << 32)},
		{"ff max", "ffffffffffffffffff", 0, 0, CompactSizeTooLargeError(^uint64(0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := hex.DecodeString(tt.in)
			v, n, err := ReadCompactSize(b)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if v != tt.want || n != tt.n {
				t.Fatalf("got (%d, %d), want (%d, %d)", v, n, tt.want, tt.n)
			}
		})
	}
}

func TestAppendCompactSize_RoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 0xfc, 0xfd, 0xfe, 0xff, 0x100, 0xffff, 0x10000, 0x123456, MaxCompactSize} {
		b := AppendCompactSize(nil, v)
		want := 1
		switch {
		case v >= 0x10000:
			want = 5
		case v >= 0xfd:
			want = 3
		}
		if len(b) != want {
			t.Errorf("%#x encodes to %d bytes, want %d", v, len(b), want)
		}
		got, n, err := ReadCompactSize(b)
		if err != nil || got != v || n != len(b) {
			t.Errorf("%#x: read back (%d, %d, %v)", v, got, n, err)
		}
	}
	// Values above the read limit still encode in the shortest form.
	if b := AppendCompactSize(nil, 1<<32); len(b) != 9 || b[0] != 0xff {
		t.Errorf("1<<32 encodes to %x", b)
	}
	if b := AppendCompactSize(nil, 1<<32-1); len(b) != 5 || b[0] != 0xfe {
		t.Errorf("1<<32-1 encodes to %x", b)
	}
}

// coreLikeVersion is a version message as Bitcoin Core 28.1 sends it to an
// inbound peer on loopback.
func coreLikeVersion() Version {
	return Version{
		Protocol:    70016,
		Services:    ServiceNetwork | ServiceWitness | ServiceNetworkLimited | ServiceP2PV2,
		Timestamp:   1732400000,
		AddrRecv:    NetAddrFrom(netip.MustParseAddrPort("203.0.113.7:51234"), 0),
		AddrFrom:    NetAddr{Services: ServiceNetwork | ServiceWitness | ServiceNetworkLimited | ServiceP2PV2},
		Nonce:       0x0123456789abcdef,
		UserAgent:   "/Satoshi:28.1.0/",
		StartHeight: 872000,
		Relay:       true,
	}
}

func TestVersion_RoundTrip(t *testing.T) {
	cases := map[string]Version{
		"core":  coreLikeVersion(),
		"zero":  {StartHeight: 0},
		"ours":  {Protocol: ProtocolVersion, UserAgent: DefaultUserAgent},
		"ipv6":  {AddrRecv: NetAddrFrom(netip.MustParseAddrPort("[2001:db8::1]:8333"), ServiceNetwork)},
		"long":  {UserAgent: strings.Repeat("x", MaxUserAgentLen), Relay: true, StartHeight: -5},
		"fd ua": {UserAgent: strings.Repeat("y", 0xfd)},
		"neg":   {Protocol: -1, Timestamp: -1, StartHeight: -1},
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := AppendVersion([]byte("prefix"), &v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte("prefix")) {
				t.Fatal("AppendVersion lost dst")
			}
			b = b[len("prefix"):]
			if want := minVersionLen + NetAddrSize + 8 + len(AppendCompactSize(nil, uint64(len(v.UserAgent)))) + len(v.UserAgent) + 4 + 1; len(b) != want {
				t.Fatalf("encoded %d bytes, want %d", len(b), want)
			}
			got, err := ParseVersion(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, v) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, v)
			}
		})
	}
}

func TestVersion_Layout(t *testing.T) {
	v := coreLikeVersion()
	b, err := AppendVersion(nil, &v)
	if err != nil {
		t.Fatal(err)
	}
	// Core's version message with a 16-byte user agent: 4+8+8+26+26+8+1+16+4+1.
	if len(b) != 102 {
		t.Fatalf("len = %d, want 102", len(b))
	}
	want := "80110100" + // 70016
		"090c000000000000" + // services
		"8053426700000000" + // timestamp
		"0000000000000000" + "00000000000000000000ffffcb007107" + "c822" + // addr_recv, port big-endian
		"090c000000000000" + "00000000000000000000000000000000" + "0000" + // addr_from
		"efcdab8967452301" + // nonce
		"10" + hex.EncodeToString([]byte("/Satoshi:28.1.0/")) +
		"404e0d00" + // 872000
		"01"
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
}

func TestParseVersion_Truncated(t *testing.T) {
	v := coreLikeVersion()
	full, _ := AppendVersion(nil, &v)
	uaEnd := minVersionLen + NetAddrSize + 8 + 1 + len(v.UserAgent)
	// Cutting at a group boundary is valid, as in Core; cutting inside a
	// group is not.
	boundaries := map[int]bool{
		minVersionLen:                   true,
		minVersionLen + NetAddrSize + 8: true,
		uaEnd:                           true,
		uaEnd + 4:                       true,
		len(full):                       true,
	}
	for n := 0; n <= len(full); n++ {
		got, err := ParseVersion(full[:n])
		if boundaries[n] {
			if err != nil {
				t.Errorf("cut at %d (a boundary): %v", n, err)
			}
			continue
		}
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("cut at %d: err = %v, want ErrTruncated", n, err)
		}
		if !reflect.DeepEqual(got, Version{}) {
			t.Errorf("cut at %d: returned %+v on error", n, got)
		}
	}
	// Defaults of absent groups follow Core.
	got, err := ParseVersion(full[:minVersionLen])
	if err != nil {
		t.Fatal(err)
	}
	if got.StartHeight != -1 || !got.Relay || got.UserAgent != "" || got.Nonce != 0 {
		t.Errorf("defaults: %+v", got)
	}
	if got.Protocol != v.Protocol || got.AddrRecv != v.AddrRecv {
		t.Errorf("required fields: %+v", got)
	}
	// Trailing bytes are ignored.
	got, err = ParseVersion(append(full[:len(full):len(full)], 0xde, 0xad))
	if err != nil || !reflect.DeepEqual(got, v) {
		t.Errorf("trailing bytes: %+v, %v", got, err)
	}
	// Any non-zero relay byte is true.
	full[len(full)-1] = 0x80
	if got, _ := ParseVersion(full); !got.Relay {
		t.Error("relay 0x80 read as false")
	}
	full[len(full)-1] = 0
	if got, _ := ParseVersion(full); got.Relay {
		t.Error("relay 0 read as true")
	}
}

func TestVersion_UserAgentLimit(t *testing.T) {
	v := Version{UserAgent: strings.Repeat("a", MaxUserAgentLen+1)}
	b, err := AppendVersion([]byte{1, 2}, &v)
	var tooLong UserAgentTooLongError
	if !errors.As(err, &tooLong) || tooLong != MaxUserAgentLen+1 {
		t.Fatalf("AppendVersion: err = %v", err)
	}
	if !bytes.Equal(b, []byte{1, 2}) {
		t.Fatalf("AppendVersion changed dst on error: %x", b)
	}

	// Hand-build a message whose user agent is 257 bytes: the length is
	// refused before the bytes are looked at.
	ok := Version{UserAgent: strings.Repeat("a", MaxUserAgentLen)}
	good, _ := AppendVersion(nil, &ok)
	lenAt := minVersionLen + NetAddrSize + 8
	bad := append([]byte{}, good[:lenAt]...)
	bad = AppendCompactSize(bad, MaxUserAgentLen+1)
	bad = append(bad, strings.Repeat("a", MaxUserAgentLen+1)...)
	if _, err := ParseVersion(bad); !errors.As(err, &tooLong) || tooLong != MaxUserAgentLen+1 {
		t.Fatalf("ParseVersion 257: err = %v", err)
	}
	// A huge announced length with nothing behind it.
	huge := AppendCompactSize(append([]byte{}, good[:lenAt]...), MaxCompactSize)
	if _, err := ParseVersion(huge); !errors.As(err, &tooLong) {
		t.Fatalf("ParseVersion huge: err = %v", err)
	}
	// A length past MaxCompactSize, and a non-canonical one.
	over := append(append([]byte{}, good[:lenAt]...), 0xff, 0, 0, 0, 0, 1, 0, 0, 0)
	var tooLarge CompactSizeTooLargeError
	if _, err := ParseVersion(over); !errors.As(err, &tooLarge) {
		t.Fatalf("ParseVersion over MAX_SIZE: err = %v", err)
	}
	nonCanon := append(append([]byte{}, good[:lenAt]...), 0xfd, 3, 0, 'a', 'b', 'c')
	if _, err := ParseVersion(nonCanon); !errors.Is(err, ErrNonCanonical) {
		t.Fatalf("ParseVersion non-canonical: err = %v", err)
	}
	// A canonical 0xfd-form length of exactly 256 parses.
	if got, err := ParseVersion(good); err != nil || got.UserAgent != ok.UserAgent {
		t.Fatalf("ParseVersion 256: %v", err)
	}
}

func TestServices_String(t *testing.T) {
	tests := []struct {
		s    Services
		want string
	}{
		{0, "NONE"},
		{0xc09, "NETWORK, WITNESS, NETWORK_LIMITED, P2P_V2"},
		{ServiceBloom | ServiceCompactFilters, "BLOOM, COMPACT_FILTERS"},
		{1<<1 | 1<<63, "UNKNOWN[2^1], UNKNOWN[2^63]"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%#x: %q, want %q", uint64(tt.s), got, tt.want)
		}
	}
}

func TestSanitizeString(t *testing.T) {
	tests := map[string]string{
		"/Satoshi:28.1.0/":           "/Satoshi:28.1.0/",
		"/a(b)@c;d,e?f_g-h i/":       "/a(b)@c;d,e?f_g-h i/",
		"\x1b[31mred\x1b[0m\r\n\x00": "31mred0m",
		"ümlaut<>\"'&%$#!":           "mlaut",
	}
	for in, want := range tests {
		if got := SanitizeString(in); got != want {
			t.Errorf("SanitizeString(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNonce_RoundTrip(t *testing.T) {
	b := AppendNonce(nil, 0x1122334455667788)
	if hex.EncodeToString(b) != "8877665544332211" {
		t.Fatalf("encoding %x", b)
	}
	if n, err := ParseNonce(append(b, 9)); err != nil || n != 0x1122334455667788 {
		t.Fatalf("ParseNonce = %x, %v", n, err)
	}
	if _, err := ParseNonce(b[:7]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short nonce: %v", err)
	}
}

func TestNetAddr_AddrPort(t *testing.T) {
	for _, s := range []string{"1.2.3.4:8333", "[2001:db8::5]:18444"} {
		ap := netip.MustParseAddrPort(s)
		if got := NetAddrFrom(ap, 0).AddrPort(); got != ap {
			t.Errorf("%s: got %s", s, got)
		}
	}
	if a := NetAddrFrom(netip.AddrPort{}, ServiceNetwork); a != (NetAddr{Services: ServiceNetwork}) {
		t.Errorf("invalid addr: %+v", a)
	}
}

func TestAddrWithPort(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"example.org", "example.org:8333", false},
		{"example.org:18444", "example.org:18444", false},
		{"1.2.3.4", "1.2.3.4:8333", false},
		{"1.2.3.4:1", "1.2.3.4:1", false},
		{"::1", "[::1]:8333", false},
		{"[::1]", "[::1]:8333", false},
		{"[2001:db8::1]:38333", "[2001:db8::1]:38333", false},
		{"", "", true},
		{":8333", "", true},
		{"host:", "", true},
		{"host:0", "", true},
		{"host:65536", "", true},
		{"host:http", "", true},
		{"host:-1", "", true},
		{"[::1]:", "", true},
		{"[host]:8333", "", true},
		{"[1.2.3.4]:8333", "", true},
		{"[::1", "", true},
		{"2001:db8::1:8333:zz", "", true},
		{"a b", "", true},
		{"http://x", "", true},
	}
	for _, tt := range tests {
		got, err := AddrWithPort(tt.in, 8333)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("AddrWithPort(%q) = %q, %v; want %q, err %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

package ptspec

import (
	"errors"
	"testing"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"
)

func TestConfig_scrubErr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"dial tcp 192.0.2.1:443: connect: connection refused", "dial tcp [scrubbed]: connect: connection refused"},
		{"read tcp 127.0.0.1:9000->198.51.100.7:51234: read: connection reset by peer", "read tcp [scrubbed]->[scrubbed]: read: connection reset by peer"},
		{"dial tcp [2001:db8::1]:443: i/o timeout", "dial tcp [scrubbed]: i/o timeout"},
		{"no route to 2001:db8::1", "no route to [scrubbed]"},
		{"no route to ::1 or 2001:db8:0:0:0:0:0:1", "no route to [scrubbed] or [scrubbed]"},
		{"bridge: connection refused authentication: bad mac", "bridge: connection refused authentication: bad mac"},
		{"SOCKS5 reply 0x05", "SOCKS5 reply 0x05"},
	}
	for _, tt := range tests {
		if got := (Config{}).scrubErr(errors.New(tt.in)).String(); got != tt.want {
			t.Errorf("scrubErr(%q) = %q; want %q", tt.in, got, tt.want)
		}
		if got := (Config{LogAddrs: true}).scrubErr(errors.New(tt.in)).String(); got != tt.in {
			t.Errorf("with LogAddrs, scrubErr(%q) = %q", tt.in, got)
		}
	}
}

func TestRedactedArgs(t *testing.T) {
	args := pt.Args{"secret": {"K"}, "profile": {"cbr"}, "seed": {"7", "8"}}
	want := "profile=cbr;secret=[redacted];seed=[redacted];seed=[redacted]"
	if got := redactedArgs(args).LogValue().String(); got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

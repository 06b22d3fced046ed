package main

import (
	"runtime/debug"
	"strings"
	"testing"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"
)

// testSecret is a well-formed bridge secret (32 zero bytes).
const testSecret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// TestClientFactory_NewClient: a bridge line's unknown or repeated key is
// an error naming it and the known keys, from the SOCKS request or from
// --bridge, rather than a connection that runs without it.
func TestClientFactory_NewClient(t *testing.T) {
	tests := []struct {
		name     string
		defaults pt.Args
		args     pt.Args
		want     string // "" for success
	}{
		{"known keys", nil, pt.Args{"secret": {testSecret}, "profile": {"cbr"}}, ""},
		{"defaults", pt.Args{"secret": {testSecret}}, pt.Args{"profile": {"cbr"}}, ""},
		{"misspelt profile", nil, pt.Args{"secret": {testSecret}, "profle": {"cbr"}},
			`bridge line: unknown key "profle" (known: secret, profile, seed)`},
		{"misspelt with defaults", pt.Args{"secret": {testSecret}}, pt.Args{"profle": {"cbr"}},
			`bridge line: unknown key "profle" (known: secret, profile, seed)`},
		{"twice", nil, pt.Args{"secret": {testSecret}, "profile": {"cbr", "video"}},
			`bridge line: key "profile" given 2 times`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := clientFactory{defaults: tt.defaults}.NewClient(tt.args)
			if tt.want == "" {
				if err != nil || w == nil {
					t.Fatalf("NewClient: %v, %v", w, err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("NewClient: %v; want %q", err, tt.want)
			}
		})
	}
}

// TestManagedServerOptions: ServerTransportOptions takes profile, allow
// and fallback=HOST:PORT; anything else is an error naming the key.
func TestManagedServerOptions(t *testing.T) {
	tests := []struct {
		args pt.Args
		want string // "" for success
	}{
		{pt.Args{"profile": {"bitcoin"}, "allow": {"none,cbr"}, "fallback": {"127.0.0.1:8334"}}, ""},
		{pt.Args{}, ""},
		{pt.Args{"profle": {"cbr"}}, `ServerTransportOptions: unknown key "profle" (known: profile, allow, fallback)`},
		{pt.Args{"fallback": {"nonsense"}}, `ServerTransportOptions: fallback=: "nonsense" is not HOST:PORT (missing port in address)`},
		{pt.Args{"fallback": {""}}, `ServerTransportOptions: fallback=: "" is not HOST:PORT (missing port in address)`},
		{pt.Args{"fallback": {"node:0"}}, `ServerTransportOptions: fallback=: "node:0" is not HOST:PORT (port "0", want 1..65535)`},
	}
	for _, tt := range tests {
		o, err := managedServerOptions(tt.args)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%v: %v", tt.args, err)
			}
			if f, _ := tt.args.Get("fallback"); o.fallback != f {
				t.Errorf("%v: fallback %q", tt.args, o.fallback)
			}
			continue
		}
		if err == nil || err.Error() != tt.want {
			t.Errorf("%v: %v; want %q", tt.args, err, tt.want)
		}
	}
}

func TestCheckHostPort(t *testing.T) {
	for _, s := range []string{"127.0.0.1:8333", "[::1]:1", "node.example:65535", "localhost:18444"} {
		if err := checkHostPort(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "nonsense", ":8333", "host:", "host:0", "host:65536", "host:http", "host:-1", "[::1", "a:b:c"} {
		if err := checkHostPort(s); err == nil || !strings.Contains(err.Error(), "is not HOST:PORT") {
			t.Errorf("%q: %v", s, err)
		}
	}
}

func TestVersionOf(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "devel"},
		{"released", &debug.BuildInfo{Main: debug.Module{Version: "v0.3.1"}, Settings: vcs(rev, "false")}, "v0.3.1"},
		{"pseudo-version", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20260101000000-0123456789ab+dirty"}}, "v0.0.0-20260101000000-0123456789ab+dirty"},
		{"checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "false")}, "0123456789ab"},
		{"dirty checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "true")}, "0123456789ab-dirty"},
		{"no vcs", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
		{"no version", &debug.BuildInfo{}, "devel"},
	}
	for _, tt := range tests {
		if got := versionOf(tt.bi); got != tt.want {
			t.Errorf("%s: %q; want %q", tt.name, got, tt.want)
		}
	}
}

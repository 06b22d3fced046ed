package bridge

import (
	"strings"
	"testing"
)

// testSecret is a well-formed bridge secret (32 zero bytes).
const testSecret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// TestClientFactory_NewClient: a bridge line's unknown or repeated key is
// an error naming it and the known keys, from the SOCKS request or from
// --bridge, rather than a connection that runs without it.
func TestClientFactory_NewClient(t *testing.T) {
	tests := []struct {
		name     string
		defaults map[string][]string
		args     map[string][]string
		want     string // "" for success
	}{
		{"known keys", nil, map[string][]string{"secret": {testSecret}, "profile": {"cbr"}}, ""},
		{"defaults", map[string][]string{"secret": {testSecret}}, map[string][]string{"profile": {"cbr"}}, ""},
		{"misspelt profile", nil, map[string][]string{"secret": {testSecret}, "profle": {"cbr"}},
			`bridge line: unknown key "profle" (known: secret, profile, seed, network)`},
		{"misspelt with defaults", map[string][]string{"secret": {testSecret}}, map[string][]string{"profle": {"cbr"}},
			`bridge line: unknown key "profle" (known: secret, profile, seed, network)`},
		{"twice", nil, map[string][]string{"secret": {testSecret}, "profile": {"cbr", "video"}},
			`bridge line: key "profile" given 2 times`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc, err := ClientFactory{Defaults: tt.defaults}.NewClient(tt.args)
			if tt.want == "" {
				if err != nil || cc == nil {
					t.Fatalf("NewClient: %v, %v", cc, err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("NewClient: %v; want %q", err, tt.want)
			}
		})
	}
}

// TestClientFactory_Values: the values of a bridge line reach the
// configuration, a request's own value wins over a default, a bad value
// is an error, and each profile is compiled once.
func TestClientFactory_Values(t *testing.T) {
	seed := strings.Repeat("01", 32)
	f := ClientFactory{Defaults: map[string][]string{"secret": {testSecret}, "profile": {"video"}}}
	cc, err := f.NewClient(map[string][]string{"profile": {"cbr"}, "seed": {seed}})
	if err != nil {
		t.Fatal(err)
	}
	if cc.Request.Profile != "cbr" || cc.Seed[0] != 1 || cc.Request.Seed != cc.Seed || cc.Shape == nil {
		t.Errorf("config %+v; want profile cbr and the seed in the request", cc)
	}
	again, err := f.NewClient(map[string][]string{"profile": {"cbr"}})
	if err != nil || again.Shape != cc.Shape {
		t.Errorf("profile cbr compiled twice (%p, %p) or %v", cc.Shape, again.Shape, err)
	}
	for args, want := range map[string]string{
		"secret=short": "bridgeauth: secret= wants 32 bytes",
		"secret=" + testSecret + " profile=/etc/passwd": `profile="/etc/passwd" is not a built-in profile`,
		"secret=" + testSecret + " seed=xyz":            "seed= wants 64 hex digits",
		"profile=cbr":                                   "missing secret=",
		"secret=" + testSecret + " profle=x":            `unknown key "profle"`,
	} {
		_, a, err := ParseBridgeLine(args)
		if err == nil {
			_, err = ClientFactory{}.NewClient(a)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want %q", args, err, want)
		}
	}
	// At start, the defaults may leave the secret to each request.
	if err := (ClientFactory{Defaults: map[string][]string{"profile": {"cbr"}}}).CheckDefaults(); err != nil {
		t.Errorf("CheckDefaults without a secret: %v", err)
	}
	if err := (ClientFactory{Defaults: map[string][]string{"secret": {"short"}}}).CheckDefaults(); err == nil {
		t.Error("CheckDefaults took a bad secret")
	}
}

// TestParseBridgeLine: a torrc line, a line without "Bridge bip324" and
// the fingerprint, and arguments alone.
func TestParseBridgeLine(t *testing.T) {
	const fp = "0123456789ABCDEF0123456789ABCDEF01234567"
	for _, tt := range []struct{ line, addr, err string }{
		{"Bridge bip324 192.0.2.1:8333 " + fp + " secret=" + testSecret + " profile=cbr", "192.0.2.1:8333", ""},
		{"192.0.2.1:8333 secret=" + testSecret, "192.0.2.1:8333", ""},
		{"secret=" + testSecret, "", ""},
		{"bridge:0 secret=" + testSecret, "", `"bridge:0" is not HOST:PORT`},
		{"192.0.2.1:8333 extra secret=" + testSecret, "", `unexpected "extra"`},
		{"192.0.2.1:8333 secret=a secret=b", "", `key "secret" given 2 times`},
	} {
		addr, args, err := ParseBridgeLine(tt.line)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: %v; want %q", tt.line, err, tt.err)
			}
			continue
		}
		if err != nil || addr != tt.addr || len(args["secret"]) != 1 || args["secret"][0] != testSecret {
			t.Errorf("%q: %q, %v, %v", tt.line, addr, args, err)
		}
	}
}

// TestManagedServerOptions: ServerTransportOptions takes profile, allow
// and node=HOST:PORT (or fallback=, its older name); anything else is an
// error naming the key.
func TestManagedServerOptions(t *testing.T) {
	tests := []struct {
		args map[string][]string
		want string // "" for success
	}{
		{map[string][]string{"profile": {"bitcoin"}, "allow": {"none,cbr"}, "fallback": {"127.0.0.1:8334"}}, ""},
		{map[string][]string{}, ""},
		{map[string][]string{"node": {"127.0.0.1:8334"}}, ""},
		{map[string][]string{"node": {"127.0.0.1:8334"}, "fallback": {"127.0.0.1:8335"}}, `ServerTransportOptions: node=127.0.0.1:8334 and fallback=127.0.0.1:8335 name different nodes`},
		{map[string][]string{"profle": {"cbr"}}, `ServerTransportOptions: unknown key "profle" (known: profile, allow, node, fallback)`},
		{map[string][]string{"fallback": {"nonsense"}}, `ServerTransportOptions: fallback=: "nonsense" is not HOST:PORT (missing port in address)`},
		{map[string][]string{"fallback": {""}}, `ServerTransportOptions: fallback=: "" is not HOST:PORT (missing port in address)`},
		{map[string][]string{"fallback": {"node:0"}}, `ServerTransportOptions: fallback=: "node:0" is not HOST:PORT (port "0", want 1..65535)`},
	}
	for _, tt := range tests {
		o, err := ParseServerOptions(tt.args)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%v: %v", tt.args, err)
			}
			n, _ := get(tt.args, "node")
			if f, ok := get(tt.args, "fallback"); ok {
				n = f
			}
			if o.Node != n {
				t.Errorf("%v: node %q", tt.args, o.Node)
			}
			continue
		}
		if err == nil || err.Error() != tt.want {
			t.Errorf("%v: %v; want %q", tt.args, err, tt.want)
		}
	}
}

// TestServerOptions_NewServer: the bridge keeps its secret and writes its
// bridge line in the state directory, and refuses an allow-list entry
// that is not a built-in.
func TestServerOptions_NewServer(t *testing.T) {
	dir := t.TempDir()
	srv, err := ServerOptions{Profile: "cbr", Allow: "none,cbr"}.NewServer(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	secret, err := LoadOrCreateSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	if srv.BridgeArgs() != "secret="+secret.Encode() || srv.Args()["secret"][0] != secret.Encode() {
		t.Errorf("BridgeArgs %q, Args %v; want the secret kept in the state directory", srv.BridgeArgs(), srv.Args())
	}
	if _, err := (ServerOptions{Allow: "none,nosuch"}).NewServer(dir, nil); err == nil || !strings.Contains(err.Error(), `"nosuch" is not a built-in`) {
		t.Errorf("allow=none,nosuch: %v", err)
	}
}

func TestCheckHostPort(t *testing.T) {
	for _, s := range []string{"127.0.0.1:8333", "[::1]:1", "node.example:65535", "localhost:18444"} {
		if err := CheckHostPort(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "nonsense", ":8333", "host:", "host:0", "host:65536", "host:http", "host:-1", "[::1", "a:b:c"} {
		if err := CheckHostPort(s); err == nil || !strings.Contains(err.Error(), "is not HOST:PORT") {
			t.Errorf("%q: %v", s, err)
		}
	}
}

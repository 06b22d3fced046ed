package tortest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Transport describes a pluggable transport binary to test. The zero
// values of the optional fields are right for a transport that, like
// obfs4proxy and bip324-pt, writes "<state>/<Name>_bridgeline.txt".
type Transport struct {
	// Name is the method name, as in torrc's ClientTransportPlugin and
	// Bridge lines and in TOR_PT_*_TRANSPORTS: "obfs4", "bip324".
	Name string
	// Binary is the path of the executable, started in managed mode.
	Binary string
	// Args are extra command-line arguments for Binary, on both sides.
	Args []string
	// ServerOptions are the server's per-transport options as "key=value"
	// (torrc's ServerTransportOptions, TOR_PT_SERVER_TRANSPORT_OPTIONS),
	// such as "iat-mode=1" for obfs4. None by default.
	ServerOptions []string
	// BridgeTorrc and ClientTorrc are extra torrc lines for the bridge's
	// and the client's tor.
	BridgeTorrc, ClientTorrc []string
	// BridgeArgs returns the arguments a client needs for this bridge
	// ("cert=... iat-mode=0", "secret=..."), read from the server's state
	// directory (TOR_PT_STATE_LOCATION; under tor, <DataDirectory>/pt_state)
	// once the server has reported its method. Nil means
	// ReadBridgeLineArgs(stateDir/<Name>_bridgeline.txt, Name).
	BridgeArgs func(stateDir string) ([]string, error)
}

// Bip324 returns the bip324 transport run from binary (a bip324-pt built
// by [BuildBip324]) with debug logging on, and with clientArgs added to the
// bridge line's arguments that its server writes (for example
// "profile=cbr").
func Bip324(binary string, clientArgs ...string) Transport {
	tr := Transport{Name: "bip324", Binary: binary, Args: []string{"--log-level", "debug"}}
	if len(clientArgs) > 0 {
		tr.BridgeArgs = func(stateDir string) ([]string, error) {
			args, err := ReadBridgeLineArgs(filepath.Join(stateDir, "bip324_bridgeline.txt"), "bip324")
			return append(args, clientArgs...), err
		}
	}
	return tr
}

// bridgeArgs returns the client's arguments for a server whose state
// directory is stateDir.
func (tr Transport) bridgeArgs(stateDir string) ([]string, error) {
	if tr.BridgeArgs != nil {
		return tr.BridgeArgs(stateDir)
	}
	return ReadBridgeLineArgs(filepath.Join(stateDir, tr.Name+"_bridgeline.txt"), tr.Name)
}

// pluginLine returns the value of a ClientTransportPlugin or
// ServerTransportPlugin torrc option for tr.
func (tr Transport) pluginLine() string {
	return strings.Join(append([]string{tr.Name, "exec", tr.Binary}, tr.Args...), " ")
}

// ReadBridgeLineArgs reads a bridge-line file that a transport server
// writes into its state directory and returns the arguments of its
// "Bridge <name> ..." line: the key=value fields after the address and
// fingerprint. Both obfs4proxy's file
//
//	Bridge obfs4 <IP ADDRESS>:<PORT> <FINGERPRINT> cert=... iat-mode=0
//
// and bip324-pt's
//
//	Bridge bip324 <IP>:<PORT> <FINGERPRINT> secret=...
//
// have placeholders where the address and fingerprint go, so the arguments
// are told apart by their '=' (an address or fingerprint, placeholder or
// real, has none). Lines starting with '#' are comments.
func ReadBridgeLineArgs(path, name string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tortest: bridge line: %w", err)
	}
	return ParseBridgeLineArgs(b, name)
}

// ParseBridgeLineArgs is [ReadBridgeLineArgs] on the file's contents.
func ParseBridgeLineArgs(file []byte, name string) ([]string, error) {
	sc := bufio.NewScanner(bytes.NewReader(file))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "Bridge" || f[1] != name {
			continue
		}
		var args []string
		for _, field := range f[2:] {
			if strings.Contains(field, "=") {
				args = append(args, field)
			} else if len(args) > 0 {
				return nil, fmt.Errorf("tortest: bridge line: %q after the arguments", field)
			}
		}
		return args, nil
	}
	return nil, fmt.Errorf("tortest: bridge line: no \"Bridge %s\" line", name)
}

// SOCKSAuth encodes a bridge's arguments (key=value strings) for a managed
// client's SOCKS5 username/password authentication, as pt-spec 3.5 says:
// "k=v;k=v" with '\', ';' and '=' in values escaped by '\', the first 255
// bytes in the username and the rest in the password, and a password of
// one NUL byte when everything fits in the username (RFC 1929 forbids an
// empty one).
func SOCKSAuth(args []string) (user, pass []byte) {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(';')
		}
		k, v, _ := strings.Cut(a, "=")
		b.WriteString(k)
		b.WriteByte('=')
		for _, c := range []byte(v) {
			if c == '\\' || c == ';' || c == '=' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
	}
	s := []byte(b.String())
	if len(s) <= 255 {
		return s, []byte{0}
	}
	return s[:255], s[255:]
}

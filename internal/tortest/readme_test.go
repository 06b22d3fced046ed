package tortest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bip324pt/bip324-pt/internal/bridge"
	"github.com/bip324pt/bip324-pt/internal/tortest"
)

// readmeBlock returns the first indented block (a code block) after the
// README line starting with after, unindented.
func readmeBlock(t *testing.T, after string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case !in && strings.HasPrefix(line, after):
			in = true
		case in && strings.HasPrefix(line, "    "):
			out = append(out, strings.TrimPrefix(line, "    "))
		case in && len(out) > 0:
			return out
		}
	}
	t.Fatalf("README.md has no line starting %q", after)
	return nil
}

// TestREADME_Torrcs: the bridge and client torrcs of README.md, as
// pasted: tor accepts them (tor --verify-config), and bip324-pt accepts
// their ServerTransportOptions and Bridge line.
func TestREADME_Torrcs(t *testing.T) {
	tor := tortest.LookPath(t, "tor")
	for _, tc := range []struct{ name, after string }{
		{"bridge", "A bridge's torrc"},
		{"client", "(bip324-pt also writes it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := readmeBlock(t, tc.after)
			dir := t.TempDir()
			torrc := filepath.Join(dir, "torrc")
			text := strings.Join(lines, "\n") + "\nDataDirectory " + filepath.Join(dir, "data") + "\n"
			if err := os.WriteFile(torrc, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(tor, "--verify-config", "-f", torrc).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Configuration was valid") {
				t.Fatalf("tor --verify-config on README's %s torrc: %v\n%s\n%s", tc.name, err, text, out)
			}
			checked := 0
			for _, l := range lines {
				if opts, ok := strings.CutPrefix(l, "ServerTransportOptions bip324 "); ok {
					args := map[string][]string{}
					for _, kv := range strings.Fields(opts) {
						k, v, _ := strings.Cut(kv, "=")
						args[k] = append(args[k], v)
					}
					if _, err := bridge.ParseServerOptions(args); err != nil {
						t.Errorf("%q: %v", l, err)
					}
					checked++
				}
				if line, ok := strings.CutPrefix(l, "Bridge "); ok {
					_, args, err := bridge.ParseBridgeLine(line)
					if err == nil {
						_, err = bridge.ClientFactory{}.NewClient(args)
					}
					if err != nil {
						t.Errorf("%q: %v", l, err)
					}
					checked++
				}
			}
			if checked == 0 {
				t.Errorf("README's %s torrc has no ServerTransportOptions or Bridge line to check:\n%s", tc.name, text)
			}
		})
	}
}

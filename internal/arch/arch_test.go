package arch

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/bip324pt/bip324-pt/"

// TestImportArrows checks who may import whom:
//
//	cmd/bip324-pt ─► ptspec ─► goptlib
//	cmd/bip324-pt ─► profiles ─► shaper ─► v2core ─► x/crypto, btcec/v2
//	profiles, shaper ─► padding, schedule ─► std only
//	eval ─► any of ours; only cmd imports eval; nothing imports cmd
func TestImportArrows(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{} // our package -> our packages it imports
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, mod)
		deps[name] = nil
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, mod) {
				deps[name] = append(deps[name], strings.TrimPrefix(imp, mod))
			}
			if imp == "math/rand" {
				t.Errorf("%s imports math/rand; use math/rand/v2", name)
			}
		}
	}
	if len(deps) < 10 {
		t.Fatalf("go list found only %d packages", len(deps))
	}
	forbidden := map[string][]string{
		"v2core":   {"shaper", "profiles", "padding", "schedule", "ptspec", "eval"},
		"padding":  {""}, // nothing of ours
		"schedule": {""},
		"shaper":   {"profiles", "ptspec", "eval"},
		"profiles": {"ptspec", "eval"},
		"ptspec":   {"shaper", "profiles", "v2core", "eval"},
	}
	for pkg, imports := range deps {
		for _, imp := range imports {
			if imp == "cmd/bip324-pt" {
				t.Errorf("%s imports cmd", pkg)
			}
			if imp == "eval" && !strings.HasPrefix(pkg, "cmd/") {
				t.Errorf("%s imports eval; only cmd may", pkg)
			}
			for _, bad := range forbidden[pkg] {
				if bad == "" || imp == bad || strings.HasPrefix(imp, bad+"/") {
					t.Errorf("%s imports %s", pkg, imp)
				}
			}
		}
	}
}

// TestLeaves: padding and schedule are std-only leaves of pure maths, and
// ptspec imports goptlib and nothing else outside the standard library.
func TestLeaves(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"padding", mod+"schedule", mod+"ptspec").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		t.Fatalf("go list gave %d packages", len(lines))
	}
	for _, line := range lines {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], mod)
		for _, imp := range f[1:] {
			first, _, _ := strings.Cut(imp, "/")
			std := !strings.Contains(first, ".")
			if std && imp != "math/rand" {
				continue
			}
			if pkg == "ptspec" && strings.HasPrefix(imp, "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib") {
				continue
			}
			t.Errorf("%s imports %s", pkg, imp)
		}
	}
}

package arch

import (
	"encoding/json"
	"maps"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/bip324pt/bip324-pt/"

// goptlib is Tor's pluggable-transport library, which only ptspec and cmd
// import.
const goptlib = "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"

// pkg is what the tests read from go list about one of our packages.
type pkg struct {
	ImportPath   string
	Imports      []string // of its non-test files
	TestImports  []string // of its _test.go files in the package
	XTestImports []string // of its _test.go files in package x_test
}

// name returns the package's path inside the module ("" for the root).
func (p pkg) name() string { return strings.TrimPrefix(p.ImportPath, mod) }

// listPackages runs go list over the module. It lists imports without
// compiling, so it works while another package does not build.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// ours returns the imports of ours in imps, as paths inside the module.
func ours(imps []string) []string {
	var out []string
	for _, imp := range imps {
		if strings.HasPrefix(imp, mod) {
			out = append(out, strings.TrimPrefix(imp, mod))
		}
	}
	return out
}

// under reports whether name is pkg or a package below it.
func under(name, pkg string) bool { return name == pkg || strings.HasPrefix(name, pkg+"/") }

// isStd reports whether imp is in the standard library (no dot in its
// first element).
func isStd(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return !strings.Contains(first, ".")
}

// testSupport reports whether the package named (inside the module) is a
// test-support package, the only kind of package whose non-test files may
// import "testing": its last element ends in "test", as the standard
// library's httptest and iotest do (internal/node/nodetest,
// internal/tortest, v2core/v2coretest), or is "testutil"
// (internal/testutil). Such a package is for tests only: no other
// package's non-test files may import it, so "testing" never reaches the
// command.
func testSupport(name string) bool {
	base := path.Base(name)
	return strings.HasSuffix(base, "test") || base == "testutil"
}

// evalLeaves are the packages under eval that any package's tests may
// import: each imports nothing of ours but what is listed.
var evalLeaves = map[string][]string{
	"eval/wiretap": {"schedule"}, // its events are schedule.TraceEvent
	"eval/fet":     nil,
	"eval/measure": nil,
}

// TestImportArrows checks who may import whom:
//
//	cmd/bip324-pt ─► ptspec ─► goptlib, internal/copyloop
//	cmd/bip324-pt ─► profiles ─► shaper ─► v2core ─► x/crypto, btcec/v2
//	profiles, shaper ─► padding, schedule ─► std only
//	ptspec, internal/bridge ─► internal/copyloop ─► std only
//	eval ─► any of ours; only cmd imports eval; nothing imports cmd
//
// goptlib is imported by ptspec and cmd only (internal/bridge takes a
// bridge line's arguments as a plain map), and, for the eval tree: outside eval and cmd, no non-test file imports
// eval or a package under it, and tests import only the eval leaves
// (eval/wiretap, eval/fet, eval/measure).
func TestImportArrows(t *testing.T) {
	forbidden := map[string][]string{
		"v2core":            {""}, // BIP324 only: shaping comes in through its own Hooks
		"padding":           {""}, // nothing of ours
		"schedule":          {""},
		"internal/copyloop": {""}, // the one copy loop: std only
		"shaper":            {"profiles", "ptspec", "eval"},
		"profiles":          {"ptspec", "eval"},
		"ptspec":            {"shaper", "profiles", "v2core", "eval"},
	}
	for _, p := range listPackages(t) {
		name := p.name()
		for _, imp := range p.Imports {
			if imp == "math/rand" {
				t.Errorf("%s imports math/rand; use math/rand/v2", name)
			}
			if strings.HasPrefix(imp, goptlib) && name != "ptspec" && !under(name, "cmd") {
				t.Errorf("%s imports goptlib; only ptspec (the Tor PT glue) and cmd may", name)
			}
		}
		for _, imp := range ours(p.Imports) {
			if imp == "cmd/bip324-pt" {
				t.Errorf("%s imports cmd; nothing may", name)
			}
			if under(imp, "eval") && !under(name, "eval") && !under(name, "cmd") {
				t.Errorf("%s imports %s; only cmd and eval may import eval's packages (tests may import the leaves %v)", name, imp, slices.Sorted(maps.Keys(evalLeaves)))
			}
			for _, bad := range forbidden[name] {
				switch {
				case bad == "":
					t.Errorf("%s imports %s; it must import nothing of ours", name, imp)
				case under(imp, bad):
					t.Errorf("%s imports %s; it must not import %s", name, imp, bad)
				}
			}
		}
		if under(name, "eval") || under(name, "cmd") {
			continue
		}
		for _, imp := range ours(append(slices.Clone(p.TestImports), p.XTestImports...)) {
			if under(imp, "eval") {
				if _, leaf := evalLeaves[imp]; !leaf {
					t.Errorf("%s's tests import %s; outside eval and cmd, tests may import only the eval leaves %v", name, imp, slices.Sorted(maps.Keys(evalLeaves)))
				}
			}
		}
	}
}

// TestLeaves: padding and schedule are std-only leaves of pure maths,
// internal/copyloop is a std-only leaf, ptspec imports goptlib and
// internal/copyloop and nothing else outside the standard library, and
// the eval leaves import the standard library and of ours only what
// evalLeaves allows them.
func TestLeaves(t *testing.T) {
	pkgs := map[string]pkg{}
	for _, p := range listPackages(t) {
		pkgs[p.name()] = p
	}
	check := func(name string, allowed func(imp string) bool, rule string) {
		p, ok := pkgs[name]
		if !ok {
			t.Errorf("%s: no such package", name)
			return
		}
		for _, imp := range p.Imports {
			if imp == "math/rand" || !allowed(imp) {
				t.Errorf("%s imports %s; %s", name, imp, rule)
			}
		}
	}
	for _, name := range []string{"padding", "schedule", "internal/copyloop"} {
		check(name, isStd, "it must import only the standard library")
	}
	check("ptspec", func(imp string) bool {
		return isStd(imp) || strings.HasPrefix(imp, goptlib) ||
			imp == mod+"internal/copyloop"
	}, "it must import only the standard library, goptlib and internal/copyloop (a std-only leaf)")
	for name, may := range evalLeaves {
		rule := "an eval leaf must import only the standard library (not testing) and nothing of ours"
		if len(may) > 0 {
			rule = "an eval leaf must import only the standard library (not testing) and, of ours, only " + strings.Join(may, ", ")
		}
		check(name, func(imp string) bool {
			return isStd(imp) && imp != "testing" || slices.Contains(may, strings.TrimPrefix(imp, mod))
		}, rule)
	}
}

// TestTestingOnlyInTests: "testing" is imported only by _test.go files
// and by test-support packages (see testSupport), and no other package's
// non-test files import a test-support package, so test scaffolding never
// reaches the command. Measurement code that BENCHMARKS.md relies on lives
// in eval and returns errors instead of taking a testing.TB.
func TestTestingOnlyInTests(t *testing.T) {
	for _, p := range listPackages(t) {
		name := p.name()
		if testSupport(name) {
			continue
		}
		if slices.Contains(p.Imports, "testing") {
			t.Errorf("%s imports testing in a non-test file; only _test.go files and test-support packages (named *test or testutil) may: move the code into a _test.go file or a sibling %stest package", name, path.Base(name))
		}
		for _, imp := range ours(p.Imports) {
			if testSupport(imp) {
				t.Errorf("%s imports the test-support package %s in a non-test file; only tests and other test-support packages may", name, imp)
			}
		}
	}
}

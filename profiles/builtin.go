package profiles

import (
	"embed"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed builtin/*.toml examples/*.toml
var builtinFS embed.FS

// ExamplePrefix names an example profile of profiles/examples in Load,
// built into the binary ("example:bitcoin-peer"), so that tools find it
// wherever they run.
const ExamplePrefix = "example:"

// Builtins returns the names of the built-in profiles, sorted.
func Builtins() []string {
	entries, err := builtinFS.ReadDir("builtin")
	if err != nil {
		panic("profiles: embedded profiles missing: " + err.Error())
	}
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".toml"))
	}
	sort.Strings(names)
	return names
}

// BuiltinSource returns the file text of a built-in profile.
func BuiltinSource(name string) ([]byte, bool) {
	b, err := builtinFS.ReadFile("builtin/" + name + ".toml")
	return b, err == nil
}

// Load returns the built-in profile called nameOrPath, the example
// profile named "example:NAME", or else parses the file at that path.
func Load(nameOrPath string) (*Profile, error) {
	if src, ok := BuiltinSource(nameOrPath); ok {
		return Parse(nameOrPath+" (built-in)", src)
	}
	if name, ok := strings.CutPrefix(nameOrPath, ExamplePrefix); ok {
		src, err := builtinFS.ReadFile("examples/" + name + ".toml")
		if err != nil || strings.ContainsAny(name, `/\.`) {
			return nil, fmt.Errorf("profiles: no example profile %q (see profiles/examples)", name)
		}
		return Parse(nameOrPath+" (example)", src)
	}
	if !strings.ContainsAny(nameOrPath, `/\.`) {
		return nil, fmt.Errorf("profiles: no built-in profile %q (built-ins: %s; or give a file path)", nameOrPath, strings.Join(Builtins(), ", "))
	}
	f, err := os.Open(nameOrPath)
	if err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	return parse(nameOrPath, filepath.Dir(nameOrPath), src)
}

package schedule

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports_stdOnly checks the layering rule: this package is a leaf
// that imports only the standard library (STYLE.md, section 1), and uses
// math/rand/v2, never math/rand.
func TestImports_stdOnly(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s, want the standard library only", name, path)
			}
			if path == "math/rand" {
				t.Errorf("%s imports math/rand, want math/rand/v2", name)
			}
		}
	}
}

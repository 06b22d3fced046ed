package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

const versionHelp = `Usage: bip324-pt version (or bip324-pt --version)

Print the version of this binary: its module version (vX.Y.Z from
"go install ...@vX.Y.Z"; from a git checkout, Go 1.24 and later record a
pseudo-version naming the commit, with +dirty if the checkout had
changes); else the commit the binary was built from, with -dirty if the
checkout had changes; else "devel" (a build without version control
information, such as "go build -buildvcs=false").
`

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if isHelp(args[0]) {
			fmt.Fprint(stdout, versionHelp)
			return exitOK
		}
		return usageError(stderr, "version", "unexpected argument %q", args[0])
	}
	fmt.Fprintf(stdout, "bip324-pt %s\n", version())
	return exitOK
}

// isVersion reports whether s asks for the version as a flag.
func isVersion(s string) bool {
	return s == "--version" || s == "-version"
}

// version returns this binary's version, as versionOf finds it in the
// build information.
func version() string {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(bi)
}

// versionOf returns the main module's version; for a build from a
// checkout (version "(devel)" or none), the VCS revision, shortened as
// in a Go pseudo-version, with "-dirty" if the checkout was modified;
// and "devel" when the build recorded neither (go build -buildvcs=false,
// go run, tests).
func versionOf(bi *debug.BuildInfo) string {
	if bi == nil {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

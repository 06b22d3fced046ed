package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bip324pt/bip324-pt/profiles"
)

// TestProfileCheck_KindKeys: a [schedule] key of another kind fails the
// check with file, line and field; every built-in, as "profile show"
// prints it, passes.
func TestProfileCheck_KindKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mixed.toml")
	src := "name = \"mixed\"\n[schedule]\nkind = \"constant-rate\"\ncell = 1448\nladder = [365000, 730000]\n"
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runArgs(t, "profile", "check", file)
	want := file + `:5: schedule.ladder: a key of video, not of kind "constant-rate" (which takes cell, interval, idle_stop)` + "\n"
	if code != exitFailure || out != "" || errs != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errs, want)
	}

	for _, name := range profiles.Builtins() {
		code, src, errs := runArgs(t, "profile", "show", name)
		if code != exitOK {
			t.Fatalf("show %s: exit %d, %s", name, code, errs)
		}
		file := filepath.Join(t.TempDir(), name+".toml")
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, out, errs := runArgs(t, "profile", "check", file); code != exitOK || !strings.Contains(out, ": ok (profile") {
			t.Errorf("check %s: exit %d, stdout %q, stderr %q", name, code, out, errs)
		}
	}
}

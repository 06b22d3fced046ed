package main

import (
	"bytes"
	"flag"
	"regexp"
	"strings"
	"testing"
)

// TestRun_HelpGNUFlags: every command's help lists its flags GNU-style,
// "--name", as the README writes them, never "-name".
func TestRun_HelpGNUFlags(t *testing.T) {
	single := regexp.MustCompile(`(?m)^  -[^-]`)
	for _, c := range commands {
		args := append(strings.Fields(c.name), "--help")
		code, out, _ := runArgs(t, args...)
		if code != exitOK || single.MatchString(out) {
			t.Errorf("%q: exit %d; a flag without --:\n%s", args, code, out)
		}
	}
	for _, args := range [][]string{{"client", "--help"}, {"server", "--help"}, {"node", "ping", "--help"}} {
		if _, out, _ := runArgs(t, args...); !strings.Contains(out, "\n  --log-level level\n") {
			t.Errorf("%q: no \"  --log-level level\" line:\n%s", args, out)
		}
	}
}

// TestParseFlags: flags before and after the positional arguments, "--"
// ending the flags, and a switch that takes the argument after it.
func TestParseFlags(t *testing.T) {
	newFS := func() (*flag.FlagSet, *string, *forwardFlag) {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		s := fs.String("s", "", "")
		var fwd forwardFlag
		fs.Var(&fwd, "forward", "")
		return fs, s, &fwd
	}
	for _, tt := range []struct {
		args     []string
		pos      []string
		s, fwd   string
		wantCode int // -1: not done
	}{
		{[]string{"a", "--s", "x", "b"}, []string{"a", "b"}, "x", "false", -1},
		{[]string{"--s=x", "--", "--s", "y"}, []string{"--s", "y"}, "x", "false", -1},
		{[]string{"--forward", "127.0.0.1:1", "a"}, []string{"a"}, "", "127.0.0.1:1", -1},
		{[]string{"a", "--forward"}, []string{"a"}, "", "true", -1},
		{[]string{"--forward=127.0.0.1:2", "a"}, []string{"a"}, "", "127.0.0.1:2", -1},
		{[]string{"--forward", "nonsense"}, nil, "", "", exitUsage},
		{[]string{"a", "--nope"}, nil, "", "", exitUsage},
		{[]string{"a", "-h"}, nil, "", "", exitOK},
	} {
		fs, s, fwd := newFS()
		var out, errb bytes.Buffer
		pos, code, done := parseFlags(fs, tt.args, &out, &errb)
		if tt.wantCode >= 0 {
			if !done || code != tt.wantCode {
				t.Errorf("%q: done %v, code %d; want code %d", tt.args, done, code, tt.wantCode)
			}
			continue
		}
		if done || strings.Join(pos, " ") != strings.Join(tt.pos, " ") || *s != tt.s || fwd.String() != tt.fwd {
			t.Errorf("%q: done %v, pos %q, s %q, forward %q; want %q, %q, %q (stderr %q)", tt.args, done, pos, *s, fwd, tt.pos, tt.s, tt.fwd, errb.String())
		}
	}
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/bip324pt/bip324-pt/profiles"
)

const profileHelp = `Usage:
  bip324-pt profile list          the built-in profiles, one a line with its description
  bip324-pt profile show NAME     print a built-in profile's file (a starting point to copy)
  bip324-pt profile check FILE    validate a profile file; errors name the file, line and field

docs/profiles.md describes every field.
`

// profileArgs parses the arguments of "profile NAME" (no flags; --help
// prints profileHelp) and returns the positional ones.
func profileArgs(name string, args []string, stdout, stderr io.Writer) (pos []string, code int, done bool) {
	fs := flag.NewFlagSet("profile "+name, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), profileHelp) }
	return parseFlags(fs, args, stdout, stderr)
}

func runProfileList(_ context.Context, args []string, stdout, stderr io.Writer) int {
	pos, code, done := profileArgs("list", args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, "profile list", "unexpected argument %q", pos[0])
	}
	for _, name := range profiles.Builtins() {
		p, err := profiles.Load(name)
		if err != nil {
			fmt.Fprintf(stderr, "bip324-pt: profile list: %v\n", err)
			return exitFailure
		}
		fmt.Fprintf(stdout, "%-8s %s\n", name, p.Description)
	}
	return exitOK
}

func runProfileShow(_ context.Context, args []string, stdout, stderr io.Writer) int {
	pos, code, done := profileArgs("show", args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) != 1 {
		return usageError(stderr, "profile show", "want one profile name")
	}
	src, ok := profiles.BuiltinSource(pos[0])
	if !ok {
		fmt.Fprintf(stderr, "bip324-pt: profile show: no built-in profile %q (see \"bip324-pt profile list\")\n", pos[0])
		return exitFailure
	}
	stdout.Write(src)
	return exitOK
}

func runProfileCheck(_ context.Context, args []string, stdout, stderr io.Writer) int {
	pos, code, done := profileArgs("check", args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) != 1 {
		return usageError(stderr, "profile check", "want one file")
	}
	p, err := profiles.Load(pos[0])
	if err != nil {
		var pe *profiles.Error
		if errors.As(err, &pe) {
			fmt.Fprintln(stderr, pe)
		} else {
			fmt.Fprintf(stderr, "bip324-pt: profile check: %v\n", err)
		}
		return exitFailure
	}
	fmt.Fprintf(stdout, "%s: ok (profile %q, schedule %s)\n", pos[0], p.Name, orImmediate(p.Schedule.Kind))
	return exitOK
}

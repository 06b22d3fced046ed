package main

import (
	"context"
	"errors"
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

func runProfileList(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if isHelp(args[0]) {
			fmt.Fprint(stdout, profileHelp)
			return exitOK
		}
		fmt.Fprintf(stderr, "bip324-pt: profile list: unexpected argument %q\n", args[0])
		return exitUsage
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
	if len(args) != 1 || isHelp(args[0]) {
		if len(args) == 1 {
			fmt.Fprint(stdout, profileHelp)
			return exitOK
		}
		fmt.Fprint(stderr, "bip324-pt: profile show: want one profile name\n")
		return exitUsage
	}
	src, ok := profiles.BuiltinSource(args[0])
	if !ok {
		fmt.Fprintf(stderr, "bip324-pt: profile show: no built-in profile %q (see \"bip324-pt profile list\")\n", args[0])
		return exitFailure
	}
	stdout.Write(src)
	return exitOK
}

func runProfileCheck(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || isHelp(args[0]) {
		if len(args) == 1 {
			fmt.Fprint(stdout, profileHelp)
			return exitOK
		}
		fmt.Fprint(stderr, "bip324-pt: profile check: want one file\n")
		return exitUsage
	}
	p, err := profiles.Load(args[0])
	if err != nil {
		var pe *profiles.Error
		if errors.As(err, &pe) {
			fmt.Fprintln(stderr, pe)
		} else {
			fmt.Fprintf(stderr, "bip324-pt: profile check: %v\n", err)
		}
		return exitFailure
	}
	fmt.Fprintf(stdout, "%s: ok (profile %q, schedule %s)\n", args[0], p.Name, orImmediate(p.Schedule.Kind))
	return exitOK
}

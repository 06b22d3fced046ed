package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"
)

// The keys bip324-pt reads, in the order errors list them. Every other
// key is refused, so that a misspelt setting is an error rather than a
// connection that silently runs without it.
var (
	// bridgeLineKeys are a bridge line's: what tor passes in each SOCKS
	// request, and the client's --bridge.
	bridgeLineKeys = []string{"secret", "profile", "seed"}
	// serverOptionKeys are a managed bridge's ServerTransportOptions.
	serverOptionKeys = []string{"profile", "allow", "fallback"}
)

// checkKeys returns an error naming the first key of args, in sorted
// order, that is not in known or that is given more than once.
func checkKeys(args pt.Args, known []string) error {
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(known, k) {
			return fmt.Errorf("unknown key %q (known: %s)", k, strings.Join(known, ", "))
		}
		if len(args[k]) > 1 {
			return fmt.Errorf("key %q given %d times", k, len(args[k]))
		}
	}
	return nil
}

// checkHostPort checks that s is HOST:PORT with a host and a port in
// 1..65535, the form of --forward, --fallback, fallback= and a bridge's
// address.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return fmt.Errorf("%q is not HOST:PORT (%s)", s, ae.Err)
		}
		return fmt.Errorf("%q is not HOST:PORT", s)
	}
	if host == "" {
		return fmt.Errorf("%q is not HOST:PORT (no host)", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%q is not HOST:PORT (port %q, want 1..65535)", s, port)
	}
	return nil
}

// usageError reports a usage error of the command name on stderr, with a
// pointer to its help, and returns exitUsage.
func usageError(stderr io.Writer, name, format string, a ...any) int {
	fmt.Fprintf(stderr, "bip324-pt: %s: %s\n", name, fmt.Sprintf(format, a...))
	fmt.Fprintf(stderr, "Run \"bip324-pt %s --help\" for usage.\n", name)
	return exitUsage
}

// parseFlags parses args with fs, whose Usage prints the command's help
// to fs.Output(). --help prints the help once, to stdout; a bad flag is a
// usage error on stderr. done says the command should return code.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	help := fs.Usage
	// The flag package would print the help itself, to fs.Output(), on
	// --help and on every error; we print it only when asked, to stdout.
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = help
	if err == flag.ErrHelp {
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK, true
	}
	fs.SetOutput(stderr)
	if err != nil {
		return usageError(stderr, fs.Name(), "%v", err), true
	}
	return 0, false
}

// Command bip324-pt is a traffic-shaping pluggable transport whose wire
// format is BIP324, and a toolbox for Bitcoin nodes that speak it.
//
// Run "bip324-pt help" for the subcommands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/bip324pt/bip324-pt/ptspec"
)

// command is one subcommand. Its name may have several words ("node
// ping"); run gets the arguments after them and returns the exit status.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands in the order help prints them. A new
// subcommand adds its entry here, from its own file.
var commands = []command{
	{name: "client", summary: "run a bip324-pt client without tor: SOCKS5 or a fixed forward through a bridge", run: runClient},
	{name: "server", summary: "run a bip324-pt bridge without tor, forwarding to HOST:PORT", run: runServer},
	{name: "demo", summary: "run a shaped tunnel on loopback with a built-in workload and show the wire", run: runDemo},
	{name: "profile list", summary: "list the built-in shaping profiles", run: runProfileList},
	{name: "profile show", summary: "print a built-in profile's file, a starting point to copy", run: runProfileShow},
	{name: "profile check", summary: "validate a profile file", run: runProfileCheck},
	{name: "node ping", summary: "check a Bitcoin node: v2 handshake, version, ping; print the session id", run: runNodePing},
	{name: "version", summary: "print the version of bip324-pt (also: --version)", run: runVersion},
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches args to a subcommand and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// --version answers before anything else, as obfs4proxy's -version.
	if len(args) > 0 && isVersion(args[0]) {
		return runVersion(ctx, args[1:], stdout, stderr)
	}
	// With tor's TOR_PT_* variables, bip324-pt is tor's managed transport,
	// like obfs4proxy: no subcommand, only flags.
	if ptspec.Managed() && (len(args) == 0 || strings.HasPrefix(args[0], "-") && !isHelp(args[0])) {
		return runManaged(ctx, args, stdout, stderr)
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, "bip324-pt: no subcommand")
		usage(stderr)
		return exitUsage
	}
	if isHelp(args[0]) {
		usage(stdout)
		return exitOK
	}
	// The longest command name that prefixes args wins.
	var best *command
	bestWords := 0
	for i := range commands {
		words := strings.Fields(commands[i].name)
		if len(words) > len(args) || len(words) <= bestWords {
			continue
		}
		match := true
		for j, w := range words {
			if args[j] != w {
				match = false
				break
			}
		}
		if match {
			best, bestWords = &commands[i], len(words)
		}
	}
	if best != nil {
		return best.run(ctx, args[bestWords:], stdout, stderr)
	}
	// A group name alone, or with help, lists the group.
	if isGroup(args[0]) && (len(args) == 1 || isHelp(args[1])) {
		if len(args) == 1 {
			fmt.Fprintf(stderr, "bip324-pt: %s: no subcommand\n", args[0])
			usage(stderr)
			return exitUsage
		}
		usage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "bip324-pt: unknown subcommand %q\n", strings.Join(args[:min(len(args), 2)], " "))
	usage(stderr)
	return exitUsage
}

func isHelp(s string) bool {
	return s == "help" || s == "-h" || s == "--help" || s == "-help"
}

// isGroup reports whether s is the first word of a multi-word command.
func isGroup(s string) bool {
	for _, c := range commands {
		if words := strings.Fields(c.name); len(words) > 1 && words[0] == s {
			return true
		}
	}
	return false
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: bip324-pt <command> [flags] [arguments]

bip324-pt speaks BIP324, Bitcoin's encrypted v2 P2P transport.

Commands:
`)
	width := 0
	for _, c := range commands {
		width = max(width, len(c.name))
	}
	for _, c := range commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "bip324-pt <command> --help" for a command's flags.

Managed mode: started by tor (ClientTransportPlugin or
ServerTransportPlugin bip324 exec /usr/local/bin/bip324-pt), with tor's
TOR_PT_* variables set, bip324-pt takes no subcommand, only flags:
--log-level LEVEL (the log is <state dir>/bip324-pt.log), --unsafe-logging,
--stats-interval, --metrics ADDR and --drain. "bip324-pt --help" with the
TOR_PT_* variables set lists them.

Signals (server, client, managed mode): SIGTERM and SIGINT stop accepting,
let open connections finish for --drain, then exit 0; SIGHUP reopens the
log file and reloads the default profile and allow-list, and never exits;
SIGUSR1 logs a "stats" line.
`)
}

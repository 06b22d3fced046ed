package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/bip324pt/bip324-pt/internal/bridge"
)

// usageError reports a usage error of the command name on stderr, with a
// pointer to its help, and returns exitUsage. An empty name is the
// command itself (managed mode).
func usageError(stderr io.Writer, name, format string, a ...any) int {
	cmd, prefix := "bip324-pt", "bip324-pt: "
	if name != "" {
		cmd, prefix = cmd+" "+name, prefix+name+": "
	}
	fmt.Fprintf(stderr, "%s%s\n", prefix, fmt.Sprintf(format, a...))
	fmt.Fprintf(stderr, "Run \"%s --help\" for usage.\n", cmd)
	return exitUsage
}

// parseFlags parses args with fs, the one way every command parses its
// flags: GNU-style, flags may come before and after the positional
// arguments, which it returns, and after "--" everything is positional.
// fs.Usage prints the command's help to fs.Output() (with printFlags).
// --help prints the help once, to stdout; a bad flag is a usage error on
// stderr. done says the command should return code.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (pos []string, code int, done bool) {
	help := fs.Usage
	// The flag package would print the help itself, to fs.Output(), on
	// --help and on every error; we print it only when asked, to stdout.
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	defer func() {
		fs.Usage = help
		fs.SetOutput(stderr)
	}()
	for {
		err := fs.Parse(args)
		if err == flag.ErrHelp {
			fs.SetOutput(stdout)
			help()
			return nil, exitOK, true
		}
		if err != nil {
			return nil, usageError(stderr, fs.Name(), "%v", err), true
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, false
		}
		used := len(args) - len(rest)
		if used > 0 && args[used-1] == "--" {
			return append(pos, rest...), 0, false
		}
		// "--forward HOST:PORT": a switch that may take the next
		// argument as its value.
		if used > 0 && !strings.Contains(args[used-1], "=") {
			name := strings.TrimLeft(args[used-1], "-")
			if f := fs.Lookup(name); f != nil {
				if v, ok := f.Value.(optionalValue); ok && v.TakesArg() {
					if err := v.Set(rest[0]); err != nil {
						return nil, usageError(stderr, fs.Name(), "--%s: %v", name, err), true
					}
					args = rest[1:]
					continue
				}
			}
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// optionalValue is a boolean flag that may take a value, either as
// --name=VALUE or as the argument after a bare --name.
type optionalValue interface {
	flag.Value
	IsBoolFlag() bool
	// TakesArg reports whether the flag, just given bare, takes the
	// next argument as its value.
	TakesArg() bool
}

// printFlags prints fs's flags to fs.Output() as fs.PrintDefaults does,
// but GNU-style, "--name", as the README and the help texts write them.
func printFlags(fs *flag.FlagSet) {
	var b strings.Builder
	out := fs.Output()
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(out)
	fmt.Fprint(out, strings.ReplaceAll("\n"+b.String(), "\n  -", "\n  --")[1:])
}

// parseLevel maps --log-level to a slog level.
func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// forwardFlag is the client's --forward: a switch, which may also carry
// the bridge's address (--forward=HOST:PORT, or HOST:PORT after it).
type forwardFlag struct {
	on   bool
	addr string
}

func (f *forwardFlag) String() string {
	if f == nil || !f.on {
		return "false"
	}
	if f.addr != "" {
		return f.addr
	}
	return "true"
}

func (f *forwardFlag) Set(s string) error {
	switch s {
	case "true":
		f.on = true
		return nil
	case "false":
		f.on = false
		return nil
	}
	if err := bridge.CheckHostPort(s); err != nil {
		return err
	}
	f.on, f.addr = true, s
	return nil
}

func (f *forwardFlag) IsBoolFlag() bool { return true }

// TakesArg: a bare --forward takes HOST:PORT after it, unless it has an
// address already.
func (f *forwardFlag) TakesArg() bool { return f.on && f.addr == "" }

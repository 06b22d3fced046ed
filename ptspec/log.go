package ptspec

import (
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"
)

// publicArgs are the argument keys whose values may be logged. Every other
// value is redacted: secret= is the bridge's key, and a key added later is
// safer hidden until someone decides otherwise.
var publicArgs = map[string]bool{"profile": true}

// redactedArgs is a slog value for args that shows every key, in order,
// and only the values of publicArgs.
type redactedArgs pt.Args

func (a redactedArgs) LogValue() slog.Value {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range a[k] {
			if b.Len() > 0 {
				b.WriteByte(';')
			}
			b.WriteString(k)
			b.WriteByte('=')
			if publicArgs[k] {
				b.WriteString(v)
			} else {
				b.WriteString("[redacted]")
			}
		}
	}
	return slog.StringValue(b.String())
}

// addr returns a, an address, for a log line, or "[scrubbed]" unless
// c.LogAddrs.
func (c Config) addr(a any) slog.Value {
	if !c.LogAddrs {
		return slog.StringValue("[scrubbed]")
	}
	return slog.StringValue(fmt.Sprint(a))
}

// addrPattern matches what looks like an IP address, with or without a
// port, in an error's text: net.OpError and friends quote the addresses
// of both ends.
var addrPattern = regexp.MustCompile(
	`\[[0-9A-Fa-f:.%]+\](:[0-9]+)?` + // [IPv6]:port
		`|\b[0-9]{1,3}(\.[0-9]{1,3}){3}(:[0-9]+)?\b` + // IPv4:port
		`|([0-9A-Fa-f]{1,4}:)*[0-9A-Fa-f]{0,4}::[0-9A-Fa-f:.]*` + // bare IPv6 with "::"
		`|\b([0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b`) // bare IPv6 in full

// scrubErr returns err for a log line, with what looks like an address
// replaced by "[scrubbed]" unless c.LogAddrs.
func (c Config) scrubErr(err error) slog.Value {
	if err == nil {
		return slog.StringValue("")
	}
	if c.LogAddrs {
		return slog.StringValue(err.Error())
	}
	return slog.StringValue(addrPattern.ReplaceAllLiteralString(err.Error(), "[scrubbed]"))
}

// safeArg makes s fit in a PT→tor line argument (pt-spec 2.2.1: any
// US-ASCII but NUL and NL). goptlib panics on anything else, and
// messages here can come from the environment or a factory's error.
func safeArg(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 0x80 || c == 0 || c == '\n' {
			b[i] = '?'
		}
	}
	return string(b)
}

// torLog sends msg to tor's own log as a LOG line (pt-spec 3.3.4) at
// level (error, warning, or below: notice) when c is a managed
// transport's, and does nothing otherwise. msg must hold no key material,
// and addresses only if c.LogAddrs (see scrubErr). It is safe to call
// from any goroutine, but not during RunClient's or RunServer's setup,
// which holds pt.Stdout: use torLogLocked there.
func (c Config) torLog(level slog.Level, msg string) {
	if !c.managed {
		return
	}
	_, restore := protocolOut(c)
	defer restore()
	c.torLogLocked(level, msg)
}

// torLogLocked is torLog for a caller that has pointed pt.Stdout at
// c.Stdout (protocolOut).
func (c Config) torLogLocked(level slog.Level, msg string) {
	if !c.managed {
		return
	}
	sev := pt.LogSeverityNotice
	switch {
	case level >= slog.LevelError:
		sev = pt.LogSeverityError
	case level >= slog.LevelWarn:
		sev = pt.LogSeverityWarning
	}
	// pt.Log quotes msg as a CString, so any byte is safe.
	pt.Log(sev, msg)
}

// envError writes an ENV-ERROR line, as goptlib does for the errors it
// finds itself.
func envError(msg string) {
	fmt.Fprintln(pt.Stdout, "ENV-ERROR "+safeArg(msg))
}

// Status sends tor a STATUS line for transport (pt-spec 3.3.5,
// "STATUS TRANSPORT=<name> <key>=<value> ..."), which tor logs, in
// managed mode: kv is the key=value pairs, space-separated, each value
// free of spaces. w is the managed-protocol output (Config.Stdout; nil:
// goptlib's pt.Stdout); lines never interleave with ptspec's own.
func Status(w io.Writer, transport, kv string) {
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	if w == nil {
		w = pt.Stdout
	}
	fmt.Fprintf(w, "STATUS TRANSPORT=%s %s\n", safeArg(transport), strings.ReplaceAll(kv, "\n", " "))
}

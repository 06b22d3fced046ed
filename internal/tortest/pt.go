package tortest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ptStartTimeout bounds how long a transport may take to report its
// methods.
const ptStartTimeout = 30 * time.Second

// PT is a transport process this package started directly in managed mode,
// with a fake TOR_PT_* environment as tor would give it (pt-spec 3.2). Its
// fields are set before the constructor returns.
type PT struct {
	// Transport is what runs.
	Transport Transport
	// Dir holds pt.log (its stdout and stderr) and state/.
	Dir string
	// StateDir is TOR_PT_STATE_LOCATION.
	StateDir string
	// Addr is the method's address from its CMETHOD line (a client: the
	// SOCKS5 proxy) or SMETHOD line (a server: where clients connect).
	Addr string
	// Line is that CMETHOD or SMETHOD line.
	Line string

	proc *proc
}

// PID returns the process id.
func (p *PT) PID() int { return p.proc.pid() }

// CPU returns the user+system CPU time the process has used so far, all
// threads included (from /proc/PID/stat, 10 ms resolution).
func (p *PT) CPU() (time.Duration, error) { return cpuTime(p.proc.pid()) }

// Stop closes the transport's stdin, which makes it exit
// (TOR_PT_EXIT_ON_STDIN_CLOSE=1), and waits; it signals and then kills it
// by PID if it does not, and says so in its error. It is idempotent and
// runs at cleanup.
func (p *PT) Stop() error { return p.proc.stop() }

// StartServerPT runs tr's server in managed mode, listening on 127.0.0.1
// and forwarding to orAddr as its plain ORPort (TOR_PT_ORPORT, no
// ExtORPort), with tr.ServerOptions as TOR_PT_SERVER_TRANSPORT_OPTIONS. It
// returns once the transport said SMETHODS DONE.
func StartServerPT(tb testing.TB, tr Transport, orAddr string) *PT {
	tb.Helper()
	port := FreePort(tb)
	env := []string{
		"TOR_PT_SERVER_TRANSPORTS=" + tr.Name,
		fmt.Sprintf("TOR_PT_SERVER_BINDADDR=%s-127.0.0.1:%d", tr.Name, port),
		"TOR_PT_ORPORT=" + orAddr,
		"TOR_PT_EXTENDED_SERVER_PORT=",
	}
	if len(tr.ServerOptions) > 0 {
		env = append(env, "TOR_PT_SERVER_TRANSPORT_OPTIONS="+serverTransportOptions(tr.Name, tr.ServerOptions))
	}
	return startPT(tb, tr, "pt-server", "SMETHOD", env)
}

// StartClientPT runs tr's client in managed mode (a SOCKS5 proxy on
// 127.0.0.1). It returns once the transport said CMETHODS DONE.
func StartClientPT(tb testing.TB, tr Transport) *PT {
	tb.Helper()
	return startPT(tb, tr, "pt-client", "CMETHOD", []string{
		"TOR_PT_CLIENT_TRANSPORTS=" + tr.Name,
	})
}

// serverTransportOptions encodes options for
// TOR_PT_SERVER_TRANSPORT_OPTIONS: "name:k=v;name:k=v", with ':', ';' and
// '\' escaped by '\' (pt-spec 3.2.3).
func serverTransportOptions(name string, options []string) string {
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`, `;`, `\;`)
	parts := make([]string, len(options))
	for i, o := range options {
		parts[i] = name + ":" + esc.Replace(o)
	}
	return strings.Join(parts, ";")
}

// startPT starts tr with the common managed-mode environment plus env and
// waits for "<kind>S DONE", returning the PT with the address of its
// "<kind> <name> ..." line.
func startPT(tb testing.TB, tr Transport, name, kind string, env []string) *PT {
	tb.Helper()
	checkTransport(tb, tr)
	dir := tempDir(tb, name)
	p := &PT{Transport: tr, Dir: dir, StateDir: filepath.Join(dir, "state")}
	if err := os.MkdirAll(p.StateDir, 0o700); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(tr.Binary, tr.Args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(),
		"TOR_PT_MANAGED_TRANSPORT_VER=1",
		"TOR_PT_STATE_LOCATION="+p.StateDir+"/",
		"TOR_PT_EXIT_ON_STDIN_CLOSE=1",
	)
	cmd.Env = append(cmd.Env, env...)
	proc, err := startProc(name+" "+tr.Name, cmd, filepath.Join(dir, "pt.log"), true)
	if err != nil {
		tb.Fatal(err)
	}
	p.proc = proc
	tb.Cleanup(func() {
		if err := p.Stop(); err != nil {
			tb.Error(err)
		}
		if tb.Failed() {
			dumpLogs(tb, dir)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), ptStartTimeout)
	defer cancel()
	done := kind + "S DONE"
	last, err := proc.waitLine(ctx, func(l line) bool {
		if l.stream != stdout {
			return false
		}
		f := strings.Fields(l.text)
		return len(f) > 0 && (l.text == done || strings.HasSuffix(f[0], "-ERROR"))
	})
	if err != nil {
		tb.Fatalf("tortest: %s %s: no %s: %v", name, tr.Name, done, err)
	}
	if last != done {
		tb.Fatalf("tortest: %s %s: %s", name, tr.Name, last)
	}
	proc.mu.Lock()
	for _, l := range proc.lines {
		// "CMETHOD name socks5 addr" (pt-spec 3.3.2), "SMETHOD name addr [ARGS:...]" (3.3.3).
		f := strings.Fields(l.text)
		if l.stream != stdout || len(f) < 3 || f[0] != kind || f[1] != tr.Name {
			continue
		}
		p.Line = l.text
		if kind == "CMETHOD" && len(f) >= 4 {
			p.Addr = f[3]
		} else if kind == "SMETHOD" {
			p.Addr = f[2]
		}
	}
	proc.mu.Unlock()
	if p.Addr == "" {
		tb.Fatalf("tortest: %s %s: said %s without a %s line for %s", name, tr.Name, done, kind, tr.Name)
	}
	if kind == "CMETHOD" && !strings.Contains(p.Line, " socks5 ") {
		tb.Fatalf("tortest: %s %s: not a SOCKS5 method: %s", name, tr.Name, p.Line)
	}
	return p
}

// Pair is a transport's client and server run directly (no tor), the
// server forwarding to an address that stands in for tor's ORPort.
// Connections made with [Pair.Dial] go client PT → server PT → that
// address. Cleanup stops both. eval/measure measures a Pair whose server
// forwards to its Sink.
type Pair struct {
	Transport Transport
	Client    *PT
	Server    *PT
	// Args are the bridge's arguments, read from the server's state
	// directory as for a bridge line; Dial sends them as SOCKS5
	// username/password ([SOCKSAuth]).
	Args []string
}

// StartPair starts a [Pair] for tr whose server forwards to orAddr as its
// plain ORPort (see [StartServerPT]), and waits until both ends are ready.
func StartPair(tb testing.TB, tr Transport, orAddr string) *Pair {
	tb.Helper()
	p := &Pair{Transport: tr}
	p.Server = StartServerPT(tb, tr, orAddr)
	ctx, cancel := context.WithTimeout(context.Background(), ptStartTimeout)
	defer cancel()
	args, err := waitBridgeArgs(ctx, tr, p.Server.StateDir, p.Server.proc.exited)
	if err != nil {
		tb.Fatal(err)
	}
	p.Args = args
	p.Client = StartClientPT(tb, tr)
	tb.Logf("tortest: %s pair: client %s, server %s, args %s", tr.Name, p.Client.Addr, p.Server.Addr, strings.Join(args, " "))
	return p
}

// SOCKS returns a SOCKS5 client for the pair's client PT, carrying the
// bridge's arguments.
func (p *Pair) SOCKS() *SOCKS5 {
	s := &SOCKS5{Addr: p.Client.Addr}
	if len(p.Args) > 0 {
		s.Username, s.Password = SOCKSAuth(p.Args)
	}
	return s
}

// Dial opens a connection through the pair. It returns once the client PT
// has answered the SOCKS request, that is, once it has connected to the
// server PT (for obfs4, after the obfs4 handshake).
func (p *Pair) Dial(ctx context.Context) (net.Conn, error) {
	return p.SOCKS().DialContext(ctx, "tcp", p.Server.Addr)
}

// Stop stops both transports and reports an error if either had to be
// killed.
func (p *Pair) Stop() error {
	errC := p.Client.Stop()
	errS := p.Server.Stop()
	if errC != nil {
		return errC
	}
	return errS
}

// CPU returns both transports' CPU time so far (see [PT.CPU]).
func (p *Pair) CPU() (client, server time.Duration, err error) {
	if client, err = p.Client.CPU(); err != nil {
		return
	}
	server, err = p.Server.CPU()
	return
}

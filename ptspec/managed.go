package ptspec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"
)

// ErrNoMethod is returned by RunClient and RunServer when tor asked for no
// method that could be started; tor has been told why for each.
var ErrNoMethod = errors.New("ptspec: no transport method started")

// RunClient runs the client side of a managed transport (pt-spec 3.3.2):
// it checks tor's environment (pt.ClientSetup, TOR_PT_STATE_LOCATION,
// TOR_PT_PROXY), opens a SOCKS5 listener on 127.0.0.1 for the
// Config.Transport method and prints its CMETHOD line, then serves the
// listener as ServeSOCKS does.
//
// TOR_PT_PROXY may name a socks5 or http (CONNECT) proxy; bridges are then
// reached through it (PROXY DONE). Another scheme gets PROXY-ERROR.
// Methods other than Config.Transport get CMETHOD-ERROR.
//
// RunClient returns an error, after telling tor on stdout, when the
// environment is wrong or no method could start (ErrNoMethod). Otherwise
// it serves until ctx is done, or, with TOR_PT_EXIT_ON_STDIN_CLOSE=1,
// until Config.Stdin ends, and returns nil; or until the listener fails,
// and returns that error.
func RunClient(ctx context.Context, cfg Config, f ClientFactory) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	cfg.managed = true
	r := newRunner(cfg)
	lns, dial, err := clientSetup(cfg, r.log)
	if err != nil {
		return err
	}
	svcs := make([]service, len(lns))
	for i, ln := range lns {
		svcs[i] = service{ln, r.socksHandler(f, dial)}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer watchStdin(cancel, cfg.Stdin, r.log)()
	r.log.Info("ptspec: managed client ready")
	return r.run(ctx, svcs...)
}

// clientSetup talks to tor until CMETHODS DONE and returns the listeners
// and the dialer for bridges.
func clientSetup(cfg Config, log *slog.Logger) ([]net.Listener, dialFunc, error) {
	pw, restore := protocolOut(cfg)
	defer restore()
	info, err := pt.ClientSetup(nil)
	if err != nil {
		if !pw.errorLine {
			// Of ClientSetup's checks only the TOR_PT_PROXY one fails
			// without telling tor.
			pt.ProxyError(safeArg(proxyURLError(err)))
		}
		return nil, nil, fmt.Errorf("ptspec: client setup: %w", err)
	}
	if _, err := StateDir(); err != nil {
		return nil, nil, err
	}
	dial := dialFunc(directDial)
	if u := info.ProxyURL; u != nil {
		dial, err = proxyDialer(u, directDial)
		if err != nil {
			pt.ProxyError(safeArg(err.Error()))
			return nil, nil, err
		}
		pt.ProxyDone()
		log.Info("ptspec: reaching bridges through tor's proxy", "scheme", u.Scheme, "proxy", cfg.addr(u.Host))
	}
	var lns []net.Listener
	seen := make(map[string]bool)
	for _, name := range info.MethodNames {
		if seen[name] {
			continue
		}
		seen[name] = true
		if name != cfg.Transport {
			pt.CmethodError(safeArg(name), "no such method")
			continue
		}
		ln, err := Listen(context.Background(), "127.0.0.1:0")
		if err != nil {
			pt.CmethodError(name, safeArg(err.Error()))
			continue
		}
		pt.Cmethod(name, "socks5", ln.Addr())
		lns = append(lns, ln)
	}
	pt.CmethodsDone()
	if len(lns) == 0 {
		return nil, nil, ErrNoMethod
	}
	return lns, dial, nil
}

// proxyURLError describes a TOR_PT_PROXY that goptlib could not parse,
// without quoting the URL, which may hold a password.
func proxyURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return "bad TOR_PT_PROXY: " + err.Error()
}

// RunServer runs the server side of a managed transport (pt-spec 3.3.3):
// it checks tor's environment (pt.ServerSetup, TOR_PT_STATE_LOCATION),
// and for each bindaddr of Config.Transport calls factory, listens on the
// bindaddr and prints an SMETHOD line with the factory's ARGS. It then
// serves each listener as Serve does, in front of tor: the extended
// ORPort, with SafeCookie authentication and the peer's address and the
// method name (USERADDR, TRANSPORT), when TOR_PT_EXTENDED_SERVER_PORT is
// set, else the ORPort (pt.DialOrWithDialer).
//
// A factory error, a listen error or another method gets SMETHOD-ERROR.
// factory runs before SMETHODS DONE, so it may call StateDir.
//
// RunServer returns an error, after telling tor on stdout, when the
// environment is wrong or no method could start (ErrNoMethod). Otherwise
// it serves until ctx is done, or, with TOR_PT_EXIT_ON_STDIN_CLOSE=1,
// until Config.Stdin ends, and returns nil; or until a listener fails,
// and returns that error.
func RunServer(ctx context.Context, cfg Config, factory func(bindaddr pt.Bindaddr) (ServerFactory, error)) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	cfg.managed = true
	r := newRunner(cfg)
	info, methods, err := serverSetup(cfg, factory, r.log)
	if err != nil {
		return err
	}
	dialOr := func(ctx context.Context, peer net.Addr) (net.Conn, error) {
		// goptlib takes no context: the dial gets ctx's deadline, and the
		// ExtORPort exchange has goptlib's own (5s).
		var d net.Dialer
		if dl, ok := ctx.Deadline(); ok {
			d.Deadline = dl
		}
		var userAddr string
		if peer != nil {
			userAddr = peer.String()
		}
		c, err := pt.DialOrWithDialer(&d, &info, userAddr, cfg.Transport)
		if err != nil {
			return nil, fmt.Errorf("ptspec: connecting to tor: %w", err)
		}
		return c, nil
	}
	svcs := make([]service, len(methods))
	for i, m := range methods {
		svcs[i] = service{m.ln, r.serverHandler(m.f, dialOr)}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer watchStdin(cancel, cfg.Stdin, r.log)()
	r.log.Info("ptspec: managed server ready", "extended_orport", info.ExtendedOrAddr != nil)
	return r.run(ctx, svcs...)
}

// serverMethod is a started server method.
type serverMethod struct {
	ln net.Listener
	f  ServerFactory
}

// serverSetup talks to tor until SMETHODS DONE and returns tor's
// addresses and the started methods.
func serverSetup(cfg Config, factory func(pt.Bindaddr) (ServerFactory, error), log *slog.Logger) (pt.ServerInfo, []serverMethod, error) {
	_, restore := protocolOut(cfg)
	defer restore()
	info, err := pt.ServerSetup(nil)
	if err != nil {
		return info, nil, fmt.Errorf("ptspec: server setup: %w", err)
	}
	if _, err := StateDir(); err != nil {
		return info, nil, err
	}
	var methods []serverMethod
	for _, ba := range info.Bindaddrs {
		name := safeArg(ba.MethodName)
		if ba.MethodName != cfg.Transport {
			pt.SmethodError(name, "no such method")
			continue
		}
		f, err := factory(ba)
		if err == nil && f == nil {
			err = errors.New("no transport")
		}
		if err == nil {
			err = checkArgs(f.Args())
		}
		if err != nil {
			log.Error("ptspec: cannot start server method", "method", name, "err", err)
			cfg.torLogLocked(slog.LevelError, "cannot start server method "+name+": "+strings.TrimPrefix(cfg.scrubErr(err).String(), "ptspec: "))
			pt.SmethodError(name, safeArg(err.Error()))
			continue
		}
		ln, err := Listen(context.Background(), ba.Addr.String())
		if err != nil {
			log.Error("ptspec: cannot listen", "method", name, "err", err)
			cfg.torLogLocked(slog.LevelError, "cannot start server method "+name+": "+strings.TrimPrefix(cfg.scrubErr(err).String(), "ptspec: "))
			pt.SmethodError(name, safeArg(err.Error()))
			continue
		}
		if args := f.Args(); len(args) > 0 {
			pt.SmethodArgs(name, ln.Addr(), args)
		} else {
			pt.Smethod(name, ln.Addr())
		}
		methods = append(methods, serverMethod{ln, f})
	}
	pt.SmethodsDone()
	if len(methods) == 0 {
		return info, nil, ErrNoMethod
	}
	return info, methods, nil
}

// checkArgs checks that args can go in an SMETHOD line's ARGS: goptlib
// escapes '=' and ',', but a space would end the option, and a byte
// outside US-ASCII, NUL or NL would make goptlib panic.
func checkArgs(args pt.Args) error {
	for k, vs := range args {
		for _, s := range append([]string{k}, vs...) {
			if safeArg(s) != s || strings.ContainsAny(s, " \t\r") {
				return fmt.Errorf("ptspec: argument %q cannot go in an SMETHOD line", k)
			}
		}
	}
	return nil
}

// stdoutMu serialises the setup phases of RunClient and RunServer:
// goptlib writes its lines to the package variable pt.Stdout, which setup
// points at Config.Stdout.
var stdoutMu sync.Mutex

// protocolOut points pt.Stdout at cfg.Stdout until restore is called.
// The returned writer notes whether an error line went out.
func protocolOut(cfg Config) (pw *protocolWriter, restore func()) {
	stdoutMu.Lock()
	prev := pt.Stdout
	w := cfg.Stdout
	if w == nil {
		w = prev
	}
	pw = &protocolWriter{w: w}
	pt.Stdout = pw
	return pw, func() {
		pt.Stdout = prev
		stdoutMu.Unlock()
	}
}

// protocolWriter passes managed-protocol lines on, one per Write as
// goptlib writes them, and notes whether one was an error line
// (ENV-ERROR, VERSION-ERROR, PROXY-ERROR, ...).
type protocolWriter struct {
	w         io.Writer
	errorLine bool
}

func (p *protocolWriter) Write(b []byte) (int, error) {
	keyword, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte(" "))
	if bytes.HasSuffix(keyword, []byte("-ERROR")) {
		p.errorLine = true
	}
	return p.w.Write(b)
}

// watchStdin calls cancel when in ends, if TOR_PT_EXIT_ON_STDIN_CLOSE=1
// (pt-spec 3.2.1 and 3.4: tor closes the pipe when it goes away). The
// returned stop ends the watch if in has SetReadDeadline (an *os.File
// pipe has); otherwise the watcher lives until in ends, which for
// os.Stdin is at the latest when the process exits.
func watchStdin(cancel context.CancelFunc, in io.Reader, log *slog.Logger) (stop func()) {
	if os.Getenv("TOR_PT_EXIT_ON_STDIN_CLOSE") != "1" {
		return func() {}
	}
	var stopping atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := io.Copy(io.Discard, in)
		if stopping.Load() {
			return
		}
		log.Info("ptspec: standard input closed; shutting down", "err", err)
		cancel()
	}()
	return func() {
		stopping.Store(true)
		d, ok := in.(interface{ SetReadDeadline(time.Time) error })
		if !ok || d.SetReadDeadline(time.Now()) != nil {
			return
		}
		<-done
		d.SetReadDeadline(time.Time{})
	}
}

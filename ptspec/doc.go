// Package ptspec is the Tor pluggable-transport glue of bip324-pt: the
// managed-proxy protocol of the Pluggable Transport Specification, version
// 1 (https://spec.torproject.org/pt-spec, tor's pt-spec.txt), and the
// Extended ORPort (https://spec.torproject.org/ext-orport-spec), through
// goptlib (gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib).
//
// ptspec knows nothing of BIP324 or shaping. The command hands it the
// transport as a [Wrapper], in the shape of obfs4's transports/base: a
// [ClientFactory] turns the per-bridge arguments into a [Wrapper] for the
// client, and a [ServerFactory] wraps each accepted connection on the
// bridge.
//
// # Managed mode
//
// Tor starts the transport with TOR_PT_* variables in its environment and
// reads the answer from its standard output:
//
//	tor ──env──► RunClient                         tor ──env──► RunServer
//	    ◄─stdout─ VERSION 1                            ◄─stdout─ VERSION 1
//	              [PROXY DONE | PROXY-ERROR msg]                 SMETHOD bip324 ADDR ARGS:secret=…
//	              CMETHOD bip324 socks5 127.0.0.1:P              SMETHODS DONE
//	              CMETHODS DONE
//
//	tor ─SOCKS5 (args in user/pass)─► RunClient ─WrapConn─► bridge ─► RunServer ─WrapConn─► ExtORPort ─► tor
//
// A sketch of the command's side:
//
//	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	cfg := ptspec.Config{Transport: "bip324", Logger: logger}
//	var err error
//	switch {
//	case !ptspec.Managed():
//		// standalone: ptspec.ServeSOCKS, ptspec.Forward, ptspec.Serve
//	case ptspec.ManagedClient():
//		err = ptspec.RunClient(ctx, cfg, clientFactory)
//	default:
//		err = ptspec.RunServer(ctx, cfg, func(b pt.Bindaddr) (ptspec.ServerFactory, error) {
//			dir, err := ptspec.StateDir()
//			if err != nil {
//				return nil, err
//			}
//			return newBridge(dir, b.Options) // loads or makes the secret
//		})
//	}
//	if err != nil {
//		os.Exit(1) // tor has already read the reason on stdout
//	}
//
// Setup errors are reported to tor on stdout (ENV-ERROR, VERSION-ERROR,
// PROXY-ERROR, CMETHOD-ERROR, SMETHOD-ERROR) and returned. RunClient and
// RunServer return nil when ctx is done or, with
// TOR_PT_EXIT_ON_STDIN_CLOSE=1, when standard input reaches its end (tor
// went away); they close their listeners and connections before they
// return.
//
// # Standalone mode
//
// [ServeSOCKS], [Forward] and [Serve] are the same code paths without tor:
// a SOCKS5 server that takes the arguments from the username and password
// as tor passes them, a forwarder to one bridge, and a bridge in front of a
// fixed target.
//
// # Resources
//
// Each call holds at most [Config.MaxConns] connections and runs at most
// [Config.MaxHandshakes] handshakes at once; beyond that it stops
// accepting, and new connections wait in the kernel's backlog. Each
// handshake (SOCKS request, dial, WrapConn, ExtORPort) is bounded by
// [Config.HandshakeTimeout]: when it expires, the connection is closed
// under the transport.
//
// # Logs
//
// Logs go to a [log/slog.Logger]. Argument values are redacted (only
// profile= is shown), and peer and bridge addresses are scrubbed unless
// [Config.LogAddrs] is set. A failed server-side WrapConn is normal (a
// probe) and is logged at debug level only.
package ptspec

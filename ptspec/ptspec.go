package ptspec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"
)

// Wrapper runs a transport's handshake over an established connection.
// The client side gets one per bridge from a [ClientFactory]; the server
// side is a [ServerFactory].
type Wrapper interface {
	// WrapConn runs the handshake over conn and returns the transport
	// connection. It must return when ctx is done; ptspec also closes conn
	// then, so a WrapConn that ignores ctx is still bounded.
	//
	// On error, the server side does not touch conn again: the transport
	// has closed it, or is draining it, or has handed it to a fallback,
	// and it owns it from then on. The client side closes conn after an
	// error, which is harmless if WrapConn already did.
	//
	// WrapConn may be called from many goroutines at once.
	WrapConn(ctx context.Context, conn net.Conn) (net.Conn, error)
}

// ClientFactory makes the client side of the transport for one bridge.
type ClientFactory interface {
	// NewClient checks the bridge's arguments (those of the bridge line,
	// which tor passes in the SOCKS username and password, such as
	// secret=, profile= and seed=) and returns a Wrapper for connections
	// to that bridge. An error rejects the SOCKS request; it is logged,
	// and in managed mode sent to tor's log, so it must not quote key
	// material. It should name what is wrong (an unknown key, say): it is
	// all an operator sees of why tor's bridge does not work.
	//
	// NewClient may be called from many goroutines at once.
	NewClient(args pt.Args) (Wrapper, error)
}

// ServerFactory is the server side of the transport for one bindaddr.
type ServerFactory interface {
	Wrapper
	// Args returns what a client needs in its bridge line; RunServer
	// prints them in the SMETHOD line's ARGS: option, where tor picks
	// them up for the bridge's extra-info descriptor.
	Args() pt.Args
}

// Config configures RunClient, RunServer, ServeSOCKS, Forward and Serve.
// The zero value is usable: each field's zero value means its default.
type Config struct {
	// Transport is the method name tor asks for. Default "bip324".
	Transport string
	// Logger receives the logs. Nil discards them. In managed mode,
	// errors an operator must act on (a SOCKS request's bridge arguments
	// refused, a bridge that cannot be reached, a server method that
	// cannot start) also go to tor's own log as LOG lines on Stdout
	// (pt-spec 3.3.4), scrubbed the same way.
	Logger *slog.Logger
	// LogAddrs puts peer and bridge addresses in the logs. By default
	// they are scrubbed, as tor (SafeLogging) and obfs4proxy
	// (-enableLogging without -unsafeLogging) do.
	LogAddrs bool
	// Stdin is watched for its end when TOR_PT_EXIT_ON_STDIN_CLOSE=1.
	// Default os.Stdin. If it has SetReadDeadline (an *os.File pipe
	// does), the watcher is stopped with it when a Run function returns.
	Stdin io.Reader
	// Stdout receives the managed-protocol lines. Default goptlib's
	// pt.Stdout (os.Stdout, synced after each line). goptlib writes to
	// its package variable pt.Stdout, so RunClient and RunServer point
	// that at Stdout while they talk to tor, one at a time; nothing else
	// should write to pt.Stdout meanwhile.
	Stdout io.Writer
	// HandshakeTimeout bounds each connection's setup: SOCKS request,
	// dial, WrapConn and the ExtORPort exchange. Default 60s.
	HandshakeTimeout time.Duration
	// MaxConns bounds the connections one call (RunClient, RunServer,
	// ServeSOCKS, Forward or Serve) holds at once, over all its
	// listeners. Default 4096.
	MaxConns int
	// MaxHandshakes bounds the connections one call has in setup at
	// once. Default 1024, and at most MaxConns.
	MaxHandshakes int
	// Drain is how long, once ctx is done, open connections may go on
	// (new ones are no longer accepted) before they are closed. Zero
	// closes them at once.
	Drain time.Duration
	// OnUpstreamFail, if not nil, is called for each client connection
	// whose target (tor's ExtORPort, the forward address) could not be
	// reached: a counter's hook.
	OnUpstreamFail func()

	// managed is set by RunClient and RunServer: errors an operator must
	// see go to tor's log too, as LOG lines on Stdout.
	managed bool
}

// Defaults.
const (
	defaultTransport        = "bip324"
	defaultHandshakeTimeout = 60 * time.Second
	defaultMaxConns         = 4096
	defaultMaxHandshakes    = 1024
)

// withDefaults validates c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	if c.Transport == "" {
		c.Transport = defaultTransport
	}
	if !validMethodName(c.Transport) {
		return c, fmt.Errorf("ptspec: transport name %q is not a C identifier", c.Transport)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Stdin == nil {
		c.Stdin = os.Stdin
	}
	if c.HandshakeTimeout < 0 || c.MaxConns < 0 || c.MaxHandshakes < 0 {
		return c, errors.New("ptspec: negative HandshakeTimeout, MaxConns or MaxHandshakes")
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = defaultHandshakeTimeout
	}
	if c.MaxConns == 0 {
		c.MaxConns = defaultMaxConns
	}
	if c.MaxHandshakes == 0 {
		c.MaxHandshakes = defaultMaxHandshakes
	}
	c.MaxHandshakes = min(c.MaxHandshakes, c.MaxConns)
	return c, nil
}

// validMethodName reports whether s is a transport name as pt-spec defines
// it: a C identifier.
func validMethodName(s string) bool {
	if s == "" || ('0' <= s[0] && s[0] <= '9') {
		return false
	}
	for _, b := range []byte(s) {
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_') {
			return false
		}
	}
	return true
}

// Managed reports whether tor started this process as a managed transport
// (TOR_PT_MANAGED_TRANSPORT_VER is set).
func Managed() bool {
	return os.Getenv("TOR_PT_MANAGED_TRANSPORT_VER") != ""
}

// ManagedClient reports whether tor asked for the client side
// (TOR_PT_CLIENT_TRANSPORTS is set), as goptlib's ServerSetup doc suggests
// to tell the two apart; otherwise a managed transport is a server.
func ManagedClient() bool {
	return os.Getenv("TOR_PT_CLIENT_TRANSPORTS") != ""
}

// StateDir returns the directory named by TOR_PT_STATE_LOCATION, made
// with mode 0700 if it did not exist (pt.MakeStateDir). For managed mode
// only: on failure it tells tor with an ENV-ERROR line on stdout, as
// goptlib's setup functions do, and returns the error.
func StateDir() (string, error) {
	dir, err := pt.MakeStateDir()
	if err != nil {
		if os.Getenv("TOR_PT_STATE_LOCATION") != "" {
			// goptlib only reports a missing variable; a failed mkdir
			// comes back silently.
			envError(fmt.Sprintf("cannot make TOR_PT_STATE_LOCATION %q: %v", dir, err))
		}
		return "", fmt.Errorf("ptspec: state directory: %w", err)
	}
	return dir, nil
}

package ptspec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"

	"github.com/bip324pt/bip324-pt/internal/copyloop"
)

// dialFunc opens a TCP connection to addr, directly or through tor's
// upstream proxy (TOR_PT_PROXY).
type dialFunc func(ctx context.Context, addr string) (net.Conn, error)

// directDial dials addr over TCP, without TCP keepalives: a Bitcoin Core
// node's sockets never send keepalive probes, so ours do not either.
func directDial(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{KeepAlive: -1}
	return d.DialContext(ctx, "tcp", addr)
}

// Listen listens on addr (TCP) with keepalives off on every connection
// it accepts: Bitcoin Core's sockets never send keepalive probes (0 of 95
// connections measured), where Go's default sends one after 15 s idle,
// which would tell a bridge from a node.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(ctx, "tcp", addr)
}

// ServeSOCKS runs the client side of the transport as a SOCKS5 server on
// ln, the way RunClient does for tor: each request's arguments, taken from
// its username and password as tor encodes them (pt-spec 3.5, "key=value"
// pairs separated by ';'), go to f.NewClient; the bridge named in the
// request is dialled and its connection wrapped; the SOCKS connection and
// the wrapped one are then joined by internal/copyloop's Join, which
// passes half-closes and resets on.
//
// ServeSOCKS returns nil when ctx is done, and the error when ln fails. It
// closes ln, and every connection it accepted, before it returns.
func ServeSOCKS(ctx context.Context, cfg Config, ln net.Listener, f ClientFactory) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		ln.Close()
		return err
	}
	r := newRunner(cfg)
	return r.run(ctx, service{ln, r.socksHandler(f, directDial)})
}

// Forward runs the client side of the transport for one bridge: each
// connection accepted on ln gets a connection to bridge (HOST:PORT),
// wrapped by w, and the two are joined by internal/copyloop's Join, which
// passes half-closes and resets on.
//
// Forward returns nil when ctx is done, and the error when ln fails. It
// closes ln, and every connection it accepted, before it returns.
func Forward(ctx context.Context, cfg Config, ln net.Listener, w Wrapper, bridge string) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		ln.Close()
		return err
	}
	r := newRunner(cfg)
	return r.run(ctx, service{ln, r.forwardHandler(w, bridge, directDial)})
}

// Serve runs the server side of the transport on ln in front of target
// (HOST:PORT), the way RunServer does in front of tor: each accepted
// connection is wrapped by w, and if that succeeds, joined with a new
// connection to target by internal/copyloop's Join.
//
// Serve returns nil when ctx is done, and the error when ln fails. It
// closes ln, and every connection it accepted, before it returns.
func Serve(ctx context.Context, cfg Config, ln net.Listener, w Wrapper, target string) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		ln.Close()
		return err
	}
	r := newRunner(cfg)
	return r.run(ctx, service{ln, r.serverHandler(w, func(ctx context.Context, _ net.Addr) (net.Conn, error) {
		return directDial(ctx, target)
	})})
}

// runner accepts connections on listeners and runs a handler for each,
// within the bounds of its Config. It is shared by the managed and the
// standalone modes.
type runner struct {
	cfg        Config
	log        *slog.Logger
	conns      chan struct{} // one token per connection held
	handshakes chan struct{} // one token per connection in setup
	wg         sync.WaitGroup
}

// handler serves one accepted connection. It must call handshakeDone once
// the connection is set up (calling it again does nothing); it returns
// when the connection is over, and must close conn by then. ctx is done
// when the runner shuts down.
type handler func(ctx context.Context, conn net.Conn, handshakeDone func())

func newRunner(cfg Config) *runner {
	return &runner{
		cfg:        cfg,
		log:        cfg.Logger.With("transport", cfg.Transport),
		conns:      make(chan struct{}, cfg.MaxConns),
		handshakes: make(chan struct{}, cfg.MaxHandshakes),
	}
}

// service is a listener and the handler for its connections.
type service struct {
	ln net.Listener
	h  handler
}

// run serves each service until ctx is done or a listener fails, then
// closes the listeners and every connection and waits for the handlers.
// It returns the first listener's failure, or nil. The runner's bounds
// hold across all the services.
func (r *runner) run(ctx context.Context, svcs ...service) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Connections live on connCtx: it ends with ctx, or Drain later.
	connCtx, cancelConns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelConns()
	var (
		loops    sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for _, s := range svcs {
		stop := context.AfterFunc(ctx, func() { s.ln.Close() })
		defer stop()
		loops.Go(func() {
			if err := r.acceptLoop(ctx, connCtx, s.ln, s.h); err != nil {
				errOnce.Do(func() { firstErr = err })
				cancel()
			}
		})
	}
	loops.Wait()
	cancel()
	// The AfterFunc above may not have run yet.
	for _, s := range svcs {
		s.ln.Close()
	}
	if r.cfg.Drain > 0 && firstErr == nil {
		done := make(chan struct{})
		go func() { r.wg.Wait(); close(done) }()
		r.log.Info("ptspec: no longer accepting; letting open connections finish", "for", r.cfg.Drain)
		t := time.NewTimer(r.cfg.Drain)
		select {
		case <-done:
		case <-t.C:
			r.log.Info("ptspec: closing the connections still open after the drain")
		}
		t.Stop()
	}
	cancelConns()
	r.wg.Wait()
	return firstErr
}

// Bounds on the pause after a temporary accept error (EMFILE, say), as
// net/http.Server has.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// acceptLoop accepts on ln until ctx is done or ln fails for good. It
// takes a connection slot and a handshake slot before each Accept, so at
// the bounds it stops accepting and the kernel's backlog holds the rest.
func (r *runner) acceptLoop(ctx, connCtx context.Context, ln net.Listener, h handler) error {
	var backoff time.Duration
	for {
		if !r.acquire(ctx) {
			return nil
		}
		conn, err := ln.Accept()
		if err != nil {
			<-r.handshakes
			<-r.conns
			if ctx.Err() != nil {
				return nil
			}
			var te interface{ Temporary() bool }
			if !errors.As(err, &te) || !te.Temporary() {
				return fmt.Errorf("ptspec: accept on %s: %w", ln.Addr(), err)
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			r.log.Warn("ptspec: accept failed; retrying", "err", err, "after", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		backoff = 0
		r.wg.Go(func() {
			var once sync.Once
			done := func() { once.Do(func() { <-r.handshakes }) }
			defer func() {
				done()
				<-r.conns
			}()
			h(connCtx, conn, done)
		})
	}
}

// acquire takes a connection slot and a handshake slot, or neither if ctx
// is done first.
func (r *runner) acquire(ctx context.Context) bool {
	select {
	case r.conns <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	select {
	case r.handshakes <- struct{}{}:
		return true
	case <-ctx.Done():
		<-r.conns
		return false
	}
}

// wrap runs w.WrapConn on conn within ctx, closing conn if ctx is done
// first, which bounds a WrapConn that ignores ctx.
func wrap(ctx context.Context, w Wrapper, conn net.Conn) (net.Conn, error) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, err := w.WrapConn(ctx, conn)
	if !stop() {
		// ctx is done, and conn is closed or about to be: close it here
		// too, so that it is closed when wrap returns.
		conn.Close()
		if err == nil {
			c.Close()
			c, err = nil, context.Cause(ctx)
		}
	}
	return c, err
}

// join copies between a and b until both are done, or until ctx is done,
// when it closes them.
func (r *runner) join(ctx context.Context, a, b net.Conn) {
	stop := context.AfterFunc(ctx, func() {
		a.Close()
		b.Close()
	})
	defer stop()
	aToB, bToA, err := copyloop.Join(a, b)
	if n := copyloop.Unsent(err); n > 0 {
		// Never silent: the far end got less than the application
		// sent, and only a peer that stopped reading causes it.
		r.log.Warn("ptspec: connection closed with bytes undelivered", "dropped", n, "up", aToB, "down", bToA, "err", r.cfg.scrubErr(err))
		return
	}
	if err != nil && ctx.Err() == nil {
		r.log.Debug("ptspec: connection ended with an error", "up", aToB, "down", bToA, "err", r.cfg.scrubErr(err))
		return
	}
	r.log.Debug("ptspec: connection ended", "up", aToB, "down", bToA)
}

// serverHandler wraps each connection with w and joins it to the
// connection target returns. target gets the peer's address (for the
// ExtORPort's USERADDR).
func (r *runner) serverHandler(w Wrapper, target func(ctx context.Context, peer net.Addr) (net.Conn, error)) handler {
	return func(ctx context.Context, conn net.Conn, handshakeDone func()) {
		peer := conn.RemoteAddr()
		hctx, cancel := context.WithTimeout(ctx, r.cfg.HandshakeTimeout)
		defer cancel()
		wc, err := wrap(hctx, w, conn)
		if err != nil {
			// A probe, most likely: the transport has dealt with it.
			r.log.Debug("ptspec: transport refused a connection", "peer", r.cfg.addr(peer), "err", r.cfg.scrubErr(err))
			return
		}
		up, err := target(hctx, peer)
		if err != nil {
			if r.cfg.OnUpstreamFail != nil {
				r.cfg.OnUpstreamFail()
			}
			r.log.Warn("ptspec: cannot reach the target; closing the connection", "err", r.cfg.scrubErr(err))
			wc.Close()
			return
		}
		handshakeDone()
		r.join(ctx, wc, up)
	}
}

// forwardHandler joins each connection to a new connection to bridge,
// wrapped by w.
func (r *runner) forwardHandler(w Wrapper, bridge string, dial dialFunc) handler {
	return func(ctx context.Context, conn net.Conn, handshakeDone func()) {
		hctx, cancel := context.WithTimeout(ctx, r.cfg.HandshakeTimeout)
		defer cancel()
		stop := context.AfterFunc(hctx, func() { conn.Close() })
		up, err := dialWrapped(hctx, w, dial, bridge)
		if !stop() || err != nil {
			if err != nil {
				r.log.Warn("ptspec: cannot reach the bridge", "bridge", r.cfg.addr(bridge), "err", r.cfg.scrubErr(err))
			} else {
				up.Close()
			}
			conn.Close()
			return
		}
		handshakeDone()
		r.join(ctx, conn, up)
	}
}

// dialWrapped dials addr and wraps the connection with w.
func dialWrapped(ctx context.Context, w Wrapper, dial dialFunc, addr string) (net.Conn, error) {
	raw, err := dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	c, err := wrap(ctx, w, raw)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("ptspec: transport handshake: %w", err)
	}
	return c, nil
}

// argsError is a ClientFactory's rejection of a bridge's arguments.
type argsError struct{ err error }

func (e *argsError) Error() string { return "ptspec: bad bridge arguments: " + e.err.Error() }
func (e *argsError) Unwrap() error { return e.err }

// socksHandler reads a SOCKS5 request, makes a client from its arguments
// with f, dials the bridge it names with dial, wraps the connection, and
// joins the two.
func (r *runner) socksHandler(f ClientFactory, dial dialFunc) handler {
	return func(ctx context.Context, conn net.Conn, handshakeDone func()) {
		hctx, cancel := context.WithTimeout(ctx, r.cfg.HandshakeTimeout)
		defer cancel()
		stop := context.AfterFunc(hctx, func() { conn.Close() })
		sc, err := acceptSocks(conn)
		if err != nil {
			// goptlib has closed conn, and keeps the reason to itself.
			stop()
			r.log.Debug("ptspec: bad SOCKS request")
			return
		}
		up, err := r.socksDial(hctx, f, dial, sc.Req)
		if !stop() {
			// Timed out or shutting down.
			conn.Close()
			if err == nil {
				up.Close()
			}
			return
		}
		if err != nil {
			sc.RejectReason(socksReply(err))
			conn.Close()
			return
		}
		if err := sc.Grant(nil); err != nil {
			conn.Close()
			up.Close()
			return
		}
		handshakeDone()
		// sc.Conn, not sc: *pt.SocksConn hides the CloseWrite of the
		// conn it embeds.
		r.join(ctx, sc.Conn, up)
	}
}

// socksDial makes the client for req's arguments and connects it to the
// bridge in req.Target, logging why if it cannot.
func (r *runner) socksDial(ctx context.Context, f ClientFactory, dial dialFunc, req pt.SocksRequest) (net.Conn, error) {
	log := r.log.With("bridge", r.cfg.addr(req.Target), "args", redactedArgs(req.Args))
	w, err := f.NewClient(req.Args)
	if err != nil {
		// tor logs only the SOCKS reply ("connection not allowed by
		// ruleset"): tell it why.
		r.cfg.torLog(slog.LevelWarn, fmt.Sprintf("rejecting SOCKS request for bridge %s: bad bridge arguments: %s",
			r.cfg.addr(req.Target), r.cfg.scrubErr(err)))
		err = &argsError{err}
		log.Warn("ptspec: rejecting SOCKS request: bad bridge arguments", "err", r.cfg.scrubErr(err))
		return nil, err
	}
	up, err := dialWrapped(ctx, w, dial, req.Target)
	if err != nil {
		log.Warn("ptspec: rejecting SOCKS request: cannot reach the bridge", "err", r.cfg.scrubErr(err))
		// Not when shutting down; a timeout, though, is the bridge's.
		if !errors.Is(ctx.Err(), context.Canceled) {
			r.cfg.torLog(slog.LevelWarn, fmt.Sprintf("cannot reach bridge %s: %s",
				r.cfg.addr(req.Target), strings.TrimPrefix(r.cfg.scrubErr(err).String(), "ptspec: ")))
		}
		return nil, err
	}
	log.Debug("ptspec: connected to the bridge")
	return up, nil
}

// socksReply picks the SOCKS5 reply code (RFC 1928, section 6) for a
// failure to reach a bridge; tor logs it.
func socksReply(err error) byte {
	var ae *argsError
	var ne net.Error
	switch {
	case errors.As(err, &ae):
		return pt.SocksRepConnectionNotAllowed
	case errors.Is(err, syscall.ECONNREFUSED):
		return pt.SocksRepConnectionRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return pt.SocksRepNetworkUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH):
		return pt.SocksRepHostUnreachable
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return pt.SocksRepTTLExpired
	}
	return pt.SocksRepGeneralFailure
}

// acceptSocks reads the SOCKS5 request on conn with goptlib's parser.
// goptlib only offers it inside SocksListener.AcceptSocks, which runs the
// exchange in the accept loop, so that one slow client would hold up every
// other; a listener of one connection lets each connection's goroutine run
// its own. On failure, goptlib has closed conn.
func acceptSocks(conn net.Conn) (*pt.SocksConn, error) {
	return pt.NewSocksListener(&oneConnListener{conn: conn}).AcceptSocks()
}

// oneConnListener is a net.Listener that returns one connection and then
// net.ErrClosed. Not safe for concurrent use.
type oneConnListener struct {
	conn net.Conn
	addr net.Addr
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if l.conn == nil {
		return nil, net.ErrClosed
	}
	c := l.conn
	l.addr, l.conn = c.LocalAddr(), nil
	return c, nil
}

func (l *oneConnListener) Close() error { return nil }

func (l *oneConnListener) Addr() net.Addr {
	if l.conn != nil {
		return l.conn.LocalAddr()
	}
	return l.addr
}

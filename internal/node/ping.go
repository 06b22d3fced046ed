package node

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bip324pt/bip324-pt/v2core"
)

// Defaults for [Options].
const (
	// DefaultTimeout bounds a whole [Ping] exchange, v1 retry included.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxMessages is how many messages [Ping] reads from the peer,
	// the ones it skips included, before it gives up. Bitcoin Core sends
	// about ten before it answers a ping.
	DefaultMaxMessages = 100
	// DefaultUserAgent is the BIP14 user agent [Ping] announces.
	DefaultUserAgent = "/bip324-pt:0.1.0/"
)

// ErrPeerClosedEarly means the peer closed the connection (EOF or reset)
// before it sent a single byte. In answer to a v2 handshake this is what a
// node without v2 support does, and [Ping] retries with v1.
var ErrPeerClosedEarly = errors.New("node: peer closed the connection before sending anything")

// TimeoutError reports that the exchange did not finish in time: within
// [Options.Timeout], or before the context's deadline. It is a net.Error
// whose Timeout is true, and errors.Is(err, context.DeadlineExceeded)
// holds for it.
type TimeoutError struct {
	// After is how long the exchange had run.
	After time.Duration
}

func (e *TimeoutError) Error() string { return fmt.Sprintf("node: timed out after %v", e.After) }

// Timeout is part of the net.Error interface; it is always true.
func (e *TimeoutError) Timeout() bool { return true }

// Temporary is part of the net.Error interface; it is always true.
func (e *TimeoutError) Temporary() bool { return true }

// Is makes errors.Is(err, context.DeadlineExceeded) true.
func (e *TimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// TooManyMessagesError reports that the peer sent this many messages
// without the one [Ping] waited for.
type TooManyMessagesError int

func (e TooManyMessagesError) Error() string {
	return fmt.Sprintf("node: peer sent %d messages without completing the exchange", int(e))
}

// Stage names a step of the [Ping] exchange.
type Stage string

// The stages of [Ping], in order.
const (
	StageConnect   Stage = "connecting"
	StageHandshake Stage = "v2 handshake"
	StageVersion   Stage = "waiting for the peer's version"
	StageVerack    Stage = "waiting for the peer's verack"
	StagePong      Stage = "waiting for the pong"
)

// PingError is the error [Ping] returns: the stage that failed and why.
// Err is, among others, a [*TimeoutError], [ErrPeerClosedEarly], a
// [TooManyMessagesError], an error from v2core, or an error from parsing
// the peer's version.
type PingError struct {
	Stage Stage
	// V1Retry is set when the failure happened in the v1 retry, after
	// the peer had closed the v2 attempt without a byte.
	V1Retry bool
	Err     error
}

func (e *PingError) Error() string {
	var b strings.Builder
	b.WriteString("node: ")
	if e.V1Retry {
		b.WriteString("v1 retry (the peer closed the v2 attempt without a byte): ")
	}
	b.WriteString(string(e.Stage))
	b.WriteString(": ")
	b.WriteString(strings.TrimPrefix(e.Err.Error(), "node: "))
	return b.String()
}

func (e *PingError) Unwrap() error { return e.Err }

// NoTerminatorError wraps the error of a v2 handshake that stopped after
// the peer's 64-byte key had arrived but before its garbage terminator
// did: [v2core.ErrNoTerminator], or a timeout or a close after the key.
// Both ends derive the terminator from the network's magic, so a Bitcoin
// node on another network than Network sends a terminator we never find
// (and never finds ours): the message suggests checking --network.
type NoTerminatorError struct {
	// Network is the network the handshake assumed.
	Network v2core.Network
	Err     error
}

func (e *NoTerminatorError) Error() string {
	if errors.Is(e.Err, v2core.ErrNoTerminator) {
		return fmt.Sprintf("node: the peer sent its key, then more than %d bytes of garbage without the terminator of network %s: is the peer on another network? (check --network)",
			v2core.MaxGarbageLen, e.Network)
	}
	return fmt.Sprintf("node: %s; the peer sent its key but no garbage terminator for network %s: is the peer on another network? (check --network)",
		strings.TrimPrefix(e.Err.Error(), "node: "), e.Network)
}

func (e *NoTerminatorError) Unwrap() error { return e.Err }

// contextError adds context to err without repeating its "node: " prefix.
type contextError struct {
	msg string
	err error
}

func (e *contextError) Error() string {
	return "node: " + e.msg + ": " + strings.TrimPrefix(e.err.Error(), "node: ")
}

func (e *contextError) Unwrap() error { return e.err }

// Options configures [Ping]. Only Addr is required; every other zero value
// means the default its field names.
type Options struct {
	// Addr is the peer, HOST:PORT (see [AddrWithPort]).
	Addr string
	// Network is the peer's network. Zero means Mainnet.
	Network v2core.Network
	// Timeout bounds the whole exchange, from dialling to the pong, the
	// v1 retry included. Zero means DefaultTimeout.
	Timeout time.Duration
	// V2Only turns the v1 retry off: a peer that closes the v2 attempt
	// without a byte is then an error ([ErrPeerClosedEarly]).
	V2Only bool
	// UserAgent is the user agent we announce, at most MaxUserAgentLen
	// bytes. Empty means DefaultUserAgent.
	UserAgent string
	// MaxMessages is how many messages to read from the peer before
	// giving up. Zero means DefaultMaxMessages.
	MaxMessages int
	// Dial opens the TCP connection. Nil means a net.Dialer. With a Dial
	// of its own the caller may be going through a proxy, so the version
	// message carries no address for the peer (as Bitcoin Core does for
	// proxied peers).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Rand is the source of nonces and of the v2 keys and garbage. Nil
	// means crypto/rand.
	Rand io.Reader
	// Now gives the timestamp of our version message. Nil means time.Now.
	Now func() time.Time
	// Logger receives debug and info records of the exchange. Nil means
	// no logging.
	Logger *slog.Logger
}

func (o *Options) populate() (Options, error) {
	c := *o
	if c.Addr == "" {
		return c, errors.New("node: no address to ping")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return c, fmt.Errorf("node: address %q: %w", c.Addr, err)
	}
	if c.Network == 0 {
		c.Network = v2core.Mainnet
	}
	if c.Timeout < 0 {
		return c, fmt.Errorf("node: negative timeout %v", c.Timeout)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	if len(c.UserAgent) > MaxUserAgentLen {
		return c, UserAgentTooLongError(len(c.UserAgent))
	}
	if c.MaxMessages < 0 {
		return c, fmt.Errorf("node: negative message limit %d", c.MaxMessages)
	}
	if c.MaxMessages == 0 {
		c.MaxMessages = DefaultMaxMessages
	}
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Result is what a completed [Ping] learnt.
type Result struct {
	// Addr is the address dialled.
	Addr string
	// V1 is set when the exchange ran over v1, after the peer closed the
	// v2 attempt without a byte. There is no session id then.
	V1 bool
	// V2Err is why the v2 attempt was abandoned, when V1 is set.
	V2Err error
	// SessionID is the BIP324 session id, both ends' to compare; zero
	// with V1.
	SessionID [32]byte
	// Peer is the peer's version message.
	Peer Version
	// RTT is the time from sending our ping to reading the pong.
	RTT time.Duration
}

// Ping connects to a Bitcoin node at opts.Addr, does the BIP324 handshake,
// exchanges version and verack as Bitcoin Core does as an outbound peer
// (with wtxidrelay and sendaddrv2 before our verack), sends a ping with a
// random nonce and times the matching pong. Messages it does not need are
// read and skipped, up to opts.MaxMessages in all; the peer's pings are
// answered.
//
// If the peer closes the v2 attempt without sending a byte, Ping connects
// again and does the same exchange over v1, unless opts.V2Only is set.
//
// The whole exchange is bounded by opts.Timeout and by ctx. Errors are
// *PingError, except for invalid opts.
func Ping(ctx context.Context, opts Options) (*Result, error) {
	o, err := opts.populate()
	if err != nil {
		return nil, err
	}
	p := &pinger{o: &o, start: time.Now(), customDial: opts.Dial != nil}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	res, err := p.attempt(ctx, false)
	if err == nil || o.V2Only || !errors.Is(err, ErrPeerClosedEarly) {
		return res, err
	}
	o.Logger.Info("peer closed the v2 attempt without a byte; reconnecting with v1", "addr", o.Addr)
	res, err1 := p.attempt(ctx, true)
	if err1 != nil {
		var pe *PingError
		if errors.As(err1, &pe) {
			pe.V1Retry = true
		}
		return nil, err1
	}
	res.V2Err = err
	return res, nil
}

type pinger struct {
	o          *Options
	start      time.Time
	customDial bool
}

// countingConn counts the bytes read, to tell a peer that closed without
// sending anything from one that closed mid-way.
type countingConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// attempt does the whole exchange over one connection.
func (p *pinger) attempt(ctx context.Context, v1 bool) (res *Result, err error) {
	stage := StageConnect
	var cc *countingConn
	defer func() {
		if err != nil {
			err = p.explain(ctx, cc, err)
			if stage == StageHandshake && keyArrived(cc, err) {
				err = &NoTerminatorError{Network: p.o.Network, Err: err}
			}
			res, err = nil, &PingError{Stage: stage, Err: err}
		}
	}()

	raw, err := p.o.Dial(ctx, "tcp", p.o.Addr)
	if err != nil {
		return nil, err
	}
	cc = &countingConn{Conn: raw}
	defer cc.Close()
	if dl, ok := ctx.Deadline(); ok {
		cc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { cc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	log := p.o.Logger.With("addr", p.o.Addr, "transport", transportName(v1))
	log.Debug("connected", "local", cc.LocalAddr().String())

	res = &Result{Addr: p.o.Addr, V1: v1}
	var mc MessageConn
	if v1 {
		mc = NewV1Conn(cc, p.o.Network, nil)
	} else {
		stage = StageHandshake
		vc := v2core.Client(cc, &v2core.Config{Network: p.o.Network, Rand: p.o.Rand})
		if err := vc.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		res.SessionID, _ = vc.SessionID()
		log.Debug("v2 handshake done")
		mc = NewV2Conn(vc)
	}

	// Our version, as Bitcoin Core's PushNodeVersion builds it for an
	// outbound peer: no services of our own (we serve nothing), no
	// relay, height 0.
	stage = StageVersion
	nonce, err := p.nonce()
	if err != nil {
		return nil, err
	}
	ours := Version{
		Protocol:  ProtocolVersion,
		Timestamp: p.o.Now().Unix(),
		AddrRecv:  p.addrRecv(cc.RemoteAddr()),
		Nonce:     nonce,
		UserAgent: p.o.UserAgent,
	}
	payload, err := AppendVersion(nil, &ours)
	if err != nil {
		return nil, err
	}
	if err := mc.WriteMessage(CmdVersion, payload); err != nil {
		return nil, err
	}

	budget := p.o.MaxMessages
	gotVersion := false
	for gotVerack := false; !gotVerack; {
		cmd, payload, err := p.read(log, mc, &budget)
		if err != nil {
			return nil, err
		}
		switch cmd {
		case CmdVersion:
			if gotVersion {
				log.Debug("redundant version ignored")
				continue
			}
			v, err := ParseVersion(payload)
			if err != nil {
				return nil, &contextError{msg: "invalid version message", err: err}
			}
			log.Debug("peer version", "protocol", v.Protocol, "services", v.Services.String(),
				"user_agent", SanitizeString(v.UserAgent), "start_height", v.StartHeight)
			if v.Protocol < pongVersion {
				return nil, fmt.Errorf("node: peer's protocol version %d is too old to answer a ping (needs %d)", v.Protocol, pongVersion)
			}
			res.Peer = v
			gotVersion = true
			if min(v.Protocol, ProtocolVersion) >= featureVersion {
				// BIP339 and BIP155: only between version and verack.
				if err := mc.WriteMessage(CmdWtxidRelay, nil); err != nil {
					return nil, err
				}
				if err := mc.WriteMessage(CmdSendAddrV2, nil); err != nil {
					return nil, err
				}
			}
			if err := mc.WriteMessage(CmdVerack, nil); err != nil {
				return nil, err
			}
			stage = StageVerack
		case CmdVerack:
			// Bitcoin Core ignores anything but version before version.
			gotVerack = gotVersion
		case CmdPing:
			if gotVersion {
				if err := p.pong(mc, payload); err != nil {
					return nil, err
				}
			}
		}
	}

	stage = StagePong
	if nonce, err = p.nonce(); err != nil {
		return nil, err
	}
	sent := time.Now()
	if err := mc.WriteMessage(CmdPing, AppendNonce(nil, nonce)); err != nil {
		return nil, err
	}
	for {
		cmd, payload, err := p.read(log, mc, &budget)
		if err != nil {
			return nil, err
		}
		switch cmd {
		case CmdPong:
			got, err := ParseNonce(payload)
			if err != nil || got != nonce {
				log.Debug("pong ignored", "nonce", got, "want", nonce, "err", err)
				continue
			}
			res.RTT = time.Since(sent)
			log.Debug("pong", "rtt", res.RTT)
			return res, nil
		case CmdPing:
			if err := p.pong(mc, payload); err != nil {
				return nil, err
			}
		}
	}
}

// read returns the next message that was not dropped, counting every
// message against budget.
func (p *pinger) read(log *slog.Logger, mc MessageConn, budget *int) (string, []byte, error) {
	for {
		if *budget <= 0 {
			return "", nil, TooManyMessagesError(p.o.MaxMessages)
		}
		*budget--
		cmd, payload, err := mc.ReadMessage()
		var d *DroppedMessageError
		if errors.As(err, &d) {
			log.Debug("message dropped", "err", d.Err)
			continue
		}
		if err == nil {
			log.Debug("received", "command", cmd, "len", len(payload))
		}
		return cmd, payload, err
	}
}

// pong answers the peer's ping, as Bitcoin Core does from BIP31 on.
func (p *pinger) pong(mc MessageConn, ping []byte) error {
	n, err := ParseNonce(ping)
	if err != nil {
		return nil
	}
	return mc.WriteMessage(CmdPong, AppendNonce(nil, n))
}

func (p *pinger) nonce() (uint64, error) {
	var b [8]byte
	if _, err := io.ReadFull(p.o.Rand, b[:]); err != nil {
		return 0, fmt.Errorf("node: reading a nonce: %w", err)
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// addrRecv is the peer's address for our version message. Bitcoin Core
// gives it only when it is routable and not reached through a proxy, and
// sends the zero address otherwise.
func (p *pinger) addrRecv(remote net.Addr) NetAddr {
	if p.customDial {
		return NetAddr{}
	}
	ta, ok := remote.(*net.TCPAddr)
	if !ok {
		return NetAddr{}
	}
	ap := ta.AddrPort()
	ip := ap.Addr().Unmap()
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return NetAddr{}
	}
	return NetAddrFrom(netip.AddrPortFrom(ip, ap.Port()), 0)
}

// explain turns the error that stopped an attempt into the one to report.
func (p *pinger) explain(ctx context.Context, cc *countingConn, err error) error {
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &TimeoutError{After: min(p.o.Timeout, time.Since(p.start).Round(time.Millisecond))}
	case ctx.Err() != nil:
		return ctx.Err()
	case cc != nil && isClosed(err):
		if cc.n.Load() == 0 {
			return ErrPeerClosedEarly
		}
		return &contextError{msg: "peer closed the connection", err: err}
	}
	return err
}

// keyArrived reports whether a v2 handshake that failed with err (as
// explained) got the peer's whole key and then stalled or ended, as when
// the terminator never matched. The count includes the bytes after the
// key, so a handshake that found the terminator and then broke matches
// too; Bitcoin Core sends its version packet right behind its terminator,
// so that is rare, and the message asks rather than asserts.
func keyArrived(cc *countingConn, err error) bool {
	if errors.Is(err, v2core.ErrNoTerminator) {
		return true
	}
	if cc == nil || cc.n.Load() < v2core.EllswiftKeySize {
		return false
	}
	var te *TimeoutError
	return errors.As(err, &te) || isClosed(err)
}

// isClosed reports whether err means the peer closed the connection: an
// orderly close (EOF) or a reset.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED)
}

func transportName(v1 bool) string {
	if v1 {
		return "v1"
	}
	return "v2"
}

package node_test

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/internal/node"
	"github.com/bip324pt/bip324-pt/internal/node/nodetest"
	"github.com/bip324pt/bip324-pt/v2core"
)

// testTimeout bounds every exchange that is meant to succeed.
const testTimeout = 5 * time.Second

func TestPing_V2(t *testing.T) {
	nodetest.VerifyNoLeaks(t)
	fake := nodetest.New(t, nodetest.Config{})

	res, err := node.Ping(context.Background(), node.Options{Addr: fake.Addr(), Timeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	conns := fake.Conns()
	if len(conns) != 1 {
		t.Fatalf("fake saw %d connections, want 1", len(conns))
	}
	c := conns[0]
	if res.V1 || c.V1 {
		t.Fatalf("v1 used: result %v, fake %v", res.V1, c.V1)
	}
	if !c.HasSessionID || res.SessionID != c.SessionID {
		t.Fatalf("session id %x, fake computed %x", res.SessionID, c.SessionID)
	}
	if res.SessionID == ([32]byte{}) {
		t.Fatal("zero session id")
	}
	p := res.Peer
	if p.UserAgent != nodetest.DefaultUserAgent || p.Services != nodetest.DefaultServices ||
		p.Protocol != node.ProtocolVersion || p.StartHeight != nodetest.DefaultStartHeight {
		t.Errorf("peer version %+v", p)
	}
	if res.RTT <= 0 || res.RTT > testTimeout {
		t.Errorf("RTT %v", res.RTT)
	}

	// What the fake node received: our version as Core's outbound side
	// sends it, the BIP339/BIP155 messages before verack, then our ping.
	ours := c.PeerVersion
	if ours == nil {
		t.Fatal("fake got no version")
	}
	if ours.UserAgent != node.DefaultUserAgent || ours.Relay || ours.Protocol != node.ProtocolVersion ||
		ours.Services != 0 || ours.StartHeight != 0 || ours.Nonce == 0 {
		t.Errorf("our version %+v", ours)
	}
	if want := []string{"version", "wtxidrelay", "sendaddrv2", "verack"}; !slices.Equal(c.Commands[:min(4, len(c.Commands))], want) {
		t.Errorf("fake received %v, want %v first", c.Commands, want)
	}
	if !slices.Contains(c.Commands, "ping") {
		t.Errorf("fake received no ping: %v", c.Commands)
	}
}

func TestPing_Regtest(t *testing.T) {
	nodetest.VerifyNoLeaks(t)
	fake := nodetest.New(t, nodetest.Config{Network: v2core.Regtest})
	res, err := node.Ping(context.Background(), node.Options{Addr: fake.Addr(), Network: v2core.Regtest, Timeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if res.V1 || res.SessionID != fake.Conns()[0].SessionID {
		t.Fatalf("result %+v", res)
	}
}

func TestPing_V1Fallback(t *testing.T) {
	for _, reset := range []bool{false, true} {
		name := "fin"
		if reset {
			name = "reset"
		}
		t.Run(name, func(t *testing.T) {
			nodetest.VerifyNoLeaks(t)
			fake := nodetest.New(t, nodetest.Config{Network: v2core.Regtest, Mode: nodetest.ModeV1Only, ResetOnReject: reset})

			res, err := node.Ping(context.Background(), node.Options{Addr: fake.Addr(), Network: v2core.Regtest, Timeout: testTimeout})
			if err != nil {
				t.Fatal(err)
			}
			if !res.V1 {
				t.Fatal("V1 not set")
			}
			if res.SessionID != ([32]byte{}) {
				t.Errorf("session id %x with v1", res.SessionID)
			}
			if !errors.Is(res.V2Err, node.ErrPeerClosedEarly) {
				t.Errorf("V2Err = %v", res.V2Err)
			}
			if res.Peer.UserAgent != nodetest.DefaultUserAgent || res.RTT <= 0 {
				t.Errorf("result %+v", res)
			}
			conns := fake.Conns()
			if len(conns) != 2 || !conns[0].Rejected || conns[1].Rejected || !conns[1].V1 || conns[1].PeerVersion == nil {
				t.Fatalf("fake saw %+v", conns)
			}
			if !slices.Contains(conns[1].Commands, "ping") {
				t.Errorf("fake received %v", conns[1].Commands)
			}
		})
	}
}

func TestPing_V2OnlyFails(t *testing.T) {
	nodetest.VerifyNoLeaks(t)
	fake := nodetest.New(t, nodetest.Config{Mode: nodetest.ModeV1Only})

	_, err := node.Ping(context.Background(), node.Options{Addr: fake.Addr(), Timeout: testTimeout, V2Only: true})
	if !errors.Is(err, node.ErrPeerClosedEarly) {
		t.Fatalf("err = %v, want ErrPeerClosedEarly", err)
	}
	var pe *node.PingError
	if !errors.As(err, &pe) || pe.Stage != node.StageHandshake || pe.V1Retry {
		t.Fatalf("err = %#v", err)
	}
	if got := err.Error(); got != "node: v2 handshake: peer closed the connection before sending anything" {
		t.Errorf("message %q", got)
	}
	if n := len(fake.Conns()); n != 1 {
		t.Errorf("%d connections, want 1 (no retry)", n)
	}
}

// rawServer accepts connections on loopback and hands each to handle, in
// a goroutine, until the test ends. It returns the address and a counter
// of accepted connections.
func rawServer(t *testing.T, handle func(net.Conn)) (string, func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted int
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted++
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(testTimeout))
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return accepted
	}
}

func TestPing_ClosedAfterSomeBytes(t *testing.T) {
	nodetest.VerifyNoLeaks(t)
	addr, accepted := rawServer(t, func(c net.Conn) {
		// Ten bytes of a key, then an orderly close after the client's
		// first flight is drained.
		c.Write(make([]byte, 10))
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
	})
	_, err := node.Ping(context.Background(), node.Options{Addr: addr, Timeout: testTimeout})
	if err == nil || errors.Is(err, node.ErrPeerClosedEarly) {
		t.Fatalf("err = %v, want a close that is not ErrPeerClosedEarly", err)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want it to wrap io.ErrUnexpectedEOF", err)
	}
	if !strings.Contains(err.Error(), "peer closed the connection") {
		t.Errorf("message %q", err)
	}
	if n := accepted(); n != 1 {
		t.Errorf("%d connections, want 1 (no v1 retry)", n)
	}
}

func TestPing_V1RetryFails(t *testing.T) {
	nodetest.VerifyNoLeaks(t)
	// A peer that hangs up on everything, v1 included.
	addr, accepted := rawServer(t, func(c net.Conn) {})
	_, err := node.Ping(context.Background(), node.Options{Addr: addr, Timeout: testTimeout})
	var pe *node.PingError
	if !errors.As(err, &pe) || !pe.V1Retry || pe.Stage != node.StageVersion || !errors.Is(err, node.ErrPeerClosedEarly) {
		t.Fatalf("err = %v", err)
	}
	if !strings.HasPrefix(err.Error(), "node: v1 retry (the peer closed the v2 attempt without a byte): ") {
		t.Errorf("message %q", err)
	}
	if n := accepted(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestPing_Timeout(t *testing.T) {
	nodetest.VerifyNoLeaks(t)
	fake := nodetest.New(t, nodetest.Config{Mode: nodetest.ModeMute})
	const timeout = 300 * time.Millisecond

	start := time.Now()
	_, err := node.Ping(context.Background(), node.Options{Addr: fake.Addr(), Timeout: timeout})
	elapsed := time.Since(start)
	if elapsed < timeout || elapsed > timeout+2*time.Second {
		t.Errorf("returned after %v, timeout %v", elapsed, timeout)
	}
	var te *node.TimeoutError
	if !errors.As(err, &te) || te.After != timeout {
		t.Fatalf("err = %v, want a TimeoutError after %v", err, timeout)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("not context.DeadlineExceeded")
	}
	if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
		t.Error("not a net.Error timeout")
	}
	var pe *node.PingError
	if !errors.As(err, &pe) || pe.Stage != node.StageHandshake {
		t.Errorf("err = %v", err)
	}
	if got, want := err.Error(), "node: v2 handshake: timed out after 300ms"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if n := len(fake.Conns()); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestPing_ContextDeadline(t *testing.T) {
	nodetest.VerifyNoLeaks(t)
	fake := nodetest.New(t, nodetest.Config{Mode: nodetest.ModeMute})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := node.Ping(ctx, node.Options{Addr: fake.Addr(), Timeout: time.Minute})
	var te *node.TimeoutError
	if !errors.As(err, &te) || te.After >= time.Minute {
		t.Fatalf("err = %v", err)
	}
}

func TestPing_Canceled(t *testing.T) {
	nodetest.VerifyNoLeaks(t)
	fake := nodetest.New(t, nodetest.Config{Mode: nodetest.ModeMute})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := node.Ping(ctx, node.Options{Addr: fake.Addr(), Timeout: testTimeout})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestPing_TooManyMessages(t *testing.T) {
	nodetest.VerifyNoLeaks(t)
	fake := nodetest.New(t, nodetest.Config{Chatter: 50})
	_, err := node.Ping(context.Background(), node.Options{Addr: fake.Addr(), Timeout: testTimeout, MaxMessages: 10})
	var tm node.TooManyMessagesError
	if !errors.As(err, &tm) || tm != 10 {
		t.Fatalf("err = %v", err)
	}
	var pe *node.PingError
	if !errors.As(err, &pe) || pe.Stage != node.StageVerack {
		t.Fatalf("err = %v", err)
	}
	// With the default limit the chatter is skipped.
	if _, err := node.Ping(context.Background(), node.Options{Addr: fake.Addr(), Timeout: testTimeout}); err != nil {
		t.Fatal(err)
	}
}

func TestPing_Refused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = node.Ping(context.Background(), node.Options{Addr: addr, Timeout: testTimeout})
	var pe *node.PingError
	if !errors.As(err, &pe) || pe.Stage != node.StageConnect || errors.Is(err, node.ErrPeerClosedEarly) {
		t.Fatalf("err = %v", err)
	}
}

func TestPing_InvalidOptions(t *testing.T) {
	for name, o := range map[string]node.Options{
		"no addr":          {},
		"no port":          {Addr: "127.0.0.1"},
		"negative timeout": {Addr: "127.0.0.1:1", Timeout: -1},
		"long user agent":  {Addr: "127.0.0.1:1", UserAgent: strings.Repeat("a", 257)},
		"negative limit":   {Addr: "127.0.0.1:1", MaxMessages: -1},
	} {
		if _, err := node.Ping(context.Background(), o); err == nil {
			t.Errorf("%s: no error", name)
		} else if errors.As(err, new(*node.PingError)) {
			t.Errorf("%s: %v is a PingError", name, err)
		}
	}
}

// TestNodetest_V1OnV2Node checks the fake node's v1 path: a v2-capable
// node that reads the v1 prefix goes on in v1 with the bytes it read.
func TestNodetest_V1OnV2Node(t *testing.T) {
	nodetest.VerifyNoLeaks(t)
	fake := nodetest.New(t, nodetest.Config{})
	c, err := net.Dial("tcp", fake.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	mc := node.NewV1Conn(c, v2core.Mainnet, nil)
	v := node.Version{Protocol: node.ProtocolVersion, UserAgent: "/test:1/"}
	payload, _ := node.AppendVersion(nil, &v)
	if err := mc.WriteMessage(node.CmdVersion, payload); err != nil {
		t.Fatal(err)
	}
	var got []string
	for !slices.Contains(got, node.CmdVerack) {
		cmd, _, err := mc.ReadMessage()
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, cmd)
	}
	if want := []string{"version", "wtxidrelay", "sendaddrv2", "verack"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	conns := fake.Conns()
	if len(conns) != 1 || !conns[0].V1 || conns[0].HasSessionID || conns[0].PeerVersion == nil || conns[0].PeerVersion.UserAgent != "/test:1/" {
		t.Errorf("fake saw %+v", conns)
	}
}

// TestPing_WrongNetwork: when the peer's key came but its garbage
// terminator never did, the error suggests --network, whatever ended the
// handshake; without the key it does not.
func TestPing_WrongNetwork(t *testing.T) {
	// noTerminator plays a responder that sends a valid key and then
	// garbage with no terminator in it, past the 4111-byte limit.
	noTerminator := func(c net.Conn) {
		c.Read(make([]byte, 16))
		hs, err := v2core.NewInitiator(nil)
		if err != nil {
			return
		}
		key := hs.OurKey()
		c.Write(append(key[:], make([]byte, v2core.MaxGarbageLen+v2core.GarbageTerminatorSize)...))
		io.Copy(io.Discard, c)
	}
	cases := []struct {
		name string
		// fake is a fake node on regtest; raw, if set, a hand-made peer.
		fake    *nodetest.Config
		raw     func(net.Conn)
		timeout time.Duration
		want    error // also in the chain
		hint    bool
	}{
		{name: "timeout", fake: &nodetest.Config{Network: v2core.Regtest}, timeout: 300 * time.Millisecond,
			want: context.DeadlineExceeded, hint: true},
		{name: "peer closes", fake: &nodetest.Config{Network: v2core.Regtest, ConnTimeout: 200 * time.Millisecond},
			timeout: testTimeout, want: io.ErrUnexpectedEOF, hint: true},
		{name: "no terminator", raw: noTerminator, timeout: testTimeout, want: v2core.ErrNoTerminator, hint: true},
		{name: "mute", fake: &nodetest.Config{Mode: nodetest.ModeMute}, timeout: 300 * time.Millisecond,
			want: context.DeadlineExceeded},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nodetest.VerifyNoLeaks(t)
			var addr string
			if c.raw != nil {
				addr, _ = rawServer(t, c.raw)
			} else {
				addr = nodetest.New(t, *c.fake).Addr()
			}
			_, err := node.Ping(context.Background(), node.Options{Addr: addr, Network: v2core.Mainnet, Timeout: c.timeout, V2Only: true})
			var pe *node.PingError
			if !errors.As(err, &pe) || pe.Stage != node.StageHandshake {
				t.Fatalf("err = %v, want a PingError in the handshake", err)
			}
			// A node on another network answers with its key, garbage,
			// terminator and version packet, none of which match: with
			// garbage of 4075 bytes or more (0.5 % of draws) those reach
			// the 4111-byte scan limit, and the client gives up at once
			// instead of timing out. Either way the hint must come.
			if !errors.Is(err, c.want) && !(c.name == "timeout" && errors.Is(err, v2core.ErrNoTerminator)) {
				t.Errorf("err = %v, want it to wrap %v", err, c.want)
			}
			var nt *node.NoTerminatorError
			if got := errors.As(err, &nt); got != c.hint {
				t.Fatalf("NoTerminatorError in the chain: %v, want %v (err %v)", got, c.hint, err)
			}
			hinted := strings.Contains(err.Error(), "--network") && strings.Contains(err.Error(), "network main")
			if hinted != c.hint {
				t.Errorf("message %q: hint %v, want %v", err, hinted, c.hint)
			}
			if c.hint && nt.Network != v2core.Mainnet {
				t.Errorf("NoTerminatorError.Network = %v", nt.Network)
			}
		})
	}
}

package ptspec

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"
)

// quietWait is how long a test waits to see that something does not
// happen.
const quietWait = 200 * time.Millisecond

// startServe runs Serve on a new listener in front of target and returns
// the listener's address; Serve ends with t.
func startServe(t *testing.T, cfg Config, w Wrapper, target string) string {
	t.Helper()
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := run(t, func() error { return Serve(ctx, cfg, ln, w, target) })
	t.Cleanup(func() {
		cancel()
		if err := done(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testTimeout))
	return c
}

// roundTrip writes msg on c and reads it back from the echo behind it.
func roundTrip(c net.Conn, msg string) error {
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != msg {
		return errors.New("echo mismatch: " + string(got))
	}
	return nil
}

// TestServe_MaxConns: a flood of connections gets MaxConns served at
// once; the rest wait until a slot frees.
func TestServe_MaxConns(t *testing.T) {
	checkLeaks(t)
	var targetConns atomic.Int32
	ln := listen(t)
	serveConns(t, ln, func(c net.Conn) {
		targetConns.Add(1)
		echo(c)
	})
	addr := startServe(t, Config{MaxConns: 2}, identity{}, ln.Addr().String())

	c1, c2 := dial(t, addr), dial(t, addr)
	for _, c := range []net.Conn{c1, c2} {
		if err := roundTrip(c, "in"); err != nil {
			t.Fatal(err)
		}
	}
	// The flood: accepted by the kernel, not served.
	var flood []net.Conn
	for range 20 {
		c := dial(t, addr)
		io.WriteString(c, "x")
		flood = append(flood, c)
	}
	flood[0].SetReadDeadline(time.Now().Add(quietWait))
	if n, err := flood[0].Read(make([]byte, 1)); n != 0 || !os.IsTimeout(err) {
		t.Fatalf("a connection over MaxConns was served: %d, %v", n, err)
	}
	if n := targetConns.Load(); n != 2 {
		t.Fatalf("%d connections reached the target; want 2", n)
	}
	// Each close lets one more in.
	c1.Close()
	c2.Close()
	for _, c := range flood {
		c.SetDeadline(time.Now().Add(testTimeout))
		got := make([]byte, 1)
		if _, err := io.ReadFull(c, got); err != nil || got[0] != 'x' {
			t.Fatalf("flood connection: %q, %v", got, err)
		}
		c.Close()
	}
}

// blockingWrapper counts the WrapConn calls in flight and holds each
// until release is closed.
type blockingWrapper struct {
	inFlight, peak atomic.Int32
	release        chan struct{}
}

func (w *blockingWrapper) WrapConn(ctx context.Context, c net.Conn) (net.Conn, error) {
	n := w.inFlight.Add(1)
	defer w.inFlight.Add(-1)
	for {
		p := w.peak.Load()
		if n <= p || w.peak.CompareAndSwap(p, n) {
			break
		}
	}
	select {
	case <-w.release:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestServe_MaxHandshakes: at most MaxHandshakes connections are in
// WrapConn at once.
func TestServe_MaxHandshakes(t *testing.T) {
	checkLeaks(t)
	w := &blockingWrapper{release: make(chan struct{})}
	addr := startServe(t, Config{MaxConns: 100, MaxHandshakes: 3}, w, echoServer(t))
	var conns []net.Conn
	for range 10 {
		conns = append(conns, dial(t, addr))
	}
	deadline := time.Now().Add(testTimeout)
	for w.inFlight.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(quietWait)
	if n := w.peak.Load(); n != 3 {
		t.Fatalf("%d handshakes at once; want 3", n)
	}
	close(w.release)
	for _, c := range conns {
		if err := roundTrip(c, "ok"); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.peak.Load(); n != 3 {
		t.Errorf("%d handshakes at once; want 3", n)
	}
}

// stubbornWrapper reads from the connection and ignores ctx.
type stubbornWrapper struct{ err chan error }

func (w stubbornWrapper) WrapConn(_ context.Context, c net.Conn) (net.Conn, error) {
	_, err := c.Read(make([]byte, 1))
	w.err <- err
	return nil, err
}

// TestServe_HandshakeTimeout: a WrapConn that ignores ctx has its
// connection closed under it when HandshakeTimeout expires.
func TestServe_HandshakeTimeout(t *testing.T) {
	checkLeaks(t)
	w := stubbornWrapper{err: make(chan error, 1)}
	addr := startServe(t, Config{HandshakeTimeout: 50 * time.Millisecond}, w, echoServer(t))
	c := dial(t, addr)
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || os.IsTimeout(err) {
		t.Fatalf("read %d, %v; want the connection closed", n, err)
	}
	if err := <-w.err; !errors.Is(err, net.ErrClosed) {
		t.Errorf("WrapConn's read: %v; want net.ErrClosed", err)
	}
}

// keepingWrapper refuses every connection but keeps it, as a transport
// that hands probes to a fallback does.
type keepingWrapper struct{ kept chan net.Conn }

func (w keepingWrapper) WrapConn(_ context.Context, c net.Conn) (net.Conn, error) {
	w.kept <- c
	return nil, errors.New("probe")
}

// TestServe_RefusedConnIsTheTransports: after WrapConn fails, ptspec
// leaves the connection alone and logs at debug level only.
func TestServe_RefusedConnIsTheTransports(t *testing.T) {
	checkLeaks(t)
	logger, logs := testLogger()
	w := keepingWrapper{kept: make(chan net.Conn, 1)}
	addr := startServe(t, Config{Logger: logger, MaxConns: 1}, w, echoServer(t))
	c := dial(t, addr)
	kept := <-w.kept
	defer kept.Close()
	// The slot is free again: a second connection gets to WrapConn.
	c2 := dial(t, addr)
	<-w.kept
	c2.Close()

	time.Sleep(quietWait)
	if _, err := io.WriteString(kept, "fallback speaking"); err != nil {
		t.Fatalf("ptspec closed the refused connection: %v", err)
	}
	got := make([]byte, len("fallback speaking"))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !strings.Contains(line, "level=DEBUG") {
			t.Errorf("log above debug for a probe: %s", line)
		}
	}
}

// TestServeSOCKS_Rejections: bad arguments and an unreachable bridge get
// their SOCKS reply and a log line without the secret.
func TestServeSOCKS_Rejections(t *testing.T) {
	checkLeaks(t)
	logger, logs := testLogger()
	ln := listen(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := run(t, func() error { return ServeSOCKS(ctx, Config{Logger: logger}, ln, &recordingClients{}) })

	closed := listen(t)
	closed.Close()
	tests := []struct {
		name, user, target string
		want               byte
	}{
		{"bad args", "secret=TOPSECRET;profile=bad", echoServer(t), pt.SocksRepConnectionNotAllowed},
		{"refused", "secret=TOPSECRET", closed.Addr().String(), pt.SocksRepConnectionRefused},
	}
	for _, tt := range tests {
		if _, rep := socks5(t, ln.Addr().String(), tt.user, "\x00", tt.target); rep != tt.want {
			t.Errorf("%s: reply %d; want %d", tt.name, rep, tt.want)
		}
	}
	// Unparsable arguments: goptlib fails the authentication.
	c := dial(t, ln.Addr().String())
	c.Write([]byte{5, 1, 2})
	b := make([]byte, 2)
	if _, err := io.ReadFull(c, b); err != nil || b[1] != 2 {
		t.Fatalf("method reply %x, %v", b, err)
	}
	c.Write([]byte{1, 5, 'n', 'o', 'e', 'q', 's', 1, 0})
	if b, _ := io.ReadAll(c); string(b) != "\x01\x01" {
		t.Errorf("unparsable args: got %x; want 0101", b)
	}

	cancel()
	if err := done(); err != nil {
		t.Errorf("ServeSOCKS: %v", err)
	}
	text := logs.String()
	if containsAny(text, "TOPSECRET", "127.0.0.1") {
		t.Errorf("logs show the secret or an address:\n%s", text)
	}
	for _, want := range []string{
		`msg="ptspec: rejecting SOCKS request: bad bridge arguments" transport=bip324 bridge=[scrubbed] args="profile=bad;secret=[redacted]" err="ptspec: bad bridge arguments: unknown profile"`,
		`msg="ptspec: rejecting SOCKS request: cannot reach the bridge" transport=bip324 bridge=[scrubbed] args="secret=[redacted]" err=`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("logs lack %q:\n%s", want, text)
		}
	}
}

// TestForward: each connection gets its own wrapped connection to the
// bridge.
func TestForward(t *testing.T) {
	checkLeaks(t)
	ln := listen(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := run(t, func() error { return Forward(ctx, Config{}, ln, identity{}, echoServer(t)) })
	var wg sync.WaitGroup
	for range 5 {
		c := dial(t, ln.Addr().String())
		wg.Go(func() { checkEcho(t, c, "forwarded") })
	}
	wg.Wait()
	cancel()
	if err := done(); err != nil {
		t.Errorf("Forward: %v", err)
	}
}

// TestServe_BadConfig: a bad Config is an error, and the listener is
// closed.
func TestServe_BadConfig(t *testing.T) {
	checkLeaks(t)
	for _, cfg := range []Config{{MaxConns: -1}, {Transport: "bip-324"}, {Transport: "9lives"}} {
		ln := listen(t)
		if err := Serve(t.Context(), cfg, ln, identity{}, "127.0.0.1:1"); err == nil {
			t.Errorf("Serve(%+v) succeeded", cfg)
		}
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("listener not closed: %v", err)
		}
	}
}

// failingListener fails its first Accept with a temporary error and
// then for good.
type failingListener struct {
	net.Listener
	calls int
}

type tempErr struct{}

func (tempErr) Error() string   { return "too many open files" }
func (tempErr) Temporary() bool { return true }
func (tempErr) Timeout() bool   { return false }

func (l *failingListener) Accept() (net.Conn, error) {
	l.calls++
	if l.calls == 1 {
		return nil, tempErr{}
	}
	return nil, errors.New("broken")
}

// TestServe_AcceptErrors: a temporary accept error is retried, another
// ends Serve with the error.
func TestServe_AcceptErrors(t *testing.T) {
	checkLeaks(t)
	ln := &failingListener{Listener: listen(t)}
	err := Serve(t.Context(), Config{}, ln, identity{}, "127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "broken") || ln.calls != 2 {
		t.Errorf("Serve = %v after %d accepts; want \"broken\" after 2", err, ln.calls)
	}
}

// TestListen_NoKeepAlive: connections accepted through Listen have TCP
// keepalives off (SO_KEEPALIVE 0, read back from the socket), as Bitcoin
// Core's sockets never send keepalive probes; Go's default turns them on.
func TestListen_NoKeepAlive(t *testing.T) {
	ln, err := Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := directDial(context.Background(), ln.Addr().String())
		if err == nil {
			defer c.Close()
			if v := keepAlive(t, c); v != 0 {
				t.Errorf("dialed connection: SO_KEEPALIVE = %d, want 0", v)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v := keepAlive(t, c); v != 0 {
		t.Errorf("accepted connection: SO_KEEPALIVE = %d, want 0", v)
	}
	// The check can fail: a default listener's connection has it on.
	var lc net.ListenConfig
	dl, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	go func() {
		if c, err := net.Dial("tcp", dl.Addr().String()); err == nil {
			time.Sleep(100 * time.Millisecond)
			c.Close()
		}
	}()
	dc, err := dl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	if v := keepAlive(t, dc); v == 0 {
		t.Error("a default listener's connection reads SO_KEEPALIVE 0: the check cannot tell")
	}
}

// keepAlive reads SO_KEEPALIVE from c's socket.
func keepAlive(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	rc.Control(func(fd uintptr) { v, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) })
	if serr != nil {
		t.Fatal(serr)
	}
	return v
}

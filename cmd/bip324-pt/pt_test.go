package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"github.com/bip324pt/bip324-pt/internal/testutil"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoServer echoes every connection until it closes.
func echoServer(t *testing.T) string {
	return serveTCP(t, func(c net.Conn) {
		io.Copy(c, c)
		c.Close()
	})
}

// serveTCP runs handle on a goroutine for every connection to a loopback
// listener, until the test ends, and returns the listener's address.
func serveTCP(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// waitLine waits for a line starting with prefix and returns the rest.
func waitLine(t *testing.T, b *testutil.SyncBuffer, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(b.String()))
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				return rest
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %q line in %q", prefix, b.String())
	return ""
}

// standalone starts "bip324-pt server" in front of target and "bip324-pt
// client --forward" in front of it, in this process, and returns the
// client's address.
func standalone(t *testing.T, target string, serverArgs, clientArgs []string) string {
	t.Helper()
	return standaloneBridgeArgs(t, target, serverArgs, nil, clientArgs...)
}

// standaloneBridgeArgs is standalone with extra key=value arguments added
// to the client's --bridge.
func standaloneBridgeArgs(t *testing.T, target string, serverArgs, bridgeArgs []string, clientArgs ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sout, serr, cout, cerr testutil.SyncBuffer
	wg.Add(1)
	go func() {
		defer wg.Done()
		args := append([]string{"server", "--listen", "127.0.0.1:0", "--forward", target, "--state", t.TempDir(),
			"--log-level", "warn"}, serverArgs...)
		if code := run(ctx, args, &sout, &serr); code != exitOK {
			t.Errorf("server exit %d: %s", code, serr.String())
		}
	}()
	bridgeLine := strings.Join(append([]string{waitLine(t, &sout, "bridge: ")}, bridgeArgs...), " ")
	wg.Add(1)
	go func() {
		defer wg.Done()
		args := append([]string{"client", "--listen", "127.0.0.1:0", "--forward", "--bridge", bridgeLine, "--log-level", "warn"}, clientArgs...)
		if code := run(ctx, args, &cout, &cerr); code != exitOK {
			t.Errorf("client exit %d: %s", code, cerr.String())
		}
	}()
	addr := strings.Fields(waitLine(t, &cout, "forwarding: "))[0]
	t.Cleanup(func() { cancel(); wg.Wait() })
	return addr
}

// openFDs counts the process's open sockets. (Other descriptors come and
// go with the runtime: io.Copy between TCP connections splices through
// pipes that Go keeps in a pool.)
func openFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// TestStandalone_Load: 200 concurrent tunnels through one bridge (40 of
// them through a second one, shaped cbr both ways), each carrying 2 MiB
// each way, every byte checked by hash; afterwards no goroutine and no
// descriptor is left.
func TestStandalone_Load(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	goroutines, fds := runtime.NumGoroutine(), openFDs()
	// Registered first, so it runs after the servers' cleanups.
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && (runtime.NumGoroutine() > goroutines || openFDs() > fds) {
			time.Sleep(50 * time.Millisecond)
		}
		if g := runtime.NumGoroutine(); g > goroutines {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines left:\n%s", g-goroutines, buf[:runtime.Stack(buf, true)])
		}
		if f := openFDs(); f > fds {
			t.Errorf("%d sockets left", f-fds)
		}
	})
	func() {
		target := echoServer(t)
		addr := standalone(t, target, nil, nil)
		// A fifth of the tunnels are rate-limited, both ways: their
		// 2 MiB each way take about 15 s at cbr's 1448 bytes per 10 ms,
		// alongside the unshaped ones.
		cbrAddr := standaloneBridgeArgs(t, target, []string{"--profile", "cbr"}, []string{"profile=cbr"})
		tunnels, size := 200, 2<<20
		var wg sync.WaitGroup
		errs := make(chan error, tunnels)
		for i := range tunnels {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := addr
				if i%5 == 0 {
					a = cbrAddr
				}
				errs <- oneTunnel(a, i, size)
			}()
		}
		wg.Wait()
		close(errs)
		failed := 0
		for err := range errs {
			if err != nil {
				failed++
				if failed <= 3 {
					t.Error(err)
				}
			}
		}
		if failed > 0 {
			t.Fatalf("%d of %d tunnels failed", failed, tunnels)
		}
	}()
}

func oneTunnel(addr string, seed, size int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(120 * time.Second))
	data := make([]byte, size)
	mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(data)
	want := sha256.Sum256(data)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			// The echo ends when our half-close has come through.
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	if n, err := io.Copy(h, c); err != nil || n != int64(size) {
		return fmt.Errorf("tunnel %d: read %d of %d bytes, then %v", seed, n, size, err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("tunnel %d: write: %w", seed, err)
	}
	if [32]byte(h.Sum(nil)) != want {
		return fmt.Errorf("tunnel %d: data differs", seed)
	}
	return nil
}

// TestStandalone_Profiles: a tunnel with each built-in profile carries
// data intact, with the profile named by the bridge (its default for its
// direction) or asked for by the client in its bridge line.
func TestStandalone_Profiles(t *testing.T) {
	target := echoServer(t)
	for _, p := range []string{"bitcoin", "cbr", "fet", "jitter", "video"} {
		for _, byClient := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/client=%v", p, byClient), func(t *testing.T) {
				var sargs, extra []string
				if byClient {
					extra = []string{"profile=" + p}
				} else {
					sargs = []string{"--profile", p}
				}
				addr := standaloneBridgeArgs(t, target, sargs, extra)
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				size := 50_000
				if p == "video" && byClient {
					// A video client sends one request of a few
					// hundred bytes per 4-second segment (see
					// docs/profiles.md): keep the upstream small.
					size = 500
				}
				if err := oneTunnelConn(c, size); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func oneTunnelConn(c net.Conn, size int) error {
	c.SetDeadline(time.Now().Add(60 * time.Second))
	data := make([]byte, size)
	mrand.NewChaCha8([32]byte{9}).Read(data)
	go c.Write(data)
	got := make([]byte, size)
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("data differs")
	}
	return nil
}

// TestStandalone_Probe: a prober at the standalone bridge gets nothing and
// is closed.
func TestStandalone_Probe(t *testing.T) {
	target := echoServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sout, serr testutil.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"server", "--listen", "127.0.0.1:0", "--forward", target, "--state", t.TempDir(),
			"--probe-close-min", "300ms", "--probe-close-max", "400ms"}, &sout, &serr)
	}()
	bridgeAddr := strings.Fields(waitLine(t, &sout, "listening: "))[0]
	c, err := net.Dial("tcp", bridgeAddr)
	if err != nil {
		t.Fatal(err)
	}
	// A prober meets a Bitcoin Core node: its key and garbage at once,
	// then, with no terminator ever, a FIN in Core's window after accept.
	start := time.Now()
	c.Write(bytes.Repeat([]byte{0x42}, 500))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	took := time.Since(start)
	c.Close()
	if len(got) < 64 || len(got) > 64+4095 || err != nil {
		t.Fatalf("prober got %d bytes, err %v; want a key and garbage, then a FIN", len(got), err)
	}
	if took < 250*time.Millisecond || took > time.Second {
		t.Fatalf("closed after %v, want within 300-400 ms of accept", took)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("server exit %d: %s", code, serr.String())
	}
}

// TestClient_ForwardForms: --forward as a switch with --bridge's address,
// with =HOST:PORT, and with HOST:PORT after it all reach the bridge.
func TestClient_ForwardForms(t *testing.T) {
	target := echoServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sout, serr testutil.SyncBuffer
	srvDone := make(chan int, 1)
	go func() {
		srvDone <- run(ctx, []string{"server", "--listen", "127.0.0.1:0", "--forward", target, "--state", t.TempDir(), "--log-level", "error"}, &sout, &serr)
	}()
	defer func() { cancel(); <-srvDone }()
	line := waitLine(t, &sout, "bridge: ")
	f := strings.Fields(line)
	addr, secret := f[0], f[1]
	for _, args := range [][]string{
		{"--forward", "--bridge", line},
		{"--forward=" + addr, "--bridge", secret},
		{"--bridge", secret, "--forward", addr},
	} {
		var cout, cerr testutil.SyncBuffer
		cctx, ccancel := context.WithCancel(ctx)
		done := make(chan int, 1)
		go func() {
			done <- run(cctx, append([]string{"client", "--listen", "127.0.0.1:0", "--log-level", "error"}, args...), &cout, &cerr)
		}()
		local := strings.Fields(waitLine(t, &cout, "forwarding: "))[0]
		c, err := net.Dial("tcp", local)
		if err != nil {
			t.Fatal(err)
		}
		if err := oneTunnelConn(c, 1000); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		c.Close()
		ccancel()
		if code := <-done; code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, cerr.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"client", "--forward", "127.0.0.1:1", "--bridge", "127.0.0.1:2 " + secret}, &out, &errb); code != exitUsage {
		t.Fatalf("two different bridges: exit %d", code)
	}
}

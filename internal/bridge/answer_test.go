package bridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bip324pt/bip324-pt/eval/wiretap"
	"github.com/bip324pt/bip324-pt/internal/bridgeauth"
	"github.com/bip324pt/bip324-pt/internal/memconn"
	"github.com/bip324pt/bip324-pt/internal/testutil"
	"github.com/bip324pt/bip324-pt/profiles"
	"github.com/bip324pt/bip324-pt/shaper"
)

// TestBridge_AppliedAnswer: a client that asks for a profile outside the
// allow-list learns which one the bridge applied and logs a warning; a
// client whose request is granted logs none; a client that asks for
// nothing gets no answer (its wire stays Core's).
func TestBridge_AppliedAnswer(t *testing.T) {
	for _, c := range []struct {
		ask, warn string
	}{
		{"cbr", ""},
		{"video", `asked=video applied=none`},
		{"", ""},
	} {
		t.Run(fmt.Sprintf("ask=%q", c.ask), func(t *testing.T) {
			b := startBridge(t, func(c *ServerConfig) { c.Allowed = []string{"cbr", "none"}; c.Profile = "none" })
			var logs testutil.SyncBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			cl, _, err := dialClient(t, b, &ClientConfig{Secret: b.secret, Request: Request{Profile: c.ask}, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			echoOnce(t, cl, 2000)
			cl.Close()
			got := logs.String()
			switch {
			case c.warn == "" && got != "":
				t.Errorf("logged %q, want nothing", got)
			case c.warn != "" && (!strings.Contains(got, "level=WARN") || !strings.Contains(got, c.warn)):
				t.Errorf("logged %q, want a warning with %q", got, c.warn)
			}
		})
	}
}

// bridgeWire runs, in a synctest bubble, a client asking for profile with
// seed through a bridge over an in-memory connection; the bridge sends
// 300 kB after the handshake. It returns the bridge's writes after its
// handshake, as "time size" lines.
func bridgeWire(t *testing.T, profile string, seed byte) string {
	return bridgeWireSeeded(t, profile, seed, false)
}

// bridgeWireSeeded is bridgeWire; with serverSeed the client's request
// carries no seed and the bridge's ServerConfig.Seed fixes its direction.
func bridgeWireSeeded(t *testing.T, profile string, seed byte, serverSeed bool) string {
	var out strings.Builder
	synctest.Test(t, func(t *testing.T) {
		secret, _ := bridgeauth.NewSecret(rand.Reader)
		cfg := ServerConfig{Secret: secret}
		req := Request{Profile: profile, Seed: [32]byte{'s', seed}}
		if serverSeed {
			cfg.Seed, req.Seed = [32]byte{'S', seed}, [32]byte{}
		}
		srv, err := NewServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		a, bc := memconn.Pipe(256 << 10)
		start := time.Now()
		rec := wiretap.New(start, 0)
		type result struct {
			c   net.Conn
			err error
		}
		done := make(chan result, 1)
		go func() {
			c, err := srv.WrapConn(context.Background(), wiretap.Tap(bc, rec, false))
			done <- result{c, err}
		}()
		p, err := profiles.Load(profile)
		if err != nil {
			t.Fatal(err)
		}
		shape, err := p.Compile()
		if err != nil {
			t.Fatal(err)
		}
		cl, err := Client(context.Background(), a, &ClientConfig{Secret: secret, Shape: shape, Seed: [32]byte{'c', seed}, Request: req})
		if err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		got := make(chan int64, 1)
		go func() {
			n, _ := io.Copy(io.Discard, cl)
			got <- n
		}()
		// At an instant of its own, so that the order in which the
		// bubble runs goroutines cannot matter.
		time.Sleep(time.Millisecond + 333)
		if _, err := r.c.Write(bytes.Repeat([]byte{1}, 300_000)); err != nil {
			t.Fatal(err)
		}
		if err := r.c.Close(); err != nil {
			t.Fatal(err)
		}
		if n := <-got; n != 300_000 {
			t.Fatalf("client read %d bytes, want 300000", n)
		}
		cl.Close()
		// Everything after the handshake, which takes no virtual time:
		// the bridge's writes at t > 0 (its first-flight garbage, drawn
		// before the request, is not the seed's to fix).
		for _, e := range wiretap.Filter(rec.Events(), wiretap.Received) {
			if e.Time <= 0 {
				continue
			}
			fmt.Fprintf(&out, "%v %d\n", e.Time, e.Size)
		}
	})
	return out.String()
}

// TestBridge_SeedFixesBridgeDirection: the seed= a client sends fixes the
// bridge's decisions for its direction (here jitter's gaps and burst
// sizes): the same seed gives the same wire from the bridge, another
// seed another.
func TestBridge_SeedFixesBridgeDirection(t *testing.T) {
	a, b, c := bridgeWire(t, "jitter", 1), bridgeWire(t, "jitter", 1), bridgeWire(t, "jitter", 2)
	if n := strings.Count(a, "\n"); n < 50 {
		t.Fatalf("only %d writes from the bridge:\n%s", n, a)
	}
	if a != b {
		t.Errorf("same seed, different bridge wire:\n%s\n---\n%s", a, b)
	}
	if a == c {
		t.Errorf("different seeds, same bridge wire")
	}
	// A client that sends no seed: the bridge's own seed fixes it.
	a, b, c = bridgeWireSeeded(t, "jitter", 1, true), bridgeWireSeeded(t, "jitter", 1, true), bridgeWireSeeded(t, "jitter", 2, true)
	if a != b {
		t.Errorf("same server seed, different bridge wire:\n%s\n---\n%s", a, b)
	}
	if a == c {
		t.Errorf("different server seeds, same bridge wire")
	}
}

// TestConn_Truncated: a connection that ends without the peer's
// end-of-stream record is reported as cut short, not as an end; one that
// ends with it reads as io.EOF.
func TestConn_Truncated(t *testing.T) {
	for _, clean := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			a, b := memconn.Pipe(1 << 16)
			cli, srv := NewConn(shaper.Client(a, nil), nil), NewConn(shaper.Server(b, nil), nil)
			go srv.Write([]byte("partial"))
			buf := make([]byte, 7)
			if _, err := io.ReadFull(cli, buf); err != nil {
				t.Fatal(err)
			}
			if clean {
				srv.Close()
			} else {
				srv.NetConn().Close() // a crash or a reset: no end record
			}
			_, err := cli.Read(buf)
			switch {
			case clean && err != io.EOF:
				t.Fatalf("read after a clean close = %v, want io.EOF", err)
			case !clean && (!errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF)):
				t.Fatalf("read after a cut = %v, want ErrTruncated", err)
			}
			cli.Close()
			srv.Close()
		})
	}
}

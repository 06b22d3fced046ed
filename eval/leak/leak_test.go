package leak_test

import (
	"bytes"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bip324pt/bip324-pt/eval/leak"
	"github.com/bip324pt/bip324-pt/eval/wiretap"
	"github.com/bip324pt/bip324-pt/internal/bridge"
	"github.com/bip324pt/bip324-pt/internal/memconn"
	"github.com/bip324pt/bip324-pt/profiles"
	"github.com/bip324pt/bip324-pt/schedule"
	"github.com/bip324pt/bip324-pt/shaper"
)

// The five workloads a censor tells apart: nothing; small messages at
// random gaps, echoed; a download; an upload; web pages, replayed from
// real Tor website loads (testdata/traces/data-bigenough-standard).
var workloads = []string{"idle", "interactive", "bulk-down", "bulk-up", "web"}

const (
	runFor    = 20 * time.Second // each sample, virtual time
	winStart  = 10 * time.Second // the window: the middle of the flow
	winLength = 10 * time.Second
	bins      = 20
	samples   = 8 // per workload
)

// sample is one run's wire and what it moved.
type sample struct {
	ev        []schedule.TraceEvent
	delivered int64 // application bytes delivered, both ways
}

// runSample runs workload through a tunnel shaped by profile at both
// ends, in virtual time, and returns the wire after the handshake.
func runSample(t *testing.T, profile, workload string, seed uint64, webTraces [][]schedule.TraceEvent) sample {
	var out sample
	synctest.Test(t, func(t *testing.T) {
		p, err := profiles.Load(profile)
		if err != nil {
			t.Fatal(err)
		}
		shape, err := p.Compile()
		if err != nil {
			t.Fatal(err)
		}
		quick := *shape
		quick.Linger = -1 // the run ends with a cut, not a drain
		a, b := memconn.Pipe(256 << 10)
		rec := wiretap.New(time.Now(), 0)
		cs := shaper.Client(wiretap.Tap(a, rec, true), &shaper.Config{Shape: &quick, Seed: [32]byte{'c', byte(seed), byte(seed >> 8)}})
		ss := shaper.Server(wiretap.Tap(b, rec, false), &shaper.Config{Shape: &quick, Seed: [32]byte{'s', byte(seed), byte(seed >> 8)}})
		errc := make(chan error, 1)
		go func() { errc <- ss.Handshake() }()
		if err := cs.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		cli, srv := bridge.NewConn(cs, nil), bridge.NewConn(ss, nil)
		start := time.Now()
		stop := make(chan struct{})
		var delivered atomic.Int64
		var wg sync.WaitGroup
		drain := func(c net.Conn, echo net.Conn) {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				delivered.Add(int64(n))
				if echo != nil && n > 0 {
					echo.Write(buf[:n])
				}
				if err != nil {
					return
				}
			}
		}
		r := mrand.New(mrand.NewPCG(seed, 7))
		wg.Add(2)
		switch workload {
		case "interactive":
			go drain(srv, srv) // the server echoes
			go drain(cli, nil)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					gap := time.Duration(r.ExpFloat64() * float64(time.Second))
					select {
					case <-stop:
						return
					case <-time.After(gap):
					}
					if _, err := cli.Write(make([]byte, 100+r.IntN(501))); err != nil {
						return
					}
				}
			}()
		default:
			go drain(srv, nil)
			go drain(cli, nil)
		}
		// bulk: 8 KiB a millisecond at most, so an unshaped tunnel
		// lets virtual time move.
		bulk := func(c net.Conn) {
			defer wg.Done()
			buf := make([]byte, 8<<10)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Write(buf); err != nil {
					return
				}
				time.Sleep(time.Millisecond)
			}
		}
		switch workload {
		case "bulk-down":
			wg.Add(1)
			go bulk(srv)
		case "bulk-up":
			wg.Add(1)
			go bulk(cli)
		case "web":
			tr := webTraces[int(seed)%len(webTraces)]
			for _, side := range []struct {
				c   net.Conn
				dir schedule.Direction
			}{{cli, schedule.DirSent}, {srv, schedule.DirReceived}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// The page loads, then the next page after a
					// pause, and so on.
					for base := time.Duration(0); ; base += tr[len(tr)-1].Time + 2*time.Second {
						for _, e := range tr {
							if e.Dir != side.dir {
								continue
							}
							select {
							case <-stop:
								return
							case <-time.After(time.Until(start.Add(base + e.Time))):
							}
							if _, err := side.c.Write(make([]byte, e.Size)); err != nil {
								return
							}
						}
					}
				}()
			}
		}
		time.Sleep(runFor)
		close(stop)
		cli.Close()
		srv.Close()
		wg.Wait()
		off := start.Sub(rec.Start())
		for _, e := range rec.Events() {
			e.Time -= off
			if e.Time >= 0 {
				out.ev = append(out.ev, e)
			}
		}
		out.delivered = delivered.Load()
	})
	return out
}

// loadWebTraces reads the real website loads the web workload replays.
func loadWebTraces(t *testing.T) [][]schedule.TraceEvent {
	files, _ := filepath.Glob("../../testdata/traces/data-bigenough-standard/*.log")
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatal("no web traces in testdata/traces/data-bigenough-standard")
	}
	var out [][]schedule.TraceEvent
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := schedule.ParseTrace(bytes.NewReader(b))
		if err != nil || len(ev) == 0 {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, ev)
	}
	return out
}

// measure classifies the five workloads through profile.
func measure(t *testing.T, profile string) (leak.Result, map[string]float64) {
	web := loadWebTraces(t)
	var x [][]float64
	var y []int
	rates := map[string]float64{}
	for c, w := range workloads {
		for s := range samples {
			smp := runSample(t, profile, w, uint64(c*100+s), web)
			x = append(x, leak.Features(smp.ev, winStart, winLength, bins))
			y = append(y, c)
			var wire int64
			for _, e := range smp.ev {
				wire += int64(e.Size)
			}
			rates[w+" wire B/s"] += float64(wire) / runFor.Seconds() / samples
			rates[w+" goodput B/s"] += float64(smp.delivered) / runFor.Seconds() / samples
		}
	}
	return leak.CrossValidate(x, y, len(workloads), 5, 3, 1), rates
}

// TestLeak measures, from the middle of the flow (10 s into a 20 s run,
// virtual time, so without network jitter, which would only help the
// profiles), how well a 3-nearest-neighbour classifier names the
// workload through each profile (5 workloads, chance 0.20, 5-fold
// cross-validated). Unshaped, the classifier must see the workload: that
// shows it works. The figures go to BENCHMARKS.md.
func TestLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("minutes of virtual traffic")
	}
	for _, c := range []struct {
		profile string
		atLeast float64 // the classifier must see at least this much
		atMost  float64 // the profile must hide at least this much
	}{
		{"none", 0.80, 1},
		{"cbr", 0, 0.40},
		{"video", 0, 0.60},
	} {
		t.Run(c.profile, func(t *testing.T) {
			res, rates := measure(t, c.profile)
			t.Logf("%s: %v", c.profile, res)
			keys := make([]string, 0, len(rates))
			for k := range rates {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				t.Logf("%s: %s %.0f", c.profile, k, rates[k])
			}
			if res.Accuracy < c.atLeast {
				t.Errorf("accuracy %.2f through %s: the classifier should see the workload (at least %.2f)", res.Accuracy, c.profile, c.atLeast)
			}
			if res.Accuracy > c.atMost {
				t.Errorf("accuracy %.2f through %s, want at most %.2f", res.Accuracy, c.profile, c.atMost)
			}
		})
	}
}

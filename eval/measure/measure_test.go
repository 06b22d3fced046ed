package measure_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/bip324pt/bip324-pt/eval/measure"
	"github.com/bip324pt/bip324-pt/internal/tortest"
)

// The measurement tools: not correctness tests. They run only with
// BIP324PT_MEASURE=1, as
//
//	BIP324PT_MEASURE=1 go test ./eval/measure -run Measure -v
//
// Each transport's client and server run as real processes in managed
// mode (internal/tortest's Pair, without tor), the server forwarding to a
// measure.Sink. They need obfs4proxy and go; without obfs4proxy they skip,
// unless BIP324PT_REQUIRE_TOR is set. BENCHMARKS.md has the figures.

// TestMeasureObfs4 logs obfs4proxy's throughput and CPU per MiB (iat-mode=0
// and 1) and its handshakes per second: the reference figures for
// bip324-pt. BIP324PT_MEASURE_MIB sets the size of the iat-mode=0
// transfers (default 256); the iat-mode=1 ones move 1 MiB, which takes
// seconds.
func TestMeasureObfs4(t *testing.T) {
	mib := measureMiB(t)
	t.Run("iat0/tunnel", func(t *testing.T) {
		bulk(t, startPair(t, tortest.Obfs4(t)), mib<<20)
	})
	t.Run("iat0/handshakes", func(t *testing.T) {
		handshakes(t, startPair(t, tortest.Obfs4(t)))
	})
	t.Run("iat1/tunnel", func(t *testing.T) {
		bulk(t, startPair(t, tortest.Obfs4(t, "iat-mode=1")), 1<<20)
	})
}

// TestMeasureBip324 measures bip324-pt as TestMeasureObfs4 measures
// obfs4proxy, in the same way, so that the two can be compared run for
// run.
func TestMeasureBip324(t *testing.T) {
	mib := measureMiB(t)
	bin := tortest.BuildBip324(t)
	t.Run("none/tunnel", func(t *testing.T) {
		bulk(t, startPair(t, tortest.Bip324(bin, "profile=none")), mib<<20)
	})
	t.Run("none/handshakes", func(t *testing.T) {
		handshakes(t, startPair(t, tortest.Bip324(bin, "profile=none")))
	})
	t.Run("jitter/tunnel", func(t *testing.T) {
		bulk(t, startPair(t, tortest.Bip324(bin, "profile=jitter")), 16<<20)
	})
}

// startPair starts a sink and a pair of tr whose server forwards to it.
// Cleanup stops both.
func startPair(t *testing.T, tr tortest.Transport) *tortest.Pair {
	t.Helper()
	s, err := measure.StartSink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return tortest.StartPair(t, tr, s.Addr())
}

// bulk measures size bytes each way through p and logs the result; it
// fails the test only when a transfer fails, or a transport had to be
// killed at the end.
func bulk(t *testing.T, p *tortest.Pair, size int64) {
	t.Helper()
	r, err := measure.Bulk(p, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("upload:   %v", r.Upload)
	t.Logf("download: %v", r.Download)
	if err := p.Stop(); err != nil {
		t.Error(err)
	}
}

// handshakes measures connections through p, first one at a time, then
// four, and logs the results.
func handshakes(t *testing.T, p *tortest.Pair) {
	t.Helper()
	for _, c := range []struct{ n, parallel int }{{200, 1}, {400, 4}} {
		r, err := measure.Handshakes(p, c.n, c.parallel)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%v", r)
	}
}

// measureMiB skips a measurement tool unless BIP324PT_MEASURE=1, and
// returns the transfer size BIP324PT_MEASURE_MIB asks for (default 256).
func measureMiB(t *testing.T) int64 {
	t.Helper()
	if os.Getenv("BIP324PT_MEASURE") != "1" {
		t.Skip("a measurement tool: set BIP324PT_MEASURE=1 to run it")
	}
	mib := int64(256)
	if s := os.Getenv("BIP324PT_MEASURE_MIB"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("BIP324PT_MEASURE_MIB=%q: want a positive integer", s)
		}
		mib = n
	}
	return mib
}

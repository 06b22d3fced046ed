//go:build unix

package shaper_test

import (
	"fmt"
	"github.com/bip324pt/bip324-pt/internal/testutil"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/internal/bridge"
	"github.com/bip324pt/bip324-pt/internal/memconn"
	"github.com/bip324pt/bip324-pt/profiles"
	"github.com/bip324pt/bip324-pt/shaper"
	"github.com/bip324pt/bip324-pt/v2core"
)

// compile loads a built-in profile and compiles it.
func compile(b *testing.B, name string) *shaper.Config {
	b.Helper()
	p, err := profiles.Load(name)
	if err != nil {
		b.Fatal(err)
	}
	shape, err := p.Compile()
	if err != nil {
		b.Fatal(err)
	}
	return &shaper.Config{Shape: shape}
}

// stream frames a shaped connection as the bridge does: a byte stream.
func stream(c *shaper.Conn) *bridge.Conn { return bridge.NewConn(c, nil) }

// loopback is a TCP listener on 127.0.0.1 that hands out connected pairs.
type loopback struct {
	ln       net.Listener
	accepted chan net.Conn
}

func newLoopback(b *testing.B) *loopback {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	l := &loopback{ln: ln, accepted: make(chan net.Conn)}
	go func() {
		defer close(l.accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.accepted <- c
		}
	}()
	b.Cleanup(func() { ln.Close() })
	return l
}

// pair dials the listener and returns the dialled and the accepted end.
func (l *loopback) pair(b *testing.B) (net.Conn, net.Conn) {
	b.Helper()
	a, err := net.Dial("tcp", l.ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	c, ok := <-l.accepted
	if !ok {
		b.Fatal("listener closed")
	}
	return a, c
}

// handshaker is what shaper.Conn and v2core.Conn have in common here.
type handshaker interface {
	net.Conn
	Handshake() error
}

func handshake(b *testing.B, cli, srv handshaker) {
	b.Helper()
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	err := cli.Handshake()
	if err != nil {
		srv.Close()
	}
	if serr := <-errc; err == nil {
		err = serr
	}
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkThroughput sends 16 KiB Writes from a client to a server over
// loopback TCP, the server reading on its own goroutine; an op is one
// Write, and timing ends when the server has read every byte. "none" is
// a shaper.Conn with the built-in profile none (queue, send loop, 64 KiB
// packets); "plainv2core" is a v2core.Conn, the unshaped reference, as in
// v2core's BenchmarkConnThroughput. The parent logs none's throughput as
// a share of plainv2core's in the same run (target: at least 90%; -v
// shows the line). On a shared machine wall time swings with other
// load; cpu-ns/op, the process's CPU time per op, swings much less.
//
//	go test ./shaper -run '^$' -bench Throughput -benchtime=8192x -count=3 -v
func BenchmarkThroughput(b *testing.B) {
	const chunk = 16 << 10
	rate := map[string]float64{}
	for _, name := range []string{"none", "plainv2core"} {
		b.Run(name, func(b *testing.B) {
			l := newLoopback(b)
			a, c := l.pair(b)
			var cli, srv handshaker
			switch name {
			case "none":
				cfg := compile(b, "none")
				cli, srv = stream(shaper.Client(a, cfg)), stream(shaper.Server(c, cfg))
			case "plainv2core":
				cli, srv = v2core.Client(a, nil), v2core.Server(c, nil)
			}
			handshake(b, cli, srv)
			defer srv.Close()
			defer cli.Close()

			b.ReportAllocs()
			b.SetBytes(chunk)
			var ru0, ru1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			busy0 := machineBusy()
			b.ResetTimer()
			if err := testutil.Transfer(cli, srv, b.N, chunk, func() { srv.Close() }); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			busy1 := machineBusy()
			// CPU per op tells the two apart even when the machine is
			// busy with other work and wall time swings.
			b.ReportMetric(float64(cpuTime(&ru0, &ru1).Nanoseconds())/float64(b.N), "cpu-ns/op")
			if busy0 > 0 && busy1 > 0 {
				b.ReportMetric(100*(busy1-busy0).Seconds()/b.Elapsed().Seconds(), "machine-cpu-%")
			}
			rate[name] = float64(int64(b.N)*chunk) / b.Elapsed().Seconds()
		})
	}
	if rate["none"] > 0 && rate["plainv2core"] > 0 {
		b.Logf("none: %.0f MB/s, plainv2core: %.0f MB/s: none at %.1f%% of plain",
			rate["none"]/1e6, rate["plainv2core"]/1e6, 100*rate["none"]/rate["plainv2core"])
	}
}

// lateness collects one connection's send lateness while measuring. Its
// OnSend runs on that connection's send loop only.
type lateness struct {
	measuring *atomic.Bool
	samples   []time.Duration
}

func (l *lateness) onSend(due, actual time.Time) {
	if l.measuring.Load() {
		l.samples = append(l.samples, actual.Sub(due))
	}
}

// BenchmarkCBR1000 runs 1,000 connections of the built-in cbr profile in
// one process: each client sends a 1448-byte cell every 10 ms, 100 a
// second, all decoys after one byte of data, and each server reads and
// decrypts them. "tcp" runs them over loopback TCP (2,000 sockets);
// "memconn" over in-memory pipes, which leaves out the kernel's TCP path
// and shows the shaper's and the Go runtime's own share. An op is one
// second of all of them running. It reports the process's CPU time over
// the measured window (user+sys from getrusage) as a percentage of one
// core and per cell, the cells sent per second (fewer than 100,000 means
// the loops fell more than half an interval behind and skipped slots),
// and the lateness of the send opportunities (Config.OnSend: when the
// loop filled each one, minus when it was due) at p50, p99 and max.
// Target: p99 within 2 ms. "tcp-baseline" is the floor the shaper is to
// be judged against: no shaper, a plain v2core.Conn per connection and a
// goroutine with a time.Ticker writing one 1448-byte decoy each tick,
// its lateness the tick's delivery minus its due time.
//
//	go test ./shaper -run '^$' -bench CBR1000 -benchtime=5x -count=3
//
// "tcp-sender" and "tcp-sender-baseline" measure the sending side alone,
// as a bridge serving 1,000 clients elsewhere would run it: the receiving
// ends do not decrypt, they drain their sockets' raw bytes ten times a
// second, so the two cores are left to the senders.
func BenchmarkCBR1000(b *testing.B) {
	b.Run("tcp", func(b *testing.B) { benchCBR(b, 1000, true, false) })
	b.Run("memconn", func(b *testing.B) { benchCBR(b, 1000, false, false) })
	b.Run("tcp-baseline", func(b *testing.B) { benchCBR(b, 1000, true, true) })
	b.Run("tcp-sender", func(b *testing.B) { benchCBRDrain(b, 1000, false) })
	b.Run("tcp-sender-baseline", func(b *testing.B) { benchCBRDrain(b, 1000, true) })
}

// BenchmarkCBRScale is BenchmarkCBR1000's tcp and tcp-baseline at fewer
// connections, to find where lateness turns.
//
//	go test ./shaper -run '^$' -bench CBRScale -benchtime=3x
func BenchmarkCBRScale(b *testing.B) {
	for _, n := range []int{100, 250, 500} {
		b.Run(fmt.Sprintf("conns=%d/tcp", n), func(b *testing.B) { benchCBR(b, n, true, false) })
		b.Run(fmt.Sprintf("conns=%d/tcp-baseline", n), func(b *testing.B) { benchCBR(b, n, true, true) })
	}
}

func benchCBR(b *testing.B, conns int, tcp, baseline bool) {
	benchCBROpts(b, conns, tcp, baseline, false)
}

func benchCBRDrain(b *testing.B, conns int, baseline bool) {
	benchCBROpts(b, conns, true, baseline, true)
}

// drainRaw reads what arrives on c ten times a second, without decrypting
// it, until stop.
func drainRaw(c net.Conn, stop <-chan struct{}) {
	buf := make([]byte, 256<<10)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		for {
			c.SetReadDeadline(time.Now().Add(time.Millisecond))
			n, err := c.Read(buf)
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					break
				}
				return
			}
			if n < len(buf) {
				break
			}
		}
	}
}

func benchCBROpts(b *testing.B, conns int, tcp, baseline, rawDrain bool) {
	if b.N > 20 {
		b.Skip("an op is one second of every connection running; use -benchtime=Nx with N up to 20")
	}
	base := compile(b, "cbr")
	pair := func() (net.Conn, net.Conn) { return memconn.Pipe(256 << 10) }
	if tcp {
		raiseFileLimit(b, uint64(2*conns+256))
		l := newLoopback(b)
		pair = func() (net.Conn, net.Conn) { return l.pair(b) }
	}

	var measuring atomic.Bool
	lates := make([]*lateness, conns)
	var closers []io.Closer
	var starts []func() // each starts one client's cells
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() {
		close(stop)
		for _, c := range closers {
			c.Close()
		}
		wg.Wait()
	}()
	for i := range conns {
		a, c := pair()
		lates[i] = &lateness{measuring: &measuring, samples: make([]time.Duration, 0, 100*(b.N+1))}
		l := lates[i]
		var srv io.Reader
		if baseline {
			cli, s := v2core.Client(a, nil), v2core.Server(c, nil)
			handshake(b, cli, s)
			closers = append(closers, cli, s)
			srv = s
			starts = append(starts, func() {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tick := time.NewTicker(10 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case due := <-tick.C:
							l.onSend(due, time.Now())
							if err := cli.WriteDecoy(1448 - v2core.PacketOverhead); err != nil {
								return
							}
						case <-stop:
							return
						}
					}
				}()
			})
		} else {
			ccfg := *base
			ccfg.OnSend = l.onSend
			cli, s := stream(shaper.Client(a, &ccfg)), stream(shaper.Server(c, base))
			handshake(b, cli, s)
			closers = append(closers, cli, s)
			srv = s
			starts = append(starts, func() {
				// One byte starts the cells, and the profile keeps
				// them going for 30 s after the last data.
				if _, err := cli.Write([]byte{1}); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rawDrain {
				drainRaw(srv.(interface{ NetConn() net.Conn }).NetConn(), stop)
				return
			}
			io.Copy(io.Discard, srv)
		}()
	}
	// Starting the clients spread over one interval spreads the grids'
	// phases evenly, as connections that come and go would.
	start := time.Now()
	for i, f := range starts {
		time.Sleep(time.Until(start.Add(10 * time.Millisecond * time.Duration(i) / time.Duration(conns))))
		f()
	}
	time.Sleep(time.Second) // let the grids settle

	var ru0, ru1 syscall.Rusage
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	busy0 := machineBusy()
	measuring.Store(true)
	b.ResetTimer()
	start = time.Now()
	time.Sleep(time.Duration(b.N) * time.Second)
	measuring.Store(false)
	wall := time.Since(start)
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	busy1 := machineBusy()
	runtime.ReadMemStats(&ms1)

	var all []time.Duration
	for _, l := range lates {
		all = append(all, l.samples...)
	}
	if len(all) == 0 {
		b.Fatal("no cells sent")
	}
	slices.Sort(all)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	pct := func(p float64) float64 { return ms(all[min(int(p*float64(len(all))), len(all)-1)]) }
	cpu := cpuTime(&ru0, &ru1)
	cells := float64(len(all))
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(cells/wall.Seconds(), "cells/s")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
	b.ReportMetric(float64(cpu.Microseconds())/cells, "µs/cell")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/cells, "allocs/cell")
	if busy0 > 0 && busy1 > 0 {
		// The machine is shared: what every process used meanwhile.
		b.ReportMetric(100*(busy1-busy0).Seconds()/wall.Seconds(), "machine-cpu-%")
	}
	b.ReportMetric(pct(0.50), "p50-lateness-ms")
	b.ReportMetric(pct(0.99), "p99-lateness-ms")
	b.ReportMetric(ms(all[len(all)-1]), "max-lateness-ms")
	// What the connections hold: mostly each end's send queue and read
	// buffer, allocated at the handshake.
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(ms1.HeapAlloc)/1024/float64(conns), "heap-KiB/conn")
}

// cpuTime is the user and system time used between two getrusage calls.
func cpuTime(before, after *syscall.Rusage) time.Duration {
	return time.Duration(after.Utime.Nano() - before.Utime.Nano() + after.Stime.Nano() - before.Stime.Nano())
}

// raiseFileLimit lifts the soft limit on open files to at least n, as far
// as the hard limit allows.
func raiseFileLimit(b *testing.B, n uint64) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		b.Fatal(err)
	}
	if rl.Cur >= n {
		return
	}
	if rl.Max < n {
		b.Skipf("open files limited to %d, need %d", rl.Max, n)
	}
	rl.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		b.Fatal(err)
	}
}

// machineBusy returns the CPU time all processes on the machine have used
// since boot, from /proc/stat on Linux (in USER_HZ ticks, 100 a second),
// or 0 where it cannot tell.
func machineBusy() time.Duration {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / 100)
}

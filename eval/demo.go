package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bip324pt/bip324-pt/eval/wiretap"
	"github.com/bip324pt/bip324-pt/internal/bridge"
	"github.com/bip324pt/bip324-pt/profiles"
	"github.com/bip324pt/bip324-pt/schedule"
	"github.com/bip324pt/bip324-pt/shaper"
)

// DemoOptions configures [Demo].
type DemoOptions struct {
	// Addr is the server's listen address. Empty means 127.0.0.1 on a
	// free port.
	Addr string
	// Profile names a built-in profile or a profile file. Empty means
	// "video".
	Profile string
	// Duration is how long the workload runs. Zero means 10s.
	Duration time.Duration
	// Seed, if non-zero, fixes the shaping decisions of both ends.
	Seed [32]byte
	// Progress, if set, is called about once a second with the totals so
	// far.
	Progress func(Progress)
	// Recorder, if set, receives every write on both sockets.
	Recorder *wiretap.Recorder
}

// Progress is the state of a running demo.
type Progress struct {
	Elapsed        time.Duration
	Down, Up       int64 // stream bytes delivered each way
	WireDown       int64 // bytes the server wrote to its socket
	WireUp         int64 // bytes the client wrote to its socket
	DecoyDown      int64 // decoy bytes the server sent
	DecoyUp        int64
	DownRate       float64 // stream bytes per second downstream, last interval
	DecoyShareDown float64 // decoy share of the server's wire bytes
}

// DemoResult is what a demo measured.
type DemoResult struct {
	Profile  string
	Schedule string
	Addr     string
	Elapsed  time.Duration
	Client   shaper.Stats
	Server   shaper.Stats
	// Down and Up are the stream bytes delivered and checked.
	Down, Up int64
	// Events are every write on both sockets, in order.
	Events []wiretap.Event
	// Check describes what the profile promised and what the wire
	// showed, one line each.
	Check []string
}

// Demo runs a server and a client in one process over real TCP on
// loopback, both shaped with one profile, and moves a built-in workload
// through the tunnel: the server streams data down as fast as its schedule
// lets it, the client sends a kilobyte up every half second, as a player
// asks for more. Every byte is checked at the far end.
func Demo(ctx context.Context, o DemoOptions) (*DemoResult, error) {
	if o.Profile == "" {
		o.Profile = "video"
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	prof, err := profiles.Load(o.Profile)
	if err != nil {
		return nil, err
	}
	shape, err := prof.Compile()
	if err != nil {
		return nil, err
	}
	// At the end of the run, what is still queued is dropped (a
	// negative linger): the demo checks what arrived, and need not wait
	// for a shaped drain, which takes a segment or more with video. The
	// readers then see the stream cut short (io.ErrUnexpectedEOF).
	quick := *shape
	quick.Linger = -1
	cfg := &shaper.Config{Shape: &quick, Seed: o.Seed}
	rec := o.Recorder
	if rec == nil {
		rec = wiretap.New(time.Now(), 0)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("eval: demo: %w", err)
	}
	defer ln.Close()

	type accepted struct {
		c   net.Conn
		err error
	}
	acc := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		acc <- accepted{c, err}
	}()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return nil, fmt.Errorf("eval: demo: dial: %w", err)
	}
	a := <-acc
	if a.err != nil {
		raw.Close()
		return nil, fmt.Errorf("eval: demo: accept: %w", a.err)
	}
	// Both ends carry a byte stream in the bridge's framing.
	cli := bridge.NewConn(shaper.Client(wiretap.Tap(raw, rec, true), cfg), nil)
	srv := bridge.NewConn(shaper.Server(wiretap.Tap(a.c, rec, false), cfg), nil)
	defer cli.Close()
	defer srv.Close()

	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	herr := make(chan error, 1)
	go func() { herr <- srv.HandshakeContext(hctx) }()
	if err := cli.HandshakeContext(hctx); err != nil {
		return nil, fmt.Errorf("eval: demo: client handshake: %w", err)
	}
	if err := <-herr; err != nil {
		return nil, fmt.Errorf("eval: demo: server handshake: %w", err)
	}

	hsUp, hsDown := int(cli.Stats().Writes), int(srv.Stats().Writes)
	start := time.Now()
	runCtx, stop := context.WithTimeout(ctx, o.Duration)
	defer stop()
	var down, up atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	// Writers stop at the deadline; readers run until the writer's close.
	wg.Add(4)
	go func() { defer wg.Done(); errs <- pump(runCtx, srv, 1, 32<<10, 0) }()
	go func() { defer wg.Done(); errs <- pump(runCtx, cli, 2, 1024, 500*time.Millisecond) }()
	go func() { defer wg.Done(); errs <- check(runCtx, cli, 1, &down) }()
	go func() { defer wg.Done(); errs <- check(runCtx, srv, 2, &up) }()

	if o.Progress != nil {
		tick := time.NewTicker(time.Second)
		var lastDown int64
		last := start
	loop:
		for {
			select {
			case <-runCtx.Done():
				break loop
			case now := <-tick.C:
				cs, ss := cli.Stats(), srv.Stats()
				dn := down.Load()
				o.Progress(Progress{
					Elapsed: now.Sub(start), Down: dn, Up: up.Load(),
					WireDown: ss.WireOut, WireUp: cs.WireOut,
					DecoyDown: ss.DecoyOut, DecoyUp: cs.DecoyOut,
					DownRate:       float64(dn-lastDown) / now.Sub(last).Seconds(),
					DecoyShareDown: share(ss.DecoyOut, ss.WireOut),
				})
				lastDown, last = dn, now
			}
		}
		tick.Stop()
	}
	<-runCtx.Done()
	elapsed := time.Since(start)
	// Close both ends at once, dropping what is queued; the readers then
	// see the end of the stream.
	cli.Close() // an error here says queued bytes were dropped: expected
	srv.Close()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !benign(err) {
			return nil, err
		}
	}
	res := &DemoResult{
		Profile:  prof.Name,
		Schedule: prof.Schedule.Kind,
		Addr:     ln.Addr().String(),
		Elapsed:  elapsed,
		Client:   cli.Stats(),
		Server:   srv.Stats(),
		Down:     down.Load(),
		Up:       up.Load(),
		Events:   rec.Events(),
	}
	res.Check = promised(prof, res, hsUp, hsDown)
	return res, nil
}

func share(part, whole int64) float64 {
	if whole == 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

// benign reports errors that end a demo stream normally: the deadline,
// and the other end closing.
func benign(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF)
}

// pump writes a seeded pseudo-random stream to w in pieces of size bytes,
// every interval (or as fast as w takes them when interval is zero), until
// ctx ends.
func pump(ctx context.Context, w io.Writer, seed byte, size int, interval time.Duration) error {
	r := mrand.NewChaCha8([32]byte{seed})
	buf := make([]byte, size)
	var tick *time.Ticker
	if interval > 0 {
		tick = time.NewTicker(interval)
		defer tick.Stop()
	}
	for {
		if tick != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		} else if ctx.Err() != nil {
			return nil
		}
		r.Read(buf)
		if _, err := w.Write(buf); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("eval: demo: write: %w", err)
		}
	}
}

// check reads r to the end and compares every byte with the seeded
// stream pump wrote. Once ctx is done the ends are being closed, and a
// reset or a closed connection is the end of the run, not an error.
func check(ctx context.Context, r io.Reader, seed byte, n *atomic.Int64) error {
	want := mrand.NewChaCha8([32]byte{seed})
	buf := make([]byte, 64<<10)
	exp := make([]byte, 64<<10)
	for {
		k, err := r.Read(buf)
		if k > 0 {
			want.Read(exp[:k])
			for i := range k {
				if buf[i] != exp[i] {
					return fmt.Errorf("eval: demo: stream corrupted at byte %d", n.Load()+int64(i))
				}
			}
			n.Add(int64(k))
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// promised compares what the profile's schedule promises, in its
// effective parameters (the schedule's defaults filled in), with the
// wire.
func promised(p *profiles.Profile, r *DemoResult, hsUp, hsDown int) []string {
	down := skip(wiretap.Filter(r.Events, wiretap.Received), hsDown)
	up := skip(wiretap.Filter(r.Events, wiretap.Sent), hsUp)
	sched, err := p.CompileSchedule()
	if err != nil { // Demo compiled the profile already
		return []string{fmt.Sprintf("no promise to check: %v", err)}
	}
	var out []string
	switch sp := sched.Params(schedule.Server).(type) {
	case schedule.ConstantRateParams:
		for _, dir := range []struct {
			name string
			role schedule.Role
			ev   []wiretap.Event
		}{{"down", schedule.Server, down}, {"up", schedule.Client, up}} {
			cp := sched.Params(dir.role).(schedule.ConstantRateParams)
			exact := 0
			for _, e := range dir.ev {
				if e.Size == cp.CellSize {
					exact++
				}
			}
			out = append(out, fmt.Sprintf("%s: promised %d-byte writes every %v; wire: %d of %d writes exactly %d bytes, median gap %v",
				dir.name, cp.CellSize, cp.Interval, exact, len(dir.ev), cp.CellSize, medianGap(dir.ev)))
		}
	case schedule.VideoParams:
		at := 0
		for _, e := range down {
			if e.Size == sp.MTU {
				at++
			}
		}
		out = append(out, fmt.Sprintf("down: promised bursts of %d-byte writes, one segment per request, %v apart when the player's buffer is full; wire: %.1f%% of %d writes at %d bytes, %d bursts",
			sp.MTU, sp.SegmentDuration, 100*share(int64(at), int64(len(down))), len(down), sp.MTU, bursts(down, 100*time.Millisecond)))
		out = append(out, fmt.Sprintf("up: promised one request-sized write per segment; wire: %d writes", len(up)))
	case schedule.JitterParams:
		// Writes less than 200µs apart belong to one burst.
		starts := burstStarts(down, 200*time.Microsecond)
		avg := 0
		if len(starts) > 0 {
			avg = len(down) / len(starts)
		}
		out = append(out, fmt.Sprintf("down: promised random gaps of %v µs between bursts; wire: %d bursts, median gap %v, %d writes a burst on average",
			sp.Gap, len(starts), medianGap(starts).Round(10*time.Microsecond), avg))
	case schedule.BitcoinParams:
		// Only the client's writes are seen as written: what the
		// client reads, the kernel may have joined.
		sizes, _ := schedule.BitcoinOpening(schedule.Client)
		same := len(up) >= len(sizes)
		for i := 0; same && i < len(sizes); i++ {
			same = up[i].Size == sizes[i]
		}
		core := 0
		for _, e := range up {
			if bitcoinSize(e.Size) {
				core++
			}
		}
		out = append(out, fmt.Sprintf("up: promised Core's opening %v, then Core's message sizes; wire: opening matches %v, %d of %d writes a Core message's size",
			sizes, same, core, len(up)))
	default:
		out = append(out, fmt.Sprintf("no timing promised (%s); wire: %d writes down, %d up", sched.Kind, len(down), len(up)))
	}
	return out
}

// bitcoinSize reports whether n is the wire size of a message the bitcoin
// schedule sends: the opening's 135, 33, 30, 29; addrv2 37; headers 103;
// an inv or getdata of 22+36k; a piece of a block (its packets).
func bitcoinSize(n int) bool {
	switch {
	case n == 135 || n == 33 || n == 30 || n == 29 || n == 37 || n == 103:
		return true
	case n >= 58 && (n-22)%36 == 0:
		return true
	}
	return n >= 1<<16
}

// skip drops the first n events, the handshake's writes.
func skip(ev []wiretap.Event, n int) []wiretap.Event {
	if n >= len(ev) {
		return nil
	}
	return ev[n:]
}

func medianGap(ev []wiretap.Event) time.Duration {
	if len(ev) < 2 {
		return 0
	}
	gaps := make([]time.Duration, len(ev)-1)
	for i := 1; i < len(ev); i++ {
		gaps[i-1] = ev[i].Time - ev[i-1].Time
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	return gaps[len(gaps)/2]
}

// bursts counts runs of writes separated by gaps of at least quiet.
func bursts(ev []wiretap.Event, quiet time.Duration) int { return len(burstStarts(ev, quiet)) }

// burstStarts returns the first write of each run of writes separated by
// gaps of at least quiet.
func burstStarts(ev []wiretap.Event, quiet time.Duration) []wiretap.Event {
	var out []wiretap.Event
	for i, e := range ev {
		if i == 0 || e.Time-ev[i-1].Time >= quiet {
			out = append(out, e)
		}
	}
	return out
}

package shaper

import (
	"bytes"
	mrand "math/rand/v2"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bip324pt/bip324-pt/eval/wiretap"
	"github.com/bip324pt/bip324-pt/internal/memconn"
	"github.com/bip324pt/bip324-pt/schedule"
)

// These tests look at a constant-rate connection from outside, on the
// wire: cells from the handshake to the close, both ways, whatever the
// data does, on grids that the data never moves.

const (
	crCell = 1448
	crTick = 10 * time.Millisecond
)

func cbrConfig(idleStop time.Duration) *Config {
	return &Config{Shape: &Shape{Schedule: func(schedule.Role, *mrand.Rand) (schedule.Schedule, error) {
		return schedule.NewConstantRate(schedule.ConstantRateParams{CellSize: crCell, Interval: crTick, IdleStop: idleStop})
	}}}
}

// delayed is one end of a connection whose writes reach the peer a fixed
// delay later, as over a link with that one-way latency. It runs one
// goroutine, which Close ends once what was written is delivered.
type delayed struct {
	net.Conn
	d    time.Duration
	mu   sync.Mutex
	q    chan chunk // nil once closed
	done chan struct{}
}

type chunk struct {
	at time.Time
	b  []byte
}

func delay(c net.Conn, d time.Duration) *delayed {
	l := &delayed{Conn: c, d: d, q: make(chan chunk, 1<<14), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		var err error
		for ch := range l.q {
			time.Sleep(time.Until(ch.at))
			if err == nil {
				_, err = c.Write(ch.b)
			}
		}
	}()
	return l
}

func (l *delayed) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.q == nil {
		return 0, net.ErrClosed
	}
	l.q <- chunk{time.Now().Add(l.d), bytes.Clone(p)}
	return len(p), nil
}

func (l *delayed) Close() error {
	l.mu.Lock()
	if l.q != nil {
		close(l.q)
		l.q = nil
	}
	l.mu.Unlock()
	<-l.done
	return l.Conn.Close()
}

// newDelayedPair is newPair over a link with one-way latency d, tapped at
// each end's socket, as a censor next to it would see it.
func newDelayedPair(t *testing.T, ccfg, scfg *Config, d time.Duration) *pair {
	t.Helper()
	a, b := memconn.Pipe(256 << 10)
	return pairOver(t, delay(a, d), delay(b, d), ccfg, scfg)
}

// closeBoth ends both streams, waits until each end has read the other's
// end, and closes both, so that no socket closes under a peer's cell.
func closeBoth(t *testing.T, p *pair, a, b *sink) {
	t.Helper()
	p.cli.CloseWrite()
	p.srv.CloseWrite()
	<-a.done
	<-b.done
	if err := p.cli.Conn.Close(); err != nil {
		t.Errorf("client close: %v", err)
	}
	if err := p.srv.Conn.Close(); err != nil {
		t.Errorf("server close: %v", err)
	}
}

// cellsOf returns the writes one end made after its handshake, with
// their times since the recorder's start.
func cellsOf(p *pair, client bool) []wiretap.Event {
	if client {
		return writesAfter(p.rec.Events(), wiretap.Sent, p.cliHS)
	}
	return writesAfter(p.rec.Events(), wiretap.Received, p.srvHS)
}

// lastWrite is when an end made its last handshake write.
func lastWrite(p *pair, client bool) time.Duration {
	d, skip := wiretap.Received, p.srvHS
	if client {
		d, skip = wiretap.Sent, p.cliHS
	}
	return wiretap.Filter(p.rec.Events(), d)[skip-1].Time
}

// checkGrid checks that cells are all exactly crCell bytes, each on the
// grid crTick apart anchored at the first, and, when contiguous, with no
// slot missing.
func checkGrid(t *testing.T, name string, cells []wiretap.Event, contiguous bool) {
	t.Helper()
	if len(cells) == 0 {
		t.Fatalf("%s: no cells", name)
	}
	for i, c := range cells {
		if c.Size != crCell {
			t.Fatalf("%s: cell %d at %v is %d bytes, want %d", name, i, c.Time, c.Size, crCell)
		}
		if off := c.Time - cells[0].Time; off%crTick != 0 {
			t.Fatalf("%s: cell %d at %v is off the grid anchored at %v", name, i, c.Time, cells[0].Time)
		}
		if i > 0 && contiguous && c.Time-cells[i-1].Time != crTick {
			t.Fatalf("%s: cell %d came %v after the previous, want %v", name, i, c.Time-cells[i-1].Time, crTick)
		}
	}
}

// TestConn_ConstantRateIdle: an idle cbr tunnel sends cells both ways
// from the handshake on, with no data at all: the first right after each
// end's handshake, then one every tick.
func TestConn_ConstantRateIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lat = 1300 * time.Microsecond
		p := newDelayedPair(t, cbrConfig(0), cbrConfig(0), lat)
		a, b := drain(p.srv), drain(p.cli)
		time.Sleep(time.Second + crTick/2)
		// The client's handshake ends once it has sent its last flight
		// and has the server's; the server's once it has the client's.
		for _, side := range []struct {
			name   string
			client bool
			hsEnd  time.Duration
		}{
			{"client", true, max(lastWrite(p, true), lastWrite(p, false)+lat)},
			{"server", false, lastWrite(p, true) + lat},
		} {
			cells := cellsOf(p, side.client)
			checkGrid(t, side.name, cells, true)
			hsEnd := side.hsEnd
			if cells[0].Time != hsEnd {
				t.Errorf("%s: first cell at %v, want %v, when its handshake ended", side.name, cells[0].Time, hsEnd)
			}
			if len(cells) < 100 {
				t.Errorf("%s: %d cells in the first idle second, want 100", side.name, len(cells))
			}
		}
		if st := p.cli.Stats(); st.DataOut != 0 || st.DecoyOut == 0 {
			t.Errorf("client stats %+v, want decoys only", st)
		}
		closeBoth(t, p, a, b)
	})
}

// TestConn_ConstantRateOneWay: during a one-way bulk transfer the other
// direction, with nothing to say, still sends exact cells on its grid.
func TestConn_ConstantRateOneWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newDelayedPair(t, cbrConfig(0), cbrConfig(0), 2*time.Millisecond)
		got, back := drain(p.srv), drain(p.cli)
		data := bytes.Repeat([]byte("bulk"), 250_000) // 1 MB, about 700 cells
		start := time.Now()
		if _, err := p.cli.Write(data); err != nil {
			t.Fatal(err)
		}
		for got.count() < len(data) {
			time.Sleep(crTick)
		}
		took := time.Since(start)
		time.Sleep(crTick / 2)
		up, down := cellsOf(p, true), cellsOf(p, false)
		checkGrid(t, "client (bulk)", up, true)
		checkGrid(t, "server (silent)", down, true)
		if want := int(took / crTick); len(down) < want {
			t.Errorf("server sent %d cells while the client's %v transfer ran, want at least %d", len(down), took, want)
		}
		if d := len(up) - len(down); d < -1 || d > 1 {
			t.Errorf("%d cells up, %d down: the idle direction is not the busy one's twin", len(up), len(down))
		}
		if st := p.srv.Stats(); st.DataOut != 0 || st.DecoyOut != int64(len(down)*crCell) {
			t.Errorf("server stats %+v: want %d cells of decoys and no data", st, len(down))
		}
		closeBoth(t, p, got, back)
		if got.n != len(data) {
			t.Fatalf("server got %d bytes, want %d", got.n, len(data))
		}
	})
}

// TestConn_ConstantRateServerGrid: the server's cells go at the same
// times, to the nanosecond, whether the client is silent or sends
// requests that the server answers at once: its grid is its handshake's,
// not the client's data's. A reply waits for the server's next cell,
// never more.
func TestConn_ConstantRateServerGrid(t *testing.T) {
	const (
		lat   = 1300 * time.Microsecond
		reply = 1000
	)
	// Requests off both grids, each in a cell of its own, one while the
	// previous reply is still on its way.
	requests := []time.Duration{3700 * time.Microsecond, 47_100_001, 123_450_000, 250 * time.Millisecond, 262_345_678}
	type result struct {
		cells          []wiretap.Event
		asked, arrived []time.Duration // the server read request i; reply i reached the client
	}
	run := func(ask bool) (r result) {
		synctest.Test(t, func(t *testing.T) {
			p := newDelayedPair(t, cbrConfig(0), cbrConfig(0), lat)
			since := func() time.Duration { return time.Since(p.rec.Start()) }
			srvDone, cliDone := make(chan struct{}), make(chan struct{})
			go func() { // the server answers each request as soon as it has read it
				defer close(srvDone)
				buf := make([]byte, 64)
				for {
					if _, err := p.srv.Read(buf); err != nil {
						return
					}
					r.asked = append(r.asked, since())
					p.srv.Write(make([]byte, reply))
				}
			}()
			go func() { // the client notes when each reply is all there
				defer close(cliDone)
				buf := make([]byte, 64<<10)
				n := 0
				for {
					k, err := p.cli.Read(buf)
					if err != nil {
						return
					}
					for i := n / reply; i < (n+k)/reply; i++ {
						r.arrived = append(r.arrived, since())
					}
					n += k
				}
			}()
			if ask {
				for _, at := range requests {
					time.Sleep(time.Until(p.rec.Start().Add(at)))
					p.cli.Write([]byte("GET"))
				}
			}
			time.Sleep(time.Until(p.rec.Start().Add(400 * time.Millisecond)))
			r.cells = cellsOf(p, false)
			p.cli.CloseWrite()
			p.srv.CloseWrite()
			<-srvDone
			<-cliDone
			p.cli.Conn.Close()
			p.srv.Conn.Close()
		})
		return r
	}
	quiet, busy := run(false), run(true)
	if len(quiet.asked) != 0 || len(busy.asked) != len(requests) || len(busy.arrived) != len(requests) {
		t.Fatalf("requests read: %d and %d, replies arrived: %d; want 0, %d and %d", len(quiet.asked), len(busy.asked), len(busy.arrived), len(requests), len(requests))
	}
	checkGrid(t, "server, client silent", quiet.cells, true)
	checkGrid(t, "server, client asking", busy.cells, true)
	if len(quiet.cells) != len(busy.cells) {
		t.Fatalf("%d server cells with a silent client, %d with requests", len(quiet.cells), len(busy.cells))
	}
	for i := range quiet.cells {
		if quiet.cells[i].Time != busy.cells[i].Time {
			t.Fatalf("server cell %d at %v with a silent client, at %v with requests: data moved the grid", i, quiet.cells[i].Time, busy.cells[i].Time)
		}
	}
	// A reply fits in one cell: it leaves in the server's first cell at
	// or after the request was read, and arrives one delay later.
	for i, asked := range busy.asked {
		want := asked
		if off := (asked - busy.cells[0].Time) % crTick; off != 0 {
			want += crTick - off
		}
		if got := busy.arrived[i]; got < want+lat || got > want+lat+crTick {
			t.Errorf("reply %d: read at %v, arrived at %v, want %v (its first cell) or a cell later", i, asked, got, want+lat)
		}
	}
}

// TestConn_ConstantRateIdleStop: with idle_stop, both directions stop
// together once no data has gone either way for idle_stop (the peer's
// decoys do not count), and restart together when either end has data:
// the end with data at its next slot, the other at its next slot after
// the data arrives. An end with no data of its own keeps sending while
// the other's data comes. Neither grid moves.
func TestConn_ConstantRateIdleStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			lat  = 1300 * time.Microsecond
			stop = 200 * time.Millisecond
		)
		p := newDelayedPair(t, cbrConfig(stop), cbrConfig(stop), lat)
		got, back := drain(p.srv), drain(p.cli)
		at := func(d time.Duration) { time.Sleep(time.Until(p.rec.Start().Add(d))) }
		// The client pings every 150ms (under idle_stop) until 600ms;
		// the server has no data of its own.
		for i := range 5 {
			at(time.Duration(i)*150*time.Millisecond + 777)
			p.cli.Write([]byte("ping"))
		}
		// Then nothing until the server speaks first, at 1.5s.
		at(1500*time.Millisecond + 777)
		p.srv.Write([]byte("pong"))
		at(2500 * time.Millisecond)
		up, down := cellsOf(p, true), cellsOf(p, false)
		closeBoth(t, p, got, back)
		if got.n != 20 || back.n != 4 {
			t.Fatalf("read %d and %d bytes, want 20 and 4", got.n, back.n)
		}

		checkGrid(t, "client", up, false)
		checkGrid(t, "server", down, false)
		// runs splits cells into runs without a missing slot.
		runs := func(cells []wiretap.Event) [][]wiretap.Event {
			var out [][]wiretap.Event
			from := 0
			for i := 1; i <= len(cells); i++ {
				if i == len(cells) || cells[i].Time-cells[i-1].Time != crTick {
					out = append(out, cells[from:i])
					from = i
				}
			}
			return out
		}
		ru, rd := runs(up), runs(down)
		if len(ru) != 2 || len(rd) != 2 {
			t.Fatalf("%d runs of cells up and %d down, want 2 each (a stop, a restart, a stop): up %v, down %v", len(ru), len(rd), ru, rd)
		}
		slotAtOrAfter := func(grid []wiretap.Event, t time.Duration) time.Duration {
			s := grid[0].Time
			for s < t {
				s += crTick
			}
			return s
		}
		last := func(r []wiretap.Event) time.Duration { return r[len(r)-1].Time }
		// The last ping went in the client's first cell after 600ms; the
		// server read it one delay later. Each end stops at its last
		// slot before idle_stop after that.
		lastPing := slotAtOrAfter(up, 600*time.Millisecond+777)
		for _, c := range []struct {
			name string
			run  []wiretap.Event
			data time.Duration
		}{{"client", ru[0], lastPing}, {"server", rd[0], lastPing + lat}} {
			if end := last(c.run); end >= c.data+stop || end < c.data+stop-crTick {
				t.Errorf("%s: last cell before the stop at %v, want the last slot before %v", c.name, end, c.data+stop)
			}
		}
		// The server, with no data of its own, went on while the pings
		// came: its first run spans them.
		if last(rd[0]) < lastPing+stop-crTick {
			t.Errorf("server stopped at %v, before the client's data stopped coming", last(rd[0]))
		}
		// The restart: the server at its slot after its data, the
		// client at its slot after the server's first cell arrived.
		if want := slotAtOrAfter(down, 1500*time.Millisecond+777); rd[1][0].Time != want {
			t.Errorf("server restarted at %v, want its next slot %v", rd[1][0].Time, want)
		}
		if want := slotAtOrAfter(up, rd[1][0].Time+lat); ru[1][0].Time != want {
			t.Errorf("client restarted at %v, want its next slot after the server's data arrived, %v", ru[1][0].Time, want)
		}
		// And both stop again, idle_stop after that data.
		if end := last(ru[1]); end > rd[1][0].Time+lat+stop {
			t.Errorf("client's second run ends at %v, after idle_stop", end)
		}
	})
}

package schedule

import (
	"testing"
	"time"
)

// serveDecoys plays a shaper with nothing to send up to end: it serves
// every opportunity of s due by end on time, all decoys, and returns
// when each went, since t0.
func serveDecoys(t *testing.T, s *ConstantRate, end time.Time) []time.Duration {
	t.Helper()
	var at []time.Duration
	for range 100_000 {
		o := s.Next(t0)
		if o.Idle() || o.At.After(end) {
			return at
		}
		s.Sent(o.At, o.Size, true)
		at = append(at, o.At.Sub(t0))
	}
	t.Fatal("serveDecoys does not end")
	return nil
}

func sameTimes(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestConstantRate_cells: the cells start at the first event, data or
// not, and stay on the grid anchored there whenever data comes.
func TestConstantRate_cells(t *testing.T) {
	ms := time.Millisecond
	s, err := NewConstantRate(ConstantRateParams{CellSize: 1000, Interval: 10 * ms})
	if err != nil {
		t.Fatal(err)
	}
	if o := s.Next(t0); !o.At.Equal(t0) || o.Size != 1000 || !o.Pad {
		t.Fatalf("Next before any event = %v, want a full cell now", show(o))
	}
	got := simulate(t, s, []arrival{{3 * ms, 2500}, {57 * ms, 100}}, 200*ms)
	if len(got) != 21 {
		t.Fatalf("%d cells in 0..200ms, want 21", len(got))
	}
	data := 0
	for i, w := range got {
		if w.size != 1000 || w.at != time.Duration(i)*10*ms {
			t.Fatalf("cell %d = %+v, want 1000 bytes at %v", i, w, time.Duration(i)*10*ms)
		}
		data += w.data
	}
	if data != 2600 || got[0].data != 0 || got[1].data != 1000 || got[3].data != 500 || got[4].data != 0 || got[6].data != 100 {
		t.Errorf("data per cell %v, want 0, then 1000, 1000, 500 from the cell at 10ms, then 100 in the cell at 60ms", got)
	}
}

// TestConstantRate_anchor: the grid is where the first event put it.
// Data queued off the grid, the peer's bytes and the peer's data never
// move it.
func TestConstantRate_anchor(t *testing.T) {
	ms := time.Millisecond
	for _, first := range []string{"queued", "queued with data", "received", "data received", "sent"} {
		t.Run(first, func(t *testing.T) {
			s, _ := NewConstantRate(ConstantRateParams{CellSize: 500, Interval: 10 * ms})
			switch first {
			case "queued":
				s.Queued(t0, 0)
			case "queued with data":
				s.Queued(t0, 10)
			case "received":
				s.Received(t0, 1448)
			case "data received":
				s.DataReceived(t0, 100)
			case "sent":
				s.Sent(t0, 500, true)
			}
			now := t0
			var at []time.Duration
			for i := range 50 {
				o := s.Next(now)
				// Events between the cells, off the grid.
				ev := o.At.Add(-time.Duration(1+i%9) * ms / 3)
				if ev.After(now) {
					now = ev
					s.Queued(now, 1+i*7)
					s.Received(now, 1448)
					s.DataReceived(now, 30)
					o = s.Next(now)
				}
				now = o.At
				s.Sent(now, min(o.Size, 1+i*7), false)
				s.Sent(now, o.Size-min(o.Size, 1+i*7), true)
				at = append(at, now.Sub(t0))
			}
			var offset time.Duration // a first Sent is the cell at 0
			if first == "sent" {
				offset = 10 * ms
			}
			for i, a := range at {
				if want := offset + time.Duration(i)*10*ms; a != want {
					t.Fatalf("cell %d at %v, want %v", i, a, want)
				}
			}
		})
	}
}

// TestConstantRate_idleStop: an idle connection's cells run IdleStop
// from the start, then stop; the next data restarts them on the same
// grid, and they stop again IdleStop after the last data.
func TestConstantRate_idleStop(t *testing.T) {
	ms := time.Millisecond
	s, err := NewConstantRate(ConstantRateParams{CellSize: 500, Interval: 10 * ms, IdleStop: 35 * ms})
	if err != nil {
		t.Fatal(err)
	}
	got := simulate(t, s, []arrival{{0, 100}, {203 * ms, 700}}, time.Second)
	// Cells at 0 (before the data at 0: a decoy), 10 (the data), then
	// 20..40 (due before 10+35ms); then silence; the data at 203ms
	// restarts the cells at the grid's next slot, 210, and the last
	// data goes in the cell at 220: cells 230..250 follow.
	var at []time.Duration
	for _, w := range got {
		at = append(at, w.at)
	}
	want := []time.Duration{0, 10 * ms, 20 * ms, 30 * ms, 40 * ms, 210 * ms, 220 * ms, 230 * ms, 240 * ms, 250 * ms}
	if !sameTimes(at, want) {
		t.Fatalf("cells at %v, want %v", at, want)
	}
	if o := s.Next(t0.Add(time.Second)); !o.Idle() {
		t.Errorf("Next after the stop = %v, want idle", show(o))
	}
}

// TestConstantRate_idleStopBothWays: with IdleStop, the peer's data
// counts as this end's own: it keeps the cells going and restarts them,
// on the grid. The peer's wire bytes (its decoy cells) do neither.
func TestConstantRate_idleStopBothWays(t *testing.T) {
	ms := time.Millisecond
	s, err := NewConstantRate(ConstantRateParams{CellSize: 500, Interval: 10 * ms, IdleStop: 35 * ms})
	if err != nil {
		t.Fatal(err)
	}
	if !s.UsesReceived() {
		t.Fatal("UsesReceived = false with IdleStop set: the peer's data could not restart the cells")
	}
	s.Queued(t0, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	check := func(name string, got, want []time.Duration) {
		t.Helper()
		if !sameTimes(got, want) {
			t.Errorf("%s: cells at %v, want %v", name, got, want)
		}
	}
	// Idle from the start: IdleStop of cells.
	check("idle from the start", serveDecoys(t, s, at(100*ms)), []time.Duration{0, 10 * ms, 20 * ms, 30 * ms})
	// The peer's decoys: still stopped.
	s.Received(at(101*ms), 1448)
	s.DataReceived(at(101*ms), 0)
	check("after the peer's decoys", serveDecoys(t, s, at(200*ms)), nil)
	// The peer's data at 203ms restarts the cells at 210, and they go
	// on while the peer's data keeps coming (every 30ms, under
	// IdleStop), though this end has none.
	s.DataReceived(at(203*ms), 100)
	got := serveDecoys(t, s, at(233*ms))
	s.DataReceived(at(233*ms), 100)
	got = append(got, serveDecoys(t, s, at(263*ms))...)
	s.DataReceived(at(263*ms), 100)
	got = append(got, serveDecoys(t, s, at(500*ms))...)
	check("the peer's data", got, []time.Duration{210 * ms, 220 * ms, 230 * ms, 240 * ms, 250 * ms, 260 * ms, 270 * ms, 280 * ms, 290 * ms})
	// Without IdleStop the peer's data changes nothing.
	s, _ = NewConstantRate(ConstantRateParams{CellSize: 500, Interval: 10 * ms})
	if s.UsesReceived() {
		t.Error("UsesReceived = true without IdleStop")
	}
	s.DataReceived(at(3*ms), 100)
	check("no IdleStop", serveDecoys(t, s, at(40*ms)), []time.Duration{3 * ms, 13 * ms, 23 * ms, 33 * ms})
}

func TestConstantRate_late(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		sentAt   time.Duration // the cell due at 0 goes out then
		wantNext time.Duration
	}{
		{"on time", 0, 10 * ms},
		{"a little late keeps the grid", 4 * ms, 10 * ms},
		{"half a period late still keeps it", 5 * ms, 10 * ms},
		{"more than half a period late skips a slot", 6 * ms, 20 * ms},
		{"several periods late skips the missed slots", 37 * ms, 50 * ms},
		{"late by a slot and a half", 15 * ms, 20 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := NewConstantRate(ConstantRateParams{CellSize: 100, Interval: 10 * ms})
			s.Queued(t0, 1)
			at := t0.Add(tt.sentAt)
			if o := s.Next(at); !o.At.Equal(at) || o.Size != 100 || !o.Pad {
				t.Fatalf("Next(%v) = %v", tt.sentAt, show(o))
			}
			s.Sent(at, 1, false)
			s.Sent(at, 99, true)
			if o := s.Next(at); o.At.Sub(t0) != tt.wantNext {
				t.Errorf("next cell at %v, want %v", o.At.Sub(t0), tt.wantNext)
			}
		})
	}
}

func TestConstantRate_partial(t *testing.T) {
	s, _ := NewConstantRate(ConstantRateParams{CellSize: 100, Interval: time.Second})
	s.Queued(t0, 10)
	s.Sent(t0, 10, false)
	if o := s.Next(t0); o.Size != 90 || !o.At.Equal(t0) {
		t.Fatalf("after 10 of 100 bytes: %v, want the 90 left, now", show(o))
	}
	s.Sent(t0, 500, true) // overshoot is not carried over
	if o := s.Next(t0); o.Size != 100 || !o.At.Equal(t0.Add(time.Second)) {
		t.Fatalf("after the overshoot: %v, want a full cell a second later", show(o))
	}
}

// evDataReceived is the event of DataReceived, which only the
// constant-rate model records.
const evDataReceived evKind = 100

// slowConstantRate lays the cells out one by one as the events fill
// them, on a grid it walks slot by slot from the first event.
type slowConstantRate struct {
	history
	p ConstantRateParams
}

func (m *slowConstantRate) DataReceived(now time.Time, n int) {
	m.evs = append(m.evs, event{evDataReceived, now, n, false})
}

func (m *slowConstantRate) Next(now time.Time) Opportunity {
	if len(m.evs) == 0 {
		return Opportunity{At: now, Size: m.p.CellSize, Pad: true}
	}
	type cell struct {
		due  time.Time
		sent int
	}
	start := m.evs[0].at
	cells := []cell{{due: start}}
	lastData := start
	q := 0
	open := func() bool {
		c := cells[len(cells)-1]
		return m.p.IdleStop == 0 || q > 0 || c.sent > 0 || c.due.Sub(lastData) < m.p.IdleStop
	}
	// data is real data at t: a stopped cell moves along the grid to
	// the first slot at or after t.
	data := func(t time.Time, was bool) {
		lastData = t
		if !was {
			c := &cells[len(cells)-1]
			for c.due.Before(t) {
				c.due = c.due.Add(m.p.Interval)
			}
		}
	}
	for _, e := range m.evs {
		n := max(e.n, 0)
		switch e.kind {
		case evQueued:
			was := open()
			q = n
			if q > 0 {
				data(e.at, was)
			}
		case evDataReceived:
			if n > 0 {
				data(e.at, open())
			}
		case evSent:
			c := &cells[len(cells)-1]
			was := open() && !c.due.After(e.at)
			if !e.decoy {
				q = max(q-n, 0)
			}
			if !was || n == 0 {
				continue
			}
			if !e.decoy {
				lastData = e.at
			}
			c.sent += n
			if c.sent >= m.p.CellSize {
				due := c.due.Add(m.p.Interval)
				for due.Sub(e.at) < m.p.Interval/2 {
					due = due.Add(m.p.Interval)
				}
				cells = append(cells, cell{due: due})
			}
		}
	}
	if !open() {
		return Opportunity{}
	}
	c := cells[len(cells)-1]
	at := c.due
	if at.Before(now) {
		at = now
	}
	return Opportunity{At: at, Size: m.p.CellSize - c.sent, Pad: true}
}

// peerData turns a third of drive's Received events into the peer's
// data as well (and some of its odd counts into odd DataReceived
// counts), for both the schedule and its model.
type peerData struct {
	Schedule
	dr interface{ DataReceived(time.Time, int) }
}

func (p peerData) Received(now time.Time, n int) {
	p.Schedule.Received(now, n)
	if n%3 == 0 {
		p.dr.DataReceived(now, n/3)
	}
}

func TestConstantRate_model(t *testing.T) {
	params := []ConstantRateParams{
		{},
		{CellSize: 100, Interval: time.Millisecond},
		{CellSize: 100, Interval: time.Millisecond, IdleStop: 3 * time.Millisecond},
		{CellSize: 1448, Interval: 10 * time.Millisecond, IdleStop: 50 * time.Millisecond},
		{CellSize: 514, Interval: 5 * time.Millisecond, IdleStop: 5 * time.Millisecond},
	}
	for i, p := range params {
		for seed := range uint64(10) {
			fast, err := NewConstantRate(p)
			if err != nil {
				t.Fatal(err)
			}
			slow := &slowConstantRate{p: fast.Params()}
			drive(t, peerData{fast, fast}, peerData{slow, slow}, seeded(uint64(i)*100+seed), 400, fast.Params().Interval)
		}
	}
}

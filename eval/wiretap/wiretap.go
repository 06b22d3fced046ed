// Package wiretap records what crosses a socket: the time, direction and
// size of every write, which is what a censor's tap on the path sees as
// segment boundaries (for a socket with Nagle off, one write is one
// segment when it fits). Tap both ends with one Recorder for both
// directions.
//
// A recording is a trace: its events are [schedule.TraceEvent]s, their
// times counted from the recorder's start, directions seen from the
// client. [Recorder.WriteTrace] writes it in the Maybenot text format
// (time_ns,direction,size a line) with [schedule.WriteTrace], which
// [schedule.ParseTrace] reads back and [schedule.Replay] can replay.
//
// wiretap imports nothing of this module but schedule, so that any
// package's tests can tap a connection.
package wiretap

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
)

// Event is one write on a tapped socket: a line of a trace. Its Time
// counts from the recorder's start; Padding is never set.
type Event = schedule.TraceEvent

// Dir is the direction of an event, from the client's point of view.
type Dir = schedule.Direction

// The directions, as in [schedule].
const (
	// Sent is client to server ("s" in a trace).
	Sent = schedule.DirSent
	// Received is server to client ("r" in a trace).
	Received = schedule.DirReceived
)

// Recorder collects events, in order. Safe for concurrent use. The zero
// value is not usable; call New.
type Recorder struct {
	mu      sync.Mutex
	start   time.Time
	events  []Event
	max     int
	dropped int
}

// New returns a recorder whose trace times count from start and which
// keeps at most max events (0 means 1,000,000), so a long run cannot take
// unbounded memory; later events are counted as dropped.
func New(start time.Time, max int) *Recorder {
	if max <= 0 {
		max = 1_000_000
	}
	return &Recorder{start: start, max: max}
}

// Start returns the instant the trace times count from.
func (r *Recorder) Start() time.Time { return r.start }

// Add records a write of n bytes at t in direction d. A time before the
// start counts as the start. A write larger than [schedule.MaxSize], far
// more than a segment, is recorded as events of at most MaxSize bytes at
// the same time, so that every recording can be written as a trace.
func (r *Recorder) Add(t time.Time, d Dir, n int) {
	at := max(t.Sub(r.start), 0)
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		size := min(n, schedule.MaxSize)
		if len(r.events) < r.max {
			r.events = append(r.events, Event{Time: at, Dir: d, Size: size})
		} else {
			r.dropped++
		}
		if n -= size; n <= 0 {
			return
		}
	}
}

// Events returns a copy of the events so far.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Dropped returns how many events came after the recorder was full.
func (r *Recorder) Dropped() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// Filter returns the events in direction d.
func Filter(ev []Event, d Dir) []Event {
	var out []Event
	for _, e := range ev {
		if e.Dir == d {
			out = append(out, e)
		}
	}
	return out
}

// WriteTrace writes the events so far with [schedule.WriteTrace]: one
// time_ns,direction,size line each.
func (r *Recorder) WriteTrace(w io.Writer) error {
	return schedule.WriteTrace(w, r.Events())
}

// Conn records every Write on the connection it wraps. Reads are not
// recorded: they are the other end's writes, which its own tap records.
type Conn struct {
	net.Conn
	rec *Recorder
	out Dir
}

// Tap wraps conn so that its writes go to rec. client says whether this
// end is the client, which fixes the trace direction.
func Tap(conn net.Conn, rec *Recorder, client bool) *Conn {
	c := &Conn{Conn: conn, rec: rec, out: Sent}
	if !client {
		c.out = Received
	}
	return c
}

func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.rec.Add(time.Now(), c.out, n)
	}
	return n, err
}

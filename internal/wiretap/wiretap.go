// Package wiretap records what crosses a socket: the time, direction and
// size of every write, which is what a censor's tap on the path sees as
// segment boundaries (for a socket with Nagle off, one write is one
// segment when it fits). Tap both ends with one Recorder for both
// directions. It writes traces in the Maybenot text format,
// one event a line: time_ns,direction,size, where direction is "s" for
// bytes the client sent and "r" for bytes it received.
package wiretap

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Dir is the direction of an event, from the client's point of view.
type Dir byte

const (
	// Sent is client to server ("s" in a trace).
	Sent Dir = 's'
	// Received is server to client ("r" in a trace).
	Received Dir = 'r'
)

// Event is one write on a tapped socket.
type Event struct {
	Time time.Time
	Dir  Dir
	Size int
}

// Recorder collects events, in order. Safe for concurrent use. The zero
// value is not usable; call New.
type Recorder struct {
	mu     sync.Mutex
	start  time.Time
	events []Event
	max    int
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

// Add records an event.
func (r *Recorder) Add(t time.Time, d Dir, n int) {
	r.mu.Lock()
	if len(r.events) < r.max {
		r.events = append(r.events, Event{t, d, n})
	}
	r.mu.Unlock()
}

// Events returns a copy of the events so far.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
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

// WriteTrace writes the events as time_ns,direction,size lines.
func (r *Recorder) WriteTrace(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, e := range r.Events() {
		fmt.Fprintf(bw, "%d,%c,%d\n", e.Time.Sub(r.start).Nanoseconds(), e.Dir, e.Size)
	}
	return bw.Flush()
}

// Conn records every Write and Read on the connection it wraps.
type Conn struct {
	net.Conn
	rec     *Recorder
	out, in Dir
}

// Tap wraps conn so that its writes and reads go to rec. client says
// whether this end is the client, which fixes the trace directions.
func Tap(conn net.Conn, rec *Recorder, client bool) *Conn {
	c := &Conn{Conn: conn, rec: rec, out: Sent, in: Received}
	if !client {
		c.out, c.in = Received, Sent
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

package workload

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
)

// web replays page loads from Maybenot traces (schedule.ParseTrace; the
// Tor captures in testdata/traces) at the application level.
//
// A page is a trace cut into messages: consecutive events of one
// direction, padding left out, make one message whose size is the sum of
// their sizes (Tor cells: multiples of 512 or 514 bytes) and whose time
// is the first event's, counted from the trace's first event. The client
// writes its messages (requests) at their times from the page's start.
// The server writes each of its messages (responses) at its time too, but
// never before the client message preceding it in the trace has arrived
// whole: a closed loop, so a slow tunnel delays the page as it would
// delay a browser. The client does not wait for responses.
//
// Pages follow one another back to back, each starting when the one
// before has been delivered whole, each picked from the seed (or always
// Params.Site). The first page sets Result.Site, and Completion if it
// is delivered whole before Duration (the traces last 8-78 s, so give a
// Duration that long to time whole pages; a zero Duration plays the
// first page whole, however long it takes). Pages start only before
// Duration and are cut at Duration: no message is queued after it (one
// queued before it may still be written later, behind a blocked write).
// Run returns once what was queued is delivered, so at Duration plus the
// tunnel's delay.
type web struct{}

func (web) Name() string { return "web" }

// webMsg is one message of a page.
type webMsg struct {
	planned
	dir schedule.Direction
	// after, for a server message, is the number of the page's client
	// messages that precede it in the trace.
	after int
}

func (web) Run(ctx context.Context, client, server net.Conn, p Params) (Result, error) {
	pages, err := webPages(p)
	if err != nil {
		return Result{Site: -1}, err
	}
	s, err := newSession(ctx, client, server, p)
	if err != nil {
		return Result{Site: -1}, err
	}
	d := &webDriver{s: s, pages: pages, site: -1}
	s.begin()
	s.spawn(d.run)
	res, err := s.wait()
	res.Site = d.site
	if d.first != nil {
		res.Completion = s.lastRecv(*d.first)
	}
	return res, err
}

// webPages cuts the traces a run may replay into pages; the others stay
// nil.
func webPages(p Params) ([][]webMsg, error) {
	if len(p.Traces) == 0 {
		return nil, fmt.Errorf("%w: web needs at least one trace", ErrParams)
	}
	if p.Site >= len(p.Traces) {
		return nil, fmt.Errorf("%w: Site %d, but %d traces", ErrParams, p.Site, len(p.Traces))
	}
	pages := make([][]webMsg, len(p.Traces))
	for i, tr := range p.Traces {
		if p.Site >= 0 && i != p.Site {
			continue
		}
		pages[i] = webPage(tr)
		if len(pages[i]) == 0 {
			return nil, fmt.Errorf("%w: trace %d has no packet that is not padding", ErrParams, i)
		}
	}
	return pages, nil
}

// webPage cuts a trace into messages.
func webPage(tr []schedule.TraceEvent) []webMsg {
	var out []webMsg
	var t0 time.Duration
	for _, ev := range tr {
		if ev.Padding || (ev.Dir != schedule.DirSent && ev.Dir != schedule.DirReceived) {
			continue
		}
		if len(out) == 0 {
			t0 = ev.Time
		}
		if n := len(out); n > 0 && out[n-1].dir == ev.Dir && out[n-1].size+ev.Size <= maxMessageSize {
			out[n-1].size += ev.Size
			continue
		}
		out = append(out, webMsg{planned: planned{at: ev.Time - t0, kind: kindData, size: ev.Size}, dir: ev.Dir})
	}
	requests := 0
	for i := range out {
		out[i].size = max(out[i].size, HeaderSize)
		if out[i].dir == schedule.DirSent {
			requests++
		} else {
			out[i].after = requests
		}
	}
	return out
}

// webDriver runs the pages of one run.
type webDriver struct {
	s     *session
	pages [][]webMsg
	// Set by run, read after the session's wait.
	site  int     // the first page's trace
	first *[2]int // the first page's message counts by direction, once it is complete
}

// run replays pages until Duration. It runs as a goroutine.
func (d *webDriver) run() error {
	s := d.s
	defer s.cli.closeOutbox()
	defer s.srv.closeOutbox()
	pick := newRand(s.p.Seed, "web/pages")
	var base [2]int // messages of the pages before, by direction
	for page := 0; ; page++ {
		var stop <-chan struct{} // with no Duration, the first page is not cut
		if page > 0 || s.p.Duration > 0 {
			stop = s.durDone
		}
		if page > 0 {
			select {
			case <-stop:
				return nil
			default:
			}
		}
		idx := s.p.Site
		if idx < 0 {
			idx = pick.IntN(len(d.pages))
		}
		if page == 0 {
			d.site = idx
		}
		msgs := d.pages[idx]
		var n [2]int
		for _, m := range msgs {
			n[dirIndex(m.dir)]++
		}
		start := s.since()
		var wg sync.WaitGroup
		wg.Go(func() { d.send(s.cli, msgs, start, base[0], stop) })
		wg.Go(func() { d.send(s.srv, msgs, start, base[0], stop) })
		done := s.srv.recvd.wait(base[0]+n[0], stop, s.ctx.Done()) &&
			s.cli.recvd.wait(base[1]+n[1], stop, s.ctx.Done())
		wg.Wait()
		if !done {
			return nil
		}
		if page == 0 {
			d.first = &n
		}
		base[0] += n[0]
		base[1] += n[1]
	}
}

// send writes e's messages of a page that started at start; before base
// requests, the pages before sent theirs.
func (d *webDriver) send(e *peer, msgs []webMsg, start time.Duration, base int, stop <-chan struct{}) {
	s := d.s
	for _, m := range msgs {
		if m.dir != e.dir {
			continue
		}
		if e == s.srv && !s.srv.recvd.wait(base+m.after, stop, s.ctx.Done()) {
			return
		}
		if !s.sleepUntil(start+m.at, stop) {
			return
		}
		e.push(m.kind, m.size)
	}
}

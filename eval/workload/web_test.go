package workload

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
)

const (
	up   = schedule.DirSent
	down = schedule.DirReceived
)

// tinyTrace is a handmade page: requests and responses of Tor cells, a
// padding cell that does not count, and sizes below a header.
var tinyTrace = []schedule.TraceEvent{
	ev(100, up, 512), // request 1: 1024 bytes at 0 (times count from here)
	ev(100, up, 512),
	ev(150, down, 514), // response 1: 1028 bytes at 50 ms
	ev(160, down, 514),
	{Time: 170 * time.Millisecond, Dir: up, Size: 512, Padding: true},
	ev(180, down, 512), // still response 1: 1540 bytes
	ev(300, up, 512),   // request 2 at 200 ms
	ev(400, down, 5),   // response 2 at 300 ms: 517 bytes
	ev(900, down, 512), //
	ev(900, up, 0),     // request 3 at 800 ms, empty: rounded up to a header
}

func TestWebPage(t *testing.T) {
	want := []webMsg{
		{planned: planned{0, kindData, 1024}, dir: up},
		{planned: planned{50 * time.Millisecond, kindData, 1540}, dir: down, after: 1},
		{planned: planned{200 * time.Millisecond, kindData, 512}, dir: up},
		{planned: planned{300 * time.Millisecond, kindData, 517}, dir: down, after: 2},
		{planned: planned{800 * time.Millisecond, kindData, HeaderSize}, dir: up},
	}
	got := webPage(tinyTrace)
	if len(got) != len(want) {
		t.Fatalf("got %d messages %+v, want %+v", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestWeb_Replay replays the tiny trace over an instant tunnel: each
// message, in order, at its trace time, in its size.
func TestWeb_Replay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := memPipe(t)
		res, err := web{}.Run(t.Context(), client, server, Params{Seed: 1, Traces: [][]schedule.TraceEvent{tinyTrace}})
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, res)
		var got []webMsg
		for _, m := range res.Messages {
			got = append(got, webMsg{planned: planned{m.Sent, kindData, m.Size}, dir: m.Dir})
			if m.Recv != m.Sent {
				t.Errorf("message %+v took time over an instant tunnel", m)
			}
		}
		want := webPage(tinyTrace)
		for i := range want {
			want[i].after = 0
		}
		if len(got) != len(want) {
			t.Fatalf("sent %+v, want %+v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("message %d = %+v, want %+v", i, got[i], want[i])
			}
		}
		if res.Completion != 800*time.Millisecond || res.Site != 0 {
			t.Errorf("Completion %v, Site %d; want 800ms, 0", res.Completion, res.Site)
		}
	})
}

// TestWeb_ClosedLoop: through a tunnel of 100 ms each way, each response
// leaves only once its request is in, while the requests keep to the
// trace's clock.
func TestWeb_ClosedLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 100 * time.Millisecond
		client, server := relayed(t, delay, nil)
		res, err := web{}.Run(t.Context(), client, server, Params{Seed: 1, Traces: [][]schedule.TraceEvent{tinyTrace}})
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, res)
		req, resp := byDir(res, up), byDir(res, down)
		if len(req) != 3 || len(resp) != 2 {
			t.Fatalf("%d requests, %d responses", len(req), len(resp))
		}
		for i, at := range []time.Duration{0, 200 * time.Millisecond, 800 * time.Millisecond} {
			if req[i].Sent != at || req[i].Recv != at+delay {
				t.Errorf("request %d: sent %v, in %v; want %v, %v", i, req[i].Sent, req[i].Recv, at, at+delay)
			}
		}
		// Response 1 is due at 50 ms, request 1 arrives at 100 ms;
		// response 2 is due at 300 ms, request 2 arrives at 300 ms.
		for i, want := range []time.Duration{delay, 300 * time.Millisecond} {
			if resp[i].Sent != want || resp[i].Sent < req[i].Recv {
				t.Errorf("response %d sent at %v (request in at %v), want %v", i, resp[i].Sent, req[i].Recv, want)
			}
		}
		if want := 800*time.Millisecond + delay; res.Completion != want {
			t.Errorf("Completion %v, want %v", res.Completion, want)
		}
	})
}

// TestWeb_Pages: pages repeat until Duration, the first sets Completion;
// with Site fixed, every page is that trace.
func TestWeb_Pages(t *testing.T) {
	traces := loadTraces(t, "data-df-wflib/[1-3].log")
	synctest.Test(t, func(t *testing.T) {
		client, server := relayed(t, 20*time.Millisecond, nil)
		p := Params{Seed: 2, Duration: 60 * time.Second, Traces: traces, Site: 2}
		res, err := web{}.Run(t.Context(), client, server, p)
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, res)
		page := webPage(traces[2])
		if res.Site != 2 {
			t.Errorf("Site %d, want 2", res.Site)
		}
		// Each page is the trace again, until the cut.
		var want []int
		for range 1 + len(res.Messages)/len(page) {
			for _, m := range page {
				if m.dir == up {
					want = append(want, m.size)
				}
			}
		}
		reqs := byDir(res, up)
		for i, m := range reqs {
			if m.Size != want[i] {
				t.Fatalf("request %d is %d bytes, want %d", i, m.Size, want[i])
			}
		}
		last := page[len(page)-1].at
		if pages := len(res.Messages) / len(page); pages < 2 || time.Duration(pages)*last > p.Duration {
			t.Errorf("%d pages of %v in %v", pages, last, p.Duration)
		}
		if res.Completion < last || res.Completion > last+time.Second {
			t.Errorf("Completion %v; the page lasts %v", res.Completion, last)
		}
		for _, m := range res.Messages {
			if m.Sent >= p.Duration {
				t.Errorf("message %+v sent after Duration", m)
			}
		}
	})
	// Site -1: pages picked from the seed, the first reported.
	synctest.Test(t, func(t *testing.T) {
		seen := map[int]bool{}
		for seed := range uint64(8) {
			client, server := memPipe(t)
			res, err := web{}.Run(t.Context(), client, server, Params{Seed: seed, Traces: traces, Site: -1})
			if err != nil {
				t.Fatal(err)
			}
			seen[res.Site] = true
			if n := len(res.Messages); n != len(webPage(traces[res.Site])) {
				t.Errorf("seed %d: %d messages, want one page of trace %d", seed, n, res.Site)
			}
		}
		if len(seen) < 2 {
			t.Errorf("8 seeds picked only sites %v", seen)
		}
	})
}

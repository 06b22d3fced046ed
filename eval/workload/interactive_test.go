package workload

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestInteractive_Delays: through a tunnel of 50 ms each way, every
// message takes at least 50 ms, each echo leaves when its request is in,
// and the requests follow the model.
func TestInteractive_Delays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 50 * time.Millisecond
		client, server := relayed(t, delay, nil)
		p := Params{Seed: 9, Duration: 2 * time.Minute}
		res, err := interactive{}.Run(t.Context(), client, server, p)
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, res)
		req, echo := byDir(res, up), byDir(res, down)
		if len(req) != len(echo) || len(req) < 150 {
			t.Fatalf("%d requests, %d echoes in %v", len(req), len(echo), p.Duration)
		}
		var gaps time.Duration
		for i := range req {
			if req[i].Size < interactiveMinSize || req[i].Size > interactiveMaxSize || echo[i].Size != req[i].Size {
				t.Errorf("request %d of %d bytes, echo of %d", i, req[i].Size, echo[i].Size)
			}
			for _, m := range []Message{req[i], echo[i]} {
				if m.Recv-m.Sent < delay {
					t.Errorf("message %+v took less than %v", m, delay)
				}
			}
			if echo[i].Sent != req[i].Recv {
				t.Errorf("echo %d sent at %v, its request in at %v", i, echo[i].Sent, req[i].Recv)
			}
			if i > 0 {
				gaps += req[i].Sent - req[i-1].Sent
			}
		}
		// The mean of n exponential gaps of mean 500 ms has a standard
		// deviation of 500 ms / sqrt(n): 40 ms here.
		if mean := gaps / time.Duration(len(req)-1); mean < 380*time.Millisecond || mean > 620*time.Millisecond {
			t.Errorf("mean gap %v, want about %v", mean, interactiveMeanGap)
		}
		if last := req[len(req)-1].Sent; last >= p.Duration {
			t.Errorf("a request left at %v, after Duration", last)
		}
	})
}

package workload

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bip324pt/bip324-pt/internal/testutil"
	"github.com/bip324pt/bip324-pt/schedule"
)

func TestNew(t *testing.T) {
	want := []string{"bulk", "web", "interactive", "idle", "bitcoin"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, name := range want {
		w, err := New(name)
		if err != nil || w.Name() != name {
			t.Errorf("New(%q) = %v, %v", name, w, err)
		}
	}
	_, err := New("video")
	if err == nil || !strings.Contains(err.Error(), "bulk, web, interactive, idle, bitcoin") {
		t.Errorf("New(video): %v; want an error listing the names", err)
	}
}

// TestRun_AddsUp runs every workload over a buffered pipe with CloseWrite
// and over net.Pipe (end marker), and checks the results add up.
func TestRun_AddsUp(t *testing.T) {
	traces := loadTraces(t, "data-df-wflib/1*.log")
	for _, name := range Names() {
		for _, pipe := range []struct {
			name string
			new  func(testing.TB) (net.Conn, net.Conn)
		}{{"memconn", memPipe}, {"net.Pipe", netPipe}} {
			t.Run(name+"/"+pipe.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					w, _ := New(name)
					client, server := pipe.new(t)
					p := Params{Seed: 7, Duration: 30 * time.Second, BulkBytes: 300_001, Traces: traces, Site: -1}
					if name == "bitcoin" {
						p.Duration = 5 * time.Minute
					}
					start := time.Now()
					res, err := w.Run(t.Context(), client, server, p)
					if err != nil {
						t.Fatal(err)
					}
					checkResult(t, res)
					took := time.Since(start)
					switch name {
					case "bulk":
						if res.Up != 300_001 || res.Down != 300_001 {
							t.Errorf("bulk moved %d up, %d down; want 300001 each", res.Up, res.Down)
						}
						// Virtual time does not pass while bytes move.
						if res.Completion != lastRecv(res) || res.Completion > took {
							t.Errorf("Completion %v, last message in at %v, run took %v", res.Completion, lastRecv(res), took)
						}
					case "idle":
						if res.Up != 0 || res.Down != 0 || len(res.Messages) != 0 || len(res.App) != 0 {
							t.Errorf("idle moved %d up, %d down, %d messages, %d App events", res.Up, res.Down, len(res.Messages), len(res.App))
						}
						if took != p.Duration {
							t.Errorf("idle took %v, want %v", took, p.Duration)
						}
					default:
						if res.Up == 0 || res.Down == 0 {
							t.Errorf("%s moved %d up, %d down", name, res.Up, res.Down)
						}
						if took < p.Duration {
							t.Errorf("%s returned after %v, before Duration %v", name, took, p.Duration)
						}
					}
					if (name == "web") != (res.Site >= 0) {
						t.Errorf("Site = %d", res.Site)
					}
				})
			})
		}
	}
}

// TestBulk_TCP moves data over real TCP, with sizes that do not divide
// into chunks.
func TestBulk_TCP(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	for _, n := range []int64{5 << 20, 65_537, 5} {
		client, server := testutil.TCPPair(t)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		res, err := bulk{}.Run(ctx, client, server, Params{Seed: 1, BulkBytes: n})
		cancel()
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		checkResult(t, res)
		want := max(n, HeaderSize)
		if res.Up != want || res.Down != want {
			t.Errorf("%d bytes: moved %d up, %d down", n, res.Up, res.Down)
		}
		if res.Completion <= 0 || res.Completion != lastRecv(res) {
			t.Errorf("Completion = %v, last message in at %v", res.Completion, lastRecv(res))
		}
	}
	client, server := testutil.TCPPair(t)
	res, err := bulk{}.Run(t.Context(), client, server, Params{})
	if err != nil || res.Up != DefaultBulkBytes || res.Down != DefaultBulkBytes {
		t.Errorf("default size: %d up, %d down, %v", res.Up, res.Down, err)
	}
}

// TestRun_Integrity changes one byte on the way and expects ErrIntegrity
// naming the message.
func TestRun_Integrity(t *testing.T) {
	for _, at := range []int64{3, 100_000} { // in a header, in a payload
		synctest.Test(t, func(t *testing.T) {
			client, server := relayed(t, time.Millisecond, func(off int64, b []byte) {
				if off <= at && at < off+int64(len(b)) {
					b[at-off] ^= 1
				}
			})
			_, err := bulk{}.Run(t.Context(), client, server, Params{Seed: 3})
			if !errors.Is(err, ErrIntegrity) {
				t.Fatalf("byte %d changed: err = %v, want ErrIntegrity", at, err)
			}
		})
	}
}

// TestRun_Truncated: the client's stream ends inside a message.
func TestRun_Truncated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := memPipe(t)
		go func() {
			client.Write([]byte{1, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3})
			client.(interface{ CloseWrite() error }).CloseWrite()
		}()
		// Run reads the stray bytes from the client as they came from the
		// client's writer: the sequence is right, the payload is not.
		_, err := idle{}.Run(t.Context(), client, server, Params{Duration: time.Second})
		if !errors.Is(err, ErrIntegrity) {
			t.Fatalf("err = %v, want ErrIntegrity", err)
		}
	})
}

// TestRun_Cancel cancels every workload midway through a slow tunnel:
// Run returns ctx's error at once and leaves no goroutine (synctest
// would report it).
func TestRun_Cancel(t *testing.T) {
	traces := loadTraces(t, "data-gong-surakav/2-2.log")
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w, _ := New(name)
				client, server := relayed(t, 2*time.Second, nil)
				ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
				defer cancel()
				start := time.Now()
				res, err := w.Run(ctx, client, server, Params{Seed: 5, Duration: time.Hour, BulkBytes: 64 << 20, Traces: traces})
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v, want context.DeadlineExceeded", err)
				}
				if took := time.Since(start); took != 3*time.Second {
					t.Errorf("Run returned %v after the start, want 3s", took)
				}
				// Part of what was sent is still on its way; what arrived
				// is consistent.
				for _, m := range res.Messages {
					if m.Recv < m.Sent || m.Recv > 3*time.Second {
						t.Errorf("message %+v", m)
					}
				}
			})
		})
	}
}

// TestRun_CancelTCP cancels over real TCP, where only the deadlines stop
// the I/O.
func TestRun_CancelTCP(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	client, server := testutil.TCPPair(t)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := interactive{}.Run(ctx, client, server, Params{Seed: 1, Duration: time.Hour})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Run took %v to notice the cancellation", took)
	}
}

func TestRun_BadParams(t *testing.T) {
	client, server := netPipe(t)
	for _, c := range []struct {
		w Workload
		p Params
	}{
		{bulk{}, Params{BulkBytes: -1}},
		{idle{}, Params{Duration: -1}},
		{web{}, Params{}},
		{web{}, Params{Traces: [][]schedule.TraceEvent{{ev(0, schedule.DirSent, 10)}}, Site: 1}},
		{web{}, Params{Traces: [][]schedule.TraceEvent{{{Dir: schedule.DirSent, Size: 512, Padding: true}}}}},
	} {
		if _, err := c.w.Run(t.Context(), client, server, c.p); !errors.Is(err, ErrParams) {
			t.Errorf("%s %+v: err = %v, want ErrParams", c.w.Name(), c.p, err)
		}
	}
	if _, err := (idle{}).Run(t.Context(), nil, server, Params{}); !errors.Is(err, ErrParams) {
		t.Errorf("nil conn: %v", err)
	}
}

// TestRun_Deterministic: one seed gives the same sizes and send times;
// through a slow tunnel, the sends that wait for nothing keep their sizes
// and times.
func TestRun_Deterministic(t *testing.T) {
	traces := loadTraces(t, "data-bigenough-standard/00[0-2]*.log")
	const d = 3 * time.Minute
	run := func(t *testing.T, name string, seed uint64, delay time.Duration) (Result, []sent) {
		var res Result
		synctest.Test(t, func(t *testing.T) {
			w, _ := New(name)
			client, server := memPipe(t)
			if delay > 0 {
				client, server = relayed(t, delay, nil)
			}
			var err error
			res, err = w.Run(t.Context(), client, server, Params{Seed: seed, Duration: d, Traces: traces, Site: -1})
			if err != nil {
				t.Fatal(err)
			}
		})
		var out []sent
		for _, m := range res.Messages {
			out = append(out, sent{m.Dir, m.Size, m.Sent})
		}
		return res, out
	}
	for _, name := range []string{"web", "interactive", "bitcoin"} {
		t.Run(name, func(t *testing.T) {
			res, a := run(t, name, 11, 0)
			if _, b := run(t, name, 11, 0); !slices.Equal(a, b) {
				t.Errorf("two runs with one seed differ")
			}
			if _, c := run(t, name, 12, 0); slices.Equal(a, c) {
				t.Errorf("two seeds gave the same run")
			}
			slowRes, slow := run(t, name, 11, 300*time.Millisecond)
			// What each end sends on its own clock, from the model.
			var plan []sent
			switch name {
			case "web":
				if slowRes.Site != res.Site {
					t.Fatalf("first page: site %d, then %d through a slow tunnel", res.Site, slowRes.Site)
				}
				for _, m := range webPage(traces[res.Site]) {
					if m.dir == schedule.DirSent {
						plan = append(plan, sent{m.dir, m.size, m.at})
					}
				}
			case "interactive":
				for _, m := range interactivePlan(11, d) {
					plan = append(plan, sent{schedule.DirSent, m.size, m.at})
				}
			case "bitcoin":
				for _, m := range bitcoinPlan(11, d, false) {
					plan = append(plan, sent{schedule.DirSent, m.size, m.at})
				}
				for _, m := range bitcoinPlan(11, d, true) {
					plan = append(plan, sent{schedule.DirReceived, m.size, m.at})
				}
			}
			if len(plan) == 0 {
				t.Fatal("empty plan")
			}
			for _, got := range [][]sent{a, slow} {
				if missing := notIn(plan, got); len(missing) > 0 {
					t.Errorf("%d of %d planned sends are not in the run, such as %+v", len(missing), len(plan), missing[0])
				}
			}
		})
	}
}

// sent is a message's direction, size and send time.
type sent struct {
	dir  schedule.Direction
	size int
	at   time.Duration
}

// notIn returns the elements of want that are not in got.
func notIn(want, got []sent) []sent {
	have := make(map[sent]int)
	for _, m := range got {
		have[m]++
	}
	var out []sent
	for _, m := range want {
		if have[m] == 0 {
			out = append(out, m)
			continue
		}
		have[m]--
	}
	return out
}

func lastRecv(res Result) time.Duration {
	var last time.Duration
	for _, m := range res.Messages {
		last = max(last, m.Recv)
	}
	return last
}

package schedule

import (
	"errors"
	"math"
	"testing"
	"time"
)

// write is one send a simulated shaper made.
type write struct {
	at         time.Duration // since t0
	size, data int
}

type arrival struct {
	at time.Duration
	n  int // bytes added to the queue
}

// simulate runs s with a shaper that serves every opportunity exactly on
// time, data first and decoys for the rest when Pad is set, until end.
func simulate(t *testing.T, s Schedule, arrivals []arrival, end time.Duration) []write {
	t.Helper()
	var out []write
	queue := 0
	now := t0
	for steps := 0; ; steps++ {
		if steps > 1_000_000 {
			t.Fatal("simulation does not end")
		}
		o := s.Next(now)
		nextArrival := time.Duration(math.MaxInt64)
		if len(arrivals) > 0 {
			nextArrival = arrivals[0].at
		}
		if !o.Idle() && o.At.Sub(t0) <= nextArrival {
			if o.At.Sub(t0) > end {
				return out
			}
			now = o.At
			data := min(queue, o.Size)
			size := data
			if o.Pad {
				size = o.Size
			}
			if size == 0 {
				t.Fatalf("%v: opportunity %v with nothing to send", s, show(o))
			}
			queue -= data
			if data > 0 {
				s.Sent(now, data, false)
			}
			if size > data {
				s.Sent(now, size-data, true)
			}
			out = append(out, write{now.Sub(t0), size, data})
			continue
		}
		if len(arrivals) == 0 || nextArrival > end {
			return out
		}
		now = t0.Add(nextArrival)
		queue += arrivals[0].n
		arrivals = arrivals[1:]
		s.Queued(now, queue)
	}
}

func TestImmediate(t *testing.T) {
	s := NewImmediate()
	ms := time.Millisecond
	got := simulate(t, s, []arrival{{0, 100}, {5 * ms, 2000}, {5 * ms, 30}, {9 * ms, 1}}, time.Second)
	want := []write{{0, 100, 100}, {5 * ms, 2000, 2000}, {5 * ms, 30, 30}, {9 * ms, 1, 1}}
	if len(got) != len(want) {
		t.Fatalf("writes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("write %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if o := s.Next(t0); !o.Idle() {
		t.Errorf("Next after draining = %v, want idle", show(o))
	}
	s.Queued(t0, MaxSize+5)
	if o := s.Next(t0); o.Size != MaxSize {
		t.Errorf("Size = %d, want MaxSize", o.Size)
	}
	s.Sent(t0, MaxSize, false)
	if o := s.Next(t0); o.Size != 5 {
		t.Errorf("Size after a MaxSize send = %d, want the 5 left", o.Size)
	}
	s.Sent(t0, 5, true) // decoys don't drain data
	if o := s.Next(t0); o.Size != 5 {
		t.Errorf("Size after a decoy = %d, want 5", o.Size)
	}
}

func TestJitter(t *testing.T) {
	s, err := NewJitter(JitterParams{}, seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	got := simulate(t, s, []arrival{{0, 100_000}, {5 * time.Second, 10}}, 10*time.Second)
	total, prevEnd := 0, time.Duration(-1)
	var gaps []time.Duration
	for i, w := range got {
		if w.size != w.data || w.size > DefaultMTU {
			t.Fatalf("write %d = %+v: jitter sends data only, at most %d", i, w, DefaultMTU)
		}
		total += w.data
		if prevEnd >= 0 {
			gaps = append(gaps, w.at-prevEnd)
		}
		prevEnd = w.at
	}
	if total != 100_010 {
		t.Errorf("sent %d bytes, want 100010", total)
	}
	if last := got[len(got)-1]; last.at != 5*time.Second || last.data != 10 {
		t.Errorf("data after a long pause: %+v, want 10 bytes at once at 5s", last)
	}
	gaps = gaps[:len(gaps)-1] // the pause before the last write
	var sum time.Duration
	for _, g := range gaps {
		if g < 0 || g > 10*ms {
			t.Fatalf("gap %v outside [0, 10ms]", g)
		}
		sum += g
	}
	if mean := sum / time.Duration(len(gaps)); mean < 4*ms || mean > 6*ms {
		t.Errorf("mean gap %v over %d gaps, want about 5ms", mean, len(gaps))
	}
}

func TestJitter_deterministic(t *testing.T) {
	run := func(seed uint64) []write {
		s, _ := NewJitter(JitterParams{Size: intSampler{1, 5000}}, seeded(seed))
		return simulate(t, s, []arrival{{0, 50_000}}, time.Minute)
	}
	a, b, c := run(7), run(7), run(8)
	same := func(x, y []write) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Error("same seed, different writes")
	}
	if same(a, c) {
		t.Error("different seeds, same writes")
	}
}

func TestParams_errors(t *testing.T) {
	r := seeded(1)
	tests := []struct {
		name  string
		param string
		err   error
	}{
		{"cell size", "CellSize", second(NewConstantRate(ConstantRateParams{CellSize: -1}))},
		{"cell size too big", "CellSize", second(NewConstantRate(ConstantRateParams{CellSize: MaxSize + 1}))},
		{"interval short", "Interval", second(NewConstantRate(ConstantRateParams{Interval: time.Microsecond}))},
		{"interval long", "Interval", second(NewConstantRate(ConstantRateParams{Interval: time.Hour}))},
		{"idle stop", "IdleStop", second(NewConstantRate(ConstantRateParams{IdleStop: -1}))},
		{"idle stop under the interval", "IdleStop", second(NewConstantRate(ConstantRateParams{Interval: time.Second, IdleStop: time.Second - 1}))},
		{"video role", "Role", second(NewVideo(VideoParams{}, r))},
		{"video segment", "SegmentDuration", second(NewVideo(VideoParams{Role: Client, SegmentDuration: time.Second}, r))},
		{"video segment long", "SegmentDuration", second(NewVideo(VideoParams{Role: Client, SegmentDuration: 11 * time.Second}, r))},
		{"video empty ladder", "len(Ladder)", second(NewVideo(VideoParams{Role: Client, Ladder: []int{}}, r))},
		{"video ladder order", "Ladder[1]", second(NewVideo(VideoParams{Role: Client, Ladder: []int{200_000, 100_000}}, r))},
		{"video ladder low", "Ladder[0]", second(NewVideo(VideoParams{Role: Client, Ladder: []int{5}}, r))},
		{"video start rung", "StartRung", second(NewVideo(VideoParams{Role: Server, StartRung: 9}, r))},
		{"video startup", "StartupSegments", second(NewVideo(VideoParams{Role: Server, StartupSegments: 31}, r))},
		{"video vbr", "VBR", second(NewVideo(VideoParams{Role: Server, VBR: 1}, r))},
		{"video vbr NaN", "VBR", second(NewVideo(VideoParams{Role: Server, VBR: math.NaN()}, r))},
		{"video mtu", "MTU", second(NewVideo(VideoParams{Role: Server, MTU: 20}, r))},
		{"video quiet", "QuietGap", second(NewVideo(VideoParams{Role: Server, QuietGap: time.Minute}, r))},
		{"video idle stop", "IdleStop", second(NewVideo(VideoParams{Role: Client, IdleStop: -time.Second}, r))},
		{"replay role", "Role", second(NewReplay(ReplayParams{Trace: []TraceEvent{{0, DirSent, 1, false}}}))},
		{"replay loop gap", "LoopGap", second(NewReplay(ReplayParams{Trace: []TraceEvent{{0, DirSent, 1, false}}, Role: Client, LoopGap: -1}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pe *ParamError
			if !errors.As(tt.err, &pe) {
				t.Fatalf("error %v, want a *ParamError", tt.err)
			}
			if pe.Param != tt.param {
				t.Errorf("error names %q, want %q: %v", pe.Param, tt.param, pe)
			}
			t.Log(pe)
		})
	}
	if _, err := NewJitter(JitterParams{}, nil); !errors.Is(err, ErrNilRand) {
		t.Errorf("NewJitter(nil rand) = %v", err)
	}
	if _, err := NewVideo(VideoParams{Role: Client}, nil); !errors.Is(err, ErrNilRand) {
		t.Errorf("NewVideo(nil rand) = %v", err)
	}
	if _, err := NewReplay(ReplayParams{Role: Server, Trace: []TraceEvent{{0, DirSent, 1, false}}}); !errors.Is(err, ErrNoReplayEvents) {
		t.Errorf("NewReplay with no server events = %v", err)
	}
	if _, err := NewReplay(ReplayParams{Role: Client, Trace: []TraceEvent{{5, DirSent, 1, false}, {4, DirSent, 1, false}}}); err == nil {
		t.Error("NewReplay accepted a trace out of order")
	}
}

func second[T any](_ T, err error) error { return err }

func TestSchedule_String(t *testing.T) {
	cr, _ := NewConstantRate(ConstantRateParams{})
	j, _ := NewJitter(JitterParams{}, seeded(1))
	v, _ := NewVideo(VideoParams{Role: Server}, seeded(1))
	rp, _ := NewReplay(ReplayParams{Role: Client, Loop: true, Trace: []TraceEvent{{0, DirSent, 1, false}, {2 * time.Second, DirReceived, 5, false}}})
	for _, tt := range []struct {
		s    Schedule
		want string
	}{
		{NewImmediate(), "immediate"},
		{cr, "constant-rate(cell=1448,interval=20ms,idle-stop=0s)"},
		{j, "jitter(gap=uniform(0,10000)us,size=fixed(1448))"},
		{v, "video(role=server,segment=4s,ladder=[145000 365000 730000 1100000 2000000 3000000 4500000 6000000 7800000],start-rung=0,startup=3,vbr=0.2,mtu=1448,request=uniform(300,800),quiet=100ms,idle-stop=0s)"},
		{rp, "replay(role=client,events=1,length=2s,loop=1s)"},
	} {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("String() =\n%s\nwant\n%s", got, tt.want)
		}
	}
}

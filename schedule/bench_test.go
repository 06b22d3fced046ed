package schedule

import (
	"testing"
	"time"
)

// benchSchedules builds one of each schedule, started and with data
// waiting.
func benchSchedules(b *testing.B) []Schedule {
	cr, _ := NewConstantRate(ConstantRateParams{IdleStop: time.Second})
	j, _ := NewJitter(JitterParams{}, seeded(1))
	vc, _ := NewVideo(VideoParams{Role: Client, IdleStop: time.Minute}, seeded(2))
	vs, _ := NewVideo(VideoParams{Role: Server}, seeded(3))
	var trace []TraceEvent
	for i := range 1000 {
		trace = append(trace, TraceEvent{time.Duration(i) * time.Millisecond, Direction(1 + i%2), 514, false})
	}
	rp, err := NewReplay(ReplayParams{Trace: trace, Role: Client, Loop: true})
	if err != nil {
		b.Fatal(err)
	}
	all := []Schedule{NewImmediate(), cr, j, vc, vs, rp}
	for _, s := range all {
		s.Queued(t0, 1<<30)
		s.Received(t0, 500)
	}
	return all
}

func BenchmarkSchedule_Next(b *testing.B) {
	for _, s := range benchSchedules(b) {
		b.Run(name(s), func(b *testing.B) {
			b.ReportAllocs()
			now := t0
			for b.Loop() {
				now = now.Add(time.Microsecond)
				if o := s.Next(now); o.Idle() {
					b.Fatal("idle")
				}
			}
		})
	}
}

// BenchmarkSchedule_cycle is the shaper's steady state: ask, send the
// opportunity's bytes, report them.
func BenchmarkSchedule_cycle(b *testing.B) {
	for _, s := range benchSchedules(b) {
		b.Run(name(s), func(b *testing.B) {
			b.ReportAllocs()
			now := t0
			for b.Loop() {
				o := s.Next(now)
				if o.Idle() {
					b.Fatal("idle")
				}
				now = o.At
				s.Sent(now, o.Size, false)
				s.Queued(now, 1<<30)
			}
		})
	}
}

func name(s Schedule) string {
	if v, ok := s.(*Video); ok {
		return "video-" + v.Params().Role.String()
	}
	n := s.String()
	for i, c := range n {
		if c == '(' {
			return n[:i]
		}
	}
	return n
}

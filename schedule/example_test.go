package schedule_test

import (
	"fmt"
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
)

// Example_usage drives a constant-rate schedule the way the shaper's loop
// does, with the clock passed in: ask Next, wait until At, send Size
// bytes (data first, decoys for the rest), report what went out.
func Example_usage() {
	s, err := schedule.NewConstantRate(schedule.ConstantRateParams{
		CellSize: 1000,
		Interval: 10 * time.Millisecond,
		IdleStop: 25 * time.Millisecond,
	})
	if err != nil {
		panic(err)
	}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	queue := 1500 // wire bytes of application data waiting
	s.Queued(start, queue)

	now := start
	for {
		o := s.Next(now)
		if o.Idle() {
			fmt.Println("idle until the next event")
			break
		}
		now = o.At // the shaper arms its timer for o.At and wakes then
		data := min(queue, o.Size)
		queue -= data
		s.Sent(now, data, false)
		if o.Pad {
			s.Sent(now, o.Size-data, true)
		}
		fmt.Printf("%v: %d bytes, %d of them data\n", now.Sub(start), o.Size, data)
	}
	// Output:
	// 0s: 1000 bytes, 1000 of them data
	// 10ms: 1000 bytes, 500 of them data
	// 20ms: 1000 bytes, 0 of them data
	// 30ms: 1000 bytes, 0 of them data
	// idle until the next event
}

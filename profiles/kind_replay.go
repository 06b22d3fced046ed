package profiles

import (
	mrand "math/rand/v2"
	"os"

	"github.com/bip324pt/bip324-pt/schedule"
)

// replayFields are the [schedule] keys of kind "replay", named after the
// schedule.ReplayParams fields they set.
type replayFields struct {
	Trace   string   `toml:"trace"` // a file, relative to the profile's folder
	Loop    bool     `toml:"loop"`
	LoopGap duration `toml:"loop_gap"`
}

func init() {
	registerKind("replay", &kind[replayFields]{
		Compile: compileReplay,
		Params:  func(s schedule.Schedule) any { return s.(*schedule.Replay).Params() },
	})
}

// compileReplay reads the trace once, at compile time; each connection's
// schedule takes what it needs from the parsed events.
func compileReplay(c *kindContext, f *replayFields) (newSchedule, error) {
	if f.Trace == "" {
		return nil, c.errorf("trace", "missing: replay needs a trace file")
	}
	file, err := os.Open(c.path(f.Trace))
	if err != nil {
		return nil, c.errorf("trace", "%v", err)
	}
	events, err := schedule.ParseTrace(file)
	file.Close()
	if err != nil {
		return nil, c.errorf("trace", "%v", err)
	}
	loop, gap := f.Loop, f.LoopGap.Duration
	return func(role schedule.Role, _ *mrand.Rand) (schedule.Schedule, error) {
		return schedule.NewReplay(schedule.ReplayParams{Trace: events, Role: role, Loop: loop, LoopGap: gap})
	}, nil
}

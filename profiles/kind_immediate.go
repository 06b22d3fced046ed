package profiles

import "github.com/bip324pt/bip324-pt/schedule"

// immediateFields are the [schedule] keys of kind "immediate": none.
type immediateFields struct{}

// immediate sends data as soon as it is written: no factory, which
// shaper.Shape reads as schedule.Immediate.
func init() {
	registerKind("immediate", &kind[immediateFields]{
		Compile: func(*kindContext, *immediateFields) (newSchedule, error) { return nil, nil },
		Params:  func(s schedule.Schedule) any { return s.(*schedule.Immediate).Params() },
	})
}

package schedule

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestSchedules_Params: every schedule reports its parameters with a
// Params method returning its own Params type, and the zero Params
// (with a role where one is required) comes back with the defaults
// filled in.
func TestSchedules_Params(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	trace := []TraceEvent{{Time: 0, Dir: DirSent, Size: 100}}
	video, err := NewVideo(VideoParams{Role: Server}, r)
	if err != nil {
		t.Fatal(err)
	}
	cbr, err := NewConstantRate(ConstantRateParams{})
	if err != nil {
		t.Fatal(err)
	}
	jitter, err := NewJitter(JitterParams{}, r)
	if err != nil {
		t.Fatal(err)
	}
	replay, err := NewReplay(ReplayParams{Trace: trace, Role: Client})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		s    Schedule
		want any
	}{
		{NewImmediate(), ImmediateParams{}},
		{cbr, ConstantRateParams{CellSize: DefaultMTU, Interval: DefaultCellInterval}},
		{video, VideoParams{Role: Server, SegmentDuration: DefaultSegmentDuration, Ladder: DefaultLadder(),
			StartupSegments: DefaultStartupSegments, VBR: DefaultVBR, MTU: DefaultMTU,
			RequestSize: intSampler{defaultReqMin, defaultReqMax}, QuietGap: DefaultQuietGap, MaxBuffer: DefaultMaxBuffer}},
		{jitter, JitterParams{Gap: intSampler{0, 10_000}, Size: intSampler{DefaultMTU, DefaultMTU}}},
		{replay, ReplayParams{Role: Client, LoopGap: DefaultLoopGap}},
	}
	for _, c := range cases {
		m := reflect.ValueOf(c.s).MethodByName("Params")
		if !m.IsValid() || m.Type().NumIn() != 0 || m.Type().NumOut() != 1 {
			t.Errorf("%T: no Params() method", c.s)
			continue
		}
		if got := m.Call(nil)[0].Interface(); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%T.Params() = %+v, want %+v", c.s, got, c.want)
		}
	}
}

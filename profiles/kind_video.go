package profiles

import (
	mrand "math/rand/v2"
	"slices"

	"github.com/bip324pt/bip324-pt/schedule"
	"github.com/bip324pt/bip324-pt/v2core"
)

// videoFields are the [schedule] keys of kind "video", named after the
// schedule.VideoParams fields they set.
type videoFields struct {
	SegmentDuration duration `toml:"segment"`
	Ladder          []int    `toml:"ladder"`
	StartRung       int      `toml:"start_rung"`
	StartupSegments int      `toml:"startup_segments"`
	VBR             float64  `toml:"vbr"`
	MTU             int      `toml:"mtu"`
	RequestSize     string   `toml:"request_size"` // a distribution
	QuietGap        duration `toml:"quiet_gap"`
	AudioBitrate    int      `toml:"audio"`
	SeekEvery       duration `toml:"seek_every"`
	IdleStop        duration `toml:"idle_stop"`
	Rebuffer        bool     `toml:"rebuffer"`
	MaxBuffer       duration `toml:"max_buffer"`
}

func init() {
	registerKind("video", &kind[videoFields]{
		Compile: compileVideo,
		Params:  func(s schedule.Schedule) any { return s.(*schedule.Video).Params() },
	})
}

// compileVideo parses request_size and checks that a write holds one
// packet, which the schedule leaves to its caller.
func compileVideo(c *kindContext, f *videoFields) (newSchedule, error) {
	req, err := c.dist("request_size", f.RequestSize)
	if err != nil {
		return nil, err
	}
	if f.MTU != 0 && f.MTU < v2core.PacketOverhead+2 {
		return nil, c.errorf("mtu", "%d, want at least %d", f.MTU, v2core.PacketOverhead+2)
	}
	vp := schedule.VideoParams{
		SegmentDuration: f.SegmentDuration.Duration, Ladder: slices.Clone(f.Ladder),
		StartRung: f.StartRung, StartupSegments: f.StartupSegments, VBR: f.VBR,
		MTU: f.MTU, QuietGap: f.QuietGap.Duration, AudioBitrate: f.AudioBitrate,
		SeekEvery: f.SeekEvery.Duration, IdleStop: f.IdleStop.Duration,
		Rebuffer: f.Rebuffer, MaxBuffer: f.MaxBuffer.Duration,
	}
	if req != nil {
		vp.RequestSize = req
	}
	return func(role schedule.Role, r *mrand.Rand) (schedule.Schedule, error) {
		p := vp
		p.Role = role
		return schedule.NewVideo(p, r)
	}, nil
}

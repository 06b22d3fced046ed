package profiles

import (
	mrand "math/rand/v2"

	"github.com/bip324pt/bip324-pt/schedule"
)

// bitcoinFields are the [schedule] keys of kind "bitcoin", named after
// the schedule.BitcoinParams fields they set.
type bitcoinFields struct {
	IBD           bool     `toml:"ibd"`
	PingInterval  duration `toml:"ping_interval"`
	InvInterval   duration `toml:"inv_interval"`
	TxRate        float64  `toml:"tx_rate"`
	AddrInterval  duration `toml:"addr_interval"`
	BlockInterval duration `toml:"block_interval"`
	BlockSize     string   `toml:"block_size"` // a distribution
	InFlight      int      `toml:"in_flight"`
	DemandWait    duration `toml:"demand_wait"`
}

func init() {
	registerKind("bitcoin", &kind[bitcoinFields]{
		Compile: compileBitcoin,
		Params:  func(s schedule.Schedule) any { return s.(*schedule.Bitcoin).Params() },
	})
}

// compileBitcoin parses block_size; the schedule checks the rest.
func compileBitcoin(c *kindContext, f *bitcoinFields) (newSchedule, error) {
	size, err := c.dist("block_size", f.BlockSize)
	if err != nil {
		return nil, err
	}
	bp := schedule.BitcoinParams{
		IBD: f.IBD, PingInterval: f.PingInterval.Duration, InvInterval: f.InvInterval.Duration,
		TxRate: f.TxRate, AddrInterval: f.AddrInterval.Duration, BlockInterval: f.BlockInterval.Duration,
		InFlight: f.InFlight, DemandWait: f.DemandWait.Duration,
	}
	if size != nil {
		if lo, _ := size.Bounds(); lo < 1 {
			return nil, c.errorf("block_size", "smallest size %d, want at least 1", lo)
		}
		bp.BlockSize = size
	}
	return func(role schedule.Role, r *mrand.Rand) (schedule.Schedule, error) {
		p := bp
		p.Role = role
		return schedule.NewBitcoin(p, r)
	}, nil
}

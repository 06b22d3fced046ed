package workload

import (
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// fullRelayRate is DESIGN.md's byte rate of a full-relay link, both
// directions together.
const fullRelayRate = 2171.0

// TestBitcoin_Run runs 20 minutes of a link in virtual time and checks it
// against the model: pings, blocks, addresses where planned, and the
// relay traffic near the published rate.
func TestBitcoin_Run(t *testing.T) {
	const d = 20 * time.Minute
	for _, seed := range []uint64{1, 2, 3} {
		synctest.Test(t, func(t *testing.T) {
			client, server := relayed(t, 30*time.Millisecond, nil)
			res, err := bitcoin{}.Run(t.Context(), client, server, Params{Seed: seed, Duration: d})
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, res)
			cplan, splan := bitcoinPlan(seed, d, false), bitcoinPlan(seed, d, true)

			// Pings every 2 minutes from each end, each answered.
			var small [2]int
			for _, m := range res.Messages {
				if m.Size == pingSize {
					small[dirIndex(m.Dir)]++
				}
			}
			if pings := int(d / pingInterval); small != [2]int{2 * pings, 2 * pings} {
				t.Errorf("seed %d: %v ping-sized messages each way, want %d pings and %d pongs", seed, small, pings, pings)
			}

			// The blocks, as planned.
			var want []Message
			for _, m := range splan {
				if m.kind == kindBlock {
					want = append(want, Message{Dir: down, Size: m.size, Sent: m.at})
				}
			}
			blocks := Blocks(res)
			var blockBytes int64
			for i := range blocks {
				blockBytes += int64(blocks[i].Size)
				if blocks[i].Recv < blocks[i].Sent+30*time.Millisecond {
					t.Errorf("block %+v came too soon", blocks[i])
				}
				blocks[i].Recv = 0
			}
			if !slices.Equal(blocks, want) {
				t.Errorf("seed %d: blocks %+v, want %+v", seed, blocks, want)
			}

			// Every timed message went at its time.
			var plan []sent
			for _, m := range cplan {
				plan = append(plan, sent{up, m.size, m.at})
			}
			for _, m := range splan {
				plan = append(plan, sent{down, m.size, m.at})
			}
			var got []sent
			for _, m := range res.Messages {
				got = append(got, sent{m.Dir, m.Size, m.Sent})
			}
			if missing := notIn(plan, got); len(missing) > 0 {
				t.Errorf("seed %d: %d planned messages missing, such as %+v", seed, len(missing), missing[0])
			}

			rate := float64(res.Up+res.Down-blockBytes) / d.Seconds()
			if math.Abs(rate-fullRelayRate) > 0.15*fullRelayRate {
				t.Errorf("seed %d: relay traffic %.0f B/s, want %.0f within 15%%", seed, rate, fullRelayRate)
			}
			t.Logf("seed %d: %d messages, relay %.0f B/s, %d blocks", seed, len(res.Messages), rate, len(blocks))
		})
	}
}

// TestBitcoinPlan_Model checks the timed processes' statistics over many
// seeds.
func TestBitcoinPlan_Model(t *testing.T) {
	const (
		seeds = 200
		d     = 20 * time.Minute
	)
	type stats struct {
		invs, entries, addrs, blocks, pings int
	}
	var st [2]stats
	for seed := range uint64(seeds) {
		for i, server := range []bool{false, true} {
			plan := bitcoinPlan(seed, d, server)
			var lastPing time.Duration = -1
			for j, m := range plan {
				if j > 0 && m.at < plan[j-1].at {
					t.Fatalf("plan out of order at %d", j)
				}
				if m.at < 0 || m.at >= d {
					t.Fatalf("message at %v", m.at)
				}
				switch m.kind {
				case kindPing:
					if m.at != lastPing+pingInterval && !(lastPing < 0 && m.at == 0) {
						t.Fatalf("ping at %v after one at %v", m.at, lastPing)
					}
					lastPing = m.at
					st[i].pings++
				case kindInv:
					n, ok := invCount(m.size)
					if !ok || n > invMax {
						t.Fatalf("inv of %d bytes", m.size)
					}
					st[i].invs++
					st[i].entries += n
				case kindAddr:
					st[i].addrs++
				case kindBlock:
					if !server || m.size < MinBlockSize || m.size > maxBlockSize {
						t.Fatalf("block of %d bytes from server=%v", m.size, server)
					}
					st[i].blocks++
				}
			}
		}
	}
	total := seeds * d.Seconds()
	near := func(what string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol*want {
			t.Errorf("%s = %.3f, want %.3f within %.0f%%", what, got, want, 100*tol)
		}
	}
	// The timer's mean gap is 2 s or 5 s, but a tick with nothing to
	// announce sends nothing: the chance of that after an exponential
	// gap of mean m is 1/(1+7m), which stretches the mean gap between
	// invs to m + 1/7 s.
	near("client's mean inv gap (s)", total/float64(st[0].invs), outboundInvInterval.Seconds()+1.0/invPerSecond, 0.03)
	near("server's mean inv gap (s)", total/float64(st[1].invs), inboundInvInterval.Seconds()+1.0/invPerSecond, 0.03)
	near("client's announcements a second", float64(st[0].entries)/total, invPerSecond, 0.03)
	near("server's announcements a second", float64(st[1].entries)/total, invPerSecond, 0.03)
	near("mean addr gap (s)", 2*total/float64(st[0].addrs+st[1].addrs), addrInterval.Seconds(), 0.05)
	// 20 minutes: a block every min(10 min, 20/3 min) on average, 3 a run.
	near("blocks a run", float64(st[1].blocks)/seeds, 3, 0.15)
	if st[0].blocks != 0 || st[0].pings != seeds*10 || st[1].pings != seeds*10 {
		t.Errorf("client blocks %d, pings %d and %d", st[0].blocks, st[0].pings, st[1].pings)
	}
	// A long run keeps mainnet's ten minutes.
	var blocks int
	for seed := range uint64(50) {
		for _, m := range bitcoinPlan(seed, 5*time.Hour, true) {
			if m.kind == kindBlock {
				blocks++
			}
		}
	}
	near("blocks an hour over 5 hours", float64(blocks)/250, 6, 0.1)
}

func TestBitcoin_Samplers(t *testing.T) {
	r := newRand(1, "test")
	for _, mean := range []float64{0.5, 3.5, 35, 280} {
		const n = 20000
		var sum, sq float64
		for range n {
			k := float64(poisson(r, mean))
			sum += k
			sq += k * k
		}
		m := sum / n
		v := sq/n - m*m
		if math.Abs(m-mean) > 0.03*mean+0.01 || math.Abs(v-mean) > 0.1*mean {
			t.Errorf("poisson(%v): mean %.3f, variance %.3f", mean, m, v)
		}
	}
	if k := binomial(r, 100000, fetchFraction); math.Abs(float64(k)-25000) > 500 {
		t.Errorf("binomial: %d of 100000", k)
	}
	sizes := make([]int, 100001)
	var sum float64
	for i := range sizes {
		sizes[i] = txSize(r)
		sum += float64(sizes[i])
		if sizes[i] < bip324Overhead+txMinSize || sizes[i] > bip324Overhead+txMaxSize {
			t.Fatalf("tx of %d bytes", sizes[i])
		}
	}
	slices.Sort(sizes)
	if med := sizes[len(sizes)/2]; med < 260 || med > 282 {
		t.Errorf("median tx message %d bytes, want about %d", med, txMedianSize+bip324Overhead)
	}
	if mean := sum / float64(len(sizes)); mean < 410 || mean > 455 {
		t.Errorf("mean tx message %.0f bytes, want about 433", mean)
	}
	for n := 1; n <= invMax; n++ {
		if got, ok := invCount(invSize(n)); !ok || got != n {
			t.Fatalf("invCount(invSize(%d)) = %d, %v", n, got, ok)
		}
	}
	if invSize(1) != 58 || invSize(253) != 21+3+36*253 {
		t.Errorf("invSize(1) = %d, invSize(253) = %d", invSize(1), invSize(253))
	}
	if _, ok := invCount(59); ok {
		t.Error("invCount(59) accepted")
	}
}

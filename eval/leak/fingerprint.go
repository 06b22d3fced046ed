package leak

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
)

// cumulPoints is the number of points of the cumulative sum that
// [Fingerprint] samples; Panchenko et al. found 100 enough.
const cumulPoints = 100

// CUMUL returns the CUMUL features of a page load (Panchenko et al.,
// "Website Fingerprinting at Internet Scale", NDSS 2016, section V): the
// packets received, the packets sent, the bytes received and the bytes
// sent, then n samples of the cumulative sum of signed sizes (+ sent,
// - received). The sum after each packet, c_1..c_N, is interpolated
// linearly over the packet index and sampled at n equidistant points
// from the first packet to the last, so the first sample is the first
// packet's signed size and the last is bytes sent minus bytes received.
// With one packet every sample is its signed size; with none, every
// feature is 0. The result has 4+n entries (4 if n < 1).
//
// The paper interpolates over the cumulative absolute size rather than
// the packet index; for Tor cells, all one size, the two agree.
func CUMUL(ev []schedule.TraceEvent, n int) []float64 {
	n = max(n, 0)
	f := make([]float64, 4+n)
	sum := make([]float64, len(ev))
	c := 0.0
	for i, e := range ev {
		s := float64(e.Size)
		if e.Dir == schedule.DirReceived {
			f[0]++
			f[2] += s
			c -= s
		} else {
			f[1]++
			f[3] += s
			c += s
		}
		sum[i] = c
	}
	if len(ev) == 0 {
		return f
	}
	last := float64(len(ev) - 1)
	for k := range n {
		at := last // n == 1: the total
		if n > 1 {
			at = float64(k) * last / float64(n-1)
		}
		i := min(int(at), len(ev)-1)
		v := sum[i]
		if frac := at - float64(i); frac > 0 && i+1 < len(ev) {
			v += frac * (sum[i+1] - sum[i])
		}
		f[4+k] = v
	}
	return f
}

// Fingerprint measures website fingerprinting, the attack of Panchenko et
// al. with a k-NN in place of their SVM: each page load in instances
// (site[i] in 0..sites-1) is named by its k nearest neighbours among the
// loads outside its fold, on CUMUL features of 100 points scaled by the
// training folds' standard deviation, with folds stratified folds drawn
// by seed (clamped to the number of loads). Result.Chance is 1/sites.
func Fingerprint(instances [][]schedule.TraceEvent, site []int, sites, folds, k int, seed uint64) Result {
	x := make([][]float64, len(instances))
	for i, tr := range instances {
		x[i] = CUMUL(tr, cumulPoints)
	}
	fold, folds := stratify(site, sites, folds, seed)
	return crossValidateKNN(x, site, sites, fold, folds, k)
}

// Perturbations of [Augment].
const (
	augmentMinSpeed = 0.8  // slowest time scale, of a slower path
	augmentMaxSpeed = 1.25 // fastest, 1/augmentMinSpeed
	augmentJitter   = 0.05 // jitter sd, a share of the gap before the event
	augmentDrop     = 0.02 // chance an event is lost
	augmentDup      = 0.02 // chance an event is sent twice
)

// Augment makes m page loads out of the one load tr, because our trace
// sets hold one load per site (testdata/traces/README.md) and website
// fingerprinting needs several. Each load stretches all times by one
// factor drawn log-uniformly from [0.8, 1.25] (a path of another speed,
// as likely faster as slower), moves each event by normal jitter of sd 5
// % of the stretched gap before it, keeping times in order and >= 0,
// and loses each event with chance 0.02 or repeats it, at the same
// time, with chance 0.02 (a lost or retransmitted cell). The loads are a
// function of tr, m and seed alone.
//
// NOTE: this is a stand-in for repeated loads, not a substitute. Real
// loads of a page differ far more (ads, caches, other content, other
// circuits), so fingerprinting these loads is easier than fingerprinting
// real ones: an accuracy measured on them overstates the attack on an
// unshaped tunnel, and a defence that brings it to chance is the stronger
// for it.
func Augment(tr []schedule.TraceEvent, m int, seed uint64) [][]schedule.TraceEvent {
	r := rand.New(rand.NewPCG(seed, 3))
	lo, hi := math.Log(augmentMinSpeed), math.Log(augmentMaxSpeed)
	out := make([][]schedule.TraceEvent, m)
	for k := range out {
		speed := math.Exp(lo + r.Float64()*(hi-lo))
		load := make([]schedule.TraceEvent, 0, len(tr)+len(tr)/16)
		var prev time.Duration // the time of the last event out
		for i, e := range tr {
			u := r.Float64()
			jitter := r.NormFloat64()
			if u < augmentDrop {
				continue
			}
			gap := 0.0
			if i > 0 {
				gap = float64(tr[i].Time-tr[i-1].Time) * speed
			}
			t := time.Duration(float64(e.Time)*speed + jitter*augmentJitter*gap)
			e.Time = max(t, prev, 0)
			prev = e.Time
			load = append(load, e)
			if u < augmentDrop+augmentDup {
				load = append(load, e)
			}
		}
		out[k] = load
	}
	return out
}

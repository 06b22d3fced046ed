// Package leak measures what a shaping profile leaks about the workload
// inside a tunnel, as a censor with packet captures would: features of a
// window of the wire (time, direction and size of every write) and a
// k-nearest-neighbour classifier, cross-validated, that names the
// workload. Chance is 1 over the number of workloads; a profile that hides
// the workload keeps the classifier near chance.
//
// The features are the bytes each direction carries in equal time bins
// across the window and the number of writes each way: the volume and
// rhythm a censor reads off a capture (CUMUL, Panchenko et al., NDSS
// 2016, samples the cumulative sum instead; bins of the same window carry
// the same information for a fixed-length window).
package leak

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
)

// Features returns the feature vector of the events within [start,
// start+window): for each direction, the bytes in each of bins equal
// bins, then the writes each way.
func Features(ev []schedule.TraceEvent, start, window time.Duration, bins int) []float64 {
	f := make([]float64, 2*bins+2)
	for _, e := range ev {
		if e.Time < start || e.Time >= start+window {
			continue
		}
		b := int(int64(e.Time-start) * int64(bins) / int64(window))
		off := 0
		if e.Dir == schedule.DirReceived {
			off = bins
		}
		f[off+b] += float64(e.Size)
		if e.Dir == schedule.DirReceived {
			f[2*bins+1]++
		} else {
			f[2*bins]++
		}
	}
	return f
}

// Result is a cross-validated classification.
type Result struct {
	// Accuracy is the share of samples named right.
	Accuracy float64
	// Confusion[i][j] counts samples of class i named j.
	Confusion [][]int
}

func (r Result) String() string {
	return fmt.Sprintf("accuracy %.2f, confusion %v", r.Accuracy, r.Confusion)
}

// CrossValidate classifies every sample x[i] (class y[i] in 0..classes-1)
// by its k nearest neighbours among the samples outside its fold, with
// folds folds drawn by seed, features scaled by the training folds'
// standard deviation.
func CrossValidate(x [][]float64, y []int, classes, folds, k int, seed uint64) Result {
	n := len(x)
	order := rand.New(rand.NewPCG(seed, 1)).Perm(n)
	fold := make([]int, n)
	for i, j := range order {
		fold[j] = i % folds
	}
	conf := make([][]int, classes)
	for i := range conf {
		conf[i] = make([]int, classes)
	}
	right := 0
	for f := range folds {
		var train []int
		for i := range n {
			if fold[i] != f {
				train = append(train, i)
			}
		}
		sd := scale(x, train)
		for i := range n {
			if fold[i] != f {
				continue
			}
			got := knn(x, y, train, x[i], sd, k, classes)
			conf[y[i]][got]++
			if got == y[i] {
				right++
			}
		}
	}
	return Result{Accuracy: float64(right) / float64(n), Confusion: conf}
}

// scale returns each feature's standard deviation over the samples in idx
// (a constant feature gets 1): distances are taken in those units.
func scale(x [][]float64, idx []int) []float64 {
	d := len(x[0])
	mean, sd := make([]float64, d), make([]float64, d)
	for _, i := range idx {
		for j, v := range x[i] {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(len(idx))
	}
	for _, i := range idx {
		for j, v := range x[i] {
			sd[j] += (v - mean[j]) * (v - mean[j])
		}
	}
	for j := range sd {
		sd[j] = math.Sqrt(sd[j] / float64(len(idx)))
		if sd[j] == 0 {
			sd[j] = 1
		}
	}
	return sd
}

// knn names q's class by majority among its k nearest training samples
// (ties to the nearest).
func knn(x [][]float64, y, train []int, q, sd []float64, k, classes int) int {
	type nb struct {
		d float64
		c int
	}
	nbs := make([]nb, 0, len(train))
	for _, i := range train {
		d := 0.0
		for j := range q {
			v := (q[j] - x[i][j]) / sd[j]
			d += v * v
		}
		nbs = append(nbs, nb{d, y[i]})
	}
	slices.SortStableFunc(nbs, func(a, b nb) int {
		switch {
		case a.d < b.d:
			return -1
		case a.d > b.d:
			return 1
		}
		return 0
	})
	votes := make([]int, classes)
	best := nbs[0].c
	for _, n := range nbs[:min(k, len(nbs))] {
		votes[n.c]++
		if votes[n.c] > votes[best] {
			best = n.c
		}
	}
	return best
}

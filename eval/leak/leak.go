// Package leak measures what a shaping profile leaks, as a censor with
// packet captures would: the time, direction and size of every write on
// the wire, turned into features and fed to classifiers that are
// cross-validated. Chance is 1 over the number of classes; a profile that
// hides what it carries keeps the classifiers near chance.
//
// Three questions, three tools:
//
//   - Which workload is inside the tunnel? [Features] or the richer
//     [WindowFeatures] of a window of the flow, classified by k nearest
//     neighbours ([CrossValidate]) or by a random forest
//     ([CrossValidateForest]).
//   - Does the tunnel look like what it imitates? [Distinguish] trains a
//     forest to tell two sets of windows apart (shaped traffic against
//     the profile's own target model, or tunnels against Bitcoin Core)
//     and reports the cross-validated [AUC]: 0.5 means the censor can't.
//   - Which website is loaded through it? [Fingerprint] is the k-NN
//     attack on [CUMUL] features (Panchenko et al., "Website
//     Fingerprinting at Internet Scale", NDSS 2016). Our traces hold one
//     load per site, so [Augment] makes several loads of each.
//
// Features returns the bytes each direction carries in equal time bins
// across the window and the number of writes each way: the volume and
// rhythm a censor reads off a capture. CUMUL samples the cumulative sum
// instead; bins of the same window carry the same information for a
// fixed-length window.
//
// The classifiers and data sets are small, so every figure is a lower
// bound on what a censor can learn: a profile that fails here leaks, one
// that passes may still leak to a stronger censor.
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
	// Chance is the accuracy of a blind guess, 1 over the number of
	// classes.
	Chance float64
	// Confusion[i][j] counts samples of class i named j.
	Confusion [][]int
}

func (r Result) String() string {
	return fmt.Sprintf("accuracy %.2f (chance %.2f), confusion %v", r.Accuracy, r.Chance, r.Confusion)
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
	return crossValidateKNN(x, y, classes, fold, folds, k)
}

// crossValidateKNN classifies each sample by its k nearest neighbours
// among the samples outside its fold (fold[i] in 0..folds-1).
func crossValidateKNN(x [][]float64, y []int, classes int, fold []int, folds, k int) Result {
	n := len(x)
	res := newResult(classes)
	right := 0
	for f := range folds {
		var train []int
		for i := range n {
			if fold[i] != f {
				train = append(train, i)
			}
		}
		if len(train) == 0 {
			continue
		}
		sd := scale(x, train)
		for i := range n {
			if fold[i] != f {
				continue
			}
			got := knn(x, y, train, x[i], sd, k, classes)
			res.Confusion[y[i]][got]++
			if got == y[i] {
				right++
			}
		}
	}
	res.Accuracy = float64(right) / float64(n)
	return res
}

// newResult returns an empty Result for classes classes.
func newResult(classes int) Result {
	conf := make([][]int, classes)
	for i := range conf {
		conf[i] = make([]int, classes)
	}
	return Result{Chance: 1 / float64(classes), Confusion: conf}
}

// stratify deals the samples of each class, shuffled by seed, into folds
// folds in turn, carrying the turn over from one class to the next, so
// every fold holds each class in proportion and the folds differ in size
// by at most one. folds is clamped to [1, len(y)].
func stratify(y []int, classes, folds int, seed uint64) (fold []int, nfolds int) {
	folds = max(1, min(folds, len(y)))
	r := rand.New(rand.NewPCG(seed, 2))
	fold = make([]int, len(y))
	turn := 0
	for c := range classes {
		var idx []int
		for i, v := range y {
			if v == c {
				idx = append(idx, i)
			}
		}
		r.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for _, i := range idx {
			fold[i] = turn % folds
			turn++
		}
	}
	return fold, folds
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

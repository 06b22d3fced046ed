package leak

import (
	"math"
	"slices"
)

// AUC returns the area under the ROC curve of scores for the labels
// positive (true for a positive sample): the chance that a positive
// sample drawn at random scores above a negative one, a tie counting
// one half. That is the Mann-Whitney U of the positives over
// npos*nneg, computed here from mid-ranks. It is NaN if there are no
// positives or no negatives. Scores must not be NaN.
//
// NOTE: AUC panics if scores and positive differ in length.
func AUC(scores []float64, positive []bool) float64 {
	if len(scores) != len(positive) {
		panic("leak: AUC needs one label per score")
	}
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		switch {
		case scores[a] < scores[b]:
			return -1
		case scores[a] > scores[b]:
			return 1
		}
		return 0
	})
	var npos, nneg, rankSum float64
	for lo := 0; lo < len(order); {
		hi := lo + 1
		for hi < len(order) && scores[order[hi]] == scores[order[lo]] {
			hi++
		}
		// order[lo:hi] share ranks lo+1..hi, whose mean is this.
		mid := float64(lo+1+hi) / 2
		for _, i := range order[lo:hi] {
			if positive[i] {
				npos++
				rankSum += mid
			} else {
				nneg++
			}
		}
		lo = hi
	}
	if npos == 0 || nneg == 0 {
		return math.NaN()
	}
	return (rankSum - npos*(npos+1)/2) / (npos * nneg)
}

package leak

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"

	"gonum.org/v1/gonum/floats"
)

// Limits of each tree of a [Forest]. Breiman's forests grow every tree to
// purity; the data sets here are tens to hundreds of samples, which a
// depth of 16 never limits, and a leaf of at least 2 samples keeps a
// tree from spending a split on every bootstrap duplicate.
const (
	treeMaxDepth = 16
	treeMinLeaf  = 2
)

// Forest is a random forest (Breiman, "Random Forests", Machine Learning
// 45, 2001): CART trees, each grown on a bootstrap sample of the training
// set, splitting on the Gini impurity among sqrt(features) features drawn
// at random per split, and voting. A trained Forest is read-only and safe
// for concurrent use. The zero value has no trees; use [TrainForest].
type Forest struct {
	classes int
	trees   [][]node
}

// node is a split or a leaf of a tree, stored in a slice in which the
// root comes first.
type node struct {
	feature     int     // split on this feature; -1 for a leaf
	threshold   float64 // go left if q[feature] <= threshold
	left, right int     // children, indices in the tree
	class       int     // the leaf's majority class, ties broken at random
}

// TrainForest grows trees trees on the samples x with classes y (each in
// 0..classes-1). The forest is a function of its arguments and seed
// alone: tree t draws from its own generator, seeded by (seed, t), so the
// trees grow in parallel and still come out the same. Features must not
// be NaN.
//
// NOTE: TrainForest panics if x is empty, if x and y differ in length, if
// a class is out of range or if trees < 1.
func TrainForest(x [][]float64, y []int, classes, trees int, seed uint64) *Forest {
	if len(x) == 0 || len(x) != len(y) || trees < 1 {
		panic("leak: TrainForest needs samples, one class each, and trees")
	}
	for _, c := range y {
		if c < 0 || c >= classes {
			panic("leak: TrainForest: class out of range")
		}
	}
	f := &Forest{classes: classes, trees: make([][]node, trees)}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(trees, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for t := range next {
				f.trees[t] = growTree(x, y, classes, rand.New(rand.NewPCG(seed, uint64(t))))
			}
		})
	}
	for t := range trees {
		next <- t
	}
	close(next)
	wg.Wait()
	return f
}

// Proba returns, for each class, the share of trees that vote for it.
func (f *Forest) Proba(q []float64) []float64 {
	p := make([]float64, f.classes)
	for _, t := range f.trees {
		i := 0
		for t[i].feature >= 0 {
			if q[t[i].feature] <= t[i].threshold {
				i = t[i].left
			} else {
				i = t[i].right
			}
		}
		p[t[i].class]++
	}
	floats.Scale(1/float64(len(f.trees)), p)
	return p
}

// Predict returns the class most trees vote for; of tied classes, the
// lowest.
func (f *Forest) Predict(q []float64) int {
	return floats.MaxIdx(f.Proba(q))
}

// grower grows one tree.
type grower struct {
	x       [][]float64
	y       []int
	classes int
	rng     *rand.Rand
	mtry    int // candidate features per split
	nodes   []node
	feats   []int // scratch: the features in the order a split tries them
	left    []int // scratch: class counts left of a threshold
}

// growTree grows a tree on a bootstrap sample of x.
func growTree(x [][]float64, y []int, classes int, rng *rand.Rand) []node {
	d := len(x[0])
	g := &grower{
		x: x, y: y, classes: classes, rng: rng,
		mtry:  max(1, int(math.Sqrt(float64(d)))),
		feats: make([]int, d),
		left:  make([]int, classes),
	}
	for i := range g.feats {
		g.feats[i] = i
	}
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = rng.IntN(len(x))
	}
	g.grow(idx, 0)
	return g.nodes
}

// grow adds the subtree over the samples idx, at depth, and returns its
// root. It reorders idx.
func (g *grower) grow(idx []int, depth int) int {
	counts := make([]int, g.classes)
	for _, i := range idx {
		counts[g.y[i]]++
	}
	me := len(g.nodes)
	g.nodes = append(g.nodes, node{feature: -1, class: majority(counts, g.rng)})
	if depth >= treeMaxDepth || len(idx) < 2*treeMinLeaf || counts[g.nodes[me].class] == len(idx) {
		return me
	}
	feature, threshold, ok := g.split(idx, counts)
	if !ok {
		return me
	}
	k := 0
	for j, i := range idx {
		if g.x[i][feature] <= threshold {
			idx[j], idx[k] = idx[k], idx[j]
			k++
		}
	}
	left := g.grow(idx[:k], depth+1)
	right := g.grow(idx[k:], depth+1)
	g.nodes[me] = node{feature: feature, threshold: threshold, left: left, right: right}
	return me
}

// split finds the split of idx with the least weighted Gini impurity
// among mtry features drawn at random, leaving at least treeMinLeaf
// samples each side. When none of those features can split idx (all
// constant there), it tries further features until one can, as CART
// implementations do; ok is false if none can. The best split may not
// lower the impurity: a forest still gains from it further down (XOR).
func (g *grower) split(idx []int, counts []int) (feature int, threshold float64, ok bool) {
	n := len(idx)
	sorted := make([]int, n)
	best := math.Inf(-1)
	for tried, f := range g.shuffledFeatures() {
		if tried >= g.mtry && ok {
			break
		}
		copy(sorted, idx)
		slices.SortFunc(sorted, func(a, b int) int {
			switch va, vb := g.x[a][f], g.x[b][f]; {
			case va < vb:
				return -1
			case va > vb:
				return 1
			}
			return 0
		})
		// Moving samples left one by one, keep the sums of squared
		// class counts of both sides; the weighted Gini impurity
		// nL*(1-sqL/nL²) + nR*(1-sqR/nR²) = n - (sqL/nL + sqR/nR), so
		// the best split has the largest sqL/nL + sqR/nR.
		clear(g.left)
		sqL, sqR := 0.0, 0.0
		for _, c := range counts {
			sqR += float64(c * c)
		}
		for p := 0; p < n-1; p++ {
			c := g.y[sorted[p]]
			sqL += float64(2*g.left[c] + 1)
			sqR -= float64(2*(counts[c]-g.left[c]) - 1)
			g.left[c]++
			nL := p + 1
			if nL < treeMinLeaf || n-nL < treeMinLeaf {
				continue
			}
			lo, hi := g.x[sorted[p]][f], g.x[sorted[p+1]][f]
			if lo == hi {
				continue
			}
			score := sqL/float64(nL) + sqR/float64(n-nL)
			if score > best {
				best, feature, ok = score, f, true
				threshold = lo + (hi-lo)/2
				if threshold >= hi { // lo and hi adjacent floats
					threshold = lo
				}
			}
		}
	}
	return feature, threshold, ok
}

// shuffledFeatures returns all features in a fresh random order.
func (g *grower) shuffledFeatures() []int {
	g.rng.Shuffle(len(g.feats), func(i, j int) { g.feats[i], g.feats[j] = g.feats[j], g.feats[i] })
	return g.feats
}

// majority returns the class with the most counts. It breaks ties at
// random: small leaves often tie, and a fixed rule would make the forest
// favour one class.
func majority(counts []int, rng *rand.Rand) int {
	best, tied := 0, 0
	for c, n := range counts {
		switch {
		case n > counts[best]:
			best, tied = c, 1
		case n == counts[best]:
			tied++
			if rng.IntN(tied) == 0 {
				best = c
			}
		}
	}
	return best
}

// CrossValidateForest classifies every sample x[i] (class y[i] in
// 0..classes-1) by a forest of trees trees grown on the samples outside
// its fold, with folds stratified folds drawn by seed (folds is clamped
// to the number of samples). Result.Chance is 1/classes. The result is a
// function of the arguments and seed alone.
func CrossValidateForest(x [][]float64, y []int, classes, folds, trees int, seed uint64) Result {
	fold, folds := stratify(y, classes, folds, seed)
	res := newResult(classes)
	right := 0
	forEachFold(x, y, classes, fold, folds, trees, seed, func(i int, f *Forest) {
		got := f.Predict(x[i])
		res.Confusion[y[i]][got]++
		if got == y[i] {
			right++
		}
	})
	res.Accuracy = float64(right) / float64(len(x))
	return res
}

// forEachFold grows a forest on the samples outside each fold and calls
// held with each sample of the fold and that forest. The forest of fold
// f draws from seed and f only.
func forEachFold(x [][]float64, y []int, classes int, fold []int, folds, trees int, seed uint64, held func(i int, f *Forest)) {
	for k := range folds {
		var tx [][]float64
		var ty []int
		for i := range x {
			if fold[i] != k {
				tx = append(tx, x[i])
				ty = append(ty, y[i])
			}
		}
		if len(tx) == 0 {
			continue
		}
		f := TrainForest(tx, ty, classes, trees, seed^(uint64(k+1)*0x9e3779b97f4a7c15))
		for i := range x {
			if fold[i] == k {
				held(i, f)
			}
		}
	}
}

// Distinguish says how well a censor tells the feature vectors of set a
// from those of set b, such as shaped traffic from the profile's own
// target model, or tunnels from Bitcoin Core: a forest of trees trees,
// cross-validated over folds stratified folds, scores each held-out
// sample by its share of votes for b, and Distinguish returns the AUC of
// those scores over all samples. 0.5 means the censor can't tell, 1 that
// it always can; below 0.5 is chance too. The result is a function of the
// arguments and seed alone. It is NaN if a or b has fewer than 2 samples.
func Distinguish(a, b [][]float64, folds, trees int, seed uint64) float64 {
	if len(a) < 2 || len(b) < 2 {
		return math.NaN()
	}
	x := append(slices.Clip(a), b...)
	y := make([]int, len(x))
	positive := make([]bool, len(x))
	for i := len(a); i < len(x); i++ {
		y[i], positive[i] = 1, true
	}
	fold, folds := stratify(y, 2, folds, seed)
	scores := make([]float64, len(x))
	forEachFold(x, y, 2, fold, folds, trees, seed, func(i int, f *Forest) {
		scores[i] = f.Proba(x[i])[1]
	})
	return AUC(scores, positive)
}

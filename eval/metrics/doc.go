// Package metrics is the metrics library of bip324-pt eval: what a shaped
// tunnel costs, and how well a censor could tell its wire from another.
// Its inputs are wire recordings ([schedule.TraceEvent]: time since the
// start of the trace, direction seen from the client, size of each socket
// write or read), byte counts, and the client's first flights. Every
// function is pure, safe for concurrent use, does not modify its
// arguments, and never panics: an input without enough data gives NaN or
// an empty result, as documented below.
//
// Events are expected in non-decreasing Time, as schedule.ParseTrace and
// eval/wiretap give them; nothing here sorts them. A direction argument d
// selects the events with Dir == d, and d == 0 selects every event. The
// Padding mark is ignored: a padding write is on the wire like any other.
//
// # Cost
//
//	Goodput(B, d)      = B / d                  bytes per second; NaN if d <= 0
//	Overhead(W, D)     = W / D − 1              0.25 is 25 % extra; NaN if D == 0
//	DecoyShare(Y, W)   = Y / W                  in 0..1; NaN if W == 0
//
// B and D are application bytes, W bytes on the wire (data, padding,
// decoys and framing), Y the wire bytes of decoy packets, d a duration.
//
// # Samples from a trace
//
// Sizes lists the sizes of the selected events in trace order (bytes).
// Gaps lists t[k+1] − t[k] in seconds over consecutive selected events,
// n−1 values for n events. Seconds converts durations to seconds.
//
// WindowBytes(ev, d, w, end) cuts [0, end) into n = ⌈end/w⌉ windows,
// window k being [k·w, (k+1)·w) (the last one may be shorter than w), and
// sums the sizes of the selected events in each; events before 0 or at or
// after end are ignored. It returns nil if w <= 0 or end <= 0, and
// allocates n values, so keep end/w sensible.
//
// A burst is a maximal run of selected events in which no two consecutive
// events are more than quiet apart: a gap t[k+1] − t[k] > quiet starts a
// new burst, a gap of exactly quiet does not. Its Start and End are the
// times of its first and last events (a write has no length), Bytes the
// sum of its sizes and Events how many events it holds. BurstStats gives
// each burst's Bytes and the gaps Start[k+1] − End[k] in seconds.
//
// # Summaries and distances
//
// Quantile(xs, q), for n values sorted as x(1) <= … <= x(n), interpolates
// linearly between the order statistics around rank 1 + (n−1)·q
// (Hyndman and Fan 1996, definition 7, the default of R and NumPy):
//
//	h = (n−1)·q,  k = ⌊h⌋
//	Q(q) = x(k+1) + (h − k)·(x(k+2) − x(k+1))      (x(k+1) when h == k)
//
// so Q(0) = x(1), Q(1) = x(n), and the median is the middle value, or the
// mean of the two middle values for an even n. It is NaN if xs is empty,
// q is outside [0, 1] or NaN, or xs holds a NaN.
//
// CV(xs) = σ/μ, with μ the mean and σ the population standard deviation
// sqrt(Σ(x − μ)²/n). It is 0 for a single value and NaN if xs is empty or
// μ == 0; a negative μ gives a negative CV.
//
// With F_a and F_b the empirical CDFs of samples a and b (F_a(x) is the
// share of a that is <= x):
//
//	KS(a, b)           = sup_x |F_a(x) − F_b(x)|       in 0..1
//	Wasserstein1(a, b) = ∫ |F_a(x) − F_b(x)| dx         in the unit of the samples
//
// KS is the two-sample Kolmogorov–Smirnov statistic (gonum
// stat.KolmogorovSmirnov), 0 for equal distributions and 1 for disjoint
// ones. Wasserstein1 is the earth mover's distance: the least mean
// distance a unit of probability mass has to travel to turn one
// distribution into the other; for two samples of one value each it is
// |a − b|. Both are NaN if either sample is empty or holds a NaN;
// Wasserstein1 is also NaN for an infinite value.
//
// # First flights
//
// A first flight is the payload of the first data packet a client sends
// on a connection. FET counts the flights that the fully-encrypted-traffic
// rule of eval/fet exempts; an empty flight counts as exempt, as
// fet.Check has nothing to judge.
//
// ChiSquareUniform(flights, n) takes the first min(n, len(f)) bytes of
// each flight f, counts each byte value into O_0 … O_255 over all flights
// together, N = Σ O_v bytes in all, and with the uniform expectation
// E = N/256 returns
//
//	stat = Σ_v (O_v − E)² / E
//	p    = P(χ²₂₅₅ >= stat)        (distuv.ChiSquared{K: 255}.Survival)
//
// Random bytes give a p that is not small (it is uniform on 0..1 over
// repeated runs); ASCII text or a fixed header gives p ≈ 0. If no bytes
// are taken (no flights, all empty, or n <= 0) it returns stat 0 and p
// NaN. The test is only meaningful when E is at least about 5, that is
// N >= 1280 bytes.
//
// # Block arrivals
//
// BlockArrivals is the detector of the BIP324 traffic analysis of
// Arowolokehinde (bip324-traffic-analysis-research, 2026; see DESIGN.md,
// "Bitcoin traffic on a real link"), which flags a second whose bytes
// exceed twice the rolling mean of the previous 60 seconds. With
// x = perSecond, second i >= 1 is flagged when
//
//	x[i] > 2·m(i),   m(i) = mean of x[max(0, i−window) .. i−1]
//
// so a second early in the trace is judged against the mean of the
// seconds that exist before it, second 0 is never flagged, and after a
// silent history (m(i) == 0) any second with bytes is flagged. A second
// at exactly twice the mean is not. window <= 0 returns nil. perSecond
// holds byte counts, finite and >= 0; for other values the result is
// unspecified (but there is no panic).
//
// DetectionRate(detected, truth, tol) is the share of the seconds in
// truth that have a detected second within tol of them, |d − t| <= tol;
// each entry of truth counts, duplicates included. It is NaN if truth is
// empty and 0 if detected is empty or tol < 0.
package metrics

// Package padding samples sizes and fills garbage for the shaper.
//
// Everything here is pure arithmetic over an injected random source: a
// [*rand.Rand] from math/rand/v2, normally one made by [NewRand] from a
// 32-byte seed (ChaCha8, which math/rand/v2 documents as cryptographically
// strong). The same seed and the same calls give the same sizes and bytes,
// so a profile's shaping is reproducible; a seed kept secret gives sizes
// and filler that an observer can't predict. The package imports only the
// standard library and never reads the clock or the network.
//
// # Distributions
//
// A [Dist] draws one non-negative size in [0, MaxSize] per [Dist.Sample].
// Sample never allocates; every Dist is immutable once built and may be
// shared between goroutines, each with its own *rand.Rand.
//
//   - [Fixed](n): always n. String "fixed(n)".
//   - [Uniform](min, max): every integer in [min, max] equally likely.
//     String "uniform(min,max)".
//   - [NewWeighted](seed, min, max, bins): the obfs4 idea
//     (gitlab.com/yawning/obfs4 common/probdist/weighted_dist.go): the seed
//     picks a handful of values in [min, max] and a weight for each, and
//     samples follow those weights. Two bridges with different seeds have
//     different length distributions; one bridge keeps its own for good.
//     bins (default 100) caps the number of values; the seed picks between
//     bins/2 and bins of them. String "weighted(min,max,bins)"; the seed
//     is never printed.
//   - [NewEmpirical](sizes): draws one of the observed sizes, each with its
//     observed frequency, for instance the size column of a trace.
//     String "empirical(n=N,distinct=D,min..max)".
//   - [LogNormal](mu, sigma): exp(mu + sigma·Z) for a standard normal Z,
//     rounded to the nearest integer and capped at MaxSize. The median is
//     exp(mu) and the mean exp(mu + sigma²/2). String "lognormal(mu,sigma)".
//   - [Clamp](d, min, max): d's sample moved into [min, max].
//     String "clamp(d,min,max)".
//
// Weighted and Empirical sample in constant time with Vose's alias method
// (M. D. Vose, "A linear algorithm for generating random numbers with a
// given distribution", IEEE TSE 17(9), 1991), in integer arithmetic so the
// probabilities are exact rather than rounded.
//
// # Fillers
//
// A [Filler] writes garbage bytes (BIP324's variable-length garbage, or
// decoy contents where a profile wants them non-zero):
//
//   - [RandomFiller]: uniform bytes, as Bitcoin Core's garbage. About 4 set
//     bits per byte.
//   - [LowPopcountFiller]: every bit set independently with probability
//     Ones/8 (Ones is 1, 2 or 3; default 2), so the average number of set
//     bits per byte is Ones, below the 3.4 that the Great Firewall's
//     fully-encrypted-traffic rule exempts (Wu et al., "How the Great
//     Firewall of China Detects and Blocks Fully Encrypted Traffic", USENIX
//     Security 2023, exemption Ex1). Each byte still carries
//     8·H(Ones/8) bits of entropy: 4.3, 6.5 or 7.6 bits.
//   - [PrintableFiller]: uniform printable ASCII, 0x20 to 0x7e (exemptions
//     Ex2 to Ex4 of the same paper look at printable bytes). 6.6 bits of
//     entropy per byte.
//
// Note that the 64-byte ElligatorSwift key that precedes the garbage is
// uniform, so garbage only pulls a first flight's average down in
// proportion to its length: with Ones = 2 the whole flight averages below
// 3.4 bits per byte from about 28 bytes of garbage on.
//
// # Stability
//
// A seed fixes the output of this package for a given Go release: the
// ChaCha8 stream is specified (C2SP chacha8rand), but math/rand/v2 may
// change how a *rand.Rand turns it into IntN or NormFloat64 values.
package padding

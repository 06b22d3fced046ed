//go:build race

package bridge

// raceEnabled is set under the race detector, whose instrumentation makes
// timing bounds meaningless.
const raceEnabled = true

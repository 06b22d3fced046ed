// Package schedule decides when a shaped connection sends and how much:
// pure functions of the time and of the events so far, in the manner of
// quic-go's pacer (internal/congestion/pacer.go: Budget(now),
// TimeUntilSend, SentPacket) and of Maybenot's event-driven machines
// (github.com/maybenot-io/maybenot).
//
// The shaper owns the clock, the one timer and the queue; a [Schedule]
// owns only the decision. The loop looks like this:
//
//	app Write ──► queue ── Queued(now, total) ──►┐
//	                                             │
//	peer bytes ─────────── Received(now, n) ────►│  Schedule
//	                                             │
//	timer ◄── arm at o.At ◄── o := Next(now) ◄───┘
//	  │
//	  ▼ at o.At: write o.Size bytes (data first; decoys for the rest if o.Pad)
//	  └────────────────────── Sent(now, n, decoy) ──► Schedule
//
// An [Opportunity] is {At, Size, Pad}: at At, up to Size wire bytes of
// real data, and when Pad is set exactly Size bytes, decoys making up
// what data doesn't fill ("replace", in Maybenot's terms: real data never
// adds bytes to a send the schedule would make anyway). The zero
// Opportunity means idle until the next event. Next draws no randomness
// and changes nothing; schedules that need randomness take a *rand.Rand
// (math/rand/v2, normally ChaCha8 from a seed) and draw only inside
// events, in an order each one documents, so the same seed and the same
// events give the same decisions.
//
// # Schedules
//
//   - [Immediate]: no shaping. Whenever data waits, send all of it now.
//   - [ConstantRate] ([ConstantRateParams]: CellSize, Interval,
//     IdleStop): one cell of exactly CellSize bytes every Interval,
//     decoys when idle; optionally stops after IdleStop without data and
//     restarts on data.
//   - [Video] ([VideoParams]: Role, SegmentDuration, Ladder, StartRung,
//     StartupSegments, VBR, MTU, RequestSize, QuietGap, IdleStop):
//     adaptive streaming. The client sends one request a segment, a few
//     back to back at startup; the server answers each with a burst of
//     MTU-sized writes of bitrate × duration bytes (VBR), moving along a
//     bitrate ladder at segment boundaries.
//   - [Jitter] ([JitterParams]: Gap, Size): obfs4's iat modes without the
//     sleep: data only, in opportunities of a drawn Size, a drawn Gap
//     apart.
//   - [Replay] ([ReplayParams]: Trace, Role, Loop, LoopGap): the sizes
//     and times of one direction of a recorded trace; see [ParseTrace]
//     for the format (Maybenot's time_ns,direction,size).
//
// Each constructor validates its parameters, fills zero fields with the
// documented defaults, and reports a [*ParamError] naming the field.
// Every schedule reports the effective parameters, defaults filled in,
// with a Params method returning its own Params type ([Immediate.Params]
// returns the empty [ImmediateParams]); String gives them in words.
//
// Sizes drawn from a distribution come from a [Sampler], which a
// padding.Dist satisfies; this package imports only the standard library.
package schedule

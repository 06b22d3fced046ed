// Package eval measures shaping profiles: workloads that move data through
// a shaped tunnel, a tap that records every write on the wire
// (eval/wiretap), traces in the Maybenot time_ns,direction,size form
// (schedule.TraceEvent), and metrics. It may import every package of the
// project; only the command imports it.
//
// Its subpackages:
//
//   - eval/measure: tunnel throughput, CPU per MiB and handshakes per
//     second, the obfs4proxy comparison of BENCHMARKS.md.
//   - eval/wiretap: the wire recorder, whose recordings are schedule
//     traces.
//   - eval/fet: the fully-encrypted-traffic rule (Wu et al., USENIX
//     Security 2023).
//
// wiretap and fet are leaves (wiretap imports schedule, fet nothing of
// ours), so any package's tests may import them; no non-test package
// outside eval and cmd imports eval or its subpackages
// (internal/arch checks it).
package eval

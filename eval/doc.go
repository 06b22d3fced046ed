// Package eval measures shaping profiles, for the researcher who asks
// whether a profile hides what it claims and what it costs.
//
// [Run] is "bip324-pt eval": every profile of a [Config] runs every
// workload (eval/workload: bulk, web, interactive, idle, bitcoin) Runs
// times, each run a bip324-pt bridge and client over real TCP on
// loopback, optionally through an emulated [Link], with both sockets
// recorded (eval/wiretap) and the application's writes and reads at the
// client end. Each run's seed derives from Config.Seed, the profile, the
// workload and the run's index; it fixes the client's shaping, the
// bridge's (through the request's seed, or ServerConfig.Seed for
// profiles that send none) and the workload, so a campaign repeats but
// for timing noise. Runs are saved (runs/*.json, traces/*.wire and
// *.app); --shard k/n runs every n-th cell of the run matrix from the
// k-th, and [Merge] joins shards.
//
// The report ([Report]: report.md, results.json, plots/) gives per
// profile:
//
//   - cost: bulk goodput ((up+down)/completion), overhead per direction
//     (wire/application bytes − 1, busy workloads, handshake included),
//     decoy share of the wire, one-way delay percentiles of the
//     workloads' messages, completion time of web (first page) and bulk
//     against none's; formulas in eval/metrics.
//   - shape against the target: the target of a profile is its idle runs
//     (what it sends carrying nothing). The busy runs' middle half (a
//     quarter of the duration in, half the duration long) is compared
//     with the idle runs' downstream: KS distance and Wasserstein-1 of
//     write sizes and of inter-arrival times; the rate's coefficient of
//     variation over windows of a twentieth of the duration (at least
//     100 ms), each way; burst sizes and gaps (100 ms quiet).
//   - the handshake: how many first flights the fully-encrypted-traffic
//     rule exempts, and a chi-square test of uniformity over their first
//     64 bytes (with a control of ASCII flights that must fail it).
//   - the censor's classifiers (eval/leak): the workload from the wire
//     alone (a random forest over the middle half's per-bin bytes, size
//     histograms and bursts, stratified cross-validation over runs, next
//     to chance); the AUC of busy against idle runs; for profiles of the
//     bitcoin schedule kind, the AUC of their runs against a model of
//     Bitcoin Core's link (the bitcoin-peer example run idle: Core's
//     opening and full-relay cadence, measured and cited in schedule);
//     website fingerprinting (k-NN on CUMUL features) over the web runs,
//     each replaying one site, next to the same on the sites' own traces;
//     and on the bitcoin workload, the share of blocks that the
//     block-arrival detector finds.
//
// Its subpackages:
//
//   - eval/workload: the application patterns a run drives.
//   - eval/metrics: the metrics, each defined in its package doc.
//   - eval/leak: the classifiers (k-NN, random forest, AUC, CUMUL).
//   - eval/plots: the report's figures (gonum/plot).
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

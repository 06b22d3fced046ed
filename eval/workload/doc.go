// Package workload drives the two application ends of a tunnel with real
// application patterns, and measures what the applications see: bytes
// delivered, each message's one-way delay, the time to finish, and the
// client's application-level trace of writes and reads. `bip324-pt eval`
// runs one workload through a shaped tunnel at a time.
//
// The workloads ([New], [Names]):
//
//   - bulk: a transfer each way at once, as fast as the tunnel goes.
//   - web: page loads replayed from Maybenot traces (testdata/traces), the
//     server answering each request only once it has arrived.
//   - interactive: small messages from the client at random gaps, each
//     echoed by the server.
//   - idle: nothing at all, for a baseline of what a shaper sends alone.
//   - bitcoin: a Bitcoin Core full-relay link (pings, transaction invs,
//     getdata and transactions, addresses, blocks), with Core's timers
//     and mainnet's sizes.
//
// Each workload's doc says when its Run returns and what its Completion
// means.
//
// # Messages
//
// Every application message carries a 12-byte header, and its size,
// header included, is the size the model gives (a smaller one is rounded
// up to 12 bytes). Each message is one Write:
//
//	0      1               4                              12             size
//	+------+---------------+-------------------------------+---------------+
//	| kind | size (24 bit) |    sequence number (64 bit)   |    payload    |
//	+------+---------------+-------------------------------+---------------+
//	 big-endian; sequence numbers count from 0 in each direction;
//	 payload: ChaCha8 keyed by (Params.Seed, direction, kind, sequence)
//
// The receiving end recomputes the payload and checks every byte, the
// sequence and the kind; a mismatch ends the run with [ErrIntegrity]. It
// timestamps a message when the read holding its last byte returns.
//
// A conn with a CloseWrite method (TCP, the bridge's streams) is ended
// with it and the far end reads to io.EOF. A conn without one (net.Pipe)
// is ended with a header-only message of kind 0, the end marker, which no
// count or trace includes.
//
// # Randomness
//
// Everything random comes from Params.Seed through math/rand/v2's
// ChaCha8, one source per process (each end's gaps, each end's reply
// sizes, the pages), so one seed gives the same message sizes and the
// same planned send times whatever the tunnel does; only the times of
// replies, which wait for what they answer, follow the tunnel.
package workload

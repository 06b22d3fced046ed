// Package tortest runs real tor processes and pluggable-transport binaries
// on 127.0.0.1 for end-to-end tests of a managed transport (pt-spec,
// "Pluggable Transport Specification (Version 1)", tor's pt-spec.txt).
//
// It was developed against Debian's obfs4proxy, which works today, and is
// parameterised by a [Transport] so the same tests prove bip324-pt:
//
//	func TestBip324Bootstrap15(t *testing.T) {
//		tortest.RunBootstrap15(t, tortest.Bip324(tortest.BuildBip324(t)))
//	}
//
//	func TestBip324PrivateNetwork(t *testing.T) {
//		tortest.RunPrivateNetwork(t, tortest.Bip324(tortest.BuildBip324(t)), 10<<20)
//	}
//
// Three levels, each usable on its own:
//
//   - [Bridge] and [Client]: a bridge and a client alone (no directory
//     authority). A Tor link handshake carried by the transport brings the
//     client to "Bootstrapped 15% (handshake_done)"; without a consensus
//     it stops around 30%. [RunBootstrap15] is that test.
//   - [StartNetwork]: a private Tor network (one directory authority, two
//     exit relays, TestingTorNetwork, 20 s votes) that a bridge
//     ([Network.Bridge]) and a client ([Network.Client]) join; the client
//     reaches 100% in 15-50 s and carries real traffic through its
//     SocksPort. [RunPrivateNetwork] is that test, with a byte-for-byte
//     check of a file fetched from a local HTTP server.
//   - [StartPair]: no tor at all. The transport's client and server run
//     in managed mode with fake TOR_PT_* environments, as tor would run
//     them; an address the caller gives stands in for tor's ORPort.
//     eval/measure measures throughput, CPU per MiB and handshakes per
//     second through a Pair; the measurement code is there, not here.
//
// Every process listens on 127.0.0.1 only, on ports the harness picks; every
// tor gets --defaults-torrc pointing at an empty file and its own
// DataDirectory under the test's temporary directory, and a placeholder or
// private DirAuthority, so nothing in /etc/tor is read and nothing leaves
// loopback (relays also get a resolv.conf naming 127.0.0.1 and no DNS
// hijacking checks). Every wait is bounded. Cleanup stops only the
// processes this package started, by PID, checks that the transport
// children tor spawned have gone too (and kills and reports any that
// stay), and prints the tail of each log when the test failed. Set
// BIP324PT_TORTEST_KEEP=1 to keep the directories (their paths are logged).
//
// Tests that need tor call [LookPath]: a missing tool skips the test, unless
// BIP324PT_REQUIRE_TOR is set (CI sets it), when it fails the test.
// .ci/install-deps installs tor and obfs4proxy from Debian.
package tortest

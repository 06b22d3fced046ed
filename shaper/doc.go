// Package shaper owns the send side of one BIP324 connection and makes
// what a censor sees on the wire follow a schedule: it uses the freedom
// BIP324 leaves (garbage, decoy packets, how ciphertext is cut into writes
// and when each goes out) through the hooks of package v2core.
//
// Where the hooks fire, in a connection's life:
//
//	handshake   Config.GarbageLen/Garbage (or GarbageHook) ─► our garbage
//	            Config.HandshakeDecoys/DecoySize ─► decoys before our version packet
//	            Config.VersionContents ─► our version packet
//	            Config.FirstWriteSize ─► the first flight in one write or two
//	            Config.Negotiate(peer's version packet) ─► the send side's Config
//
//	sending     Write ─► bounded queue ─► run (one goroutine, one timer)
//	            run: schedule.Next(now) ─► an opportunity {At, Size, Pad}
//	                 at At: real data first (packets of at most PacketSize),
//	                        then, if Pad, decoys for exactly the rest
//	                 cut the ciphertext into writes of WriteSize ─► socket
//	                 tell the schedule: Sent(data), Sent(decoy), Queued
//
//	receiving   socket ─► v2core.Reader ─► drop decoys, strip the record byte ─► Read
//	            bytes read ─► schedule.Received (woken only for schedules that use it)
//
// Real data replaces padding: when the schedule already sends, data never
// adds wire bytes, so a constant-rate profile is exactly constant on the
// wire, idle or saturated. Both ends shape their own send direction.
//
// Between two bip324-pt ends, every packet that carries stream bytes
// starts with one record byte (0xff, a message-type id no BIP assigns).
package shaper

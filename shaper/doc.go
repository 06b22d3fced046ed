// Package shaper owns the send side of one BIP324 connection and makes
// what a censor sees on the wire follow a schedule: it uses the freedom
// BIP324 leaves (garbage, decoy packets, how ciphertext is cut into writes
// and when each goes out) through the hooks of package v2core.
//
// A Conn carries packets; what is inside them is its caller's: Bitcoin
// messages for the node proxy (WritePacket with the message type as the
// header), or the bridge's stream records (internal/bridge frames a byte
// stream with WriteStream and End). A Shape is what a profile compiles to
// and may be shared; a Config is one connection's wiring (its Shape, seed,
// handshake hooks, negotiation and observers).
//
// Where the hooks fire, in a connection's life:
//
//	handshake   Shape.GarbageLen/Garbage, then Config.MarkGarbage ─► our garbage
//	            Shape.HandshakeDecoys/DecoySize ─► decoys before our version packet
//	            Config.VersionContents ─► our version packet
//	            Shape.FirstWriteSize ─► the first flight in one write or two
//	            Config.Negotiate(peer's version packet) ─► the send side's Shape and seed
//
//	sending     WritePacket, WriteStream, End ─► bounded queue ─► run (one goroutine, one timer)
//	            run: schedule.Next(now) ─► an opportunity {At, Size, Pad}
//	                 at At: what an earlier opportunity left of a large packet,
//	                        then queued packets in order (streams cut to fit,
//	                        at most PacketSize; whole packets whole, spanning
//	                        opportunities when larger), then, if Pad, decoys
//	                        for exactly the rest
//	                 cut the ciphertext into writes of WriteSize ─► socket
//	                 tell the schedule: Sent(data), Sent(decoy), Queued
//
//	receiving   socket ─► v2core.Conn.ReadPacket (drops decoys) ─► ReadPacket
//	            bytes read ─► schedule.Received (woken only for schedules that use it)
//
// Real data replaces padding: when the schedule already sends, data never
// adds wire bytes, so a constant-rate profile is exactly constant on the
// wire, idle, saturated, or carrying a 4 MB block. Both ends shape their
// own send direction. End's packet is the last thing a Conn sends: it is
// padded to the end of its opportunity and no decoy follows it. Close
// delivers everything queued at the schedule's pace; only a peer that
// stops reading (Shape.Linger) cuts it short, and that is counted.
package shaper

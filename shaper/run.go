package shaper

import (
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
	"github.com/bip324pt/bip324-pt/v2core"
)

// run is the connection's send loop; it must run as a goroutine, started
// by a successful handshake. It returns once our last packet (End) is on
// the wire, once Close finds nothing left to send, when a socket write
// fails, or at once when Close aborts. Close counts what it left
// undelivered.
func (c *Conn) run() {
	defer close(c.loopDone)
	defer signal(c.spaceSig)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	lastQueued := -1
	// armed is the due time the timer was last set for. The schedule
	// never returns an At before the now it is given, so a late wake-up
	// sees At == now; armed keeps the time the opportunity was due.
	var armed time.Time
	// The peer's real data (not its decoys), for schedules that stop for
	// idleness both ways (schedule.ConstantRate).
	dr, _ := c.sched.(interface{ DataReceived(time.Time, int) })
	var lastDataIn int64
	for !c.abort.Load() {
		if c.ended && c.pending() == 0 {
			return
		}
		now := time.Now()
		if n := c.recvd.Swap(0); n > 0 {
			c.sched.Received(now, int(n))
		}
		if n := c.stats.dataIn.Load(); n != lastDataIn && dr != nil {
			dr.DataReceived(now, int(n-lastDataIn))
			lastDataIn = n
		}
		queued := c.q.wireEstimate() + c.pending()
		if queued != lastQueued {
			c.sched.Queued(now, queued)
			lastQueued = queued
		}
		if queued == 0 && c.closing.Load() {
			return
		}
		opp := c.sched.Next(now)
		idle := opp.Idle() || ((!opp.Pad || c.ended) && queued == 0)
		if !idle && !opp.At.After(now) {
			if c.cfg.OnSend != nil {
				due := opp.At
				if !armed.IsZero() && armed.Before(due) {
					due = armed
				}
				c.cfg.OnSend(due, now)
			}
			armed = time.Time{}
			if err := c.send(now, opp); err != nil {
				// A variable of the branch's own, so that storing its
				// address moves only it to the heap, not every send's err.
				stored := err
				if ne, ok := err.(net.Error); ok && ne.Timeout() && c.closing.Load() {
					stored = fmt.Errorf("shaper: the peer took no byte for %v while closing: %w", c.linger, err)
				}
				c.sendErr.Store(&stored)
				return
			}
			lastQueued = -1
			continue
		}
		var wake <-chan time.Time
		armed = time.Time{}
		if !idle {
			timer.Reset(opp.At.Sub(now))
			wake = timer.C
			armed = opp.At
		}
		select {
		case <-wake:
		case <-c.dataSig:
		case <-c.recvSig:
		}
		timer.Stop()
	}
}

// countUnsent counts the packet bodies that were queued but did not reach
// the socket whole: still queued, or sealed and not (or not wholly)
// written. Close calls it once the loop has ended and the queue is closed.
func (c *Conn) countUnsent() {
	n := int64(c.q.len())
	for _, p := range c.wpkts {
		n += int64(p.data)
	}
	c.wpkts = c.wpkts[:0]
	c.stats.dropped.Add(n)
}

// packetLimit draws the largest contents of the next stream packet.
func (c *Conn) packetLimit() int {
	if c.shape.PacketSize == nil {
		return DefaultMaxPacket
	}
	return min(max(c.shape.PacketSize.Sample(c.rand), 2), v2core.DefaultMaxContentLen)
}

// sealed is a packet in wbuf: where it ends, its wire size, the body
// bytes it carries
// (credited to Stats.DataOut once it is written whole), padding counted
// as decoy bytes, and whether it is a decoy.
type sealed struct {
	end, size, data, pad int
	decoy                bool
}

// zeros is the body of decoys and of End's padding.
var zeros [maxDecoyPacket]byte

const overhead = v2core.PacketOverhead

// send fills one opportunity of opp.Size wire bytes. (The appends below
// fail only before the handshake or beyond BIP324's length field, which
// WritePacket refuses: their errors cannot happen here.) First goes what an
// earlier opportunity left of a packet larger than it; then queued
// packets in order: stream bytes cut to fit, whole packets whole (the
// part beyond this opportunity is left for the next); then, if the
// opportunity pads, decoys for exactly the rest, the last one cut too if
// fewer than 20 bytes remain. Our last packet (End) takes the rest of a
// padded opportunity as its own padding, and nothing follows it.
func (c *Conn) send(now time.Time, opp schedule.Opportunity) error {
	budget := opp.Size
	pad := opp.Pad && !c.ended
	if pad && c.shape.MaxDecoyRatio > 0 {
		// Pad only while the decoys so far are within the cap, so they
		// end at most one opportunity above it.
		allow := c.shape.MaxDecoyRatio * float64(c.stats.dataOut.Load())
		if float64(c.stats.decoyOut.Load()) > allow {
			pad = false
		}
	}
	// What earlier opportunities left goes to the front of wbuf.
	if c.wstart > 0 {
		n := copy(c.wbuf, c.wbuf[c.wstart:])
		c.wbuf, c.wstart = c.wbuf[:n], 0
	}
	// room is what this opportunity has left for packets not yet sealed;
	// written counts what of it went to the socket.
	room := budget - c.pending()
	written := 0
	var dataWire, decoyWire int
	flush := func(all bool) error {
		n, d, dc, err := c.emit(budget-written, all)
		written += n
		dataWire += d
		decoyWire += dc
		return err
	}
seal:
	for room > 0 && !c.ended {
		it, ok := c.q.head()
		if !ok {
			break
		}
		hdr := it.header()
		switch {
		case it.end:
			size := overhead + len(hdr)
			if !pad {
				c.wbuf, _ = c.vc.AppendPacket(c.wbuf, hdr)
				c.wpkts = append(c.wpkts, sealed{end: c.pending(), size: size})
				room -= size
			} else {
				if room < size {
					break seal // decoys now, the end next time
				}
				// The end takes the rest of the opportunity, after
				// decoys for what is beyond one decoy's size.
				for room-size > len(zeros) {
					c.sealDecoy(min(maxDecoyPacket, room-size-overhead))
					room -= overhead + min(maxDecoyPacket, room-size-overhead)
				}
				p := room - size
				c.wbuf, _ = c.vc.AppendPacket(c.wbuf, hdr, zeros[:p])
				c.wpkts = append(c.wpkts, sealed{end: c.pending(), size: size + p, pad: p})
				room = 0
			}
			c.q.take(0)
			c.ended = true
			break seal
		case it.split:
			n := min(it.n, room-overhead-len(hdr), c.packetLimit()-len(hdr))
			if pad {
				// Leave either nothing or room for a whole decoy.
				if rem := room - (overhead + len(hdr) + n); rem > 0 && rem < overhead {
					n -= overhead - rem
				}
			}
			if n < 1 {
				break seal
			}
			a, b := c.q.peek(n)
			c.wbuf, _ = c.vc.AppendPacket(c.wbuf, hdr, a, b)
			c.wpkts = append(c.wpkts, sealed{end: c.pending(), size: overhead + len(hdr) + n, data: n})
			c.q.take(n)
			signal(c.spaceSig)
			room -= overhead + len(hdr) + n
		default:
			c.wbuf, _ = c.vc.AppendPacket(c.wbuf, hdr, it.body)
			c.wpkts = append(c.wpkts, sealed{end: c.pending(), size: overhead + len(hdr) + it.n, data: it.n})
			c.q.take(it.n)
			signal(c.spaceSig)
			room -= overhead + len(hdr) + it.n
		}
		if c.pending() >= maxChunk {
			if err := flush(false); err != nil {
				return err
			}
		}
	}
	if pad {
		for room >= overhead {
			d := min(room-overhead, maxDecoyPacket)
			if rem := room - (overhead + d); rem > 0 && rem < overhead {
				d -= overhead - rem
			}
			c.sealDecoy(d)
			room -= overhead + d
			if c.pending() >= maxChunk {
				if err := flush(false); err != nil {
					return err
				}
			}
		}
		if room > 0 {
			// Fewer bytes than any packet: the start of a decoy, whose
			// rest opens the next opportunity.
			c.sealDecoy(0)
			room -= overhead
		}
	}
	err := flush(true)
	if written == 0 {
		// Nothing could go (an opportunity too small for what waits):
		// count it as spent so the schedule moves on instead of
		// offering it again.
		decoyWire = opp.Size
	}
	c.sched.Sent(now, dataWire, false)
	if decoyWire > 0 {
		c.sched.Sent(now, decoyWire, true)
	}
	return err
}

// pending is the sealed ciphertext not yet written.
func (c *Conn) pending() int { return len(c.wbuf) - c.wstart }

// sealDecoy seals a decoy with n bytes of contents into wbuf.
func (c *Conn) sealDecoy(n int) {
	c.wbuf, _ = c.vc.AppendDecoy(c.wbuf, n)
	c.wpkts = append(c.wpkts, sealed{end: c.pending(), size: overhead + n, decoy: true})
}

// emit writes up to limit bytes from the front of wbuf, cut into pieces
// whose sizes WriteSize draws. With all false it keeps back a tail
// shorter than the current piece, to be continued by the next chunk. It
// returns the bytes written, and of them those of real packets and of
// decoys.
func (c *Conn) emit(limit int, all bool) (n, data, decoy int, err error) {
	b := c.wbuf[c.wstart:]
	b = b[:min(len(b), max(limit, 0))]
	for len(b) > 0 {
		if c.shape.WriteSize == nil {
			if err = c.writeRaw(b); err != nil {
				break
			}
			n += len(b)
			b = b[len(b):]
			break
		}
		if c.nextCut <= 0 {
			c.nextCut = max(c.shape.WriteSize.Sample(c.rand), 1)
		}
		if len(b) < c.nextCut && !all {
			break
		}
		k := min(len(b), c.nextCut)
		if err = c.writeRaw(b[:k]); err != nil {
			break
		}
		n += k
		c.nextCut -= k
		b = b[k:]
	}
	data, decoy = c.credit(n)
	// Written bytes leave wbuf by moving its start, not by copying what
	// is left: a 4 MB packet spread over cells is not moved per cell.
	c.wstart += n
	if c.wstart == len(c.wbuf) {
		c.wbuf, c.wstart = c.wbuf[:0], 0
	}
	return n, data, decoy, err
}

// credit accounts for the first written bytes of wbuf leaving it: it
// counts the packets written whole, returns the bytes written of real
// packets and of decoys, and moves the rest's ends to where they will be.
func (c *Conn) credit(written int) (data, decoy int) {
	prev, i := 0, 0
	for ; i < len(c.wpkts) && prev < written; i++ {
		p := c.wpkts[i]
		part := min(p.end, written) - prev
		if p.decoy {
			decoy += part
		} else {
			data += part
		}
		if p.end > written {
			break // partly written: it stays
		}
		prev = p.end
		switch {
		case p.decoy:
			c.stats.decoys.Add(1)
			c.stats.decoyOut.Add(int64(p.size))
		default:
			c.stats.packets.Add(1)
			c.stats.dataOut.Add(int64(p.data))
			c.stats.decoyOut.Add(int64(p.pad))
		}
	}
	// i is the first packet not written whole.
	rest := copy(c.wpkts, c.wpkts[i:])
	c.wpkts = c.wpkts[:rest]
	for j := range c.wpkts {
		c.wpkts[j].end -= written
	}
	return data, decoy
}

// counters are the connection's statistics, updated atomically.
type counters struct {
	dataOut, decoyOut, wireOut, garbage atomic.Int64
	packets, decoys, writes             atomic.Int64
	dataIn, wireIn                      atomic.Int64
	dropped                             atomic.Int64
}

// Stats is a snapshot of a connection's counters.
type Stats struct {
	// DataOut is the packet bodies (contents after their header)
	// delivered to the socket: in packets written whole. Bytes queued
	// but not yet sent are not in it.
	DataOut int64
	// DecoyOut is the wire bytes of decoy packets written after the
	// handshake, framing included, and the padding of our last packet
	// (End).
	DecoyOut int64
	// WireOut is every byte written to the socket, handshake included.
	WireOut int64
	// Garbage is the garbage bytes we sent in the handshake.
	Garbage int64
	// Packets counts the packets that are not decoys written whole
	// after the handshake (End's included), Decoys the decoys; Writes
	// counts socket writes, handshake included.
	Packets, Decoys, Writes int64
	// DataIn is the contents of the packets ReadPacket returned; WireIn
	// every byte read from the socket.
	DataIn, WireIn int64
	// DecoysIn counts the peer's decoys received, handshake included.
	DecoysIn int64
	// Dropped is the packet bodies queued that Close could not deliver
	// (see Shape.Linger); known once Close has returned.
	Dropped int64
}

// peerDecoys is how many decoys the peer sent, handshake included; v2core
// counts them as it drops them.
func (c *Conn) peerDecoys() int64 {
	if !c.established.Load() {
		return 0
	}
	return int64(c.vc.Stats().DecoysIn)
}

// Stats returns the connection's counters. Safe to call at any time, from
// any goroutine.
func (c *Conn) Stats() Stats {
	s := Stats{
		DataOut:  c.stats.dataOut.Load(),
		DecoyOut: c.stats.decoyOut.Load(),
		WireOut:  c.stats.wireOut.Load(),
		Garbage:  c.stats.garbage.Load(),
		Packets:  c.stats.packets.Load(),
		Decoys:   c.stats.decoys.Load(),
		Writes:   c.stats.writes.Load(),
		DataIn:   c.stats.dataIn.Load(),
		WireIn:   c.stats.wireIn.Load(),
		DecoysIn: c.peerDecoys(),
		Dropped:  c.stats.dropped.Load(),
	}
	return s
}

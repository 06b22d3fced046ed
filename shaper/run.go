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
// by a successful handshake. It returns once our end-of-stream record is
// on the wire, when a socket write fails, or at once when Close aborts.
// What it leaves undelivered is counted in Stats.Dropped.
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
	for !c.ended && !c.abort.Load() {
		now := time.Now()
		if n := c.recvd.Swap(0); n > 0 {
			c.sched.Received(now, int(n))
		}
		stream, ctrl := c.q.pending()
		queued := c.wireEstimate(stream) + ctrl
		if queued != lastQueued {
			c.sched.Queued(now, queued)
			lastQueued = queued
		}
		opp := c.sched.Next(now)
		idle := opp.Idle() || (!opp.Pad && queued == 0)
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

// countUnsent counts the stream bytes Write accepted that did not reach
// the socket: still queued, or sealed but not written. Close calls it once
// the loop has ended and the queue is closed.
func (c *Conn) countUnsent() {
	n := int64(c.q.len())
	for _, p := range c.wpkts {
		n += int64(p.data)
	}
	c.wpkts = c.wpkts[:0]
	c.stats.dropped.Add(n)
}

// wireEstimate is what n queued bytes take on the wire in packets of the
// default size: the schedule's view of the queue.
func (c *Conn) wireEstimate(n int) int {
	if n == 0 {
		return 0
	}
	per := DefaultMaxPacket - 1
	packets := (n + per - 1) / per
	return n + packets*(v2core.PacketOverhead+1)
}

// packetLimit draws the largest contents of the next data packet.
func (c *Conn) packetLimit() int {
	if c.cfg.PacketSize == nil {
		return DefaultMaxPacket
	}
	return min(max(c.cfg.PacketSize.Sample(c.rand), 2), v2core.DefaultMaxContentLen)
}

// sealed is a data or control packet in wbuf: where it ends and the
// stream bytes it carries, credited to Stats.DataOut and Stats.Packets
// once written whole.
type sealed struct{ end, data int }

// send fills one opportunity: real data and control records first, in
// the order they were queued, then, if the opportunity pads, decoys for
// exactly the rest. Our end-of-stream record is the last packet we ever
// send: it takes the rest of a padded opportunity as its own padding.
// Packets are built in chunks and cut into writes as they go.
func (c *Conn) send(now time.Time, opp schedule.Opportunity) error {
	budget := opp.Size
	var dataWire, decoyWire int
	pad := opp.Pad
	if pad && c.cfg.MaxDecoyRatio > 0 {
		// Pad only while the decoys so far are within the cap, so they
		// end at most one opportunity above it.
		allow := c.cfg.MaxDecoyRatio * float64(c.stats.dataOut.Load())
		if float64(c.stats.decoyOut.Load()) > allow {
			pad = false
		}
	}
	const overhead = v2core.PacketOverhead
	var hdr = [1]byte{recordStream}
	for budget >= overhead+1 {
		avail, due := c.q.next()
		if due != nil {
			ctl := *due
			size := packetWire(len(ctl.body))
			if budget < size {
				break
			}
			body := ctl.body
			if ctl.rec == recordEnd && pad {
				// The end takes the rest of the opportunity, after
				// decoys for what is beyond one decoy's size.
				for budget-size > len(zeros) {
					d := min(maxDecoyPacket, budget-size-overhead)
					c.wbuf = c.sess.AppendDecoy(c.wbuf, d)
					budget -= overhead + d
					decoyWire += overhead + d
					c.stats.decoyOut.Add(int64(overhead + d))
					c.stats.decoys.Add(1)
				}
				body = zeros[:budget-size]
				c.stats.decoyOut.Add(int64(budget - size))
				size = budget
			}
			rec := [1]byte{ctl.rec}
			c.wbuf = c.sess.SealParts(c.wbuf, false, rec[:], body, nil)
			c.wpkts = append(c.wpkts, sealed{end: len(c.wbuf)})
			c.q.popControl()
			budget -= size
			dataWire += size
			if ctl.rec == recordEnd {
				c.ended = true
				pad = false
				break
			}
			continue
		}
		if avail == 0 || budget < overhead+2 {
			break
		}
		n := min(avail, budget-overhead-1, c.packetLimit()-1)
		if pad {
			// Leave either nothing or room for a whole decoy.
			if rem := budget - (overhead + 1 + n); rem > 0 && rem < overhead {
				n -= overhead - rem
			}
		}
		if n < 1 {
			break
		}
		a, b := c.q.peek(n)
		c.wbuf = c.sess.SealParts(c.wbuf, false, hdr[:], a, b)
		c.wpkts = append(c.wpkts, sealed{end: len(c.wbuf), data: n})
		c.q.pop(n)
		signal(c.spaceSig)
		size := overhead + 1 + n
		budget -= size
		dataWire += size
		if len(c.wbuf) >= maxChunk {
			if err := c.flush(false); err != nil {
				return err
			}
		}
	}
	if pad {
		for budget >= overhead {
			d := min(budget-overhead, maxDecoyPacket)
			if rem := budget - (overhead + d); rem > 0 && rem < overhead {
				d -= overhead - rem
			}
			c.wbuf = c.sess.AppendDecoy(c.wbuf, d)
			budget -= overhead + d
			decoyWire += overhead + d
			c.stats.decoyOut.Add(int64(overhead + d))
			c.stats.decoys.Add(1)
			if len(c.wbuf) >= maxChunk {
				if err := c.flush(false); err != nil {
					return err
				}
			}
		}
		if budget > 0 {
			// Under 20 bytes cannot be a packet; say so to the
			// schedule so it moves on. Profiles reject such sizes.
			decoyWire += budget
		}
	}
	err := c.flush(true)
	if dataWire == 0 && decoyWire == 0 {
		// Too small for any packet: count it as spent so the schedule
		// moves on instead of offering it again.
		decoyWire = opp.Size
	}
	c.sched.Sent(now, dataWire, false)
	if decoyWire > 0 {
		c.sched.Sent(now, decoyWire, true)
	}
	return err
}

// zeros is the body of padded end-of-stream records.
var zeros [maxDecoyPacket]byte

// flush writes the built packets, cut into pieces whose sizes WriteSize
// draws. With all false it keeps back a tail shorter than the current
// piece, to be continued by the next chunk. Data packets written whole
// count as delivered.
func (c *Conn) flush(all bool) error {
	b := c.wbuf
	written := 0
	var err error
	for len(b) > 0 {
		if c.cfg.WriteSize == nil {
			if err = c.writeRaw(b); err != nil {
				break
			}
			written += len(b)
			b = b[len(b):]
			break
		}
		if c.nextCut <= 0 {
			c.nextCut = max(c.cfg.WriteSize.Sample(c.rand), 1)
		}
		if len(b) < c.nextCut && !all {
			break
		}
		k := min(len(b), c.nextCut)
		if err = c.writeRaw(b[:k]); err != nil {
			break
		}
		written += k
		c.nextCut -= k
		b = b[k:]
	}
	c.credit(written)
	if err != nil {
		return err
	}
	n := copy(c.wbuf, b)
	c.wbuf = c.wbuf[:n]
	return nil
}

// credit counts the data packets within the first written bytes of wbuf
// as delivered, and moves the rest's ends to where they will be once
// those bytes leave wbuf.
func (c *Conn) credit(written int) {
	i := 0
	for ; i < len(c.wpkts) && c.wpkts[i].end <= written; i++ {
		c.stats.dataOut.Add(int64(c.wpkts[i].data))
		c.stats.packets.Add(1)
	}
	rest := copy(c.wpkts, c.wpkts[i:])
	c.wpkts = c.wpkts[:rest]
	for j := range c.wpkts {
		c.wpkts[j].end -= written
	}
}

// counters are the connection's statistics, updated atomically.
type counters struct {
	dataOut, decoyOut, wireOut, garbage atomic.Int64
	packets, decoys, writes             atomic.Int64
	dataIn, wireIn, decoysIn            atomic.Int64
	dropped                             atomic.Int64
}

// Stats is a snapshot of a connection's counters.
type Stats struct {
	// DataOut is the stream bytes delivered to the socket: in data
	// packets written whole. Bytes Write accepted but not yet sent are
	// not in it.
	DataOut int64
	// DecoyOut is the wire bytes of decoy packets sent after the
	// handshake, framing included, and the padding of our end-of-stream
	// record.
	DecoyOut int64
	// WireOut is every byte written to the socket, handshake included.
	WireOut int64
	// Garbage is the garbage bytes we sent in the handshake.
	Garbage int64
	// Packets counts data and control packets written whole after the
	// handshake (the end-of-stream record included), Decoys the decoy
	// packets sent; Writes counts socket writes, handshake included.
	Packets, Decoys, Writes int64
	// DataIn is the stream bytes returned by Read; WireIn every byte read
	// from the socket.
	DataIn, WireIn int64
	// DecoysIn counts the peer's decoys received, handshake included.
	DecoysIn int64
	// Dropped is the stream bytes Write accepted that Close could not
	// deliver (see Config.Linger); known once Close has returned.
	Dropped int64
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
		DecoysIn: c.stats.decoysIn.Load(),
		Dropped:  c.stats.dropped.Load(),
	}
	return s
}

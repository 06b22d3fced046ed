package shaper

import (
	"sync"

	"github.com/bip324pt/bip324-pt/v2core"
)

// maxHeader is the longest packet header: BIP324's long message type, a
// 0x00 byte and a 12-byte command.
const maxHeader = 13

// queue is the bounded send queue: the packets Write calls queued, in
// order. Stream bytes sit in a ring buffer that the send loop seals
// straight from, so each byte is copied once on its way in and once into
// its packet; whole packets keep their own copy of their body. Both count
// against the same bound.
//
// Safe for one writer and one reader at a time: the writer adds at the
// tail and the reader takes from the head, each under mu.
type queue struct {
	mu     sync.Mutex
	buf    []byte // the ring of stream bytes
	max    int    // the most buf may grow to, and the bound on queued bytes
	r, n   int    // start and length of the filled region of buf
	held   int    // body bytes of whole packets queued
	items  []item
	closed bool
}

// item is one queued packet, or with split a run of stream bytes that
// goes as one or more packets, each with the header.
type item struct {
	hdr   [maxHeader]byte
	hlen  uint8
	split bool   // stream bytes in the ring: may be cut into packets
	end   bool   // our last packet: padded to the end of its opportunity
	n     int    // body bytes (in the ring when split)
	body  []byte // the body of a whole packet
}

func (it *item) header() []byte { return it.hdr[:it.hlen] }

// initialQueue is where a queue starts: an idle connection holds little,
// and a busy one grows its queue up to its limit.
const initialQueue = 16 << 10

func newQueue(size int) *queue {
	return &queue{buf: make([]byte, min(size, initialQueue)), max: size}
}

// growLocked makes room for need more bytes, up to max, keeping the filled
// region (moved to the front). Slices peek handed out stay valid: they
// point into the old array, which nothing writes any more.
func (q *queue) growLocked(need int) {
	size := min(q.max, max(2*len(q.buf), q.n+need))
	if size <= len(q.buf) {
		return
	}
	nb := make([]byte, size)
	first := min(q.n, len(q.buf)-q.r)
	copy(nb, q.buf[q.r:q.r+first])
	copy(nb[first:], q.buf[:q.n-first])
	q.buf, q.r = nb, 0
}

// pushStream queues as much of p as fits as stream bytes with header hdr,
// joined to the last item when that is a stream of the same header, and
// returns how many bytes it took; false if the queue is closed.
func (q *queue) pushStream(hdr, p []byte) (int, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, false
	}
	room := q.max - q.n - q.held
	if room <= 0 || len(p) == 0 {
		return 0, true
	}
	p = p[:min(len(p), room)]
	if len(q.buf)-q.n < len(p) && len(q.buf) < q.max {
		q.growLocked(len(p))
	}
	total := 0
	for len(p) > 0 && q.n < len(q.buf) {
		w := (q.r + q.n) % len(q.buf)
		end := len(q.buf)
		if w < q.r {
			end = q.r
		}
		k := copy(q.buf[w:end], p)
		q.n += k
		p = p[k:]
		total += k
	}
	if total == 0 {
		return 0, true
	}
	if last := len(q.items) - 1; last >= 0 && q.items[last].split && string(q.items[last].header()) == string(hdr) {
		q.items[last].n += total
	} else {
		it := item{split: true, n: total, hlen: uint8(len(hdr))}
		copy(it.hdr[:], hdr)
		q.items = append(q.items, it)
	}
	return total, true
}

// pushPacket queues one whole packet, header hdr and body (copied), if
// there is room for it or the queue is empty (a packet larger than the
// queue waits alone); full reports that there is no room yet. With end,
// the packet is our last: it closes the queue.
func (q *queue) pushPacket(hdr, body []byte, end bool) (ok, full bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false, false
	}
	queued := q.n + q.held
	if queued > 0 && queued+len(body) > q.max {
		return false, true
	}
	it := item{n: len(body), body: append([]byte(nil), body...), end: end, hlen: uint8(len(hdr))}
	copy(it.hdr[:], hdr)
	q.items = append(q.items, it)
	q.held += len(body)
	q.closed = end
	return true, false
}

// head returns a copy of the first item, without removing it.
func (q *queue) head() (item, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return item{}, false
	}
	return q.items[0], true
}

// peek returns up to max stream bytes from the front of the ring as at
// most two slices, without removing them. The slices stay valid until
// the matching take.
func (q *queue) peek(max int) (a, b []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(max, q.n)
	first := min(n, len(q.buf)-q.r)
	a = q.buf[q.r : q.r+first]
	b = q.buf[:n-first]
	return a, b
}

// take removes n bytes of the head item's body (of the ring, for a
// stream), and the item once nothing of it is left.
func (q *queue) take(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	it := &q.items[0]
	if it.split {
		q.r = (q.r + n) % len(q.buf)
		q.n -= n
		if q.n == 0 {
			q.r = 0
		}
	} else {
		q.held -= n
	}
	it.n -= n
	if it.n == 0 {
		q.items[0] = item{}
		q.items = q.items[1:]
		if len(q.items) == 0 {
			q.items = nil
		}
	}
}

// wireEstimate is what the queue takes on the wire, packet framing
// included, with streams cut into packets of the default size: the
// schedule's view of what waits.
func (q *queue) wireEstimate() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	total := 0
	for i := range q.items {
		it := &q.items[i]
		per := v2core.PacketOverhead + int(it.hlen)
		if !it.split || it.n == 0 {
			total += per + it.n
			continue
		}
		room := DefaultMaxPacket - int(it.hlen)
		total += it.n + (it.n+room-1)/room*per
	}
	return total
}

// len returns the queued body bytes.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n + q.held
}

// close stops further pushes.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

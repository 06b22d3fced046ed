package shaper

import "sync"

// queue is the bounded send queue: a ring buffer that Write fills and the
// send loop drains. The loop seals straight from the ring, so each byte is
// copied once on its way in and once into its packet.
//
// Safe for one writer and one reader at a time: the writer touches only
// the free region and the reader only the filled region, and each moves
// its boundary under mu.
type queue struct {
	mu     sync.Mutex
	buf    []byte
	max    int // the most buf may grow to
	r, n   int // start and length of the filled region
	closed bool

	// Control records sit between stream bytes: each goes out once the
	// bytes pushed before it have gone. pushed and popped count stream
	// bytes since the start.
	pushed, popped int64
	ctrl           []control
}

// control is a control record waiting in the queue: its record type and
// body, due once the first at stream bytes have been popped.
type control struct {
	at   int64
	rec  byte
	body []byte
}

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

// push copies as much of p as fits and returns how many bytes it took.
func (q *queue) push(p []byte) (int, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, false
	}
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
		q.pushed += int64(k)
		p = p[k:]
		total += k
	}
	return total, true
}

// len returns the number of queued bytes.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// peek returns up to max queued bytes as at most two slices, without
// removing them. The slices stay valid until the matching pop.
func (q *queue) peek(max int) (a, b []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(max, q.n)
	first := min(n, len(q.buf)-q.r)
	a = q.buf[q.r : q.r+first]
	b = q.buf[:n-first]
	return a, b
}

// pop removes n bytes from the front.
func (q *queue) pop(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.r = (q.r + n) % len(q.buf)
	q.n -= n
	q.popped += int64(n)
	if q.n == 0 {
		q.r = 0
	}
}

// close stops further pushes.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// pushControl queues a control record after the bytes pushed so far. With
// last, it also closes the queue, in the same step, so no byte can follow
// the record. It fails on a closed queue.
func (q *queue) pushControl(rec byte, body []byte, last bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	q.ctrl = append(q.ctrl, control{at: q.pushed, rec: rec, body: body})
	q.closed = last
	return true
}

// next returns how many stream bytes may go before the next control
// record, and that record when it is due now (all the bytes before it are
// gone). The record stays queued until popControl.
func (q *queue) next() (avail int, due *control) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ctrl) == 0 {
		return q.n, nil
	}
	c := &q.ctrl[0]
	if c.at == q.popped {
		return 0, c
	}
	return int(c.at - q.popped), nil
}

// popControl removes the control record next returned as due.
func (q *queue) popControl() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ctrl[0] = control{}
	q.ctrl = q.ctrl[1:]
	if len(q.ctrl) == 0 {
		q.ctrl = nil
	}
}

// pending returns the queued stream bytes and the wire size of the queued
// control records (packet framing and record byte included).
func (q *queue) pending() (stream, ctrlWire int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, c := range q.ctrl {
		ctrlWire += packetWire(len(c.body))
	}
	return q.n, ctrlWire
}

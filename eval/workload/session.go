package workload

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
)

// Framing: see the package doc.
const (
	// HeaderSize is the size of a message's header, and the smallest
	// message: a model size below it is rounded up to it.
	HeaderSize = 12
	// maxMessageSize is the largest size the header's 24-bit length
	// holds.
	maxMessageSize = 1<<24 - 1
)

// readBufSize is the size of each end's read buffer, so of its reads.
const readBufSize = 64 << 10

// kind is a message's type, the header's first byte.
type kind uint8

const (
	kindEnd     kind = iota // end of a stream on a conn without CloseWrite; never counted
	kindData                // bulk, web and interactive
	kindInv                 // bitcoin, as its BIP324 packets
	kindGetdata             //
	kindTx                  //
	kindPing                //
	kindPong                //
	kindAddr                //
	kindBlock               //
	numKinds
)

// putHeader writes a message's header at the start of b.
func putHeader(b []byte, k kind, size int, seq uint64) {
	binary.BigEndian.PutUint32(b[0:4], uint32(k)<<24|uint32(size))
	binary.BigEndian.PutUint64(b[4:12], seq)
}

// payloadSource returns the stream a message's payload is read from: a
// function of the seed and of the message's direction, kind and sequence
// number, so the far end can recompute it.
func payloadSource(seed uint64, dir schedule.Direction, k kind, seq uint64) *rand.ChaCha8 {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[0:8], seed)
	key[8] = 0xff // never the first byte of a newRand label, which is ASCII
	key[9] = byte(dir)
	key[10] = byte(k)
	binary.LittleEndian.PutUint64(key[11:19], seq)
	return rand.NewChaCha8(key)
}

// newRand returns the random source called label for a run with this
// seed. Each process of a model (one end's gaps, another's sizes) draws
// from its own source, so that what one draws does not depend on how the
// tunnel interleaved the others.
func newRand(seed uint64, label string) *rand.Rand {
	var key [32]byte
	if len(label) > len(key)-8 {
		panic("workload: random source label too long: " + label)
	}
	binary.LittleEndian.PutUint64(key[0:8], seed)
	copy(key[8:], label)
	return rand.New(rand.NewChaCha8(key))
}

// expGap draws an exponentially distributed gap with the given mean.
func expGap(r *rand.Rand, mean time.Duration) time.Duration {
	return time.Duration(r.ExpFloat64() * float64(mean))
}

// planned is a message one end sends at a time fixed in advance, counted
// from the start of the run (or, for web, of the page).
type planned struct {
	at   time.Duration
	kind kind
	size int
}

// dirIndex maps DirSent (client to server) to 0 and DirReceived to 1.
func dirIndex(d schedule.Direction) int { return int(d) - 1 }

// session is one run of a workload: its two ends, what they recorded,
// and the goroutines that drive them. A workload's Run calls newSession,
// configures the peers, calls begin, starts its drivers with spawn, and
// calls wait.
type session struct {
	p      Params
	parent context.Context
	ctx    context.Context // ends when parent does or a goroutine fails
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	cli    *peer
	srv    *peer
	start  time.Time

	durDone  chan struct{} // closed Duration after start
	durTimer *time.Timer

	unblocked   chan struct{} // closed once unblock has run
	stopUnblock func() bool

	mu       sync.Mutex   // guards the fields below
	msgs     [2][]Message // by dirIndex, then sequence number; Recv < 0 until delivered
	app      []schedule.TraceEvent
	bytes    [2]int64 // delivered, by dirIndex
	firstErr error
}

func newSession(ctx context.Context, client, server net.Conn, p Params) (*session, error) {
	if client == nil || server == nil {
		return nil, fmt.Errorf("%w: nil conn", ErrParams)
	}
	if p.Duration < 0 {
		return nil, fmt.Errorf("%w: negative Duration %v", ErrParams, p.Duration)
	}
	s := &session{p: p, parent: ctx}
	s.ctx, s.cancel = context.WithCancelCause(ctx)
	s.cli = newPeer(s, client, "client", schedule.DirSent)
	s.srv = newPeer(s, server, "server", schedule.DirReceived)
	s.cli.far, s.srv.far = s.srv, s.cli
	return s, nil
}

// since is the time since the run's start.
func (s *session) since() time.Duration { return time.Since(s.start) }

// begin starts the clock, both ends' readers and writers, and the
// Duration timer.
func (s *session) begin() {
	s.unblocked = make(chan struct{})
	s.stopUnblock = context.AfterFunc(s.ctx, s.unblock)
	s.durDone = make(chan struct{})
	s.start = time.Now()
	s.durTimer = time.AfterFunc(s.p.Duration, func() { close(s.durDone) })
	for _, p := range []*peer{s.cli, s.srv} {
		s.spawn(p.readLoop)
		s.spawn(p.writeLoop)
	}
}

// unblock ends the I/O in progress on both conns when the run is cut
// short.
func (s *session) unblock() {
	defer close(s.unblocked)
	past := time.Unix(1, 0)
	s.cli.conn.SetDeadline(past)
	s.srv.conn.SetDeadline(past)
}

// spawn runs f in a goroutine that wait waits for. An error from f ends
// the run.
func (s *session) spawn(f func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(); err != nil {
			s.fail(err)
		}
	}()
}

func (s *session) fail(err error) {
	s.mu.Lock()
	if s.firstErr == nil {
		s.firstErr = err
	}
	s.mu.Unlock()
	s.cancel(err)
}

// sleepUntil waits until at, counted from the start, and reports whether
// it came before stop closed and before the run ended.
func (s *session) sleepUntil(at time.Duration, stop <-chan struct{}) bool {
	select {
	case <-stop:
		return false
	case <-s.ctx.Done():
		return false
	default:
	}
	d := at - s.since()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	case <-s.ctx.Done():
		return false
	}
}

// afterDuration waits until Duration has passed since the start and
// reports whether the run is still going.
func (s *session) afterDuration() bool {
	select {
	case <-s.durDone:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// wait waits for every goroutine, then returns the result and the error
// that ended the run: ctx's when it was cancelled, else the first
// failure.
func (s *session) wait() (Result, error) {
	s.wg.Wait()
	interrupted := !s.stopUnblock()
	if interrupted {
		<-s.unblocked
	}
	s.durTimer.Stop()
	s.cancel(nil)

	s.mu.Lock()
	defer s.mu.Unlock()
	res := Result{
		Start: s.start,
		Up:    s.bytes[0],
		Down:  s.bytes[1],
		App:   slices.Clone(s.app),
		Site:  -1,
	}
	for di := range s.msgs {
		for _, m := range s.msgs[di] {
			if m.Recv >= 0 {
				res.Messages = append(res.Messages, m)
			}
		}
	}
	slices.SortStableFunc(res.Messages, func(a, b Message) int { return cmp.Compare(a.Sent, b.Sent) })
	switch {
	case interrupted && s.parent.Err() != nil:
		return res, s.parent.Err()
	case s.firstErr != nil:
		return res, s.firstErr
	case interrupted:
		return res, context.Cause(s.ctx)
	}
	return res, nil
}

// lastRecv is the latest Recv of the first n[i] messages of each
// direction i.
func (s *session) lastRecv(n [2]int) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var last time.Duration
	for di := range s.msgs {
		for _, m := range s.msgs[di][:min(n[di], len(s.msgs[di]))] {
			last = max(last, m.Recv)
		}
	}
	return last
}

// delivered records that message seq of direction di has arrived whole
// at time t.
func (s *session) delivered(di int, seq uint64, size int, t time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq >= uint64(len(s.msgs[di])) || s.msgs[di][seq].Size != size {
		return fmt.Errorf("%w: message %d arrived but was not sent so", ErrIntegrity, seq)
	}
	s.msgs[di][seq].Recv = t
	s.bytes[di] += int64(size)
	return nil
}

// sentSize is the size of message seq sent in direction di, or -1.
func (s *session) sentSize(di int, seq int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq >= len(s.msgs[di]) {
		return -1
	}
	return s.msgs[di][seq].Size
}

// trimReceivedLocked takes n bytes off the end of App's reads: the end marker,
// which the client read last.
func (s *session) trimReceivedLocked(n int) {
	for i := len(s.app) - 1; i >= 0 && n > 0; i-- {
		ev := &s.app[i]
		if ev.Dir != schedule.DirReceived {
			continue
		}
		k := min(n, ev.Size)
		ev.Size -= k
		n -= k
		if ev.Size == 0 {
			s.app = slices.Delete(s.app, i, i+1)
		}
	}
}

// progress counts the messages one end has received, for drivers that
// wait for them.
type progress struct {
	mu sync.Mutex
	n  int
	ch chan struct{} // closed at the next add
}

func (c *progress) add() {
	c.mu.Lock()
	c.n++
	if c.ch != nil {
		close(c.ch)
		c.ch = nil
	}
	c.mu.Unlock()
}

// wait waits until the count reaches want and reports whether it did
// before stop closed and before done.
func (c *progress) wait(want int, stop, done <-chan struct{}) bool {
	for {
		c.mu.Lock()
		if c.n >= want {
			c.mu.Unlock()
			return true
		}
		if c.ch == nil {
			c.ch = make(chan struct{})
		}
		ch := c.ch
		c.mu.Unlock()
		select {
		case <-ch:
		case <-stop:
			return false
		case <-done:
			return false
		}
	}
}

// item is a message waiting in an outbox.
type item struct {
	kind kind
	size int
}

// peer is one application end: a reader that checks and timestamps what
// arrives, and a writer that sends what its outbox holds, in order.
type peer struct {
	s      *session
	conn   net.Conn
	name   string
	dir    schedule.Direction // of the messages this end writes
	client bool
	far    *peer
	// marker: the conn has no CloseWrite, so the stream ends with an end
	// marker.
	marker bool

	// onMsg, if set, is called by the reader for each message it
	// accepted, in order. Without it only kindData is accepted.
	onMsg func(k kind, seq uint64, size int) error
	// closeOnEOF closes the outbox once the far end's stream has ended.
	closeOnEOF bool
	recvd      progress

	// Writer state, used by the writer goroutine only.
	seq uint64
	buf []byte

	mu     sync.Mutex // guards queue and closed
	queue  []item
	closed bool
	wake   chan struct{} // a token when queue or closed changed
}

type closeWriter interface{ CloseWrite() error }

func newPeer(s *session, conn net.Conn, name string, dir schedule.Direction) *peer {
	_, cw := conn.(closeWriter)
	return &peer{
		s: s, conn: conn, name: name, dir: dir, client: dir == schedule.DirSent,
		marker: !cw, wake: make(chan struct{}, 1),
	}
}

// push queues a message and reports whether the outbox was still open.
func (p *peer) push(k kind, size int) bool {
	if size > maxMessageSize {
		panic(fmt.Sprintf("workload: message of %d bytes", size))
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	p.queue = append(p.queue, item{k, max(size, HeaderSize)})
	p.mu.Unlock()
	p.signal()
	return true
}

// closeOutbox lets the writer end its stream once the queue is empty.
func (p *peer) closeOutbox() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.signal()
}

func (p *peer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *peer) next() (it item, ok, done bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) > 0 {
		it = p.queue[0]
		p.queue = p.queue[1:]
		return it, true, false
	}
	return it, false, p.closed
}

// writeLoop writes the outbox's messages until it is closed and empty,
// then ends the stream. It runs as a goroutine.
func (p *peer) writeLoop() error {
	for {
		it, ok, done := p.next()
		switch {
		case ok:
			if err := p.write(it.kind, it.size); err != nil {
				return err
			}
		case done:
			if p.marker {
				return p.write(kindEnd, HeaderSize)
			}
			if err := p.conn.(closeWriter).CloseWrite(); err != nil {
				return fmt.Errorf("workload: %s: close write: %w", p.name, err)
			}
			return nil
		default:
			select {
			case <-p.wake:
			case <-p.s.ctx.Done():
				return nil
			}
		}
	}
}

// write sends one message in one Write call and records it (the end
// marker is not recorded).
func (p *peer) write(k kind, size int) error {
	s := p.s
	seq := p.seq
	p.seq++
	if cap(p.buf) < size {
		p.buf = make([]byte, size)
	}
	b := p.buf[:size]
	putHeader(b, k, size, seq)
	payloadSource(s.p.Seed, p.dir, k, seq).Read(b[HeaderSize:])

	ev := -1
	if k != kindEnd {
		s.mu.Lock()
		now := s.since()
		di := dirIndex(p.dir)
		s.msgs[di] = append(s.msgs[di], Message{Dir: p.dir, Size: size, Sent: now, Recv: -1})
		if p.client {
			ev = len(s.app)
			s.app = append(s.app, schedule.TraceEvent{Time: now, Dir: schedule.DirSent, Size: size})
		}
		s.mu.Unlock()
	}
	n, err := p.conn.Write(b)
	if err != nil {
		if ev >= 0 {
			s.mu.Lock()
			s.app[ev].Size = n
			s.mu.Unlock()
		}
		return fmt.Errorf("workload: %s: write: %w", p.name, err)
	}
	return nil
}

// recorder is the reader's view of its conn: it timestamps each read and,
// at the client, puts it in the App trace.
type recorder struct {
	p    *peer
	last time.Duration // when the latest read returned
}

func (r *recorder) Read(b []byte) (int, error) {
	n, err := r.p.conn.Read(b)
	if n > 0 {
		s := r.p.s
		s.mu.Lock()
		r.last = s.since()
		if r.p.client {
			s.app = append(s.app, schedule.TraceEvent{Time: r.last, Dir: schedule.DirReceived, Size: n})
		}
		s.mu.Unlock()
	}
	return n, err
}

// readLoop reads and checks the far end's messages until its stream
// ends. It runs as a goroutine.
func (p *peer) readLoop() error {
	s, far := p.s, p.far
	rec := &recorder{p: p}
	br := bufio.NewReaderSize(rec, readBufSize)
	var hdr [HeaderSize]byte
	got := make([]byte, 32<<10)
	want := make([]byte, len(got))
	for seq := uint64(0); ; seq++ {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err == io.EOF && !far.marker {
				break
			}
			return p.readErr(err, seq)
		}
		w := binary.BigEndian.Uint32(hdr[0:4])
		k, size := kind(w>>24), int(w&maxMessageSize)
		if got := binary.BigEndian.Uint64(hdr[4:12]); got != seq {
			return fmt.Errorf("%w: %s: message %d arrived where %d was due", ErrIntegrity, p.name, got, seq)
		}
		if k >= numKinds || size < HeaderSize || (k == kindEnd && (size != HeaderSize || !far.marker)) {
			return fmt.Errorf("%w: %s: message %d has kind %d, size %d", ErrIntegrity, p.name, seq, k, size)
		}
		if k == kindEnd {
			if p.client {
				s.mu.Lock()
				s.trimReceivedLocked(HeaderSize)
				s.mu.Unlock()
			}
			break
		}
		src := payloadSource(s.p.Seed, far.dir, k, seq)
		for left := size - HeaderSize; left > 0; {
			n := min(left, len(got))
			if _, err := io.ReadFull(br, got[:n]); err != nil {
				return p.readErr(err, seq)
			}
			src.Read(want[:n])
			if !bytes.Equal(got[:n], want[:n]) {
				return fmt.Errorf("%w: %s: message %d: payload differs", ErrIntegrity, p.name, seq)
			}
			left -= n
		}
		if err := s.delivered(dirIndex(far.dir), seq, size, rec.last); err != nil {
			return err
		}
		p.recvd.add()
		switch {
		case p.onMsg != nil:
			if err := p.onMsg(k, seq, size); err != nil {
				return err
			}
		case k != kindData:
			return fmt.Errorf("%w: %s: message %d has kind %d", ErrIntegrity, p.name, seq, k)
		}
	}
	if p.closeOnEOF {
		p.closeOutbox()
	}
	return nil
}

func (p *peer) readErr(err error, seq uint64) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		what := "inside message"
		if p.far.marker {
			what = "before the end marker, at message"
		}
		return fmt.Errorf("%w: %s: stream ended %s %d", ErrIntegrity, p.name, what, seq)
	}
	return fmt.Errorf("workload: %s: read: %w", p.name, err)
}

// Package memconn is an in-memory, buffered net.Conn pair for tests: like
// net.Pipe, but each direction holds up to a set number of bytes, as a TCP
// socket's buffers do, so two ends may both write before they read. It
// blocks only on sync.Cond, so it works inside a testing/synctest bubble,
// and it supports deadlines.
package memconn

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Pipe returns the two ends of a connection whose directions buffer up to
// size bytes each.
func Pipe(size int) (net.Conn, net.Conn) {
	ab, ba := newHalf(size), newHalf(size)
	return &end{r: ba, w: ab, name: "a"}, &end{r: ab, w: ba, name: "b"}
}

// half is one direction.
type half struct {
	mu       sync.Mutex
	cond     *sync.Cond
	buf      []byte
	size     int
	wclosed  bool // the writer closed: reads see EOF after the data
	rclosed  bool // the reader closed: writes fail
	rdl, wdl time.Time
	rtimer   *time.Timer
	wtimer   *time.Timer
}

func newHalf(size int) *half {
	h := &half{size: size}
	h.cond = sync.NewCond(&h.mu)
	return h
}

func (h *half) read(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.buf) == 0 {
		switch {
		case h.rclosed:
			return 0, net.ErrClosed
		case h.wclosed:
			return 0, io.EOF
		case !h.rdl.IsZero() && !time.Now().Before(h.rdl):
			return 0, os.ErrDeadlineExceeded
		}
		h.cond.Wait()
	}
	n := copy(p, h.buf)
	h.buf = h.buf[n:]
	if len(h.buf) == 0 {
		h.buf = nil
	}
	h.cond.Broadcast()
	return n, nil
}

func (h *half) write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for n < len(p) {
		switch {
		case h.wclosed:
			return n, net.ErrClosed
		case h.rclosed:
			return n, io.ErrClosedPipe
		case !h.wdl.IsZero() && !time.Now().Before(h.wdl):
			return n, os.ErrDeadlineExceeded
		}
		if room := h.size - len(h.buf); room > 0 {
			k := min(room, len(p)-n)
			h.buf = append(h.buf, p[n:n+k]...)
			n += k
			h.cond.Broadcast()
			continue
		}
		h.cond.Wait()
	}
	return n, nil
}

func (h *half) setDeadline(t time.Time, read bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	timer := &h.wtimer
	if read {
		h.rdl = t
		timer = &h.rtimer
	} else {
		h.wdl = t
	}
	if *timer != nil {
		(*timer).Stop()
		*timer = nil
	}
	if !t.IsZero() {
		*timer = time.AfterFunc(time.Until(t), func() {
			h.mu.Lock()
			h.cond.Broadcast()
			h.mu.Unlock()
		})
	}
	h.cond.Broadcast()
}

func (h *half) closeRead() {
	h.mu.Lock()
	h.rclosed = true
	h.cond.Broadcast()
	h.mu.Unlock()
}

func (h *half) closeWrite() {
	h.mu.Lock()
	h.wclosed = true
	h.cond.Broadcast()
	h.mu.Unlock()
}

type end struct {
	r, w *half
	name string
	once sync.Once
}

type addr string

func (a addr) Network() string { return "memconn" }
func (a addr) String() string  { return string(a) }

func (e *end) Read(p []byte) (int, error)  { return e.r.read(p) }
func (e *end) Write(p []byte) (int, error) { return e.w.write(p) }

// Close closes both directions of this end; the peer reads EOF after the
// data already written.
func (e *end) Close() error {
	e.once.Do(func() {
		e.w.closeWrite()
		e.r.closeRead()
		for _, h := range []*half{e.r, e.w} {
			h.mu.Lock()
			for _, t := range []*time.Timer{h.rtimer, h.wtimer} {
				if t != nil {
					t.Stop()
				}
			}
			h.mu.Unlock()
		}
	})
	return nil
}

// CloseWrite closes the sending direction only.
func (e *end) CloseWrite() error { e.w.closeWrite(); return nil }

func (e *end) LocalAddr() net.Addr  { return addr(e.name) }
func (e *end) RemoteAddr() net.Addr { return addr("peer-of-" + e.name) }
func (e *end) SetDeadline(t time.Time) error {
	e.r.setDeadline(t, true)
	e.w.setDeadline(t, false)
	return nil
}
func (e *end) SetReadDeadline(t time.Time) error  { e.r.setDeadline(t, true); return nil }
func (e *end) SetWriteDeadline(t time.Time) error { e.w.setDeadline(t, false); return nil }

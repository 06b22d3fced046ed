package v2core

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// reader is the receive loop of a BIP324 connection over a byte stream:
// it reads the socket into one buffer, feeds the handshake, then decodes
// packets, keeping what it read ahead for the next step. [Conn] and
// shaped connections are both built on it.
//
// Not safe for concurrent use.
type reader struct {
	src        io.Reader
	buf        []byte
	max        int // the most buf grows to
	start, end int
	dec        *Decoder
	err        error
	full       bool // the last read filled buf
	// OnRead, if set, is told how many bytes each socket read brought.
	OnRead func(n int)
}

// initialReadBuffer is where a Reader's buffer starts: a handshake and a
// quiet connection need little.
const initialReadBuffer = 16 << 10

// newReader returns a reader that reads src in chunks of up to size bytes.
// Its buffer starts smaller and doubles, up to size, each time a read
// fills it: bulk transfers get large reads, idle connections hold little.
func newReader(src io.Reader, size int) *reader {
	return &reader{src: src, buf: make([]byte, min(size, initialReadBuffer)), max: size}
}

// fill reads from src into the empty buffer. A read timeout is returned
// but not kept: the caller may retry.
func (r *reader) fill() error {
	if r.full && len(r.buf) < r.max {
		r.buf = make([]byte, min(r.max, 2*len(r.buf)))
	}
	n, err := r.src.Read(r.buf)
	r.full = n == len(r.buf)
	r.start, r.end = 0, n
	if n > 0 {
		if r.OnRead != nil {
			r.OnRead(n)
		}
		return nil
	}
	if err == nil {
		return nil
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return err
	}
	r.err = err
	return err
}

// Handshake runs hs to the end: it hands each batch of hs's output to
// write (first is true for the first batch, our key and garbage), and
// feeds hs what src brings. Bytes after the peer's version packet stay in
// the Reader for Next. On a *V1Error, its Rest holds the bytes read after
// the prefix. An EOF before the end is io.ErrUnexpectedEOF.
func (r *reader) Handshake(hs *Handshake, write func(out []byte, first bool) error) error {
	var out []byte
	first := true
	for {
		if hs.Pending() > 0 {
			out = hs.Output(out[:0])
			if err := write(out, first); err != nil {
				return err
			}
			first = false
		}
		if hs.Done() {
			r.dec = hs.Session().Decoder()
			return nil
		}
		if r.start == r.end {
			if err := r.fill(); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		n, err := hs.Feed(r.buf[r.start:r.end])
		r.start += n
		if err != nil {
			var v1 *V1Error
			if errors.As(err, &v1) {
				v1.Rest = append([]byte(nil), r.buf[r.start:r.end]...)
			}
			return err
		}
	}
}

// Next returns the next packet, decoys included; its contents are valid
// until the next call. A read timeout may be retried; every other error
// is final. The end of src at a packet boundary is io.EOF, within a
// packet io.ErrUnexpectedEOF. Call it only after Handshake succeeded.
func (r *reader) Next() (*Packet, error) {
	for {
		if r.err != nil {
			return nil, r.err
		}
		if r.start < r.end {
			pkt, n, err := r.dec.Decode(r.buf[r.start:r.end])
			r.start += n
			if err != nil {
				r.err = err
				return nil, err
			}
			if pkt != nil {
				return pkt, nil
			}
			continue
		}
		if r.dec.bodyLen == 0 {
			// The last packet's contents are spent and the next one has
			// not begun: a quiet connection gives a large buffer back.
			r.dec.shrink()
		}
		if err := r.fill(); err != nil {
			if err == io.EOF && r.dec.Buffered() > 0 {
				err = io.ErrUnexpectedEOF
				r.err = err
			}
			return nil, err
		}
	}
}

// isProtocolError reports whether err came from the peer's bytes (a bad
// tag, a length over the limit, a handshake rule) rather than from the
// socket: the connection should then be closed.
func isProtocolError(err error) bool {
	var tooLong *ContentTooLongError
	return errors.Is(err, ErrAuth) || errors.As(err, &tooLong) || errors.Is(err, ErrNoTerminator) ||
		errors.Is(err, ErrV1WrongNetwork) || errors.Is(err, ErrBadKey)
}

// interruptible runs f, which does I/O on conn, so that the end of ctx
// interrupts it: the conn's deadline is then set in the past. It returns
// f's error, or ctx's cause when ctx ended while f ran, even if f then
// succeeded, since conn's deadline is spent.
func interruptible(ctx context.Context, conn net.Conn, f func() error) error {
	if ctx.Done() == nil {
		return f()
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	err := f()
	if !stop() || (err != nil && ctx.Err() != nil) {
		return context.Cause(ctx)
	}
	return err
}

// handshakeOnce runs a connection's handshake once: the first caller of
// Do runs it, callers meanwhile wait, and every later caller gets the
// same result. The zero value is ready. Safe for concurrent use.
type handshakeOnce struct {
	mu   sync.Mutex
	done atomic.Bool
	err  error
}

// Do runs f unless a handshake already ran, and returns its result.
func (o *handshakeOnce) Do(f func() error) error {
	if o.done.Load() {
		return o.err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done.Load() {
		return o.err
	}
	o.err = f()
	o.done.Store(true)
	return o.err
}

// Succeeded reports whether the handshake ran and succeeded.
func (o *handshakeOnce) Succeeded() bool { return o.done.Load() && o.err == nil }

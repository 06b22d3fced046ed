// Package copyloop joins two connections: it copies both ways, passes
// half-closes and resets on, and counts the bytes delivered each way. It
// is the one copy loop of bip324-pt: ptspec joins SOCKS, forwarded and
// ExtORPort connections with it, internal/bridge hands a refused
// connection to its fallback with it, and any other byte-for-byte relay
// should use it too.
//
// It imports only the standard library.
package copyloop

import (
	"errors"
	"io"
	"net"
	"sync"
)

// closeWriter is a connection whose sending direction can be closed alone
// (*net.TCPConn, *net.UnixConn, and transports that support it).
type closeWriter interface {
	CloseWrite() error
}

// unsentError is a Close error that counts bytes a connection accepted
// from Write but could not deliver (shaper.UnsentError).
type unsentError interface {
	error
	Unsent() int64
}

// srcReader records whether an error came from reading its source, as
// opposed to writing the destination.
type srcReader struct {
	r   io.Reader
	err error
}

func (s *srcReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// Join copies a to b and b to a until both directions have ended, then
// closes a and b, and returns the bytes delivered each way.
//
// It passes half-closes on: when one side's reads end cleanly (io.EOF), it
// closes the other side's sending direction with CloseWrite and carries
// on in the other direction. Where the destination has no CloseWrite,
// the end of one direction ends both, as the peer cannot otherwise learn of
// it. A read that fails (a reset, or a tunnel cut short) is passed on as
// a reset where the destination can send one (SetLinger(0) on TCP), so
// the application at the far end learns that its stream was cut rather
// than ended.
//
// The counts are bytes delivered, not bytes accepted: a destination whose
// Close reports bytes it could not deliver (an error with an Unsent()
// int64 method, such as shaper's) has them taken off, and that error is
// returned.
//
// err is the first error of either direction, other than io.EOF and the
// errors that follow from Join's own closing of a and b, or else the
// first error of closing that reports undelivered bytes. An error ends
// both directions at once.
func Join(a, b net.Conn) (aToB, bToA int64, err error) {
	var (
		mu         sync.Mutex
		first      error
		closing    bool // after this, errors are our own doing
		errA, errB error
	)
	closeBoth := func() {
		mu.Lock()
		if closing {
			mu.Unlock()
			return
		}
		closing = true
		mu.Unlock()
		ea := a.Close()
		eb := b.Close()
		mu.Lock()
		errA, errB = ea, eb
		mu.Unlock()
	}
	fail := func(err error, dst net.Conn, readErr bool) {
		mu.Lock()
		if first == nil && !closing {
			first = err
		}
		mu.Unlock()
		if l, ok := dst.(interface{ SetLinger(int) error }); ok && readErr {
			l.SetLinger(0)
		}
		closeBoth()
	}
	half := func(dst, src net.Conn) int64 {
		sr := &srcReader{r: src}
		n, err := io.Copy(dst, sr)
		if err != nil {
			fail(err, dst, sr.err != nil)
			return n
		}
		cw, ok := dst.(closeWriter)
		if !ok {
			closeBoth()
			return n
		}
		if err := cw.CloseWrite(); err != nil {
			fail(err, dst, false)
		}
		return n
	}

	done := make(chan int64, 1)
	go func() { done <- half(b, a) }()
	bToA = half(a, b)
	aToB = <-done
	closeBoth()
	mu.Lock()
	defer mu.Unlock()
	var ue unsentError
	if errors.As(errB, &ue) {
		aToB = max(aToB-ue.Unsent(), 0)
		if first == nil {
			first = errB
		}
	}
	if errors.As(errA, &ue) {
		bToA = max(bToA-ue.Unsent(), 0)
		if first == nil {
			first = errA
		}
	}
	return aToB, bToA, first
}

// Unsent returns the bytes err reports as accepted but not delivered
// (see Join), or 0.
func Unsent(err error) int64 {
	var ue unsentError
	if errors.As(err, &ue) {
		return ue.Unsent()
	}
	return 0
}

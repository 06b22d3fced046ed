package ptspec

import (
	"io"
	"net"
	"sync"
)

// closeWriter is a connection whose sending direction can be closed alone
// (*net.TCPConn, *net.UnixConn, and transports that support it).
type closeWriter interface {
	CloseWrite() error
}

// CopyLoop copies a to b and b to a until both directions have ended, then
// closes a and b, and returns the bytes copied each way.
//
// It passes half-closes on: when one side's reads end cleanly (io.EOF), it
// closes the other side's sending direction with CloseWrite and carries
// on in the other direction. Where the destination has no CloseWrite,
// the end of one direction ends both, as the peer cannot otherwise learn of
// it.
//
// err is the first error of either direction, other than io.EOF and the
// errors that follow from CopyLoop's own closing of a and b. An error ends
// both directions at once.
func CopyLoop(a, b net.Conn) (aToB, bToA int64, err error) {
	var (
		mu      sync.Mutex
		first   error
		closing bool // after this, errors are our own doing
	)
	closeBoth := func() {
		mu.Lock()
		if closing {
			mu.Unlock()
			return
		}
		closing = true
		mu.Unlock()
		a.Close()
		b.Close()
	}
	fail := func(err error) {
		mu.Lock()
		if first == nil && !closing {
			first = err
		}
		mu.Unlock()
		closeBoth()
	}
	half := func(dst, src net.Conn) int64 {
		n, err := io.Copy(dst, src)
		if err != nil {
			fail(err)
			return n
		}
		cw, ok := dst.(closeWriter)
		if !ok {
			closeBoth()
			return n
		}
		if err := cw.CloseWrite(); err != nil {
			fail(err)
		}
		return n
	}

	done := make(chan int64, 1)
	go func() { done <- half(b, a) }()
	bToA = half(a, b)
	aToB = <-done
	closeBoth()
	return aToB, bToA, first
}

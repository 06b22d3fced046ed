package memconn

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func TestPipe(t *testing.T) {
	a, b := Pipe(8)
	// Both ends may write before reading, up to the buffer.
	if n, err := a.Write([]byte("12345678")); n != 8 || err != nil {
		t.Fatalf("write: %d %v", n, err)
	}
	if n, err := b.Write([]byte("abc")); n != 3 || err != nil {
		t.Fatalf("write: %d %v", n, err)
	}
	buf := make([]byte, 16)
	if n, _ := b.Read(buf); string(buf[:n]) != "12345678" {
		t.Fatalf("read %q", buf[:n])
	}
	// A full buffer blocks until the write deadline.
	a.Write(make([]byte, 8))
	a.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := a.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write to a full buffer: %v", err)
	}
	// A read deadline.
	a.Read(buf)
	a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := a.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with nothing to read: %v", err)
	}
	// Close: the peer reads what was written, then EOF; the closed end
	// reports net.ErrClosed.
	b.Read(buf)
	a.SetWriteDeadline(time.Time{})
	a.Write([]byte("bye"))
	a.Close()
	if n, _ := b.Read(buf); string(buf[:n]) != "bye" {
		t.Fatalf("read after close %q", buf[:n])
	}
	if _, err := b.Read(buf); err != io.EOF {
		t.Fatalf("read past close: %v", err)
	}
	if _, err := a.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on the closed end: %v", err)
	}
	if _, err := b.Write([]byte("x")); err == nil {
		t.Fatal("write to a closed peer succeeded")
	}
}

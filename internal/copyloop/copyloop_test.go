package copyloop

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/internal/testutil"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// checkLeaks fails t if goroutines of ours outlive it; call it first.
func checkLeaks(t *testing.T) {
	t.Helper()
	testutil.VerifyNoLeaks(t)
}

// tcpPair returns the two ends of a TCP connection on loopback, closed
// when the test ends.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	a, b := testutil.TCPPair(t)
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

type copyResult struct {
	aToB, bToA int64
	err        error
}

func copyLoopAsync(a, b net.Conn) <-chan copyResult {
	ch := make(chan copyResult, 1)
	go func() {
		aToB, bToA, err := Join(a, b)
		ch <- copyResult{aToB, bToA, err}
	}()
	return ch
}

func waitCopy(t *testing.T, ch <-chan copyResult) copyResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(testTimeout):
		t.Fatal("Join did not return")
		return copyResult{}
	}
}

// TestCopyLoop_HalfClose: an EOF one way is passed on with CloseWrite,
// and the other way carries on until its own EOF.
func TestCopyLoop_HalfClose(t *testing.T) {
	checkLeaks(t)
	// client ─ a … b ─ server
	client, a := tcpPair(t)
	b, server := tcpPair(t)
	for _, c := range []net.Conn{client, server} {
		c.SetDeadline(time.Now().Add(testTimeout))
	}
	ch := copyLoopAsync(a, b)

	io.WriteString(client, "request")
	client.CloseWrite()
	got, err := io.ReadAll(server)
	if err != nil || string(got) != "request" {
		t.Fatalf("server read %q, %v; want \"request\" then EOF", got, err)
	}
	// The server still sends after the client's half-close.
	io.WriteString(server, "long answer")
	server.Close()
	got, err = io.ReadAll(client)
	if err != nil || string(got) != "long answer" {
		t.Fatalf("client read %q, %v; want \"long answer\" then EOF", got, err)
	}

	r := waitCopy(t, ch)
	if r.err != nil || r.aToB != 7 || r.bToA != 11 {
		t.Errorf("Join = %d, %d, %v; want 7, 11, nil", r.aToB, r.bToA, r.err)
	}
	for _, c := range []net.Conn{a, b} {
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("write after Join: %v; want net.ErrClosed", err)
		}
	}
}

// TestCopyLoop_NoCloseWrite: without CloseWrite on the destination, the
// end of one direction ends both.
func TestCopyLoop_NoCloseWrite(t *testing.T) {
	checkLeaks(t)
	client, a := net.Pipe()
	b, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	ch := copyLoopAsync(a, b)

	go func() {
		io.WriteString(client, "hi")
		client.Close()
	}()
	server.SetDeadline(time.Now().Add(testTimeout))
	got, err := io.ReadAll(server)
	if err != nil || string(got) != "hi" {
		t.Fatalf("server read %q, %v; want \"hi\" then EOF", got, err)
	}
	r := waitCopy(t, ch)
	if r.err != nil || r.aToB != 2 || r.bToA != 0 {
		t.Errorf("Join = %d, %d, %v; want 2, 0, nil", r.aToB, r.bToA, r.err)
	}
}

// errConn is a net.Conn whose reads fail with err once the data is read.
type errConn struct {
	net.Conn
	data []byte
	err  error
}

func (c *errConn) Read(p []byte) (int, error) {
	if len(c.data) > 0 {
		n := copy(p, c.data)
		c.data = c.data[n:]
		return n, nil
	}
	return 0, c.err
}

// TestCopyLoop_Error: a read error ends both directions, is passed on as
// a reset, and is returned, not the errors that follow from closing.
func TestCopyLoop_Error(t *testing.T) {
	checkLeaks(t)
	boom := errors.New("boom")
	_, a := tcpPair(t)
	b, server := tcpPair(t)
	server.SetDeadline(time.Now().Add(testTimeout))
	bad := &errConn{Conn: a, data: []byte("abc"), err: boom}
	ch := copyLoopAsync(bad, b)

	// The failed read reaches the far end as a reset, not an EOF: its
	// application learns that the stream was cut.
	got, err := io.ReadAll(server)
	if !errors.Is(err, syscall.ECONNRESET) || string(got) != "abc" {
		t.Fatalf("server read %q, %v; want \"abc\" then a reset", got, err)
	}
	r := waitCopy(t, ch)
	if !errors.Is(r.err, boom) || r.aToB != 3 {
		t.Errorf("Join = %d, %d, %v; want 3, 0, boom", r.aToB, r.bToA, r.err)
	}
	// b→a was blocked in a read; the close ended it without an error of
	// its own.
	if _, err := a.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("a not closed: %v", err)
	}
}

// TestCopyLoop_CountsDelivered: Join's counts are bytes delivered, not
// bytes accepted: a destination that reports undelivered bytes on Close
// has them taken off, and its error is returned. (ptspec's
// TestJoin_LogsUndelivered checks that its join logs them.)
func TestCopyLoop_CountsDelivered(t *testing.T) {
	checkLeaks(t)
	client2, a2 := tcpPair(t)
	b2, server2 := tcpPair(t)
	defer client2.Close()
	ch := copyLoopAsync(a2, &testutil.LossyConn{Conn: b2, K: 5})
	io.WriteString(client2, "0123456789")
	client2.Close()
	io.Copy(io.Discard, server2)
	server2.Close()
	res := waitCopy(t, ch)
	if res.aToB != 5 || Unsent(res.err) != 5 {
		t.Errorf("Join = %d, %d, %v; want 5 delivered and 5 unsent", res.aToB, res.bToA, res.err)
	}
}

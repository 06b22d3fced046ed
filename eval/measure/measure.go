// Package measure measures a tunnel: bulk throughput and CPU per MiB each
// way, and connections (handshakes) per second. It is how BENCHMARKS.md
// compares bip324-pt with obfs4proxy:
//
//	BIP324PT_MEASURE=1 go test ./eval/measure -run Measure -v
//
// A [Tunnel] carries connections to a [Sink], a byte-checking server
// that stands in for tor's ORPort. The tests here run each transport's
// client and server as real processes in managed mode, without tor
// (internal/tortest's StartPair, with a Sink as the ORPort); anything else
// that can dial a Sink and report its CPU time can be measured the same
// way.
//
// measure imports only the standard library and never the testing
// package: it fails a measurement by returning an error.
package measure

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Limits of the measurements.
const (
	// idleTimeout fails a transfer that makes no progress for this long
	// (obfs4 with iat-mode=1 still moves a chunk every few milliseconds).
	idleTimeout = 30 * time.Second
	// chunkSize is the size of each write and read buffer, like tor's
	// largest reads.
	chunkSize = 64 << 10
	// patternSize is the size of the random block the sink and the
	// measurer repeat; large enough that no transport can compress it.
	patternSize = 4 << 20
	// dialTimeout bounds one dial through the tunnel (with the
	// transport's handshake).
	dialTimeout = 30 * time.Second
)

// Sink commands: a 9-byte header, the command and a big-endian uint64 n.
const (
	// sinkUpload: the sink reads n pattern bytes and answers one status
	// byte (0: all matched) and the 8-byte count it read.
	sinkUpload = 'U'
	// sinkDownload: the sink writes n pattern bytes, then waits for EOF.
	sinkDownload = 'D'
	// sinkEcho: the sink echoes n bytes back.
	sinkEcho = 'E'
)

// Tunnel is what is measured: a transport's client and server, with the
// server forwarding to a [Sink].
type Tunnel interface {
	// Dial opens a connection through the tunnel to the sink. It returns
	// once the transport's handshake is done.
	Dial(ctx context.Context) (net.Conn, error)
	// CPU returns the CPU time the client and the server have used so
	// far.
	CPU() (client, server time.Duration, err error)
}

// Throughput is one bulk transfer through a [Tunnel].
type Throughput struct {
	// Bytes moved, each one checked.
	Bytes int64
	// Elapsed is the time from the request to the last byte (for an
	// upload, to the sink's answer that it has every byte).
	Elapsed time.Duration
	// ClientCPU and ServerCPU are the CPU time each end used during the
	// transfer.
	ClientCPU, ServerCPU time.Duration
}

// MiBps returns the transfer's rate in MiB/s.
func (r Throughput) MiBps() float64 {
	return float64(r.Bytes) / (1 << 20) / r.Elapsed.Seconds()
}

// CPUPerMiB returns the CPU time both ends together spent per MiB moved,
// in milliseconds.
func (r Throughput) CPUPerMiB() float64 {
	return float64((r.ClientCPU + r.ServerCPU).Microseconds()) / 1e3 / (float64(r.Bytes) / (1 << 20))
}

// String formats the result on one line.
func (r Throughput) String() string {
	return fmt.Sprintf("%d MiB in %v: %.1f MiB/s, CPU %.2f ms/MiB (client %v, server %v)",
		r.Bytes>>20, r.Elapsed.Round(time.Millisecond), r.MiBps(), r.CPUPerMiB(),
		r.ClientCPU, r.ServerCPU)
}

// TunnelResult is what [Bulk] measured: one transfer each way.
type TunnelResult struct {
	// Upload goes client → server (what a Tor client sends).
	Upload Throughput
	// Download goes server → client (what a Tor client fetches).
	Download Throughput
}

// Bulk measures t's throughput and CPU cost: it pushes size bytes of
// random data through t each way on one connection each, checks every
// byte, and reports both.
func Bulk(t Tunnel, size int64) (TunnelResult, error) {
	var res TunnelResult
	var err error
	if res.Upload, err = Upload(t, size); err != nil {
		return res, err
	}
	res.Download, err = Download(t, size)
	return res, err
}

// Upload sends size bytes through t and returns the measurement once the
// sink confirmed it received all of them, unchanged. The transport's
// handshake is done before the clock starts.
func Upload(t Tunnel, size int64) (Throughput, error) {
	return transfer(t, sinkUpload, size)
}

// Download fetches size bytes from the sink through t, checking each one.
// The transport's handshake is done before the clock starts.
func Download(t Tunnel, size int64) (Throughput, error) {
	return transfer(t, sinkDownload, size)
}

// transfer runs one upload or download.
func transfer(t Tunnel, cmd byte, size int64) (Throughput, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	c, err := t.Dial(ctx)
	cancel()
	if err != nil {
		return Throughput{}, err
	}
	defer c.Close()
	ic := idleConn{c}
	r := Throughput{Bytes: size}
	c0, s0, err := t.CPU()
	if err != nil {
		return r, err
	}
	start := time.Now()
	if _, err := ic.Write(sinkHeader(cmd, uint64(size))); err != nil {
		return r, err
	}
	switch cmd {
	case sinkUpload:
		if err := writePattern(ic, size); err != nil {
			return r, fmt.Errorf("measure: upload: %w", err)
		}
		var ans [9]byte
		if _, err := io.ReadFull(ic, ans[:]); err != nil {
			return r, fmt.Errorf("measure: upload: sink's answer: %w", err)
		}
		if got := binary.BigEndian.Uint64(ans[1:]); ans[0] != 0 || got != uint64(size) {
			return r, fmt.Errorf("measure: upload: the sink got %d bytes (want %d), content ok: %v", got, size, ans[0] == 0)
		}
	case sinkDownload:
		n, err := checkPattern(ic, size)
		if err != nil {
			return r, fmt.Errorf("measure: download: after %d of %d bytes: %w", n, size, err)
		}
	}
	r.Elapsed = time.Since(start)
	c1, s1, err := t.CPU()
	r.ClientCPU, r.ServerCPU = c1-c0, s1-s0
	return r, err
}

// HandshakeResult is what [Handshakes] measured.
type HandshakeResult struct {
	// N connections were made, Parallel at a time.
	N, Parallel int
	// Elapsed is the wall time for all N.
	Elapsed time.Duration
	// Latency is the mean time of one connection: the dial (for a
	// managed transport, the SOCKS request), the transport's handshake,
	// the server's connection to the sink, and a one-byte echo back
	// through all of it.
	Latency time.Duration
	// ClientCPU and ServerCPU are the CPU time each end used for all N.
	ClientCPU, ServerCPU time.Duration
}

// PerSecond returns connections per second of wall time.
func (r HandshakeResult) PerSecond() float64 { return float64(r.N) / r.Elapsed.Seconds() }

// CPUPerHandshake returns the CPU time both ends spent per connection.
func (r HandshakeResult) CPUPerHandshake() time.Duration {
	return (r.ClientCPU + r.ServerCPU) / time.Duration(r.N)
}

// PerCore returns connections per CPU-second, both ends counted: how many
// handshakes one core could carry for client and server together.
func (r HandshakeResult) PerCore() float64 {
	return float64(r.N) / (r.ClientCPU + r.ServerCPU).Seconds()
}

// String formats the result on one line.
func (r HandshakeResult) String() string {
	return fmt.Sprintf("%d handshakes, %d at a time, in %v: %.0f/s, latency %v, CPU %v each (client %v, server %v in all) = %.0f per core-second",
		r.N, r.Parallel, r.Elapsed.Round(time.Millisecond), r.PerSecond(), r.Latency.Round(time.Microsecond),
		r.CPUPerHandshake().Round(time.Microsecond), r.ClientCPU, r.ServerCPU, r.PerCore())
}

// Handshakes measures how fast t sets up connections: it makes n
// connections through t, parallel at a time (1 if parallel < 1), each
// with a one-byte echo from the sink so the server side is done too. It
// stops at the first connection that fails and returns its error.
func Handshakes(t Tunnel, n, parallel int) (HandshakeResult, error) {
	parallel = max(parallel, 1)
	res := HandshakeResult{N: n, Parallel: parallel}
	c0, s0, err := t.CPU()
	if err != nil {
		return res, err
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		total    time.Duration
		next     = make(chan int)
	)
	start := time.Now()
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				err := echoOnce(t, byte(i))
				d := time.Since(t0)
				mu.Lock()
				total += d
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("measure: connection %d: %w", i, err)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	res.Elapsed = time.Since(start)
	if firstErr != nil {
		return res, firstErr
	}
	res.Latency = total / time.Duration(n)
	c1, s1, err := t.CPU()
	res.ClientCPU, res.ServerCPU = c1-c0, s1-s0
	return res, err
}

// echoOnce opens a connection, has the sink echo one byte, and closes it.
func echoOnce(t Tunnel, b byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	c, err := t.Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(dialTimeout))
	msg := append(sinkHeader(sinkEcho, 1), b)
	if _, err := c.Write(msg); err != nil {
		return err
	}
	var got [1]byte
	if _, err := io.ReadFull(c, got[:]); err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	if got[0] != b {
		return fmt.Errorf("echo: got %#x, want %#x", got[0], b)
	}
	return nil
}

// sinkHeader returns a sink command.
func sinkHeader(cmd byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{cmd}, n)
}

// pattern is the random block every transfer repeats. The sink and the
// measurer live in one process, so they share it.
var pattern = sync.OnceValue(func() []byte {
	b := make([]byte, patternSize)
	rand.Read(b)
	return b
})

// writePattern writes the first n bytes of the repeated pattern to w.
func writePattern(w io.Writer, n int64) error {
	pat := pattern()
	for off := int64(0); off < n; {
		i := int(off % patternSize)
		m := int(min(int64(chunkSize), n-off, int64(patternSize-i)))
		if _, err := w.Write(pat[i : i+m]); err != nil {
			return err
		}
		off += int64(m)
	}
	return nil
}

// checkPattern reads n bytes from r and checks them against the repeated
// pattern. It returns how many bytes matched.
func checkPattern(r io.Reader, n int64) (int64, error) {
	pat := pattern()
	buf := make([]byte, chunkSize)
	var off int64
	for off < n {
		m, err := r.Read(buf[:min(int64(len(buf)), n-off)])
		for j := 0; j < m; {
			i := int((off + int64(j)) % patternSize)
			k := min(m-j, patternSize-i)
			if !bytes.Equal(buf[j:j+k], pat[i:i+k]) {
				return off, errors.New("measure: the bytes differ from what was sent")
			}
			j += k
		}
		off += int64(m)
		if err != nil && off < n {
			return off, err
		}
	}
	return off, nil
}

// idleConn refreshes the connection's deadline before each Read and Write,
// so a transfer fails after idleTimeout without progress however long it
// is.
type idleConn struct{ net.Conn }

func (c idleConn) Read(b []byte) (int, error) {
	c.Conn.SetDeadline(time.Now().Add(idleTimeout))
	return c.Conn.Read(b)
}

func (c idleConn) Write(b []byte) (int, error) {
	c.Conn.SetDeadline(time.Now().Add(idleTimeout))
	return c.Conn.Write(b)
}

// Sink stands in for tor's ORPort behind a server transport: it serves
// the measurement's commands (upload, download, echo) on 127.0.0.1,
// checking every byte against the pattern the measurer sends. It is safe
// for concurrent use.
type Sink struct {
	l      net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

// StartSink starts a sink on a free port of 127.0.0.1. Close stops it.
func StartSink() (*Sink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("measure: sink: %w", err)
	}
	s := &Sink{l: l, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr returns the sink's host:port, the ORPort a server transport
// forwards to.
func (s *Sink) Addr() string { return s.l.Addr().String() }

// Close stops the sink: it closes the listener and every connection, and
// waits until every goroutine of the sink has returned.
func (s *Sink) Close() error {
	err := s.l.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// serve accepts connections until the listener closes. It runs as a
// goroutine.
func (s *Sink) serve() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(idleConn{c})
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// handle serves one command on c.
func (s *Sink) handle(c idleConn) {
	var h [9]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return
	}
	n := int64(binary.BigEndian.Uint64(h[1:]))
	switch h[0] {
	case sinkUpload:
		got, err := checkPattern(c, n)
		ans := [9]byte{}
		if err != nil {
			ans[0] = 1
		}
		binary.BigEndian.PutUint64(ans[1:], uint64(got))
		c.Write(ans[:])
	case sinkDownload:
		if writePattern(c, n) == nil {
			io.Copy(io.Discard, c) // until the client closes
		}
	case sinkEcho:
		io.CopyN(c, c, n)
	}
}

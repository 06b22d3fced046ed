package workload

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/internal/memconn"
	"github.com/bip324pt/bip324-pt/schedule"
)

// pipeSize is the buffer of each direction of the test conns, as a TCP
// socket's.
const pipeSize = 64 << 10

// memPipe returns a conn pair with CloseWrite that works in a synctest
// bubble; the test closes it.
func memPipe(t testing.TB) (client, server net.Conn) {
	client, server = memconn.Pipe(pipeSize)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// netPipe returns a net.Pipe pair: no buffering and no CloseWrite, so
// the end marker.
func netPipe(t testing.TB) (client, server net.Conn) {
	client, server = net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// relayed returns a pair whose bytes pass through a relay that delays
// each chunk by delay and applies mangle (if set) to the bytes going from
// client to server, standing in for a slow shaped tunnel. Its goroutines
// end when the test closes the conns.
func relayed(t testing.TB, delay time.Duration, mangle func(off int64, b []byte)) (client, server net.Conn) {
	client, ra := memconn.Pipe(pipeSize)
	rb, server := memconn.Pipe(pipeSize)
	var wg sync.WaitGroup
	wg.Go(func() { relay(ra, rb, delay, mangle) })
	wg.Go(func() { relay(rb, ra, delay, nil) })
	t.Cleanup(func() {
		for _, c := range []net.Conn{client, ra, rb, server} {
			c.Close()
		}
		wg.Wait()
	})
	return client, server
}

// relay copies src to dst, each chunk delay after it was read, and
// half-closes dst at src's end of stream.
func relay(src, dst net.Conn, delay time.Duration, mangle func(off int64, b []byte)) {
	type chunk struct {
		at time.Time
		b  []byte
	}
	ch := make(chan chunk, 64) // at most 2 MiB in flight
	var wg sync.WaitGroup
	wg.Go(func() {
		for c := range ch {
			time.Sleep(time.Until(c.at))
			if _, err := dst.Write(c.b); err != nil {
				for range ch {
				}
				return
			}
		}
		dst.(interface{ CloseWrite() error }).CloseWrite()
	})
	buf := make([]byte, 32<<10)
	var off int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			b := slices.Clone(buf[:n])
			if mangle != nil {
				mangle(off, b)
			}
			off += int64(n)
			ch <- chunk{time.Now().Add(delay), b}
		}
		if err != nil {
			break
		}
	}
	close(ch)
	wg.Wait()
}

// checkResult checks that a result adds up.
func checkResult(t *testing.T, res Result) {
	t.Helper()
	var msgBytes, appBytes [2]int64
	var msgSizes, appWrites [2][]int
	for i, m := range res.Messages {
		if m.Recv < m.Sent {
			t.Errorf("message %d: Recv %v before Sent %v", i, m.Recv, m.Sent)
		}
		if i > 0 && m.Sent < res.Messages[i-1].Sent {
			t.Errorf("message %d: Sent %v before the previous one's %v", i, m.Sent, res.Messages[i-1].Sent)
		}
		if m.Size < HeaderSize {
			t.Errorf("message %d: size %d", i, m.Size)
		}
		msgBytes[dirIndex(m.Dir)] += int64(m.Size)
		msgSizes[dirIndex(m.Dir)] = append(msgSizes[dirIndex(m.Dir)], m.Size)
	}
	for i, ev := range res.App {
		if i > 0 && ev.Time < res.App[i-1].Time {
			t.Errorf("App event %d at %v, before the previous one's %v", i, ev.Time, res.App[i-1].Time)
		}
		if ev.Size <= 0 {
			t.Errorf("App event %d has size %d", i, ev.Size)
		}
		appBytes[dirIndex(ev.Dir)] += int64(ev.Size)
		if ev.Dir == schedule.DirSent {
			appWrites[0] = append(appWrites[0], ev.Size)
		}
	}
	if msgBytes[0] != res.Up || msgBytes[1] != res.Down {
		t.Errorf("messages add up to %d up, %d down; Result says %d, %d", msgBytes[0], msgBytes[1], res.Up, res.Down)
	}
	if appBytes[0] != res.Up || appBytes[1] != res.Down {
		t.Errorf("App trace adds up to %d up, %d down; Result says %d, %d", appBytes[0], appBytes[1], res.Up, res.Down)
	}
	// Messages are sorted by Sent, stable, so each direction's are in
	// sending order, and the client's writes are its messages.
	if !slices.Equal(appWrites[0], msgSizes[0]) {
		t.Errorf("App writes %v differ from the client's messages %v", head(appWrites[0]), head(msgSizes[0]))
	}
}

func head(s []int) []int { return s[:min(len(s), 10)] }

// byDir returns the messages of one direction.
func byDir(res Result, d schedule.Direction) []Message {
	var out []Message
	for _, m := range res.Messages {
		if m.Dir == d {
			out = append(out, m)
		}
	}
	return out
}

// loadTraces parses the traces of testdata/traces that match pattern.
func loadTraces(t testing.TB, pattern string) [][]schedule.TraceEvent {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "traces", pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no traces match %s: %v", pattern, err)
	}
	var out [][]schedule.TraceEvent
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := schedule.ParseTrace(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, tr)
	}
	return out
}

// ev is a trace event for handmade traces.
func ev(ms int, dir schedule.Direction, size int) schedule.TraceEvent {
	return schedule.TraceEvent{Time: time.Duration(ms) * time.Millisecond, Dir: dir, Size: size}
}

package profiles_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bip324pt/bip324-pt/internal/bridge"
	"github.com/bip324pt/bip324-pt/profiles"
)

// sendAll writes n seeded bytes to c and returns their hash.
func sendAll(c net.Conn, n int, seed byte) ([32]byte, error) {
	b := make([]byte, n)
	mrand.NewChaCha8([32]byte{seed}).Read(b)
	_, err := c.Write(b)
	return sha256.Sum256(b), err
}

// recvAll reads c to io.EOF and returns the count and hash of what came.
func recvAll(c net.Conn) (int64, [32]byte, error) {
	h := sha256.New()
	n, err := io.Copy(h, c)
	return n, [32]byte(h.Sum(nil)), err
}

// TestClose_EveryByte: every built-in profile, in virtual time, moves
// payloads of 0 bytes to 8 MiB each way through shaped connections that
// half-close one direction while the other goes on, then close whole
// from either end, and every byte arrives (SHA-256). Virtual time lets
// video's upstream, a few hundred bytes a segment, carry 8 MiB too (about
// 16 hours of stream). The same cases over real TCP, through the
// commands, are cmd/bip324-pt's TestTunnel_EveryByte.
func TestClose_EveryByte(t *testing.T) {
	if testing.Short() {
		t.Skip("gigabytes of virtual video")
	}
	sizes := []int{0, 1, 1448, 65537, 8 << 20}
	for _, name := range profiles.Builtins() {
		for _, n := range sizes {
			for _, upFirst := range []bool{true, false} {
				if raceEnabled() && n > 1<<20 && name == "video" {
					continue // hours of virtual segments: minutes under the race detector
				}
				t.Run(fmt.Sprintf("%s/%d/upstream-first=%v", name, n, upFirst), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						closeCase(t, name, n, upFirst)
					})
				})
			}
		}
	}
}

// closeCase sends n bytes from one end, which half-closes; the other end
// reads them to the end, answers with n bytes of its own and closes
// whole while the first still reads; the first then closes.
func closeCase(t *testing.T, name string, n int, upFirst bool) {
	p := newWirePair(t, compile(t, name, [32]byte{'c', byte(n)}), compile(t, name, [32]byte{'s', byte(n)}))
	first, second := p.cli, p.srv
	if !upFirst {
		first, second = p.srv, p.cli
	}
	errc := make(chan error, 2)
	go func() {
		// The second end: read to the end, answer, close whole.
		got, sum, err := recvAll(second)
		if err != nil {
			errc <- fmt.Errorf("second end read %d bytes, then %w", got, err)
			return
		}
		if _, wantSum := payloadSum(n, 1); got != int64(n) || sum != wantSum {
			errc <- fmt.Errorf("second end got %d bytes (want %d), hash equal %v", got, n, sum == wantSum)
			return
		}
		if _, err := sendAll(second, n, 2); err != nil {
			errc <- err
			return
		}
		errc <- second.Close()
	}()
	start := time.Now()
	if _, err := sendAll(first, n, 1); err != nil {
		t.Fatal(err)
	}
	if err := first.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, sum, err := recvAll(first)
	if err != nil {
		// The second end's story, if it has ended: what it saw first
		// is most often the cause.
		second.Close()
		t.Fatalf("first end read %d bytes, then %v (the second end: %v)", got, err, <-errc)
	}
	if _, wantSum := payloadSum(n, 2); got != int64(n) || sum != wantSum {
		t.Fatalf("first end got %d bytes (want %d), hash equal %v", got, n, sum == wantSum)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("first end close: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for _, c := range []*bridge.Conn{p.cli, p.srv} {
		if st := c.Stats(); st.DataOut != int64(n) || st.Dropped != 0 {
			t.Errorf("stats: %d delivered, %d dropped; want %d and 0", st.DataOut, st.Dropped, n)
		}
	}
	t.Logf("%v of virtual time", time.Since(start))
}

// payloadSum is the hash sendAll gives n bytes of seed.
func payloadSum(n int, seed byte) (int, [32]byte) {
	b := make([]byte, n)
	mrand.NewChaCha8([32]byte{seed}).Read(b)
	return n, sha256.Sum256(b)
}

package main

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"testing"
	"time"
)

// The tunnel tests run "bip324-pt server" and "bip324-pt client
// --forward" as a user would (real TCP on loopback, both ends shaped by
// the profile), with an application at each end, and check that every
// byte arrives, by SHA-256, whichever end closes first and whichever
// direction is half-closed first.

// tunnelCase is one connection's script. The client application opens
// it with a header naming the case; the payloads follow it.
type tunnelCase struct {
	// targetFirst: the target half-closes first. Otherwise the client
	// sends its N bytes and half-closes, the target reads them to the
	// end, then sends its M bytes and closes (whole), while the client
	// still reads. With targetFirst the target sends M bytes and
	// half-closes, the client reads them to the end, then sends N bytes
	// and closes (whole) while the target still reads.
	targetFirst bool
	up, down    int   // N and M
	seed        int64 // of the payloads
}

const tunnelHeader = 1 + 8 + 8 + 8

func (c tunnelCase) header() []byte {
	h := make([]byte, tunnelHeader)
	if c.targetFirst {
		h[0] = 1
	}
	binary.BigEndian.PutUint64(h[1:], uint64(c.up))
	binary.BigEndian.PutUint64(h[9:], uint64(c.down))
	binary.BigEndian.PutUint64(h[17:], uint64(c.seed))
	return h
}

func parseTunnelHeader(h []byte) tunnelCase {
	return tunnelCase{
		targetFirst: h[0] == 1,
		up:          int(binary.BigEndian.Uint64(h[1:])),
		down:        int(binary.BigEndian.Uint64(h[9:])),
		seed:        int64(binary.BigEndian.Uint64(h[17:])),
	}
}

// payload returns n bytes drawn from seed and salt, and their hash.
func payload(n int, seed int64, salt byte) ([]byte, [32]byte) {
	b := make([]byte, n)
	mrand.NewChaCha8([32]byte{salt, byte(seed), byte(seed >> 8), byte(seed >> 16)}).Read(b)
	return b, sha256.Sum256(b)
}

// readToEOF reads c until io.EOF and checks that exactly want arrived.
func readToEOF(c net.Conn, n int, want [32]byte, what string) error {
	h := sha256.New()
	got, err := io.Copy(h, c)
	if err != nil {
		return fmt.Errorf("%s: read %d of %d bytes, then %w", what, got, n, err)
	}
	if got != int64(n) || [32]byte(h.Sum(nil)) != want {
		return fmt.Errorf("%s: %d bytes arrived (want %d), SHA-256 equal: %v", what, got, n, [32]byte(h.Sum(nil)) == want)
	}
	return nil
}

// tunnelTarget is the application behind the bridge: it plays each
// connection's case and reports its outcome (nil or the failure) on
// results.
func tunnelTarget(t *testing.T, results chan<- error) string {
	t.Helper()
	return serveTCP(t, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Minute))
		err := playTarget(c.(*net.TCPConn))
		if err != nil {
			err = fmt.Errorf("target: %w", err)
		}
		results <- err
	})
}

func playTarget(c *net.TCPConn) error {
	h := make([]byte, tunnelHeader)
	if _, err := io.ReadFull(c, h); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	tc := parseTunnelHeader(h)
	_, upSum := payload(tc.up, tc.seed, 'u')
	down, _ := payload(tc.down, tc.seed, 'd')
	if !tc.targetFirst {
		if err := readToEOF(c, tc.up, upSum, "upstream"); err != nil {
			return err
		}
		// Close from this end while the client still reads.
		if _, err := c.Write(down); err != nil {
			return err
		}
		return c.Close()
	}
	if _, err := c.Write(down); err != nil {
		return err
	}
	if err := c.CloseWrite(); err != nil {
		return err
	}
	return readToEOF(c, tc.up, upSum, "upstream after our half-close")
}

// playClient runs tc through the tunnel at addr.
func playClient(addr string, tc tunnelCase) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	c := nc.(*net.TCPConn)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	up, _ := payload(tc.up, tc.seed, 'u')
	_, downSum := payload(tc.down, tc.seed, 'd')
	if _, err := c.Write(tc.header()); err != nil {
		return err
	}
	if !tc.targetFirst {
		if _, err := c.Write(up); err != nil {
			return err
		}
		if err := c.CloseWrite(); err != nil {
			return err
		}
		return readToEOF(c, tc.down, downSum, "downstream after our half-close")
	}
	if err := readToEOF(c, tc.down, downSum, "downstream"); err != nil {
		return err
	}
	// Close from this end while the target still reads.
	if _, err := c.Write(up); err != nil {
		return err
	}
	return c.Close()
}

// tunnelSizes are the payload sizes each profile carries each way, from
// nothing to 8 MiB. Video's upstream is a player's requests, a few
// hundred bytes a segment (docs/profiles.md): it carries the small ones.
var tunnelSizes = []int{0, 1, 1448, 65537, 1 << 20, 8 << 20}

func maxUp(profile string) int {
	if profile == "video" {
		return 2000
	}
	return 8 << 20
}

// TestTunnel_EveryByte: for every built-in profile, shaping both ends,
// payloads of 0 bytes to 8 MiB each way, half-closed upstream first or
// downstream first, closed whole from either end: SHA-256 equal at the
// far end. This is the reproduction of the lost-bytes report (2,000,000
// bytes into a cbr tunnel arrived as about 1,660,000).
func TestTunnel_EveryByte(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of shaped transfers")
	}
	for _, prof := range []string{"none", "bitcoin", "cbr", "video", "fet", "jitter"} {
		t.Run(prof, func(t *testing.T) {
			t.Parallel()
			results := make(chan error, 64)
			target := tunnelTarget(t, results)
			addr := standaloneBridgeArgs(t, target, []string{"--profile", prof}, []string{"profile=" + prof})
			var cases []tunnelCase
			seed := int64(0)
			for _, n := range tunnelSizes {
				up := min(n, maxUp(prof))
				// Big payloads go one way a case, so a rate-limited
				// profile moves each at its own pace in parallel.
				for _, first := range []bool{false, true} {
					seed++
					if n < 1<<20 {
						cases = append(cases, tunnelCase{targetFirst: first, up: up, down: n, seed: seed})
						continue
					}
					cases = append(cases, tunnelCase{targetFirst: first, up: 0, down: n, seed: seed})
					if up == n {
						seed++
						cases = append(cases, tunnelCase{targetFirst: first, up: n, down: 0, seed: seed})
					}
				}
			}
			for _, tc := range cases {
				go func() {
					err := playClient(addr, tc)
					if err != nil {
						err = fmt.Errorf("client, case %+v: %w", tc, err)
					}
					results <- err
				}()
			}
			// Each case ends twice: at the client and at the target.
			for range 2 * len(cases) {
				if err := <-results; err != nil {
					t.Error(err)
				}
			}
		})
	}
}

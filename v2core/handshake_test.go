package v2core

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
)

// testHooks shapes a handshake with fixed values.
type testHooks struct {
	garbage []byte
	decoys  []int
	version []byte
}

func (h *testHooks) AppendGarbage(dst []byte, _ *[EllswiftKeySize]byte) []byte {
	return append(dst, h.garbage...)
}
func (h *testHooks) HandshakeDecoys() []int  { return h.decoys }
func (h *testHooks) VersionContents() []byte { return h.version }

// garbageOf returns n bytes of garbage that cannot contain a terminator by
// accident in any test here (it is not random, but the terminator is).
func garbageOf(n int) []byte {
	g := make([]byte, n)
	for i := range g {
		g[i] = byte(i*7 + 3)
	}
	return g
}

// feedChunks feeds b to h in pieces of at most chunk bytes and returns the
// bytes h did not consume because its handshake finished.
func feedChunks(t *testing.T, h *Handshake, b []byte, chunk int) (rest []byte, err error) {
	t.Helper()
	for len(b) > 0 {
		c := b[:min(chunk, len(b))]
		n, err := h.Feed(c)
		if err != nil {
			return b[n:], err
		}
		if n < len(c) && !h.Done() {
			t.Fatalf("Feed consumed %d of %d bytes without finishing", n, len(c))
		}
		b = b[n:]
		if h.Done() {
			return b, nil
		}
	}
	return nil, nil
}

// decodeChunks decodes b in pieces of at most chunk bytes and returns the
// packets, decoys included.
func decodeChunks(t *testing.T, d *Decoder, b []byte, chunk int) []Packet {
	t.Helper()
	var out []Packet
	for len(b) > 0 {
		c := b[:min(chunk, len(b))]
		for len(c) > 0 {
			p, n, err := d.Decode(c)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			c, b = c[n:], b[n:]
			if p != nil {
				out = append(out, Packet{Contents: bytes.Clone(p.Contents), Ignore: p.Ignore})
			}
		}
	}
	return out
}

// handshakePair runs a whole handshake in memory, moving bytes in pieces of
// chunk bytes. Before the version packets are delivered, each side appends
// an application packet, as BIP324 allows, which must reach the other side
// through its decoder after the handshake.
func handshakePair(t *testing.T, icfg, rcfg *Config, chunk int) (ini, res *Handshake) {
	t.Helper()
	ini, err := NewInitiator(icfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err = NewResponder(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	var toRes, toIni []byte // bytes in flight
	var early [2][]byte     // leftover after each handshake finished
	sentEarly := false
	for i := 0; !(ini.Done() && res.Done()); i++ {
		if i > 10 {
			t.Fatal("handshake made no progress")
		}
		toRes = ini.Output(toRes)
		if s := ini.Session(); s != nil && !sentEarly {
			toRes = s.Seal(toRes, []byte("early from initiator"), false)
			sentEarly = true
		}
		if !res.Done() {
			rest, err := feedChunks(t, res, toRes, chunk)
			if err != nil {
				t.Fatalf("responder: %v", err)
			}
			if res.Done() {
				early[1] = rest
			}
			toRes = nil
		}
		toIni = res.Output(toIni)
		if !ini.Done() {
			rest, err := feedChunks(t, ini, toIni, chunk)
			if err != nil {
				t.Fatalf("initiator: %v", err)
			}
			if ini.Done() {
				early[0] = rest
			}
			toIni = nil
		}
	}
	if ini.Session().ID() != res.Session().ID() {
		t.Fatal("session ids differ")
	}
	// The early packet from the initiator must be what the responder had
	// left over.
	pk := decodeChunks(t, res.Session().Decoder(), early[1], chunk)
	if len(pk) != 1 || string(pk[0].Contents) != "early from initiator" {
		t.Fatalf("responder got %d packets after the handshake, want the early packet", len(pk))
	}
	return ini, res
}

func TestHandshake_GarbageAndSplits(t *testing.T) {
	for _, g := range []int{0, 1, 4094, 4095} {
		for _, chunk := range []int{1, 2, 3, 15, 16, 17, 63, 64, 65, 4111, 1 << 20} {
			t.Run(fmt.Sprintf("garbage=%d/chunk=%d", g, chunk), func(t *testing.T) {
				icfg := &Config{Rand: newTestRand(uint64(g)), Hooks: &testHooks{garbage: garbageOf(g)}}
				rcfg := &Config{Rand: newTestRand(uint64(g + 1)), Hooks: &testHooks{garbage: garbageOf(4095 - g)}}
				ini, res := handshakePair(t, icfg, rcfg, chunk)
				if got := res.PeerGarbageLen(); got != g {
					t.Errorf("responder saw %d bytes of garbage, want %d", got, g)
				}
				if got := ini.PeerGarbageLen(); got != 4095-g {
					t.Errorf("initiator saw %d bytes of garbage, want %d", got, 4095-g)
				}
				exchange(t, ini.Session(), res.Session(), chunk)
			})
		}
	}
}

// exchange sends packets of several sizes, with decoys among them, both
// ways and checks they arrive as sent.
func exchange(t *testing.T, a, b *Session, chunk int) {
	t.Helper()
	for _, pair := range [][2]*Session{{a, b}, {b, a}} {
		var wire []byte
		var want []Packet
		for i, n := range []int{0, 1, 100, 4096, 70000} {
			c := bytes.Repeat([]byte{byte(i + 1)}, n)
			wire = pair[0].Seal(wire, c, false)
			want = append(want, Packet{Contents: c})
			wire = pair[0].AppendDecoy(wire, n/3)
			want = append(want, Packet{Contents: make([]byte, n/3), Ignore: true})
		}
		got := decodeChunks(t, pair[1].Decoder(), wire, chunk)
		if len(got) != len(want) {
			t.Fatalf("got %d packets, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i].Ignore != want[i].Ignore || !bytes.Equal(got[i].Contents, want[i].Contents) {
				t.Fatalf("packet %d differs (ignore %v)", i, got[i].Ignore)
			}
		}
	}
}

func TestHandshake_DecoysAndVersionContents(t *testing.T) {
	long := bytes.Repeat([]byte{0xab}, MaxPeerVersionLen)
	cases := []struct {
		name    string
		decoys  []int
		version []byte
		want    []byte // what PeerVersion keeps
	}{
		{"plain", nil, nil, nil},
		{"decoys", []int{0, 1, 300, 70000}, nil, nil},
		{"version", nil, []byte("bip324-pt/1 profile=cbr"), []byte("bip324-pt/1 profile=cbr")},
		{"both", []int{5, 5}, long, long},
		// Over the cap: authenticated, then dropped whole.
		{"version over the cap", []int{5}, append(long, 0xab), nil},
		{"version of 5000", nil, bytes.Repeat([]byte{0xab}, 5000), nil},
	}
	for _, c := range cases {
		for _, chunk := range []int{1, 7, 1 << 20} {
			t.Run(fmt.Sprintf("%s/chunk=%d", c.name, chunk), func(t *testing.T) {
				h := &testHooks{garbage: garbageOf(10), decoys: c.decoys, version: c.version}
				ini, res := handshakePair(t, &Config{Hooks: h}, &Config{Hooks: h}, chunk)
				for _, s := range []*Handshake{ini, res} {
					if got := s.PeerVersion(); !bytes.Equal(got, c.want) || (c.want == nil) != (got == nil) && len(c.version) > 0 {
						t.Errorf("peer version: %d bytes, want %d", len(got), len(c.want))
					}
					if got := s.Session().Decoder().Decoys(); got != uint64(len(c.decoys)) {
						t.Errorf("%d decoys counted, want %d", got, len(c.decoys))
					}
				}
			})
		}
	}
}

func TestHandshake_EveryNetwork(t *testing.T) {
	for _, n := range Networks {
		t.Run(n.String(), func(t *testing.T) {
			ini, res := handshakePair(t, &Config{Network: n}, &Config{Network: n}, 1<<20)
			exchange(t, ini.Session(), res.Session(), 1<<20)
		})
	}
	// Different networks derive different keys: the terminator is never
	// found.
	ini, _ := NewInitiator(&Config{Network: Mainnet, Hooks: &testHooks{}})
	res, _ := NewResponder(&Config{Network: Testnet4, Hooks: &testHooks{}})
	if _, err := res.Feed(ini.Output(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := ini.Feed(res.Output(nil)); err != nil {
		t.Fatal(err)
	}
	junk := append(res.Output(nil), garbageOf(maxScanLen)...)
	if _, err := ini.Feed(junk); !errors.Is(err, ErrNoTerminator) {
		t.Fatalf("mismatched networks: err = %v, want ErrNoTerminator", err)
	}
}

func TestResponder_V1Prefix(t *testing.T) {
	for _, n := range Networks {
		prefix := n.V1Prefix()
		for _, chunk := range []int{1, 5, 16, 100} {
			t.Run(fmt.Sprintf("%s/chunk=%d", n, chunk), func(t *testing.T) {
				res, _ := NewResponder(&Config{Network: n})
				in := append(prefix[:], "rest of a v1 version message"...)
				rest, err := feedChunks(t, res, in, chunk)
				var v1 *V1Error
				if !errors.As(err, &v1) || !errors.Is(err, ErrV1) {
					t.Fatalf("err = %v, want a *V1Error", err)
				}
				if v1.Prefix != prefix {
					t.Errorf("prefix = %x, want %x", v1.Prefix, prefix)
				}
				if len(in)-len(rest) > V1PrefixSize+chunk {
					t.Errorf("consumed more than the prefix")
				}
				if res.Pending() != 0 {
					t.Errorf("responder has %d bytes to send to a v1 peer", res.Pending())
				}
			})
		}
		// Any 15 bytes of the prefix: nothing sent, no decision.
		res, _ := NewResponder(&Config{Network: n})
		if _, err := res.Feed(prefix[:15]); err != nil || res.Pending() != 0 {
			t.Fatalf("%s: after 15 prefix bytes: err=%v pending=%d", n, err, res.Pending())
		}
		// A mismatch at any position commits to v2 at once.
		for k := range V1PrefixSize {
			res, _ := NewResponder(&Config{Network: n, Hooks: &testHooks{garbage: garbageOf(7)}})
			in := bytes.Clone(prefix[:k+1])
			in[k] ^= 0x01
			if m, err := res.Feed(in); err != nil || m != k+1 {
				t.Fatalf("%s: mismatch at %d: n=%d err=%v", n, k, m, err)
			}
			if res.Pending() != EllswiftKeySize+7 {
				t.Fatalf("%s: mismatch at %d: %d bytes to send, want key and garbage", n, k, res.Pending())
			}
		}
	}
}

func TestResponder_WrongNetworkV1(t *testing.T) {
	other := Testnet3.V1Prefix()
	// 17 bytes in one read: close before sending anything.
	res, _ := NewResponder(&Config{Network: Mainnet})
	if _, err := res.Feed(append(other[:], 0)); !errors.Is(err, ErrV1WrongNetwork) {
		t.Fatalf("err = %v, want ErrV1WrongNetwork", err)
	}
	if res.Pending() != 0 {
		t.Fatalf("responder would send %d bytes", res.Pending())
	}
	// Exactly 16: Bitcoin Core sends its key (the bytes differ from its own
	// prefix) and closes when the next byte arrives.
	res, _ = NewResponder(&Config{Network: Mainnet})
	if _, err := res.Feed(other[:]); err != nil || res.Pending() < EllswiftKeySize {
		t.Fatalf("after 16 bytes: err=%v pending=%d", err, res.Pending())
	}
	res.Output(nil)
	if _, err := res.Feed([]byte{0}); !errors.Is(err, ErrV1WrongNetwork) {
		t.Fatalf("17th byte: err = %v, want ErrV1WrongNetwork", err)
	}
}

func TestHandshake_NoTerminator(t *testing.T) {
	for _, initiator := range []bool{true, false} {
		t.Run(fmt.Sprintf("initiator=%v", initiator), func(t *testing.T) {
			peer, _ := NewInitiator(nil)
			h, _ := NewResponder(nil)
			if initiator {
				h, _ = NewInitiator(nil)
				peer, _ = NewResponder(nil)
				peer.Feed(h.Output(nil))
			}
			key := peer.Output(nil)[:EllswiftKeySize]
			if _, err := h.Feed(key); err != nil {
				t.Fatal(err)
			}
			junk := garbageOf(maxScanLen)
			if n, err := h.Feed(junk[:maxScanLen-1]); err != nil || n != maxScanLen-1 {
				t.Fatalf("4110 bytes: n=%d err=%v", n, err)
			}
			if n, err := h.Feed(junk[maxScanLen-1:]); !errors.Is(err, ErrNoTerminator) || n != 1 {
				t.Fatalf("4111th byte: n=%d err=%v, want ErrNoTerminator", n, err)
			}
			if _, err := h.Feed([]byte{1}); !errors.Is(err, ErrNoTerminator) {
				t.Fatalf("error is not sticky: %v", err)
			}
		})
	}
}

// brokenHandshake runs the key exchange and returns the responder waiting
// for the initiator's terminator and version packet, and those bytes.
func brokenHandshake(t *testing.T, icfg, rcfg *Config) (*Handshake, []byte) {
	t.Helper()
	ini, _ := NewInitiator(icfg)
	res, _ := NewResponder(rcfg)
	if _, err := res.Feed(ini.Output(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := ini.Feed(res.Output(nil)); err != nil {
		t.Fatal(err)
	}
	return res, ini.Output(nil)
}

func TestHandshake_BadTag(t *testing.T) {
	for i := 0; i < 4; i++ {
		res, rest := brokenHandshake(t, nil, nil)
		// Flip a bit in the length, header, body or tag of the version
		// packet (after the 16-byte terminator).
		pos := []int{GarbageTerminatorSize + 1, GarbageTerminatorSize + 3, len(rest) - 17, len(rest) - 1}[i]
		rest[pos] ^= 0x10
		// A changed length makes the decoder wait for more: give it that.
		_, err := res.Feed(append(rest, make([]byte, 1<<17)...))
		var tooLong *ContentTooLongError
		if !errors.Is(err, ErrAuth) && !errors.As(err, &tooLong) {
			t.Fatalf("flip at %d: err = %v, want ErrAuth", pos, err)
		}
		if res.Done() {
			t.Fatal("handshake done after a bad packet")
		}
	}
}

func TestHandshake_LengthOverLimit(t *testing.T) {
	h := &testHooks{version: make([]byte, 101)}
	res, rest := brokenHandshake(t, &Config{Hooks: h}, &Config{MaxContentLen: 100})
	_, err := res.Feed(rest[:GarbageTerminatorSize+LengthFieldSize])
	var tooLong *ContentTooLongError
	if !errors.As(err, &tooLong) || tooLong.Len != 101 || tooLong.Max != 100 {
		t.Fatalf("err = %v, want contents of 101 over 100", err)
	}
}

// TestDecoder_BoundedMemory announces the largest allowed packet and sends
// a few bytes of it: the decoder holds about what arrived, not 4 MB.
func TestDecoder_BoundedMemory(t *testing.T) {
	ini, res := handshakePair(t, nil, nil, 1<<20)
	pkt := ini.Session().Seal(nil, make([]byte, DefaultMaxContentLen), false)
	d := res.Session().Decoder()
	if p, n, err := d.Decode(pkt[:1000]); p != nil || n != 1000 || err != nil {
		t.Fatalf("partial decode: %v %d %v", p, n, err)
	}
	if c := cap(d.buf); c > 4096 {
		t.Fatalf("decoder holds %d bytes after 1000 arrived", c)
	}
	if d.Buffered() != 1000 {
		t.Fatalf("Buffered = %d, want 1000", d.Buffered())
	}
	// One byte more than the limit fails on the length alone.
	ini2, res2 := handshakePair(t, nil, &Config{MaxContentLen: 4096}, 1<<20)
	pkt = ini2.Session().Seal(nil, make([]byte, 4097), false)
	_, _, err := res2.Session().Decoder().Decode(pkt[:3])
	var tooLong *ContentTooLongError
	if !errors.As(err, &tooLong) {
		t.Fatalf("err = %v, want *ContentTooLongError", err)
	}
	if _, _, err2 := res2.Session().Decoder().Decode(pkt[3:]); err2 != err {
		t.Fatalf("error not sticky: %v", err2)
	}
}

// TestHandshake_SameSeedSameBytes: a seeded Config.Rand makes the whole
// first flight repeatable.
func TestHandshake_SameSeedSameBytes(t *testing.T) {
	a, _ := NewInitiator(&Config{Rand: newTestRand(7)})
	b, _ := NewInitiator(&Config{Rand: newTestRand(7)})
	c, _ := NewInitiator(&Config{Rand: newTestRand(8)})
	oa, ob, oc := a.Output(nil), b.Output(nil), c.Output(nil)
	if !bytes.Equal(oa, ob) {
		t.Fatal("same seed, different first flights")
	}
	if bytes.Equal(oa, oc) {
		t.Fatal("different seeds, same first flight")
	}
}

func TestHandshake_HooksTooMuchGarbage(t *testing.T) {
	if _, err := NewInitiator(&Config{Hooks: &testHooks{garbage: make([]byte, 4096)}}); err == nil {
		t.Fatal("4096 bytes of garbage accepted")
	}
}

// TestKeyPool: handshakes with keys from a pool complete, each key is
// used once (no two handshakes send the same key), and a pool that has
// run dry still hands out keys.
func TestKeyPool(t *testing.T) {
	p := NewKeyPool(4, nil)
	defer p.Close()
	seen := map[[EllswiftKeySize]byte]bool{}
	for range 20 {
		h, err := NewResponder(&Config{KeyPool: p})
		if err != nil {
			t.Fatal(err)
		}
		k := h.OurKey()
		if seen[k] {
			t.Fatal("a key was handed out twice")
		}
		seen[k] = true
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c, s := Client(a, &Config{KeyPool: p}), Server(b, &Config{KeyPool: p})
	errc := make(chan error, 1)
	go func() { errc <- c.Handshake() }()
	if err := s.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	cid, _ := c.SessionID()
	sid, _ := s.SessionID()
	if cid != sid {
		t.Fatal("session ids differ")
	}
}

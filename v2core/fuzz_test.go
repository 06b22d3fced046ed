package v2core

import (
	"bytes"
	"errors"
	"testing"
)

// Fuzz targets for every parser in v2core that network input reaches: the
// packet decoder (length decrypt and packet open), both handshake roles
// (v1 prefix check, key, garbage-terminator scan, version packet) and a
// whole handshake with corrupted bytes. Seed corpora are in
// testdata/fuzz/; run one with, for example,
//
//	go test ./v2core -run '^$' -fuzz FuzzDecoder -fuzztime 60s

// fuzzSessions makes a connected pair of sessions without the elliptic
// curve work, so the decoder targets run fast.
func fuzzSessions(seed uint8, maxLen int) (send, recv *Session) {
	var secret [32]byte
	secret[0] = seed
	k := deriveKeys(&secret, Mainnet)
	send = newSession(k, true, DefaultMaxContentLen)
	send.sentVersion = true
	recv = newSession(k, false, maxLen)
	return send, recv
}

// FuzzDecoder feeds the decoder either raw bytes or a stream of valid
// packets built from the input, optionally with one byte flipped, cut
// into chunks whose size the input picks.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte{}, uint8(0), uint16(0), uint8(1))
	f.Add([]byte("hello, world"), uint8(1), uint16(0), uint8(3))
	f.Add(bytes.Repeat([]byte{0xff}, 300), uint8(1), uint16(40), uint8(17))
	f.Add([]byte{0, 0, 0, 1, 2, 3}, uint8(0), uint16(0), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8, flip uint16, chunk uint8) {
		maxLen := 64 + int(mode>>2)*16
		send, recv := fuzzSessions(mode>>2, maxLen)
		var stream []byte
		var sent [][]byte
		if mode&1 == 0 {
			stream = data
		} else {
			// Cut data into packets whose lengths come from the data.
			rest := data
			for len(rest) > 0 {
				n := min(int(rest[0]), len(rest)-1, maxLen)
				c := rest[1 : 1+n]
				stream = send.Seal(stream, c, n%5 == 0)
				if n%5 != 0 {
					sent = append(sent, c)
				}
				rest = rest[1+n:]
			}
			if mode&2 != 0 && len(stream) > 0 {
				stream[int(flip)%len(stream)] ^= 1 << (flip >> 13)
			}
		}
		step := max(1, int(chunk))
		var got [][]byte
		d := recv.Decoder()
		var err error
		for len(stream) > 0 && err == nil {
			c := stream[:min(step, len(stream))]
			for len(c) > 0 {
				var p *Packet
				var n int
				p, n, err = d.Decode(c)
				if n > len(c) {
					t.Fatalf("consumed %d of %d", n, len(c))
				}
				if err != nil {
					break
				}
				if n == 0 && p == nil {
					t.Fatal("no progress")
				}
				if p != nil && !p.Ignore {
					got = append(got, bytes.Clone(p.Contents))
				}
				c, stream = c[n:], stream[n:]
			}
			if d.Buffered() > maxLen+PacketOverhead {
				t.Fatalf("decoder holds %d bytes, limit %d", d.Buffered(), maxLen)
			}
		}
		if err != nil {
			if _, _, again := d.Decode([]byte{0}); again != err {
				t.Fatalf("error not sticky: %v then %v", err, again)
			}
			var tooLong *ContentTooLongError
			if !errors.Is(err, ErrAuth) && !errors.As(err, &tooLong) {
				t.Fatalf("unexpected error %v", err)
			}
		}
		if mode&3 == 1 {
			if err != nil {
				t.Fatalf("valid stream failed: %v", err)
			}
			if len(got) != len(sent) {
				t.Fatalf("got %d packets, sent %d", len(got), len(sent))
			}
			for i := range got {
				if !bytes.Equal(got[i], sent[i]) {
					t.Fatalf("packet %d differs", i)
				}
			}
		}
	})
}

// fuzzFeed feeds in to h in chunks and checks the Feed contract.
func fuzzFeed(t *testing.T, h *Handshake, in []byte, chunk int) error {
	for len(in) > 0 {
		c := in[:min(chunk, len(in))]
		n, err := h.Feed(c)
		if n < 0 || n > len(c) {
			t.Fatalf("Feed consumed %d of %d", n, len(c))
		}
		if err != nil {
			if _, again := h.Feed([]byte{0}); again != err {
				t.Fatalf("error not sticky: %v then %v", err, again)
			}
			return err
		}
		if n < len(c) && !h.Done() {
			t.Fatalf("Feed stopped at %d of %d without finishing", n, len(c))
		}
		if h.Done() {
			return nil
		}
		in = in[n:]
		if h.Pending() > EllswiftKeySize+MaxGarbageLen+GarbageTerminatorSize+PacketOverhead {
			t.Fatalf("%d bytes of output pending", h.Pending())
		}
	}
	return nil
}

// FuzzResponder feeds arbitrary bytes to a responder: the v1 prefix check,
// the key, the terminator scan.
func FuzzResponder(f *testing.F) {
	pre, other := Mainnet.V1Prefix(), Testnet3.V1Prefix()
	f.Add(pre[:], uint64(1), uint8(16))
	f.Add(append(other[:], 0, 1, 2), uint64(2), uint8(255))
	f.Add(bytes.Repeat([]byte{0x42}, 200), uint64(3), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, chunk uint8) {
		h, err := NewResponder(&Config{Rand: newTestRand(seed)})
		if err != nil {
			t.Fatal(err)
		}
		err = fuzzFeed(t, h, data, max(1, int(chunk)))
		var v1 *V1Error
		if errors.As(err, &v1) && !bytes.Equal(v1.Prefix[:], pre[:]) {
			t.Fatalf("v1 reported for %x", v1.Prefix)
		}
		if h.Done() {
			t.Fatal("handshake done on random input")
		}
	})
}

// FuzzInitiator feeds arbitrary bytes to an initiator as the responder's
// answer.
func FuzzInitiator(f *testing.F) {
	f.Add(bytes.Repeat([]byte{7}, 100), uint64(1), uint8(1))
	f.Add(make([]byte, 64), uint64(2), uint8(64))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, chunk uint8) {
		h, err := NewInitiator(&Config{Rand: newTestRand(seed)})
		if err != nil {
			t.Fatal(err)
		}
		fuzzFeed(t, h, data, max(1, int(chunk)))
		if h.Done() {
			t.Fatal("handshake done on random input")
		}
	})
}

// FuzzHandshake runs a real handshake whose initiator garbage, decoys and
// version contents come from the input, flips one bit of the initiator's
// second flight, and checks the responder either completes with the same
// session or fails with an authentication or length error.
func FuzzHandshake(f *testing.F) {
	f.Add([]byte("garbage"), uint64(1), uint16(0), uint8(0))
	f.Add(bytes.Repeat([]byte{0}, 5000), uint64(2), uint16(17), uint8(1))
	f.Add([]byte{1, 2, 3}, uint64(3), uint16(999), uint8(200))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, flip uint16, chunk uint8) {
		g := data[:min(len(data), MaxGarbageLen)]
		hooks := &testHooks{garbage: g, version: data[len(g):]}
		if len(data) > 0 {
			hooks.decoys = []int{int(data[0]), len(data) % 7}
		}
		ini, err := NewInitiator(&Config{Rand: newTestRand(seed), Hooks: hooks})
		if err != nil {
			t.Fatal(err)
		}
		res, err := NewResponder(&Config{Rand: newTestRand(seed + 1), MaxContentLen: 1 << 14})
		if err != nil {
			t.Fatal(err)
		}
		step := max(1, int(chunk))
		if err := fuzzFeed(t, res, ini.Output(nil), step); err != nil {
			// Garbage that starts like our v1 prefix is a v1 peer.
			if !errors.Is(err, ErrV1) && !errors.Is(err, ErrV1WrongNetwork) {
				t.Fatalf("first flight: %v", err)
			}
			return
		}
		if err := fuzzFeed(t, ini, res.Output(nil), step); err != nil {
			t.Fatalf("responder flight: %v", err)
		}
		second := ini.Output(nil)
		flipped := flip != 0
		if flipped {
			second[int(flip)%len(second)] ^= 1 << (flip >> 13)
		}
		err = fuzzFeed(t, res, second, step)
		switch {
		case err == nil && res.Done():
			if res.Session().ID() != ini.Session().ID() {
				t.Fatal("session ids differ")
			}
			// Contents over MaxPeerVersionLen are authenticated, then
			// dropped whole.
			want := hooks.version
			if len(want) > MaxPeerVersionLen {
				want = nil
			}
			if !flipped && !bytes.Equal(res.PeerVersion(), want) {
				t.Fatalf("version contents: got %d bytes, want %d", len(res.PeerVersion()), len(want))
			}
			if len(res.PeerVersion()) > MaxPeerVersionLen {
				t.Fatalf("kept %d bytes of version contents", len(res.PeerVersion()))
			}
		case err == nil:
			// A flipped length bit can leave the responder waiting.
			if !flipped {
				t.Fatal("valid handshake did not finish")
			}
		default:
			var tooLong *ContentTooLongError
			if !flipped && !errors.As(err, &tooLong) {
				t.Fatalf("valid handshake failed: %v", err)
			}
			if !errors.Is(err, ErrAuth) && !errors.As(err, &tooLong) && !errors.Is(err, ErrNoTerminator) {
				t.Fatalf("unexpected error %v", err)
			}
		}
	})
}

package v2core

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// Known v1 messages, as they appear on the wire.
const (
	// mainnetVerackHex is a mainnet verack: magic, "verack" padded, length
	// 0, and 5df6e0e2, the checksum of the empty payload.
	mainnetVerackHex = "f9beb4d9" + "76657261636b000000000000" + "00000000" + "5df6e0e2"
	// mainnetVersionHex is the example version message of the Bitcoin wiki's
	// Protocol documentation (protocol 60002, "/Satoshi:0.7.2/", height
	// 212672): a 100-byte payload with checksum 358d4932, which we
	// recomputed with Python's hashlib.
	mainnetVersionHex = "f9beb4d9" + "76657273696f6e0000000000" + "64000000" + "358d4932" +
		"62ea0000" + "0100000000000000" + "11b2d05000000000" +
		"0100000000000000" + "00000000000000000000ffff00000000" + "0000" +
		"0000000000000000" + "00000000000000000000ffff00000000" + "0000" +
		"3b2eb35d8ce61765" + "0f2f5361746f7368693a302e372e322f" + "c03e0300"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustV1(t testing.TB, net Network, command string, payload []byte) []byte {
	t.Helper()
	b, err := AppendV1Message(nil, net, command, payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendV1Message_Known(t *testing.T) {
	version := mustHex(t, mainnetVersionHex)
	tests := []struct {
		name    string
		net     Network
		command string
		payload []byte
		want    string
	}{
		{"mainnet verack", Mainnet, "verack", nil, mainnetVerackHex},
		{"mainnet version", Mainnet, "version", version[V1HeaderSize:], mainnetVersionHex},
		{"regtest verack", Regtest, "verack", nil, "fabfb5da76657261636b000000000000000000005df6e0e2"},
		{"testnet3 verack", Testnet3, "verack", []byte{}, "0b11090776657261636b000000000000000000005df6e0e2"},
		// Checksum of "hello": double SHA-256 is 9595c9df..., from the
		// Bitcoin wiki's Protocol documentation.
		{"12-byte command", Mainnet, "abcdefghijkl", []byte("hello"), "f9beb4d96162636465666768696a6b6c050000009595c9df68656c6c6f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendV1Message([]byte{0xaa}, tt.net, tt.command, tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			if h := hex.EncodeToString(got); h != "aa"+tt.want {
				t.Fatalf("AppendV1Message =\n%s\nwant\n%s", h, "aa"+tt.want)
			}
		})
	}
}

func TestAppendV1Message_InvalidCommand(t *testing.T) {
	for _, cmd := range []string{"", "abcdefghijklm", "ver\x00ack", "ping\x7f", "\x19"} {
		dst := []byte{1, 2}
		out, err := AppendV1Message(dst, Mainnet, cmd, nil)
		var e *InvalidCommandError
		if !errors.As(err, &e) || e.Command != cmd {
			t.Errorf("%q: err = %v, want *InvalidCommandError", cmd, err)
		}
		if !bytes.Equal(out, []byte{1, 2}) {
			t.Errorf("%q: dst changed on error: %x", cmd, out)
		}
	}
}

// v1Hdr builds a header by hand.
func v1Hdr(magic Network, field string, length uint32, sum [4]byte) *[V1HeaderSize]byte {
	var h [V1HeaderSize]byte
	m := magic.Magic()
	copy(h[:4], m[:])
	copy(h[4:16], field)
	binary.LittleEndian.PutUint32(h[16:20], length)
	copy(h[20:], sum[:])
	return &h
}

func TestParseV1Header(t *testing.T) {
	sum := [4]byte{1, 2, 3, 4}
	tests := []struct {
		name       string
		hdr        *[V1HeaderSize]byte
		maxPayload int
		want       V1Header
		magic      bool // want *V1MagicError
		tooLong    bool // want *V1PayloadTooLongError
		invalid    bool // want *InvalidCommandError
	}{
		{name: "verack", hdr: (*[V1HeaderSize]byte)(mustHex(t, mainnetVerackHex)),
			want: V1Header{Command: "verack", Checksum: [4]byte{0x5d, 0xf6, 0xe0, 0xe2}}},
		{name: "version", hdr: (*[V1HeaderSize]byte)(mustHex(t, mainnetVersionHex)[:V1HeaderSize]),
			want: V1Header{Command: "version", Length: 100, Checksum: [4]byte{0x35, 0x8d, 0x49, 0x32}}},
		{name: "12-char command", hdr: v1Hdr(Mainnet, "abcdefghijkl", 7, sum),
			want: V1Header{Command: "abcdefghijkl", Length: 7, Checksum: sum}},
		{name: "wrong magic", hdr: v1Hdr(Testnet3, "verack", 0, sum), magic: true},
		{name: "zero magic", hdr: v1Hdr(0, "verack", 0, sum), magic: true},
		{name: "at custom max", hdr: v1Hdr(Mainnet, "tx", 10, sum), maxPayload: 10,
			want: V1Header{Command: "tx", Length: 10, Checksum: sum}},
		{name: "over custom max", hdr: v1Hdr(Mainnet, "tx", 11, sum), maxPayload: 10, tooLong: true},
		{name: "at default max", hdr: v1Hdr(Mainnet, "block", MaxV1PayloadLen, sum),
			want: V1Header{Command: "block", Length: MaxV1PayloadLen, Checksum: sum}},
		{name: "over default max", hdr: v1Hdr(Mainnet, "block", MaxV1PayloadLen+1, sum), tooLong: true},
		{name: "max uint32", hdr: v1Hdr(Mainnet, "block", 1<<32-1, sum), maxPayload: -1, tooLong: true},
		// Magic is checked before length, and length before command.
		{name: "wrong magic and too long", hdr: v1Hdr(Signet, "\x01", 1<<32-1, sum), magic: true},
		{name: "too long and bad command", hdr: v1Hdr(Mainnet, "\x01", 1<<32-1, sum), tooLong: true},
		{name: "empty command", hdr: v1Hdr(Mainnet, "", 5, sum), invalid: true,
			want: V1Header{Length: 5, Checksum: sum}},
		{name: "NUL then text", hdr: v1Hdr(Mainnet, "ver\x00ack", 5, sum), invalid: true,
			want: V1Header{Length: 5, Checksum: sum}},
		{name: "non-printable", hdr: v1Hdr(Mainnet, "ver\x7fack", 0, sum), invalid: true,
			want: V1Header{Checksum: sum}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseV1Header(tt.hdr, Mainnet, tt.maxPayload)
			var (
				me *V1MagicError
				le *V1PayloadTooLongError
				ce *InvalidCommandError
			)
			switch {
			case tt.magic:
				if !errors.As(err, &me) {
					t.Fatalf("err = %v, want *V1MagicError", err)
				}
				if me.Got != [4]byte(tt.hdr[:4]) || me.Want != Mainnet {
					t.Errorf("V1MagicError = %+v", me)
				}
			case tt.tooLong:
				if !errors.As(err, &le) {
					t.Fatalf("err = %v, want *V1PayloadTooLongError", err)
				}
				wantMax := int64(tt.maxPayload)
				if wantMax <= 0 {
					wantMax = MaxV1PayloadLen
				}
				if le.Len != int64(binary.LittleEndian.Uint32(tt.hdr[16:20])) || le.Max != wantMax {
					t.Errorf("V1PayloadTooLongError = %+v", le)
				}
			case tt.invalid:
				if !errors.As(err, &ce) || ce.Command != string(tt.hdr[4:16]) {
					t.Fatalf("err = %v, want *InvalidCommandError with the raw field", err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
			}
			if err != nil && !strings.HasPrefix(err.Error(), "v2core: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if h != tt.want {
				t.Errorf("header = %+v, want %+v", h, tt.want)
			}
		})
	}
}

// v1Event is one thing a V1Decoder reported: a message or an error, and
// the bytes of the stream that went into it.
type v1Event struct {
	command string
	payload []byte
	err     error
	raw     []byte
}

// decodeV1 feeds stream to d in chunks whose sizes next returns, and
// records every message and error. After a final error it stops. It checks
// the invariants of Decode on the way.
func decodeV1(t testing.TB, d *V1Decoder, stream []byte, next func() int) (events []v1Event, rest []byte) {
	t.Helper()
	pos, start := 0, 0
	for pos < len(stream) {
		end := min(pos+max(next(), 1), len(stream))
		chunk := stream[pos:end]
		for len(chunk) > 0 {
			msg, n, err := d.Decode(chunk)
			if n < 0 || n > len(chunk) {
				t.Fatalf("Decode consumed %d of %d bytes", n, len(chunk))
			}
			if msg != nil && err != nil {
				t.Fatalf("Decode returned both a message and %v", err)
			}
			if msg == nil && err == nil && n != len(chunk) {
				t.Fatalf("Decode stopped at %d of %d bytes with nothing to report", n, len(chunk))
			}
			chunk = chunk[n:]
			pos += n
			if msg == nil && err == nil {
				continue
			}
			ev := v1Event{err: err, raw: stream[start:pos]}
			if msg != nil {
				ev.command = msg.Command
				ev.payload = bytes.Clone(msg.Payload)
			}
			events = append(events, ev)
			start = pos
			if err != nil && !v1Recoverable(err) {
				if _, n2, err2 := d.Decode(chunk); n2 != 0 || err2 != err {
					t.Fatalf("after final error %v, Decode = %d, %v", err, n2, err2)
				}
				return events, stream[start:]
			}
		}
	}
	return events, stream[start:]
}

func v1Recoverable(err error) bool {
	var ce *InvalidCommandError
	return errors.Is(err, ErrV1Checksum) || errors.As(err, &ce)
}

// v1Stream returns a stream of assorted valid mainnet messages and the
// messages in it.
func v1Stream(t testing.TB) ([]byte, []V1Message) {
	rng := rand.New(rand.NewChaCha8([32]byte{'v', '1'}))
	big := make([]byte, 70_000)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	msgs := []V1Message{
		{"version", mustHex(t, mainnetVersionHex)[V1HeaderSize:]},
		{"verack", nil},
		{"sendaddrv2", nil},
		{"ping", []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{"block", big},
		{"abcdefghijkl", []byte("x")},
		{"pong", []byte{8, 7, 6, 5, 4, 3, 2, 1}},
		{"verack", nil},
	}
	var stream []byte
	for _, m := range msgs {
		stream = append(stream, mustV1(t, Mainnet, m.Command, m.Payload)...)
	}
	return stream, msgs
}

func checkV1Events(t *testing.T, events []v1Event, rest []byte, want []V1Message) {
	t.Helper()
	if len(rest) != 0 {
		t.Errorf("%d bytes left over", len(rest))
	}
	if len(events) != len(want) {
		t.Fatalf("got %d events, want %d", len(events), len(want))
	}
	for i, ev := range events {
		if ev.err != nil || ev.command != want[i].Command || !bytes.Equal(ev.payload, want[i].Payload) {
			t.Fatalf("event %d: %q, %d bytes, %v; want %q, %d bytes", i, ev.command, len(ev.payload), ev.err, want[i].Command, len(want[i].Payload))
		}
		if !bytes.Equal(ev.raw, mustV1(t, Mainnet, ev.command, ev.payload)) {
			t.Fatalf("event %d: raw bytes do not match the re-encoding", i)
		}
	}
}

func TestV1Decoder_Splits(t *testing.T) {
	stream, want := v1Stream(t)
	rng := rand.New(rand.NewPCG(1, 2))
	splits := []struct {
		name string
		next func() int
	}{
		{"whole", func() int { return len(stream) }},
		{"byte at a time", func() int { return 1 }},
		{"header size", func() int { return V1HeaderSize }},
		{"random small", func() int { return 1 + rng.IntN(30) }},
		{"random large", func() int { return 1 + rng.IntN(20_000) }},
	}
	for _, s := range splits {
		t.Run(s.name, func(t *testing.T) {
			for range 20 {
				events, rest := decodeV1(t, &V1Decoder{}, stream, s.next)
				checkV1Events(t, events, rest, want)
			}
		})
	}
}

func TestV1Decoder_Network(t *testing.T) {
	for _, net := range Networks {
		t.Run(net.String(), func(t *testing.T) {
			stream := append(mustV1(t, net, "verack", nil), mustV1(t, net, "ping", []byte("12345678"))...)
			d := &V1Decoder{Network: net}
			events, rest := decodeV1(t, d, stream, func() int { return 7 })
			if len(rest) != 0 || len(events) != 2 || events[0].err != nil || events[1].err != nil || events[1].command != "ping" {
				t.Fatalf("events %+v, rest %x", events, rest)
			}
		})
	}
}

func TestV1Decoder_WrongMagic(t *testing.T) {
	stream := append(mustV1(t, Mainnet, "verack", nil), mustV1(t, Testnet4, "verack", nil)...)
	stream = append(stream, mustV1(t, Mainnet, "verack", nil)...)
	for _, chunk := range []int{1, 5, len(stream)} {
		d := &V1Decoder{}
		events, rest := decodeV1(t, d, stream, func() int { return chunk })
		if len(events) != 2 || events[0].err != nil {
			t.Fatalf("chunk %d: events %+v", chunk, events)
		}
		var me *V1MagicError
		if !errors.As(events[1].err, &me) || me.Got != Testnet4.Magic() || me.Want != Mainnet {
			t.Fatalf("chunk %d: err = %v, want *V1MagicError", chunk, events[1].err)
		}
		// The error fires as soon as the header is in.
		if len(events[1].raw) != V1HeaderSize {
			t.Errorf("chunk %d: error after %d bytes, want %d", chunk, len(events[1].raw), V1HeaderSize)
		}
		if len(rest) != V1HeaderSize {
			t.Errorf("chunk %d: %d bytes unconsumed, want %d", chunk, len(rest), V1HeaderSize)
		}
		// Sticky.
		if msg, n, err := d.Decode(mustV1(t, Mainnet, "verack", nil)); msg != nil || n != 0 || err != events[1].err {
			t.Errorf("chunk %d: after error Decode = %v, %d, %v", chunk, msg, n, err)
		}
	}
}

func TestV1Decoder_Oversize(t *testing.T) {
	tests := []struct {
		name       string
		maxPayload int
		length     uint32
	}{
		{"default", 0, MaxV1PayloadLen + 1},
		{"max uint32", 0, 1<<32 - 1},
		{"custom", 1000, 1001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &V1Decoder{MaxPayload: tt.maxPayload}
			hdr := v1Hdr(Mainnet, "block", tt.length, [4]byte{})
			var (
				msg *V1Message
				n   int
				err error
			)
			in := append(hdr[:], make([]byte, 100)...)
			allocs := testing.AllocsPerRun(1, func() {
				*d = V1Decoder{MaxPayload: tt.maxPayload}
				msg, n, err = d.Decode(in)
			})
			var le *V1PayloadTooLongError
			if msg != nil || n != V1HeaderSize || !errors.As(err, &le) || le.Len != int64(tt.length) {
				t.Fatalf("Decode = %v, %d, %v", msg, n, err)
			}
			// Only the error itself is allocated, never the payload.
			if allocs > 1 || d.buf != nil {
				t.Errorf("%v allocations, buffer of %d bytes", allocs, cap(d.buf))
			}
			if _, n, err2 := d.Decode([]byte{0}); n != 0 || err2 != err {
				t.Errorf("not sticky: %d, %v", n, err2)
			}
		})
	}
}

// A header announcing the largest payload must not make the decoder set
// aside the whole of it before the bytes arrive.
func TestV1Decoder_GrowsWithInput(t *testing.T) {
	d := &V1Decoder{}
	hdr := v1Hdr(Mainnet, "block", MaxV1PayloadLen, [4]byte{})
	if _, n, err := d.Decode(append(hdr[:], 1, 2, 3)); n != V1HeaderSize+3 || err != nil {
		t.Fatalf("Decode = %d, %v", n, err)
	}
	if cap(d.buf) > v1MinAlloc {
		t.Fatalf("buffer of %d bytes after 3 payload bytes", cap(d.buf))
	}
	chunk := make([]byte, 100_000)
	for range 10 {
		if _, _, err := d.Decode(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if got := cap(d.buf); got > 2*(3+10*len(chunk)) {
		t.Fatalf("buffer of %d bytes after %d payload bytes", got, 3+10*len(chunk))
	}
	// Feed the rest; the checksum (zero) is wrong, which costs one message.
	rest := make([]byte, MaxV1PayloadLen-3-10*len(chunk))
	_, n, err := d.Decode(rest)
	if n != len(rest) || !errors.Is(err, ErrV1Checksum) {
		t.Fatalf("Decode = %d, %v; want %d, ErrV1Checksum", n, err, len(rest))
	}
	if cap(d.buf) != MaxV1PayloadLen {
		t.Errorf("buffer of %d bytes for a payload of %d", cap(d.buf), MaxV1PayloadLen)
	}
	// The next message does not keep the big buffer.
	verack := mustV1(t, Mainnet, "verack", nil)
	msg, _, err := d.Decode(verack)
	if err != nil || msg == nil || msg.Command != "verack" {
		t.Fatalf("Decode(verack) = %v, %v", msg, err)
	}
	if cap(d.buf) > v1RetainedBufSize {
		t.Errorf("kept a buffer of %d bytes", cap(d.buf))
	}
}

func TestV1Decoder_Recoverable(t *testing.T) {
	badSum := mustV1(t, Mainnet, "ping", []byte("12345678"))
	badSum[V1HeaderSize-1] ^= 1
	badPayload := mustV1(t, Mainnet, "tx", []byte("some transaction"))
	badPayload[len(badPayload)-1] ^= 0x80
	badCmd := mustV1(t, Mainnet, "verack", []byte("payload"))
	badCmd[4+7] = 'x' // "verack\x00x..."
	badCmdEmpty := mustV1(t, Mainnet, "verack", nil)
	clear(badCmdEmpty[4:16])
	good := mustV1(t, Mainnet, "pong", []byte("87654321"))

	tests := []struct {
		name    string
		bad     []byte
		checkFn func(error) bool
	}{
		{"bad checksum field", badSum, func(err error) bool { return errors.Is(err, ErrV1Checksum) }},
		{"bad payload", badPayload, func(err error) bool { return errors.Is(err, ErrV1Checksum) }},
		{"bad command", badCmd, func(err error) bool { var e *InvalidCommandError; return errors.As(err, &e) }},
		{"empty command", badCmdEmpty, func(err error) bool { var e *InvalidCommandError; return errors.As(err, &e) }},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 3, 1000} {
			t.Run(tt.name+"/"+strconv.Itoa(chunk), func(t *testing.T) {
				stream := append(append(append([]byte{}, good...), tt.bad...), good...)
				events, rest := decodeV1(t, &V1Decoder{}, stream, func() int { return chunk })
				if len(rest) != 0 || len(events) != 3 {
					t.Fatalf("%d events, %d bytes left", len(events), len(rest))
				}
				if events[0].err != nil || events[2].err != nil || events[2].command != "pong" {
					t.Fatalf("good messages around the bad one: %+v", events)
				}
				if !tt.checkFn(events[1].err) || !bytes.Equal(events[1].raw, tt.bad) {
					t.Fatalf("bad message: err %v over %d bytes", events[1].err, len(events[1].raw))
				}
			})
		}
	}
}

func TestV1Decoder_Truncated(t *testing.T) {
	full := mustV1(t, Mainnet, "version", mustHex(t, mainnetVersionHex)[V1HeaderSize:])
	for _, cut := range []int{0, 1, 4, 16, V1HeaderSize - 1, V1HeaderSize, V1HeaderSize + 1, len(full) - 1} {
		d := &V1Decoder{}
		events, rest := decodeV1(t, d, full[:cut], func() int { return 3 })
		if len(events) != 0 || len(rest) != cut {
			t.Errorf("cut %d: %d events, %d bytes pending", cut, len(events), len(rest))
		}
		// Completing the stream yields the message.
		msg, n, err := d.Decode(full[cut:])
		if err != nil || msg == nil || msg.Command != "version" || n != len(full)-cut {
			t.Errorf("cut %d: completing gives %v, %d, %v", cut, msg, n, err)
		}
	}
	// An empty input is no progress and no error.
	if msg, n, err := (&V1Decoder{}).Decode(nil); msg != nil || n != 0 || err != nil {
		t.Errorf("Decode(nil) = %v, %d, %v", msg, n, err)
	}
}

func TestV1Decoder_Allocs(t *testing.T) {
	msg1350 := mustV1(t, Mainnet, "tx", make([]byte, 1350))
	verack := mustV1(t, Mainnet, "verack", nil)
	d := &V1Decoder{}
	allocs := testing.AllocsPerRun(100, func() {
		for _, m := range [][]byte{msg1350, verack} {
			if msg, n, err := d.Decode(m); msg == nil || n != len(m) || err != nil {
				t.Fatalf("Decode = %v, %d, %v", msg, n, err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run in the steady state", allocs)
	}
}

func FuzzV1Decoder(f *testing.F) {
	verack := mustV1(f, Mainnet, "verack", nil)
	version := mustHex(f, mainnetVersionHex)
	ping := mustV1(f, Mainnet, "ping", []byte("12345678"))
	badSum := bytes.Clone(ping)
	badSum[20] ^= 0xff
	badCmd := bytes.Clone(ping)
	badCmd[9] = 'x'
	f.Add(byte(0), uint16(0), verack)
	f.Add(byte(1), uint16(0), append(bytes.Clone(version), verack...))
	f.Add(byte(2), uint16(0), append(append(bytes.Clone(ping), badSum...), ping...))
	f.Add(byte(3), uint16(0), append(bytes.Clone(badCmd), verack...))
	f.Add(byte(1), uint16(50), version)                                     // over the limit
	f.Add(byte(2), uint16(0), append(bytes.Clone(verack), version[:30]...)) // truncated
	f.Add(byte(4), uint16(0), mustV1(f, Testnet3, "verack", nil))           // another network
	f.Add(byte(8), uint16(0), mustV1(f, Testnet4, "inv", []byte{1, 2, 3}))  // sel>>2 == 2: Testnet4
	f.Fuzz(func(t *testing.T, sel byte, maxPayload uint16, data []byte) {
		// Bits 0-1 of sel choose the chunking, the rest the network.
		net := Networks[int(sel>>2)%len(Networks)]
		rng := rand.New(rand.NewPCG(uint64(sel), uint64(len(data))))
		chunkings := []func() int{
			func() int { return len(data) },
			func() int { return 1 },
			func() int { return 1 + rng.IntN(32) },
			func() int { return 1 + rng.IntN(4096) },
		}
		events, rest := decodeV1(t, &V1Decoder{Network: net, MaxPayload: int(maxPayload)}, data, chunkings[sel&3])
		// Chunking changes nothing.
		whole, wholeRest := decodeV1(t, &V1Decoder{Network: net, MaxPayload: int(maxPayload)}, data, chunkings[0])
		if len(events) != len(whole) || !bytes.Equal(rest, wholeRest) {
			t.Fatalf("chunked: %d events, %d left; whole: %d events, %d left", len(events), len(rest), len(whole), len(wholeRest))
		}
		for i, ev := range events {
			w := whole[i]
			if ev.command != w.command || !bytes.Equal(ev.payload, w.payload) || errText(ev.err) != errText(w.err) || !bytes.Equal(ev.raw, w.raw) {
				t.Fatalf("event %d differs: chunked %q %v, whole %q %v", i, ev.command, ev.err, w.command, w.err)
			}
			if ev.err != nil && !strings.HasPrefix(ev.err.Error(), "v2core: ") {
				t.Fatalf("error %q lacks the package prefix", ev.err)
			}
			if len(ev.raw) < V1HeaderSize {
				t.Fatalf("event %d over %d bytes, less than a header", i, len(ev.raw))
			}
			h, herr := ParseV1Header((*[V1HeaderSize]byte)(ev.raw), net, int(maxPayload))
			switch {
			case ev.err == nil:
				// Anything decoded re-encodes to the same bytes.
				out, err := AppendV1Message(nil, net, ev.command, ev.payload)
				if err != nil || !bytes.Equal(out, ev.raw) {
					t.Fatalf("re-encoding %q: %v\n%x\nwant\n%x", ev.command, err, out, ev.raw)
				}
			case v1Recoverable(ev.err):
				if len(ev.raw) != V1HeaderSize+h.Length {
					t.Fatalf("recoverable %v over %d bytes for a %d-byte payload", ev.err, len(ev.raw), h.Length)
				}
				if errors.Is(ev.err, ErrV1Checksum) && (herr != nil || v1Checksum(ev.raw[V1HeaderSize:]) == h.Checksum) {
					t.Fatalf("checksum error for a header with %v and a matching checksum", herr)
				}
			default:
				if len(ev.raw) != V1HeaderSize || herr == nil || herr.Error() != ev.err.Error() {
					t.Fatalf("final error %v over %d bytes; header parse: %v", ev.err, len(ev.raw), herr)
				}
			}
		}
		// What is left is an unfinished message.
		if len(rest) >= V1HeaderSize && (len(events) == 0 || events[len(events)-1].err == nil || v1Recoverable(events[len(events)-1].err)) {
			h, err := ParseV1Header((*[V1HeaderSize]byte)(rest), net, int(maxPayload))
			var ce *InvalidCommandError
			if err != nil && !errors.As(err, &ce) || len(rest) >= V1HeaderSize+h.Length {
				t.Fatalf("%d bytes left over, header %+v, %v", len(rest), h, err)
			}
		}
	})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func BenchmarkV1Decoder(b *testing.B) {
	for _, size := range []int{0, 64, 1350, 8 << 10} {
		msg := mustV1(b, Mainnet, "tx", make([]byte, size))
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			d := &V1Decoder{}
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if m, _, err := d.Decode(msg); m == nil || err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// An 8 KiB message arriving in TCP-segment-sized reads.
	msg := mustV1(b, Mainnet, "block", make([]byte, 8<<10))
	b.Run("8192-in-1350s", func(b *testing.B) {
		d := &V1Decoder{}
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			for in := msg; len(in) > 0; {
				_, n, err := d.Decode(in[:min(1350, len(in))])
				if err != nil {
					b.Fatal(err)
				}
				in = in[n:]
			}
		}
	})
}

func BenchmarkAppendV1Message(b *testing.B) {
	for _, size := range []int{64, 1350, 8 << 10} {
		payload := make([]byte, size)
		buf := make([]byte, 0, V1HeaderSize+size)
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				var err error
				if buf, err = AppendV1Message(buf[:0], Mainnet, "tx", payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

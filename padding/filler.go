package padding

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
)

// Filler writes garbage bytes.
//
// Fillers hold no state beyond their configuration; Fill does not
// allocate. A Filler may be shared between goroutines, each with its own
// *rand.Rand.
type Filler interface {
	// Fill overwrites all of p with bytes drawn using r.
	Fill(r *rand.Rand, p []byte)
	// String names the filler and its parameters.
	String() string
}

var (
	_ Filler = RandomFiller{}
	_ Filler = LowPopcountFiller{}
	_ Filler = PrintableFiller{}
)

// fillWords fills p eight bytes at a time from word, in little-endian
// order, and the tail from the low bytes of one more word.
func fillWords(p []byte, word func() uint64) {
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, word())
		p = p[8:]
	}
	if len(p) > 0 {
		w := word()
		for i := range p {
			p[i] = byte(w >> (8 * i))
		}
	}
}

// RandomFiller fills with uniform random bytes, as Bitcoin Core fills its
// garbage. Its zero value is ready to use.
type RandomFiller struct{}

// Fill implements [Filler].
func (RandomFiller) Fill(r *rand.Rand, p []byte) { fillWords(p, r.Uint64) }

func (RandomFiller) String() string { return "random" }

// LowPopcountFiller fills with bytes whose bits are set independently,
// each with probability Ones/8, so that a byte has Ones set bits on
// average (a uniform byte has 4). The bytes stay unpredictable: a byte
// carries 8·H(Ones/8) bits of entropy, 4.3, 6.5 or 7.6 for Ones = 1, 2, 3.
//
// Its zero value is ready to use and has Ones = 2.
type LowPopcountFiller struct {
	// Ones is the expected number of set bits per byte: 1, 2 or 3.
	// Zero means 2. Call [LowPopcountFiller.Validate] before use; Fill
	// panics on any other value.
	Ones int
}

// Validate reports whether f.Ones is 0, 1, 2 or 3.
func (f LowPopcountFiller) Validate() error {
	if f.Ones < 0 || f.Ones > 3 {
		return &RangeError{"lowpopcount", "ones", fmt.Sprint(f.Ones), "0..3 (0 means 2)"}
	}
	return nil
}

// Fill implements [Filler]. It builds each bit from independent fair
// bits: a&b&c is set with probability 1/8, a&b with 1/4, a&(b|c) with 3/8.
func (f LowPopcountFiller) Fill(r *rand.Rand, p []byte) {
	switch f.Ones {
	case 1:
		fillWords(p, func() uint64 { return r.Uint64() & r.Uint64() & r.Uint64() })
	case 0, 2:
		fillWords(p, func() uint64 { return r.Uint64() & r.Uint64() })
	case 3:
		fillWords(p, func() uint64 { return r.Uint64() & (r.Uint64() | r.Uint64()) })
	default:
		panic(fmt.Sprintf("padding: LowPopcountFiller.Ones = %d, want 0..3", f.Ones))
	}
}

func (f LowPopcountFiller) String() string {
	ones := f.Ones
	if ones == 0 {
		ones = 2
	}
	return fmt.Sprintf("lowpopcount(%d)", ones)
}

// PrintableFiller fills with printable ASCII, each byte uniform over the
// 95 values 0x20 (space) to 0x7e (~). Its zero value is ready to use.
type PrintableFiller struct{}

// Fill implements [Filler]. It draws random bytes and keeps those below
// 190 = 2·95, mapping each to 0x20 + b mod 95: exact uniformity for the
// price of discarding a quarter of the draws.
func (PrintableFiller) Fill(r *rand.Rand, p []byte) {
	for len(p) > 0 {
		w := r.Uint64()
		for range 8 {
			b := byte(w)
			w >>= 8
			if b >= 2*95 {
				continue
			}
			p[0] = 0x20 + b%95
			p = p[1:]
			if len(p) == 0 {
				return
			}
		}
	}
}

func (PrintableFiller) String() string { return "printable" }

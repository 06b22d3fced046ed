package fet

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestCheck(t *testing.T) {
	rnd := func(n int, seed byte) []byte {
		b := make([]byte, n)
		rand.NewChaCha8([32]byte{seed}).Read(b)
		// Break accidental printable runs and prefixes so the random
		// cases exercise Ex1 only.
		for i := range b {
			if i%8 == 0 {
				b[i] = 0x80 | b[i]&0x7f
			}
		}
		return b
	}
	cases := []struct {
		name string
		p    []byte
		want Rule
	}{
		{"random", rnd(500, 1), Blocked},
		{"zeros", make([]byte, 100), Ex1Popcount},
		{"ones", bytes.Repeat([]byte{0xff}, 100), Ex1Popcount},
		{"first six printable", append([]byte("abcdef"), rnd(200, 2)...), Ex2FirstSix},
		{"five printable", append([]byte("abcde\x81"), rnd(200, 3)...), Blocked},
		{"random, short", rnd(100, 4), Blocked},
		{"run of 21", append(append(rnd(100, 5), bytes.Repeat([]byte{'Q'}, 21)...), rnd(100, 6)...), Ex4PrintableRun},
		{"run of 20", append(append(rnd(100, 5), []byte("0123456789abcdefghij")...), rnd(100, 6)...), Blocked},
		{"tls", append([]byte{0x16, 0x03, 0x01}, rnd(300, 7)...), Ex5Protocol},
		{"http", append([]byte("GET /"), rnd(300, 8)...), Ex5Protocol},
	}
	for _, c := range cases {
		if got := Check(c.p); got != c.want {
			t.Errorf("%s: Check = %s, want %s", c.name, got, c.want)
		}
	}
	// More than half printable, but spread out so no run and no prefix.
	p := make([]byte, 0, 300)
	r := rnd(100, 9)
	for i := range 100 {
		p = append(p, r[i], 'x', 'y')
	}
	if got := Check(p); got != Ex3HalfPrintable && got != Ex1Popcount {
		t.Errorf("spread printable: %s", got)
	}
}

// TestCheck_Thresholds probes Ex1 at its exact edges: 3.4 and 4.6 set
// bits per byte are exempt, just inside them is not.
func TestCheck_Thresholds(t *testing.T) {
	// Ten bytes: 0x8f has 5 bits, 0x87 has 4, 0x83 has 3, 0x81 has 2;
	// all are non-printable.
	mk := func(counts ...int) []byte {
		v := map[int]byte{2: 0x81, 3: 0x83, 4: 0x87, 5: 0x8f}
		var b []byte
		for _, c := range counts {
			b = append(b, v[c])
		}
		return b
	}
	for _, c := range []struct {
		p    []byte
		want Rule
	}{
		{mk(3, 3, 3, 3, 3, 3, 4, 4, 4, 4), Ex1Popcount}, // 3.4
		{mk(3, 3, 3, 3, 3, 4, 4, 4, 4, 4), Blocked},     // 3.5
		{mk(5, 5, 5, 5, 5, 5, 4, 4, 4, 4), Ex1Popcount}, // 4.6
		{mk(5, 5, 5, 5, 5, 4, 4, 4, 4, 4), Blocked},     // 4.5
	} {
		if got := Check(c.p); got != c.want {
			t.Errorf("%x: %s, want %s", c.p, got, c.want)
		}
	}
}

// TestCheck_RandomBlocked: uniformly random payloads of BIP324's default
// first flight size are mostly blocked, as the paper found for fully
// encrypted protocols.
func TestCheck_RandomBlocked(t *testing.T) {
	r := rand.NewChaCha8([32]byte{42})
	blocked := 0
	const n = 2000
	for range n {
		b := make([]byte, 64+r.Uint64()%4096)
		r.Read(b)
		if Check(b) == Blocked {
			blocked++
		}
	}
	if blocked < n*9/10 {
		t.Fatalf("only %d of %d random flights blocked", blocked, n)
	}
}

func FuzzCheck(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1"))
	f.Add([]byte{0x16, 3, 1, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		r := Check(p)
		switch r {
		case Ex1Popcount, Ex2FirstSix, Ex3HalfPrintable, Ex4PrintableRun, Ex5Protocol, Blocked:
		default:
			t.Fatalf("unknown rule %q", r)
		}
		if Exempt(p) != (r != Blocked) {
			t.Fatal("Exempt disagrees with Check")
		}
	})
}

package bridgeauth

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"
)

func flight(t testing.TB, k *Keys, p, q []byte, now time.Time) []byte {
	var x [64]byte
	rand.Read(x[:])
	return k.AppendGarbage(x[:], &x, p, q, now)
}

func TestVerify(t *testing.T) {
	s, _ := NewSecret(rand.Reader)
	k := s.Keys()
	now := time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC)
	v, err := NewVerifier(k)
	if err != nil {
		t.Fatal(err)
	}
	for _, plen := range []int{0, 1, 100, 1352} {
		for _, qlen := range []int{0, 50} {
			f := flight(t, k, bytes.Repeat([]byte{'a'}, plen), bytes.Repeat([]byte{'b'}, qlen), now)
			if err := v.Verify(f, now); err != nil {
				t.Fatalf("p=%d q=%d: %v", plen, qlen, err)
			}
			if err := v.Verify(f, now); !errors.Is(err, ErrReplay) {
				t.Fatalf("replay: %v", err)
			}
		}
	}
	// Clock skew: an hour either way is fine, two are not.
	for _, d := range []time.Duration{-time.Hour, time.Hour, -2 * time.Hour, 2 * time.Hour} {
		f := flight(t, k, []byte("pp"), nil, now.Add(d))
		err := v.Verify(f, now)
		if ok := d.Abs() <= time.Hour; ok != (err == nil) {
			t.Errorf("skew %v: %v", d, err)
		}
		if d.Abs() > time.Hour && !errors.Is(err, ErrBadMAC) {
			t.Errorf("skew %v: %v, want ErrBadMAC", d, err)
		}
	}
	// Another bridge's secret: the mark is not there.
	other, _ := NewSecret(rand.Reader)
	if err := v.Verify(flight(t, other.Keys(), nil, nil, now), now); !errors.Is(err, ErrNoMark) {
		t.Errorf("other secret: %v", err)
	}
	// Any change to P breaks the MAC.
	f := flight(t, k, []byte("filler"), nil, now)
	f[64] ^= 1
	if err := v.Verify(f, now); !errors.Is(err, ErrBadMAC) {
		t.Errorf("changed P: %v", err)
	}
	// Cut before the MAC ends.
	f = flight(t, k, []byte("filler"), nil, now)
	if err := v.Verify(f[:len(f)-1], now); !errors.Is(err, ErrNoMark) {
		t.Errorf("cut MAC: %v", err)
	}
	if err := v.Verify(f[:95], now); !errors.Is(err, ErrShort) {
		t.Errorf("short: %v", err)
	}
	// A mark beyond 4095 bytes after the key is not looked for.
	f = flight(t, k, make([]byte, 4095-32+1-1), nil, now)
	if err := v.Verify(f, now); err != nil {
		t.Errorf("mark at the last place: %v", err)
	}
}

func TestSecret_Encoding(t *testing.T) {
	s, _ := NewSecret(rand.Reader)
	enc := s.Encode()
	if len(enc) != 43 {
		t.Fatalf("encoded secret is %d characters", len(enc))
	}
	back, err := ParseSecret(enc)
	if err != nil || back != s {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range []string{"", "abc", enc + "A", enc[:42], enc + "=", "!!" + enc[2:]} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if fmt.Sprint(s) == enc || fmt.Sprintf("%v", s) != "[bridge secret]" {
		t.Fatal("String reveals the secret")
	}
}

// TestVerify_Random: random flights are never accepted.
func TestVerify_Random(t *testing.T) {
	s, _ := NewSecret(rand.Reader)
	v, _ := NewVerifier(s.Keys())
	b := make([]byte, 4159)
	for range 2000 {
		rand.Read(b)
		if v.Verify(b, time.Now()) == nil {
			t.Fatal("a random flight verified")
		}
	}
}

func FuzzVerify(f *testing.F) {
	s := Secret{1}
	k := s.Keys()
	now := time.Unix(1_800_000_000, 0)
	var x [64]byte
	f.Add(k.AppendGarbage(x[:], &x, []byte("p"), []byte("q"), now))
	f.Add(make([]byte, 10))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, _ := NewVerifier(k)
		err := v.Verify(b, now)
		if err == nil && v.Verify(b, now) == nil {
			t.Fatal("accepted twice")
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	s := Secret{2}
	k := s.Keys()
	now := time.Now()
	v, _ := NewVerifier(k)
	var x [64]byte
	f := k.AppendGarbage(x[:], &x, make([]byte, 1000), make([]byte, 1000), now)
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		v.Verify(f, now) // replays after the first: the full cost but the filter insert
	}
}

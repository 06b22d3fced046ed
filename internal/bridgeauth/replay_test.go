package bridgeauth

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func mk(b byte) *[MarkSize]byte { return &[MarkSize]byte{b} }

// contents returns the set as hour -> marks, for comparisons.
func contents(s *replaySet) map[uint64]map[[MarkSize]byte]bool {
	out := make(map[uint64]map[[MarkSize]byte]bool)
	for h, b := range s.buckets {
		out[h] = make(map[[MarkSize]byte]bool)
		for m := range b {
			out[h][m] = true
		}
	}
	return out
}

func sameSet(a, b *replaySet) bool {
	if a.n != b.n || a.floor != b.floor || len(a.buckets) != len(b.buckets) {
		return false
	}
	ca, cb := contents(a), contents(b)
	for h, ms := range ca {
		if len(cb[h]) != len(ms) {
			return false
		}
		for m := range ms {
			if !cb[h][m] {
				return false
			}
		}
	}
	return true
}

// TestReplaySet_Expiry: a mark made for hour h is kept while the bridge's
// hour is at most h+1 (its MAC still verifies) and goes at h+2.
func TestReplaySet_Expiry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		h     uint64 // the flight's MAC hour
		e     uint64 // the bridge's hour when it was accepted
		later uint64 // the bridge's hour at the next accepted flight
		kept  bool
	}{
		{"same hour", 100, 100, 100, true},
		{"next hour", 100, 100, 101, true},
		{"edge: two hours on", 100, 100, 102, false},
		{"client ahead, kept while it verifies", 101, 100, 102, true},
		{"client ahead, gone after", 101, 100, 103, false},
		{"client behind, gone one hour on", 99, 100, 101, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newReplaySet(10)
			if err := s.testAndSet(tc.h, mk(1), tc.e); err != nil {
				t.Fatal(err)
			}
			if err := s.testAndSet(tc.later, mk(2), tc.later); err != nil {
				t.Fatal(err)
			}
			if got := s.seen(mk(1)); got != tc.kept {
				t.Fatalf("kept = %v, want %v", got, tc.kept)
			}
			// Kept or not, the old mark is refused: below the floor if
			// forgotten.
			if err := s.testAndSet(tc.h, mk(1), tc.later); !errors.Is(err, ErrReplay) {
				t.Fatalf("replay: %v", err)
			}
			if want := map[bool]int{true: 2, false: 1}[tc.kept]; s.n != want {
				t.Fatalf("n = %d, want %d", s.n, want)
			}
		})
	}
}

// TestReplaySet_ClockBack: after the clock steps back, a valid flight for
// an hour the set has forgotten is refused.
func TestReplaySet_ClockBack(t *testing.T) {
	s := newReplaySet(10)
	if err := s.testAndSet(100, mk(1), 100); err != nil {
		t.Fatal(err)
	}
	if err := s.testAndSet(97, mk(2), 98); !errors.Is(err, ErrReplay) {
		t.Fatalf("flight below the floor: %v", err)
	}
	if err := s.testAndSet(99, mk(3), 98); err != nil {
		t.Fatalf("flight at the floor: %v", err)
	}
	if s.floor != 99 {
		t.Fatalf("floor %d, want 99 (never lowered)", s.floor)
	}
}

// TestReplaySet_Bound: a full set evicts from the oldest hour and keeps
// the most recent marks.
func TestReplaySet_Bound(t *testing.T) {
	s := newReplaySet(4)
	for i, h := range []uint64{9, 10, 10, 11} {
		if err := s.testAndSet(h, mk(byte(i+1)), 10); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.testAndSet(11, mk(5), 10); err != nil {
		t.Fatal(err)
	}
	if s.n != 4 || s.seen(mk(1)) || !s.seen(mk(5)) || len(s.buckets[9]) != 0 {
		t.Fatalf("after one eviction: n=%d %v", s.n, contents(s))
	}
	if _, ok := s.buckets[9]; ok {
		t.Fatal("an empty bucket stayed")
	}
	for i := range 3 {
		s.testAndSet(11, mk(byte(6+i)), 10)
	}
	if s.n != 4 || len(s.buckets[11]) != 4 {
		t.Fatalf("after four evictions: n=%d %v", s.n, contents(s))
	}
	// A full set of a single bucket still takes the new mark.
	s = newReplaySet(1)
	s.testAndSet(10, mk(1), 10)
	s.testAndSet(10, mk(2), 10)
	if s.n != 1 || !s.seen(mk(2)) {
		t.Fatalf("max 1: %v", contents(s))
	}
}

func sampleSet() *replaySet {
	s := newReplaySet(100)
	s.floor = 41
	for i := range 30 {
		s.add(41+uint64(i%3), mk(byte(i+1)))
	}
	return s
}

func TestReplayFile_RoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "replay")
	want := sampleSet()
	f, err := writeSnapshot(path, want)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, err := readReplay(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !sameSet(got, want) {
		t.Fatalf("got %v floor %d, want %v floor %d", contents(got), got.floor, contents(want), want.floor)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != replayHeaderSize+30*replayRecordSize {
		t.Fatalf("file: %v, mode %v, size %d", err, fi.Mode(), fi.Size())
	}
	// Only the file is there: no temporary file left behind.
	assertOnly(t, dir, "replay")
	// A smaller bound loads the most recent marks.
	small, err := readReplay(path, 10)
	if err != nil || small.n != 10 {
		t.Fatalf("bounded load: %v, n=%d", err, small.n)
	}
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("directory holds %v, want %v", got, names)
	}
}

// TestReplayFile_FailedWrite: a snapshot that cannot be renamed into
// place leaves no temporary file.
func TestReplayFile_FailedWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "replay")
	if err := os.Mkdir(path, 0o700); err != nil { // rename onto a directory fails
		t.Fatal(err)
	}
	if _, err := writeSnapshot(path, sampleSet()); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want one naming %s", err, path)
	}
	assertOnly(t, dir, "replay")
}

// TestReplayFile_Damaged: every damage is an error naming the file, never
// a panic; OpenVerifier then moves the file aside and starts empty. The
// remains of one unfinished append are not damage.
func TestReplayFile_Damaged(t *testing.T) {
	var good []byte
	good = appendHeader(good, 41)
	for i := range 5 {
		good = appendRecord(good, 41, mk(byte(i+1)))
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name    string
		b       []byte
		wantErr string // "" means it loads
		n       int
	}{
		{"good", good, "", 5},
		{"header only", good[:replayHeaderSize], "", 0},
		{"torn last record", good[:len(good)-10], "", 4},
		{"last record garbled", edit(func(b []byte) []byte { b[len(b)-20] ^= 1; return b }), "", 4},
		{"zeros after a record", append(bytes.Clone(good), make([]byte, replayRecordSize)...), "", 5},
		{"empty", nil, "truncated", 0},
		{"truncated header", good[:20], "truncated", 0},
		{"bad magic", edit(func(b []byte) []byte { b[0] = 'B'; return b }), "bad magic", 0},
		{"wrong version", edit(func(b []byte) []byte { b[17] = 2; return b }), "version 2", 0},
		{"header checksum", edit(func(b []byte) []byte { b[21] ^= 1; return b }), "header checksum", 0},
		{"record in the middle", edit(func(b []byte) []byte { b[replayHeaderSize+40] ^= 1; return b }), "bad record 1", 0},
		{"reserved bytes set", edit(func(b []byte) []byte { b[replayHeaderSize+24] = 1; return b }), "bad record 0", 0},
		{"two records of zeros", append(bytes.Clone(good), make([]byte, 2*replayRecordSize)...), "bad record 5", 0},
		{"too large", append(bytes.Clone(good), make([]byte, maxReplayFileSize(100))...), "more than", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "replay")
			if err := os.WriteFile(path, tc.b, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := readReplay(path, 100)
			if tc.wantErr == "" {
				if err != nil || s.n != tc.n {
					t.Fatalf("err %v, n %v, want n=%d", err, s, tc.n)
				}
				return
			}
			if !errors.Is(err, ErrCorruptState) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want ErrCorruptState naming %s and saying %q", err, path, tc.wantErr)
			}
			v, err := openVerifier(Secret{3}.Keys(), path, 100)
			if v == nil || !errors.Is(err, ErrCorruptState) || !strings.Contains(err.Error(), path+".corrupt") {
				t.Fatalf("OpenVerifier: %v, %v", v, err)
			}
			defer v.Close()
			if v.set.n != 0 {
				t.Fatal("the set is not empty")
			}
			assertOnly(t, dir, "replay", "replay.corrupt")
			if aside, _ := os.ReadFile(path + ".corrupt"); !bytes.Equal(aside, tc.b) {
				t.Fatal("the damaged file was not kept as it was")
			}
			if s, err := readReplay(path, 100); err != nil || s.n != 0 {
				t.Fatalf("the new file: %v", err)
			}
		})
	}
}

// TestVerifier_Restart is the point of the file: a flight accepted by one
// Verifier is refused by the next one on the same file, while a fresh
// flight is accepted.
func TestVerifier_Restart(t *testing.T) {
	k := Secret{4}.Keys()
	now := time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC)
	for _, crash := range []bool{false, true} {
		name := map[bool]string{false: "clean stop", true: "crash"}[crash]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "replay")
			v1, err := OpenVerifier(k, path)
			if err != nil {
				t.Fatal(err)
			}
			var accepted [][]byte
			for range 3 {
				f := flight(t, k, []byte("p"), nil, now)
				if err := v1.Verify(f, now); err != nil {
					t.Fatal(err)
				}
				accepted = append(accepted, f)
			}
			if !crash {
				if err := v1.Close(); err != nil {
					t.Fatal(err)
				}
			} // else v1 is dropped as it is: what it accepted is on disk already.
			v2, err := OpenVerifier(k, path)
			if err != nil {
				t.Fatal(err)
			}
			defer v2.Close()
			for _, f := range accepted {
				if err := v2.Verify(f, now.Add(time.Hour)); !errors.Is(err, ErrReplay) {
					t.Fatalf("replay after restart: %v", err)
				}
			}
			if err := v2.Verify(flight(t, k, nil, nil, now), now); err != nil {
				t.Fatalf("fresh flight after restart: %v", err)
			}
			assertOnly(t, dir, "replay")
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v", fi.Mode())
			}
			if crash {
				v1.Close()
			}
		})
	}
}

// TestVerifier_ReplayUntilExpiry: with an injected clock, a replayed
// flight is refused at every moment, as a replay while its MAC verifies
// and for its MAC after; the set forgets it exactly when the MAC stops
// verifying.
func TestVerifier_ReplayUntilExpiry(t *testing.T) {
	k := Secret{5}.Keys()
	path := filepath.Join(t.TempDir(), "replay")
	v, err := OpenVerifier(k, path)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	start := time.Date(2026, 11, 24, 10, 59, 59, 0, time.UTC)
	f := flight(t, k, nil, nil, start.Add(time.Hour)) // client an hour ahead
	if err := v.Verify(f, start); err != nil {
		t.Fatal(err)
	}
	for d := time.Duration(0); d <= 4*time.Hour; d += 15 * time.Minute {
		now := start.Add(d)
		// A fresh flight at now lets the set prune.
		if err := v.Verify(flight(t, k, nil, nil, now), now); err != nil {
			t.Fatalf("+%v fresh: %v", d, err)
		}
		err := v.Verify(f, now)
		macValid := hour(now) <= hour(start)+2
		switch {
		case macValid && !errors.Is(err, ErrReplay):
			t.Fatalf("+%v: %v, want ErrReplay", d, err)
		case !macValid && !errors.Is(err, ErrBadMAC):
			t.Fatalf("+%v: %v, want ErrBadMAC", d, err)
		}
		if kept := v.set.seen(ptr(k.Mark((*[64]byte)(f)))); kept != macValid {
			t.Fatalf("+%v: mark kept %v while the MAC verifies %v", d, kept, macValid)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestVerifier_Snapshot: once the file carries enough dead records it is
// rewritten with the live ones, atomically, and still loads.
func TestVerifier_Snapshot(t *testing.T) {
	k := Secret{6}.Keys()
	dir := t.TempDir()
	path := filepath.Join(dir, "replay")
	v, err := OpenVerifier(k, path)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for range 3 {
		if err := v.Verify(flight(t, k, nil, nil, now), now); err != nil {
			t.Fatal(err)
		}
	}
	// Three hours on, the marks are dead; pretend the file is long.
	v.journal.records += 2 * compactSlack
	later := now.Add(3 * time.Hour)
	if err := v.Verify(flight(t, k, nil, nil, later), later); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != replayHeaderSize+replayRecordSize || v.journal.records != 1 {
		t.Fatalf("after the snapshot: %v, size %d, records %d", err, fi.Size(), v.journal.records)
	}
	assertOnly(t, dir, "replay")
	// The journal appends to the renamed file.
	if err := v.Verify(flight(t, k, nil, nil, later), later); err != nil {
		t.Fatal(err)
	}
	s, err := readReplay(path, MaxReplayMarks)
	if err != nil || !sameSet(s, v.set) || s.n != 2 {
		t.Fatalf("reload: %v, n %d", err, s.n)
	}
}

// TestVerifier_WriteFails: a flight that cannot be recorded is refused,
// and refused as a replay afterwards.
func TestVerifier_WriteFails(t *testing.T) {
	k := Secret{7}.Keys()
	v, err := OpenVerifier(k, filepath.Join(t.TempDir(), "replay"))
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	now := time.Now()
	f := flight(t, k, nil, nil, now)
	if err := v.Verify(f, now); err == nil || errors.Is(err, ErrReplay) {
		t.Fatalf("Verify after Close: %v", err)
	}
	if err := v.Verify(f, now); !errors.Is(err, ErrReplay) {
		t.Fatalf("again: %v", err)
	}
}

// TestOpenVerifier_Unwritable: a state directory that cannot take the
// file is an error, not a Verifier.
func TestOpenVerifier_Unwritable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "replay")
	if v, err := OpenVerifier(Secret{8}.Keys(), path); v != nil || err == nil || errors.Is(err, ErrCorruptState) {
		t.Fatalf("%v, %v", v, err)
	}
}

func TestVerifier_Concurrent(t *testing.T) {
	k := Secret{9}.Keys()
	v, err := OpenVerifier(k, filepath.Join(t.TempDir(), "replay"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	now := time.Now()
	f := flight(t, k, nil, nil, now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if v.Verify(flight(t, k, nil, nil, now), now) != nil {
					t.Error("fresh flight refused")
				}
				if v.Verify(f, now) == nil {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if accepted != 1 {
		t.Fatalf("one flight accepted %d times", accepted)
	}
}

func FuzzDecodeReplay(f *testing.F) {
	good := appendHeader(nil, 41)
	for i := range 3 {
		good = appendRecord(good, 41+uint64(i), mk(byte(i+1)))
	}
	f.Add(good)
	f.Add(good[:replayHeaderSize])
	f.Add(good[:len(good)-5])
	f.Add([]byte(replayMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, n, err := decodeReplay(b, 4)
		if err != nil {
			return
		}
		if s.n > 4 || n > (len(b)-replayHeaderSize)/replayRecordSize {
			t.Fatalf("n=%d records=%d from %d bytes", s.n, n, len(b))
		}
		// What loads writes back to the same set.
		again := appendHeader(nil, s.floor)
		for _, h := range s.hours() {
			if h < s.floor {
				t.Fatalf("hour %d below the floor %d", h, s.floor)
			}
			for m := range s.buckets[h] {
				again = appendRecord(again, h, &m)
			}
		}
		s2, _, err := decodeReplay(again, 4)
		if err != nil || !sameSet(s, s2) {
			t.Fatalf("re-encoded: %v", err)
		}
	})
}

// BenchmarkVerify_File is the cost of an accepted flight with the file:
// the MACs and one appended, synced record.
func BenchmarkVerify_File(b *testing.B) {
	k := Secret{10}.Keys()
	v, err := OpenVerifier(k, filepath.Join(b.TempDir(), "replay"))
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	now := time.Now()
	var x [64]byte
	b.ReportAllocs()
	for b.Loop() {
		rand.Read(x[:])
		f := k.AppendGarbage(x[:], &x, nil, nil, now)
		if err := v.Verify(f, now); err != nil {
			b.Fatal(err)
		}
	}
}

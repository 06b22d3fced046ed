package bridgeauth

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// The replay set remembers the mark of every accepted flight for as long
// as that flight's MAC can verify, so a recorded flight replayed to the
// bridge is refused, after a restart too when the set lives in a file
// (OpenVerifier).
//
// Marks are kept in buckets by the hour E their MAC was made for. A MAC
// for E verifies while the bridge's hour is E-1, E or E+1, so a bucket can
// go once the bridge's hour has passed E+1. The set also keeps a floor:
// the lowest hour it still remembers. A flight whose MAC hour is below
// the floor is refused as a possible replay even though its mark is not
// in the set, because a mark for that hour may have been forgotten. The
// floor rises only when a flight is accepted, to the accepting hour minus
// one, so it follows a clock that a client agreed with (its MAC verified);
// if the bridge's clock later steps back, flights for hours already
// forgotten are refused until the clock catches up, instead of being
// accepted a second time. Live buckets are therefore always within
// [floor, floor+2]: at most three, which is Window.
//
// The set is bounded by MaxReplayMarks. When it is full, an accepted
// flight evicts a mark from the oldest bucket (the one that expires
// first): the bridge keeps serving and the evicted mark could be replayed.
// The other choice, refusing every new flight until marks expire, would
// let a flood lock out every client for up to three hours. Only a holder
// of the bridge's secret can add a mark (each needs a valid MAC), and such
// a holder can confirm the bridge by connecting to it; a replay would gain
// it nothing. Marks of ordinary clients are never evicted below the bound.

// MaxReplayMarks bounds the marks a Verifier remembers: about 1 M flights
// accepted within Window (97 a second for three hours). At the bound the
// set takes about 30 MiB of memory (27 MiB measured with go1.26) and its
// file at most 2*MaxReplayMarks+compactSlack+1 records of 32 bytes (about
// 64 MiB) before a snapshot shrinks it to the live marks.
const MaxReplayMarks = 1 << 20

// ErrCorruptState wraps the warning OpenVerifier returns for a replay
// file it could not read: damaged, truncated or of an unknown version.
var ErrCorruptState = errors.New("bridgeauth: replay file damaged")

// replaySet is the in-memory set. Not safe for concurrent use; the zero
// value is not usable (see newReplaySet).
type replaySet struct {
	max     int
	n       int
	floor   uint64
	buckets map[uint64]map[[MarkSize]byte]struct{}
}

func newReplaySet(max int) *replaySet {
	return &replaySet{max: max, buckets: make(map[uint64]map[[MarkSize]byte]struct{})}
}

// seen reports whether mark is in the set, whatever its hour.
func (s *replaySet) seen(mark *[MarkSize]byte) bool {
	for _, b := range s.buckets {
		if _, ok := b[*mark]; ok {
			return true
		}
	}
	return false
}

// testAndSet records the mark of a flight whose MAC verified for hour h,
// accepted at the bridge's hour e. It returns ErrReplay, and records
// nothing, if the mark is known or h is below the floor.
func (s *replaySet) testAndSet(h uint64, mark *[MarkSize]byte, e uint64) error {
	if h < s.floor || s.seen(mark) {
		return ErrReplay
	}
	if e > 0 {
		s.prune(e - 1)
	}
	s.add(h, mark)
	return nil
}

// prune raises the floor to floor (if higher) and forgets the buckets
// below it.
func (s *replaySet) prune(floor uint64) {
	if floor <= s.floor {
		return
	}
	s.floor = floor
	for h, b := range s.buckets {
		if h < floor {
			s.n -= len(b)
			delete(s.buckets, h)
		}
	}
}

// add inserts mark under hour h, which the caller has checked is not below
// the floor, evicting a mark of the oldest bucket if the set is full.
func (s *replaySet) add(h uint64, mark *[MarkSize]byte) {
	b := s.buckets[h]
	if b == nil {
		b = make(map[[MarkSize]byte]struct{})
		s.buckets[h] = b
	}
	if _, ok := b[*mark]; ok {
		return
	}
	if s.n >= s.max {
		s.evict()
		if s.buckets[h] == nil { // evict emptied and dropped b
			s.buckets[h] = b
		}
	}
	b[*mark] = struct{}{}
	s.n++
}

// evict forgets one mark of the lowest non-empty bucket.
func (s *replaySet) evict() {
	for _, h := range s.hours() {
		b := s.buckets[h]
		for m := range b {
			delete(b, m)
			s.n--
			if len(b) == 0 {
				delete(s.buckets, h)
			}
			return
		}
		delete(s.buckets, h)
	}
}

// hours returns the hours of the buckets, lowest first.
func (s *replaySet) hours() []uint64 {
	hs := make([]uint64, 0, len(s.buckets))
	for h := range s.buckets {
		hs = append(hs, h)
	}
	slices.Sort(hs)
	return hs
}

// The replay file, all integers big-endian, CRC-32C (Castagnoli) checksums:
//
//	header, 32 bytes:
//	  0  magic    "bip324-pt replay" (16 bytes)
//	 16  version  uint16 = 1
//	 18  recsize  uint16 = 32
//	 20  floor    uint64   the set's floor (lowest hour remembered)
//	 28  crc      uint32   of bytes 0..27
//	record, 32 bytes, any number of them:
//	  0  hour     uint64   the hour the flight's MAC was made for
//	  8  mark     [16]byte
//	 24  zero     uint32   reserved, must be 0
//	 28  crc      uint32   of bytes 0..27
//
// The file is written whole (a snapshot: temporary file in the same
// directory, fsync, rename, fsync of the directory) when it is opened and
// when it has grown to twice the live marks; in between, each accepted
// flight appends one record and fsyncs before Verify returns nil. A crash
// during an append leaves at most one record's worth of bytes after the
// last valid record: that flight's fsync never returned, so it was never
// accepted, and the reader ignores those bytes. Anything else that does
// not parse makes the file damaged (ErrCorruptState).
const (
	replayMagic      = "bip324-pt replay"
	replayVersion    = 1
	replayHeaderSize = 32
	replayRecordSize = 32
	// compactSlack is how many dead records the file may carry beyond
	// the live ones before a snapshot replaces it.
	compactSlack = 4096
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxReplayFileSize is the largest file decodeReplay reads: more than the
// writer ever leaves (2*max+compactSlack records and a torn one).
func maxReplayFileSize(max int) int64 {
	return replayHeaderSize + int64(4*max+compactSlack+1)*replayRecordSize
}

func appendHeader(dst []byte, floor uint64) []byte {
	start := len(dst)
	dst = append(dst, replayMagic...)
	dst = binary.BigEndian.AppendUint16(dst, replayVersion)
	dst = binary.BigEndian.AppendUint16(dst, replayRecordSize)
	dst = binary.BigEndian.AppendUint64(dst, floor)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

func appendRecord(dst []byte, h uint64, mark *[MarkSize]byte) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, h)
	dst = append(dst, mark[:]...)
	dst = binary.BigEndian.AppendUint32(dst, 0)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// decodeReplay parses a replay file into a set bounded by max, and says
// how many whole records it read. Its errors describe what is wrong,
// without the file's name. It never panics.
func decodeReplay(b []byte, max int) (*replaySet, int, error) {
	if len(b) < replayHeaderSize {
		return nil, 0, fmt.Errorf("truncated: %d bytes, shorter than the %d-byte header", len(b), replayHeaderSize)
	}
	if int64(len(b)) > maxReplayFileSize(max) {
		return nil, 0, fmt.Errorf("%d bytes, more than the %d a replay file can hold", len(b), maxReplayFileSize(max))
	}
	hd := b[:replayHeaderSize]
	if string(hd[:16]) != replayMagic {
		return nil, 0, errors.New("not a bip324-pt replay file (bad magic)")
	}
	if v := binary.BigEndian.Uint16(hd[16:]); v != replayVersion {
		return nil, 0, fmt.Errorf("version %d, this bip324-pt reads version %d", v, replayVersion)
	}
	if crc32.Checksum(hd[:28], castagnoli) != binary.BigEndian.Uint32(hd[28:]) {
		return nil, 0, errors.New("bad header checksum")
	}
	if rs := binary.BigEndian.Uint16(hd[18:]); rs != replayRecordSize {
		return nil, 0, fmt.Errorf("record size %d, want %d", rs, replayRecordSize)
	}
	s := newReplaySet(max)
	s.floor = binary.BigEndian.Uint64(hd[20:])
	rest := b[replayHeaderSize:]
	n := 0
	for len(rest) >= replayRecordSize {
		r := rest[:replayRecordSize]
		if crc32.Checksum(r[:28], castagnoli) != binary.BigEndian.Uint32(r[28:]) ||
			binary.BigEndian.Uint32(r[24:]) != 0 {
			if len(rest) == replayRecordSize {
				break // the remains of an unfinished append
			}
			return nil, 0, fmt.Errorf("bad record %d (at byte %d)", n, len(b)-len(rest))
		}
		if h := binary.BigEndian.Uint64(r); h >= s.floor {
			s.add(h, (*[MarkSize]byte)(r[8:24]))
		}
		rest = rest[replayRecordSize:]
		n++
	}
	return s, n, nil
}

// journal keeps a replay set in its file. Not safe for concurrent use.
type journal struct {
	path    string
	f       *os.File // open on path, at its end
	records int      // whole records in the file, live or dead
	retryAt int      // after a failed snapshot, records before the next try
	buf     [replayRecordSize]byte
}

// add appends a record and waits for it to reach the disk.
func (j *journal) add(h uint64, mark *[MarkSize]byte) error {
	rec := appendRecord(j.buf[:0], h, mark)
	if _, err := j.f.Write(rec); err != nil {
		return err
	}
	j.records++
	return j.f.Sync()
}

// needsSnapshot reports whether the file carries too many dead records.
func (j *journal) needsSnapshot(live int) bool {
	return j.records > 2*live+compactSlack && j.records >= j.retryAt
}

// snapshot replaces the file with one holding exactly s, atomically.
// On error the old file and its handle stay as they were.
func (j *journal) snapshot(s *replaySet) error {
	f, err := writeSnapshot(j.path, s)
	if err != nil {
		j.retryAt = 2 * j.records // don't rewrite on every flight while it fails
		return err
	}
	j.retryAt = 0
	if j.f != nil {
		j.f.Close()
	}
	j.f, j.records = f, s.n
	return nil
}

func (j *journal) close() error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// writeSnapshot writes s to a temporary file next to path (mode 0600),
// syncs it, renames it to path and syncs the directory. It returns the
// file, open at its end, for appends.
func writeSnapshot(path string, s *replaySet) (_ *os.File, err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".tmp*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("bridgeauth: replay file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("bridgeauth: writing replay file %s: %w", path, err)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	var rec [replayRecordSize]byte
	w.Write(appendHeader(rec[:0], s.floor))
	for _, h := range s.hours() {
		for m := range s.buckets[h] {
			w.Write(appendRecord(rec[:0], h, &m))
		}
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return nil, err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: not every system can sync a directory
		d.Close()
	}
	return f, nil
}

// openJournal loads the replay file at path into a set bounded by max and
// writes it back as a fresh snapshot. A missing file is an empty set. A
// damaged one is moved to path+".corrupt" and replaced by an empty set;
// openJournal then returns the journal, the set and a warning wrapping
// ErrCorruptState. Any other error (reading, renaming, writing) returns
// no journal.
func openJournal(path string, max int) (*journal, *replaySet, error) {
	var warn error
	s, err := readReplay(path, max)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s = newReplaySet(max)
	case errors.Is(err, ErrCorruptState):
		aside := path + ".corrupt"
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, nil, fmt.Errorf("%w; moving it aside failed (%v): delete it to start with an empty replay set", err, rerr)
		}
		warn = fmt.Errorf("%w; moved to %s and started with an empty replay set: flights recorded in the %v before this start can be replayed once", err, aside, Window)
		s = newReplaySet(max)
	case err != nil:
		return nil, nil, fmt.Errorf("bridgeauth: replay file: %w", err)
	}
	j := &journal{path: path}
	if err := j.snapshot(s); err != nil {
		return nil, nil, err
	}
	return j, s, warn
}

// readReplay reads and decodes the file at path. A file that does not
// decode gives an error wrapping ErrCorruptState and naming the file.
func readReplay(path string, max int) (*replaySet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxReplayFileSize(max) {
		return nil, fmt.Errorf("%w: %s: %d bytes, more than the %d a replay file can hold", ErrCorruptState, path, fi.Size(), maxReplayFileSize(max))
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && fi.Size() > 0 {
		return nil, err
	}
	s, _, err := decodeReplay(b, max)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptState, path, err)
	}
	return s, nil
}

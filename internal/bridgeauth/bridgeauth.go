// Package bridgeauth authenticates a bip324-pt client to its bridge inside
// a valid BIP324 first flight, as DESIGN.md ("Between two bip324-pt ends")
// proposes. The bridge's secret K, 32 random bytes, reaches clients in the
// bridge line. From it, HKDF-SHA256 with salt "bip324-pt/1" derives k_mark
// (info "mark") and k_mac (info "mac"). For an initiator whose
// ElligatorSwift key is X, the garbage is
//
//	P ‖ mark ‖ mac ‖ Q
//	mark = HMAC-SHA256(k_mark, X)[:16]
//	mac  = HMAC-SHA256(k_mac, X ‖ P ‖ mark ‖ E)[:16]
//
// where P and Q are the profile's filler and E is the hour since the Unix
// epoch as 8 big-endian bytes. The bridge computes the mark from X, finds
// it in what follows, checks the MAC for E-1, E and E+1 in constant time,
// and refuses a mark it has seen within the window, across restarts when
// its replay set is kept in the state directory (OpenVerifier; the file's
// format is drawn in replay.go). Without K, mark and MAC look like any
// other garbage bytes; with K but not X's private key, a replayed flight
// is refused, and a fresh one cannot be made.
package bridgeauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/crypto/hkdf"
)

// Sizes of the construction.
const (
	SecretSize = 32
	MarkSize   = 16
	MACSize    = 16
	// Overhead is what authentication adds to the garbage.
	Overhead = MarkSize + MACSize
	keySize  = 64
	// MaxGarbageLen is BIP324's limit on garbage, which P, the mark, the
	// MAC and Q share.
	MaxGarbageLen = 4095
)

// Window is how far apart the client's and the bridge's clocks may be:
// the MAC is accepted for the previous, the current and the next hour.
// The replay set remembers each accepted mark until its MAC can no longer
// verify: three hours of buckets (see MaxReplayMarks and OpenVerifier).
const Window = 3 * time.Hour

// Errors from Verify. None of them goes back to the peer: a bridge that
// refuses a flight says nothing.
var (
	ErrShort  = errors.New("bridgeauth: first flight too short to hold a key, mark and MAC")
	ErrNoMark = errors.New("bridgeauth: no mark for this key in the first flight")
	ErrBadMAC = errors.New("bridgeauth: MAC does not verify in the time window")
	// ErrReplay is also the answer for a valid flight whose MAC hour
	// the replay set may have forgotten (the bridge's clock stepped back).
	ErrReplay = errors.New("bridgeauth: mark seen before (replay)")
)

// Secret is a bridge's secret. Its String method hides it, so a Secret
// printed by mistake leaks nothing; Encode gives the bridge-line form.
type Secret [SecretSize]byte

// NewSecret draws a secret from rand.
func NewSecret(rand io.Reader) (Secret, error) {
	var s Secret
	if _, err := io.ReadFull(rand, s[:]); err != nil {
		return s, fmt.Errorf("bridgeauth: making a secret: %w", err)
	}
	return s, nil
}

// ParseSecret decodes the secret= value of a bridge line: 32 bytes in
// unpadded base64url.
func ParseSecret(s string) (Secret, error) {
	var out Secret
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != SecretSize {
		return out, errors.New("bridgeauth: secret= wants 32 bytes in unpadded base64url (43 characters)")
	}
	copy(out[:], b)
	return out, nil
}

// Encode returns the secret as unpadded base64url, for the bridge line.
func (s Secret) Encode() string { return base64.RawURLEncoding.EncodeToString(s[:]) }

// String hides the secret.
func (s Secret) String() string { return "[bridge secret]" }

// Keys are the two keys derived from a secret. Safe for concurrent use.
type Keys struct {
	mark, mac [32]byte
}

// Keys derives k_mark and k_mac.
func (s Secret) Keys() *Keys {
	k := new(Keys)
	for _, d := range []struct {
		info string
		out  []byte
	}{{"mark", k.mark[:]}, {"mac", k.mac[:]}} {
		r := hkdf.New(sha256.New, s[:], []byte("bip324-pt/1"), []byte(d.info))
		if _, err := io.ReadFull(r, d.out); err != nil {
			panic("bridgeauth: hkdf of 32 bytes failed: " + err.Error())
		}
	}
	return k
}

// Mark returns the mark for the initiator key x.
func (k *Keys) Mark(x *[keySize]byte) [MarkSize]byte {
	h := hmac.New(sha256.New, k.mark[:])
	h.Write(x[:])
	var sum [32]byte
	h.Sum(sum[:0])
	return [MarkSize]byte(sum[:MarkSize])
}

func hour(t time.Time) uint64 { return uint64(t.Unix() / 3600) }

// macFor computes the MAC of x ‖ p ‖ mark ‖ e.
func (k *Keys) macFor(x *[keySize]byte, p []byte, mark *[MarkSize]byte, e uint64) [MACSize]byte {
	h := hmac.New(sha256.New, k.mac[:])
	h.Write(x[:])
	h.Write(p)
	h.Write(mark[:])
	var eb [8]byte
	binary.BigEndian.PutUint64(eb[:], e)
	h.Write(eb[:])
	var sum [32]byte
	h.Sum(sum[:0])
	return [MACSize]byte(sum[:MACSize])
}

// AppendGarbage appends p ‖ mark ‖ mac ‖ q to dst for the key x at time
// now. p and q are the caller's filler; len(p)+len(q)+Overhead must not
// exceed MaxGarbageLen.
func (k *Keys) AppendGarbage(dst []byte, x *[keySize]byte, p, q []byte, now time.Time) []byte {
	if len(p)+len(q)+Overhead > MaxGarbageLen {
		panic(fmt.Sprintf("bridgeauth: garbage of %d bytes", len(p)+len(q)+Overhead))
	}
	mark := k.Mark(x)
	mac := k.macFor(x, p, &mark, hour(now))
	dst = append(dst, p...)
	dst = append(dst, mark[:]...)
	dst = append(dst, mac[:]...)
	return append(dst, q...)
}

// Verifier checks first flights at a bridge. Safe for concurrent use.
//
// It remembers the mark of every flight it accepted for as long as that
// flight's MAC can verify (Window), in memory (NewVerifier) or also in a
// file that survives restarts (OpenVerifier). A Verifier owns its file:
// no two Verifiers, in one process or two, may share one.
type Verifier struct {
	keys *Keys

	mu      sync.Mutex // guards set and journal
	set     *replaySet
	journal *journal // nil: in memory only
}

// NewVerifier returns a verifier whose replay set lives in memory only, so
// a restart forgets it. The error is always nil.
func NewVerifier(k *Keys) (*Verifier, error) {
	return &Verifier{keys: k, set: newReplaySet(MaxReplayMarks)}, nil
}

// OpenVerifier returns a verifier whose replay set is kept in the file at
// path (mode 0600, made if missing), so that a flight accepted before a
// restart is refused after it. It loads the file and writes it back
// pruned, atomically; Verify then records each accepted flight on disk
// before it returns nil. Call Close when done.
//
// A damaged, truncated or unknown-version file does not stop the bridge:
// OpenVerifier moves it to path+".corrupt", starts with an empty set, and
// returns a working Verifier together with an error wrapping
// ErrCorruptState that names both files; the caller logs it as a warning.
// (Until Window has passed, flights accepted before the restart could
// then be replayed once each: the same exposure as a bridge without a
// replay file, and better than a bridge that does not start.) Any other
// error, such as an unwritable directory, returns a nil Verifier.
func OpenVerifier(k *Keys, path string) (*Verifier, error) {
	return openVerifier(k, path, MaxReplayMarks)
}

func openVerifier(k *Keys, path string, max int) (*Verifier, error) {
	j, s, err := openJournal(path, max)
	if j == nil {
		return nil, err
	}
	return &Verifier{keys: k, set: s, journal: j}, err
}

// Close closes the replay file. Verify after Close refuses every flight
// that would need recording. Close of an in-memory Verifier does nothing.
func (v *Verifier) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.journal == nil {
		return nil
	}
	return v.journal.close()
}

// Verify checks the bytes a bridge read first: the initiator's 64-byte
// key and what followed it. It looks for the key's mark within the first
// MaxGarbageLen bytes after the key, checks the MAC for the hours around
// now, and records the mark so that the same flight is refused next time.
// It returns nil only for a valid, fresh flight, and, for a Verifier with
// a file, only once the mark is on disk: a flight that could not be
// recorded is refused with an error wrapping the I/O error (failing
// closed: better a refused client than a replay accepted after a crash).
func (v *Verifier) Verify(b []byte, now time.Time) error {
	if len(b) < keySize+Overhead {
		return ErrShort
	}
	x := (*[keySize]byte)(b[:keySize])
	g := b[keySize:min(len(b), keySize+MaxGarbageLen)]
	mark := v.keys.Mark(x)
	i := bytes.Index(g, mark[:])
	if i < 0 || i+Overhead > len(g) {
		return ErrNoMark
	}
	got := g[i+MarkSize : i+Overhead]
	e := hour(now)
	ok := 0
	var matched uint64 // which hour verified is no secret: the sender chose it
	for _, h := range []uint64{e - 1, e, e + 1} {
		want := v.keys.macFor(x, g[:i], &mark, h)
		c := subtle.ConstantTimeCompare(got, want[:])
		ok |= c
		if c == 1 {
			matched = h
		}
	}
	if ok != 1 {
		return ErrBadMAC
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.set.testAndSet(matched, &mark, e); err != nil {
		return err
	}
	if v.journal == nil {
		return nil
	}
	// The mark stays in memory even if it cannot be written, so this
	// process refuses the flight from now on either way.
	if err := v.journal.add(matched, &mark); err != nil {
		return fmt.Errorf("bridgeauth: recording the mark in %s: %w", v.journal.path, err)
	}
	if v.journal.needsSnapshot(v.set.n) {
		// A failed snapshot leaves the appended file in place, which
		// still holds every mark; the next accepted flight tries again.
		v.journal.snapshot(v.set)
	}
	return nil
}

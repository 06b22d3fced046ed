package v2core

import (
	crand "crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ellswift"
	"golang.org/x/crypto/hkdf"
)

// ErrBadKey is returned when the peer's 64 bytes do not yield a shared
// secret. BIP324 makes every 64-byte string decode to a point, so this
// only happens if the ECDH result is the point at infinity.
var ErrBadKey = errors.New("v2core: peer's ellswift key gives no shared secret")

// keyPair is our ephemeral key: the secret scalar and the ElligatorSwift
// encoding of its public key that goes on the wire.
type keyPair struct {
	priv     *btcec.PrivateKey
	ellswift [EllswiftKeySize]byte
}

// newKeyPair draws a private key and an ElligatorSwift encoding of its
// public key from rand. Curve arithmetic is btcec's; the loop is the
// encoder of BIP324's "ElligatorSwift encoding of public keys": a random u
// and a random case until XSwiftECInv yields a t.
func newKeyPair(rand io.Reader) (*keyPair, error) {
	var b [32]byte
	for {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return nil, fmt.Errorf("v2core: reading key randomness: %w", err)
		}
		// A scalar, reduced mod n, without computing the public key:
		// encodeKey does that once, where it needs it.
		var k btcec.ModNScalar
		k.SetByteSlice(b[:])
		clear(b[:])
		if k.IsZero() {
			continue
		}
		priv := btcec.PrivKeyFromScalar(&k)
		k.Zero()
		kp, err := encodeKey(priv, rand)
		return kp, err
	}
}

// encodeKey finds an ElligatorSwift encoding for priv's public key, taking
// u and the case from rand.
func encodeKey(priv *btcec.PrivateKey, rand io.Reader) (*keyPair, error) {
	var pub btcec.JacobianPoint
	btcec.ScalarBaseMultNonConst(&priv.Key, &pub)
	pub.ToAffine()
	x := pub.X
	x.Normalize()

	var ub [33]byte
	for {
		if _, err := io.ReadFull(rand, ub[:]); err != nil {
			return nil, fmt.Errorf("v2core: reading key randomness: %w", err)
		}
		var u btcec.FieldVal
		u.SetByteSlice(ub[:32])
		u.Normalize()
		t := ellswift.XSwiftECInv(&u, &x, int(ub[32]&7))
		if t == nil {
			continue
		}
		kp := &keyPair{priv: priv}
		u.PutBytesUnchecked(kp.ellswift[:32])
		t.Normalize()
		t.PutBytesUnchecked(kp.ellswift[32:])
		return kp, nil
	}
}

// ecdhTagHash is SHA256("bip324_ellswift_xonly_ecdh"), the BIP340-style
// tag of the shared-secret hash.
var ecdhTagHash = sha256.Sum256([]byte("bip324_ellswift_xonly_ecdh"))

// sharedSecret computes BIP324's ecdh_secret: the tagged hash of the
// initiator's encoding, the responder's encoding and the x-only ECDH.
func sharedSecret(priv *btcec.PrivateKey, ours, theirs *[EllswiftKeySize]byte, initiator bool) ([32]byte, error) {
	x, err := ellswift.EllswiftECDHXOnly(*theirs, priv)
	if err != nil {
		return [32]byte{}, ErrBadKey
	}
	var zero [32]byte
	if x == zero {
		return [32]byte{}, ErrBadKey
	}
	h := sha256.New()
	h.Write(ecdhTagHash[:])
	h.Write(ecdhTagHash[:])
	if initiator {
		h.Write(ours[:])
		h.Write(theirs[:])
	} else {
		h.Write(theirs[:])
		h.Write(ours[:])
	}
	h.Write(x[:])
	clear(x[:])
	var s [32]byte
	h.Sum(s[:0])
	return s, nil
}

// sessionKeys is everything BIP324 derives from the shared secret.
type sessionKeys struct {
	initiatorL, initiatorP [32]byte
	responderL, responderP [32]byte
	// garbageTerminators is the initiator's terminator, then the responder's.
	garbageTerminators [2 * GarbageTerminatorSize]byte
	sessionID          [32]byte
}

// deriveKeys runs HKDF-SHA256 with salt "bitcoin_v2_shared_secret" ‖ magic
// over the shared secret (BIP324, "Shared secret computation").
func deriveKeys(secret *[32]byte, net Network) *sessionKeys {
	magic := net.Magic()
	salt := append([]byte("bitcoin_v2_shared_secret"), magic[:]...)
	prk := hkdf.Extract(sha256.New, secret[:], salt)
	k := new(sessionKeys)
	expand := func(info string, out []byte) {
		if _, err := io.ReadFull(hkdf.Expand(sha256.New, prk, []byte(info)), out); err != nil {
			panic("v2core: hkdf expand of 32 bytes failed: " + err.Error())
		}
	}
	expand("initiator_L", k.initiatorL[:])
	expand("initiator_P", k.initiatorP[:])
	expand("responder_L", k.responderL[:])
	expand("responder_P", k.responderP[:])
	expand("garbage_terminators", k.garbageTerminators[:])
	expand("session_id", k.sessionID[:])
	clear(prk)
	return k
}

func (k *sessionKeys) wipe() { *k = sessionKeys{} }

// KeyPool holds ephemeral keys made ahead of time, so that a responder
// has its key and its ElligatorSwift encoding before the first byte
// arrives, as Bitcoin Core does (it makes its key when it accepts the
// connection): the reply to a first flight then costs no curve
// arithmetic. Each key is handed out once and never reused; a pool that
// has run dry makes the key on the spot. Safe for concurrent use. Close
// stops its goroutine.
type KeyPool struct {
	keys chan *keyPair
	rand io.Reader
	stop chan struct{}
	done chan struct{}
}

// NewKeyPool starts a pool of size keys drawn from rand (nil:
// crypto/rand), refilled in the background as they are taken.
func NewKeyPool(size int, rand io.Reader) *KeyPool {
	if rand == nil {
		rand = crand.Reader
	}
	p := &KeyPool{keys: make(chan *keyPair, max(size, 1)), rand: rand, stop: make(chan struct{}), done: make(chan struct{})}
	go p.fill()
	return p
}

// fill keeps the pool full; it runs as a goroutine until Close.
func (p *KeyPool) fill() {
	defer close(p.done)
	for {
		kp, err := newKeyPair(p.rand)
		if err != nil {
			return
		}
		select {
		case p.keys <- kp:
		case <-p.stop:
			return
		}
	}
}

// get returns a key from the pool, or a fresh one if it is empty.
func (p *KeyPool) get() (*keyPair, error) {
	select {
	case kp := <-p.keys:
		return kp, nil
	default:
		return newKeyPair(p.rand)
	}
}

// Close stops the refill and wipes the keys left.
func (p *KeyPool) Close() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	<-p.done
	for {
		select {
		case kp := <-p.keys:
			kp.priv.Zero()
		default:
			return
		}
	}
}

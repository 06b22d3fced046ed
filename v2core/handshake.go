package v2core

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"
)

// Handshake errors. Each one is final: the handshake keeps returning it.
var (
	// ErrV1 matches a [*V1Error]: the peer opened with the v1 prefix of our
	// network, so it speaks v1.
	ErrV1 = errors.New("v2core: peer speaks v1")
	// ErrV1WrongNetwork means the peer's first bytes are a v1 version
	// message for another network. Bitcoin Core closes at once.
	ErrV1WrongNetwork = errors.New("v2core: peer sent a v1 version message for another network")
	// ErrNoTerminator means the peer's garbage terminator did not appear
	// within MaxGarbageLen bytes of garbage.
	ErrNoTerminator = errors.New("v2core: no garbage terminator within 4095 bytes of garbage")
)

// V1Error reports that a responder read the 16-byte v1 prefix of its own
// network. Prefix and Rest are what it read, so the caller can hand the
// connection to a v1 implementation without losing a byte.
type V1Error struct {
	Prefix [V1PrefixSize]byte
	// Rest holds bytes read after the prefix: [Conn] reads in bulk, and
	// the rest of the v1 message often came in the same read. The
	// sans-io [Handshake.Feed] leaves it nil: it consumes only the prefix
	// and the caller still has the rest.
	Rest []byte
}

func (e *V1Error) Error() string { return ErrV1.Error() }

// Is makes errors.Is(err, ErrV1) true for a *V1Error.
func (e *V1Error) Is(target error) bool { return target == ErrV1 }

// Hooks lets the owner of a connection shape its handshake. A nil Hooks in
// [Config] means plain BIP324 as Bitcoin Core sends it: garbage of a uniform
// random length in 0..4095 of random bytes, no decoys, an empty version
// packet. Hooks run inside [NewInitiator], [NewResponder] and [Handshake.Feed],
// on the caller's goroutine; they must be quick and must not block.
type Hooks interface {
	// AppendGarbage appends the garbage that follows our key to dst and
	// returns the extended slice. key is our ElligatorSwift key, for
	// garbage that depends on it. At most MaxGarbageLen bytes.
	AppendGarbage(dst []byte, key *[EllswiftKeySize]byte) []byte
	// HandshakeDecoys returns the contents lengths of the decoy packets to
	// send between our garbage terminator and our version packet.
	HandshakeDecoys() []int
	// VersionContents returns the contents of our version packet. BIP324
	// peers ignore them; two bip324-pt ends may negotiate with them.
	VersionContents() []byte
}

// FirstWriteHook is an optional interface of [Hooks], found by type
// assertion, with which [Conn] cuts its first flight into two writes.
type FirstWriteHook interface {
	// FirstWriteSize is called once, when the first flight is ready: our
	// key and garbage (for a responder whose peer's key came with its
	// first bytes, also what follows them). If it returns n with
	// EllswiftKeySize <= n < the flight's length, Conn writes n bytes,
	// then the rest. Any other value, zero included, means one write, as
	// Bitcoin Core sends it.
	FirstWriteSize() int
}

// Config configures a handshake. The zero value, or a nil *Config, is plain
// BIP324 on mainnet with Bitcoin Core's limits.
type Config struct {
	// Network salts the key derivation and names the v1 prefix a
	// responder falls back on. Zero means Mainnet.
	Network Network
	// Rand is the source of keys, encodings and default garbage. Nil means
	// crypto/rand. Tests set a seeded reader for repeatable handshakes.
	Rand io.Reader
	// Hooks shape the handshake; nil means plain BIP324.
	Hooks Hooks
	// KeyPool, when set, supplies our ephemeral key, made ahead of time
	// (a responder then answers a first flight without curve
	// arithmetic, as fast as Core). Nil means a key drawn from Rand now.
	KeyPool *KeyPool
	// MaxContentLen caps the contents length accepted from the peer, the
	// version packet and decoys included. Zero means DefaultMaxContentLen;
	// values above MaxLengthField are treated as MaxLengthField.
	MaxContentLen int
	// HandshakeTimeout bounds a [Conn]'s handshake, from its start to the
	// peer's version packet. Zero means DefaultHandshakeTimeout (60 s,
	// as Bitcoin Core); negative means no limit. The sans-io [Handshake]
	// reads no clock and ignores it.
	HandshakeTimeout time.Duration
}

func (c *Config) populate() Config {
	var cfg Config
	if c != nil {
		cfg = *c
	}
	if cfg.Network == 0 {
		cfg.Network = Mainnet
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.MaxContentLen <= 0 {
		cfg.MaxContentLen = DefaultMaxContentLen
	}
	cfg.MaxContentLen = min(cfg.MaxContentLen, MaxLengthField)
	return cfg
}

type hsState uint8

const (
	stateV1Check hsState = iota // responder: comparing with the v1 prefix
	stateKey                    // reading the peer's 64-byte key
	stateGarbage                // scanning for the peer's terminator
	stateVersion                // reading packets up to the peer's version packet
	stateDone
	stateFailed
)

// Handshake is the BIP324 handshake of one end, as a state machine over
// byte slices: feed it what the peer sent with [Handshake.Feed], and send
// what [Handshake.Output] returns, cut into writes as the caller likes.
// It never blocks, reads a clock or touches a socket.
//
//	initiator                                   responder
//	key ‖ garbage                      ───►     (v1 prefix check, 16 bytes)
//	                                   ◄───     key ‖ garbage
//	terminator ‖ decoys ‖ version      ───►
//	                                   ◄───     terminator ‖ decoys ‖ version
//
// Both ends send their terminator and version packet as soon as they have
// the peer's key, and may send application packets right after their own
// version packet, before the peer's arrives ([Handshake.Session]).
//
// Not safe for concurrent use.
type Handshake struct {
	cfg       Config
	initiator bool
	state     hsState
	err       error

	key     *keyPair
	garbage []byte // ours: sent after the key, the AAD of our first packet
	out     []byte // output not yet taken by Output

	// peer holds the first bytes the peer sent: the v1 prefix candidate,
	// then its key.
	peer     [EllswiftKeySize]byte
	peerHave int

	recvTerminator [GarbageTerminatorSize]byte
	scan           []byte // peer's garbage and terminator so far
	peerGarbageLen int

	sess *Session
}

// NewInitiator starts the handshake of the end that opened the connection.
// Its key and garbage are ready in [Handshake.Output] at once.
func NewInitiator(cfg *Config) (*Handshake, error) {
	h, err := newHandshake(cfg, true)
	if err != nil {
		return nil, err
	}
	h.state = stateKey
	h.out = append(h.out, h.key.ellswift[:]...)
	h.out = append(h.out, h.garbage...)
	return h, nil
}

// NewResponder starts the handshake of the end that accepted the
// connection. It sends nothing until the peer's first bytes differ from the
// v1 prefix of its network; after exactly the 16 bytes of that prefix,
// Feed returns a [*V1Error].
func NewResponder(cfg *Config) (*Handshake, error) {
	h, err := newHandshake(cfg, false)
	if err != nil {
		return nil, err
	}
	h.state = stateV1Check
	return h, nil
}

func newHandshake(c *Config, initiator bool) (*Handshake, error) {
	h := &Handshake{cfg: c.populate(), initiator: initiator, peerGarbageLen: -1}
	var kp *keyPair
	var err error
	if h.cfg.KeyPool != nil {
		kp, err = h.cfg.KeyPool.get()
	} else {
		kp, err = newKeyPair(h.cfg.Rand)
	}
	if err != nil {
		return nil, err
	}
	h.key = kp
	if h.cfg.Hooks != nil {
		h.garbage = h.cfg.Hooks.AppendGarbage(nil, &kp.ellswift)
		if len(h.garbage) > MaxGarbageLen {
			return nil, fmt.Errorf("v2core: hooks gave %d bytes of garbage, more than %d", len(h.garbage), MaxGarbageLen)
		}
	} else {
		g, err := randomGarbage(h.cfg.Rand)
		if err != nil {
			return nil, err
		}
		h.garbage = g
	}
	h.out = make([]byte, 0, EllswiftKeySize+len(h.garbage))
	return h, nil
}

// randomGarbage is Bitcoin Core's garbage: a length uniform in 0..4095
// (4096 values, so 12 random bits give it without bias), random bytes.
func randomGarbage(r io.Reader) ([]byte, error) {
	var lb [2]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return nil, fmt.Errorf("v2core: reading garbage randomness: %w", err)
	}
	g := make([]byte, int(lb[0])|int(lb[1]&0x0f)<<8)
	if _, err := io.ReadFull(r, g); err != nil {
		return nil, fmt.Errorf("v2core: reading garbage randomness: %w", err)
	}
	return g, nil
}

// Output appends the bytes that are ready to send to dst and returns the
// extended slice; each byte is handed out once. After Feed returns an
// error, the connection should be closed without sending anything more.
func (h *Handshake) Output(dst []byte) []byte {
	dst = append(dst, h.out...)
	h.out = h.out[:0]
	return dst
}

// Pending reports how many output bytes wait to be taken by Output.
func (h *Handshake) Pending() int { return len(h.out) }

// Done reports whether the peer's version packet has arrived. Bytes after it
// belong to the session: pass them to the [Session.Decoder].
func (h *Handshake) Done() bool { return h.state == stateDone }

// Initiator reports whether this is the initiator's handshake.
func (h *Handshake) Initiator() bool { return h.initiator }

// OurKey returns our ElligatorSwift key as sent on the wire.
func (h *Handshake) OurKey() [EllswiftKeySize]byte { return h.key.ellswift }

// Session returns the session once the peer's key has arrived, and nil
// before. From then on our version packet is in the output, and
// [Session.Seal] may append application packets after it.
func (h *Handshake) Session() *Session { return h.sess }

// PeerVersion returns the contents of the peer's version packet, once
// [Handshake.Done]. Plain BIP324 peers send it empty. Contents longer than
// [MaxPeerVersionLen] are dropped: PeerVersion is then nil.
func (h *Handshake) PeerVersion() []byte {
	if h.sess == nil {
		return nil
	}
	return h.sess.dec.version
}

// PeerKey returns the peer's 64-byte ElligatorSwift key once it has
// arrived, and false before.
func (h *Handshake) PeerKey() ([EllswiftKeySize]byte, bool) {
	if h.peerHave < EllswiftKeySize || h.sess == nil {
		return [EllswiftKeySize]byte{}, false
	}
	return h.peer, true
}

// PeerGarbage returns a copy of the peer's garbage once its terminator
// has been found, and nil before. A bridge looks for its client's
// authentication there.
func (h *Handshake) PeerGarbage() []byte {
	if h.peerGarbageLen < 0 {
		return nil
	}
	return append([]byte{}, h.scan[:h.peerGarbageLen]...)
}

// PeerGarbageLen returns the length of the peer's garbage once its
// terminator has been found, and -1 before.
func (h *Handshake) PeerGarbageLen() int {
	return h.peerGarbageLen
}

// Err returns the error that stopped the handshake, or nil.
func (h *Handshake) Err() error { return h.err }

// Feed consumes bytes the peer sent and returns how many it used. It stops
// at the end of the peer's version packet, so when [Handshake.Done] is
// true, in[n:] belongs to the session. On a *V1Error it has consumed the 16
// prefix bytes. After any error the connection must be closed; Output may
// still hold our key but should not be sent.
func (h *Handshake) Feed(in []byte) (n int, err error) {
	if h.err != nil {
		return 0, h.err
	}
	for n < len(in) && h.err == nil {
		var k int
		switch h.state {
		case stateV1Check:
			k = h.feedV1Check(in[n:])
		case stateKey:
			k = h.feedKey(in[n:])
		case stateGarbage:
			k = h.feedGarbage(in[n:])
		case stateVersion:
			k = h.feedVersion(in[n:])
		default:
			return n, nil
		}
		n += k
	}
	return n, h.err
}

func (h *Handshake) fail(err error) {
	h.err = err
	h.state = stateFailed
	if h.sess == nil {
		clear(h.out)
		h.out = h.out[:0]
	}
}

// feedV1Check takes up to the 16 prefix bytes, as Bitcoin Core's
// KEY_MAYBE_V1 state does: the first mismatch commits to v2 and releases
// our key and garbage; a full match means v1.
func (h *Handshake) feedV1Check(in []byte) int {
	k := copy(h.peer[h.peerHave:V1PrefixSize], in)
	h.peerHave += k
	prefix := h.cfg.Network.V1Prefix()
	if !bytes.Equal(h.peer[:h.peerHave], prefix[:h.peerHave]) {
		h.state = stateKey
		h.out = append(h.out, h.key.ellswift[:]...)
		h.out = append(h.out, h.garbage...)
		return k
	}
	if h.peerHave == V1PrefixSize {
		e := &V1Error{}
		copy(e.Prefix[:], h.peer[:V1PrefixSize])
		h.fail(e)
	}
	return k
}

// v1VersionCommand is bytes 4..16 of any network's v1 prefix.
var v1VersionCommand = [12]byte{'v', 'e', 'r', 's', 'i', 'o', 'n'}

func (h *Handshake) feedKey(in []byte) int {
	k := copy(h.peer[h.peerHave:], in)
	h.peerHave += k
	// Bitcoin Core's responder closes on a v1 version message of another
	// network, checked whenever key bytes arrive and 16 are in.
	if !h.initiator && h.peerHave >= V1PrefixSize && [12]byte(h.peer[4:16]) == v1VersionCommand {
		h.fail(ErrV1WrongNetwork)
		return k
	}
	if h.peerHave < EllswiftKeySize {
		return k
	}
	secret, err := sharedSecret(h.key.priv, &h.key.ellswift, &h.peer, h.initiator)
	if err != nil {
		h.fail(err)
		return k
	}
	keys := deriveKeys(&secret, h.cfg.Network)
	clear(secret[:])
	h.key.priv.Zero()
	s := newSession(keys, h.initiator, h.cfg.MaxContentLen)
	sendTerm, recvTerm := keys.garbageTerminators[:16], keys.garbageTerminators[16:]
	if !h.initiator {
		sendTerm, recvTerm = recvTerm, sendTerm
	}
	copy(h.recvTerminator[:], recvTerm)
	h.out = append(h.out, sendTerm...)
	keys.wipe()

	// Our first packet carries our garbage as AAD, decoy or version.
	s.sendAAD = h.garbage
	if h.cfg.Hooks != nil {
		for _, d := range h.cfg.Hooks.HandshakeDecoys() {
			if d < 0 || d > DefaultMaxContentLen {
				h.fail(fmt.Errorf("v2core: hooks asked for a decoy of %d bytes", d))
				return k
			}
			h.out = s.seal(h.out, nil, d, true)
		}
		h.out = s.seal(h.out, h.cfg.Hooks.VersionContents(), 0, false)
	} else {
		h.out = s.seal(h.out, []byte{}, 0, false)
	}
	s.sentVersion = true
	h.sess = s
	h.scan = make([]byte, 0, maxScanLen)
	h.state = stateGarbage
	return k
}

// feedGarbage scans for the peer's terminator. Bitcoin Core reads garbage
// one byte at a time and gives up when garbage and terminator reach 4111
// bytes with no match; this reads in bulk and stops at the same byte.
func (h *Handshake) feedGarbage(in []byte) int {
	old := len(h.scan)
	k := min(len(in), maxScanLen-old)
	h.scan = append(h.scan, in[:k]...)
	from := max(0, old-GarbageTerminatorSize+1)
	if i := bytes.Index(h.scan[from:], h.recvTerminator[:]); i >= 0 {
		end := from + i + GarbageTerminatorSize
		h.scan = h.scan[:end]
		garbage := h.scan[:end-GarbageTerminatorSize]
		h.peerGarbageLen = len(garbage)
		h.sess.dec.aad = garbage
		h.sess.dec.versionPending = true
		h.state = stateVersion
		return end - old
	}
	if len(h.scan) == maxScanLen {
		h.fail(ErrNoTerminator)
	}
	return k
}

func (h *Handshake) feedVersion(in []byte) int {
	n := 0
	for n < len(in) {
		pkt, k, err := h.sess.dec.Decode(in[n:])
		n += k
		if err != nil {
			h.fail(err)
			return n
		}
		if pkt != nil && !h.sess.dec.versionPending {
			h.state = stateDone
			return n
		}
	}
	return n
}

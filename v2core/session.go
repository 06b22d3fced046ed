package v2core

import (
	"errors"
	"fmt"
	"slices"
)

// Errors from the receive path. Each one is final: the decoder keeps
// returning it, and the connection must be closed.
var (
	// ErrAuth is returned when a packet's tag does not verify. It says
	// nothing about why (BIP324: "the connection must be terminated").
	ErrAuth = errors.New("v2core: message authentication failed")
)

// ContentTooLongError reports a decrypted length above the receiver's
// limit. It is detected from the 3-byte length alone, before the body is
// read or any memory is set aside for it.
type ContentTooLongError struct {
	Len, Max int
}

func (e *ContentTooLongError) Error() string {
	return fmt.Sprintf("v2core: packet contents of %d bytes exceed the limit of %d", e.Len, e.Max)
}

// Session holds the ciphers of an established BIP324 connection, one set per
// direction. It comes out of a completed key exchange ([Handshake.Session]).
//
// The send side ([Session.Seal], [Session.AppendDecoy]) and the receive side
// ([Session.Decoder]) are independent: one goroutine may send while another
// receives. Neither side is safe for concurrent use by several goroutines.
// Session never performs I/O.
type Session struct {
	id        [32]byte
	initiator bool

	sendL fsChaCha20
	sendP fsAEAD
	// sendAAD is our garbage, authenticated by the first packet we send and
	// then dropped. The handshake always seals that packet itself.
	sendAAD []byte
	// sentVersion is set once our version packet has been sealed; before
	// that, Seal would put application data ahead of it.
	sentVersion bool
	// sent counts the packets sealed, decoys and the version packet
	// included; sentDecoys the decoys among them.
	sent, sentDecoys uint64

	dec Decoder
}

func newSession(k *sessionKeys, initiator bool, maxContentLen int) *Session {
	s := &Session{id: k.sessionID, initiator: initiator}
	sendL, sendP, recvL, recvP := &k.initiatorL, &k.initiatorP, &k.responderL, &k.responderP
	if !initiator {
		sendL, sendP, recvL, recvP = recvL, recvP, sendL, sendP
	}
	s.sendL.init(sendL)
	s.sendP.init(sendP)
	s.dec.recvL.init(recvL)
	s.dec.recvP.init(recvP)
	s.dec.max = maxContentLen
	return s
}

// ID returns the session id: 32 bytes both ends derive from the key
// exchange. Two operators who compare it out of band, and see the same
// value, know no machine in the middle terminated the connection.
func (s *Session) ID() [32]byte { return s.id }

// Initiator reports whether this end started the connection.
func (s *Session) Initiator() bool { return s.initiator }

// Decoder returns the session's receive side.
func (s *Session) Decoder() *Decoder { return &s.dec }

// SealedLen returns the wire size of a packet with n bytes of contents.
func SealedLen(n int) int { return PacketOverhead + n }

// Seal appends to dst a packet that carries contents, with the ignore bit
// set if ignore is true (a decoy), and returns the extended slice. The
// packet is ready to write; the caller decides when and in how many writes.
// Seal allocates only when dst lacks room for [SealedLen](len(contents)).
//
// Seal panics if contents is longer than [MaxLengthField], which no
// receiver could accept, or if it is called before the handshake has sealed
// our version packet ([Handshake.Output] does that).
func (s *Session) Seal(dst, contents []byte, ignore bool) []byte {
	if !s.sentVersion {
		panic("v2core: Seal before the version packet was sent")
	}
	return s.seal(dst, contents, len(contents), ignore)
}

// AppendDecoy appends a decoy packet with n bytes of contents (zeros, which
// the encryption hides) and returns the extended slice. The receiver
// authenticates and drops it. Allocation and panics are as for Seal.
func (s *Session) AppendDecoy(dst []byte, n int) []byte {
	if !s.sentVersion {
		panic("v2core: AppendDecoy before the version packet was sent")
	}
	return s.seal(dst, nil, n, true)
}

// SealParts is [Session.Seal] with the contents given in pieces, joined as
// they are encrypted: a record header and the two halves of a ring buffer,
// say, with no copy into one slice first.
func (s *Session) SealParts(dst []byte, ignore bool, parts ...[]byte) []byte {
	if !s.sentVersion {
		panic("v2core: SealParts before the version packet was sent")
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	ret, body := s.sealBegin(dst, n, ignore)
	c := body[HeaderSize:]
	for _, p := range parts {
		c = c[copy(c, p):]
	}
	s.sealEnd(body)
	return ret
}

// seal appends one packet whose contents are contents, or n zero bytes when
// contents is nil.
func (s *Session) seal(dst, contents []byte, n int, ignore bool) []byte {
	if contents != nil {
		n = len(contents)
	}
	ret, body := s.sealBegin(dst, n, ignore)
	if contents != nil {
		copy(body[HeaderSize:], contents)
	} else {
		clear(body[HeaderSize:])
	}
	s.sealEnd(body)
	return ret
}

// sealBegin extends dst by a packet of n contents bytes, writes its
// encrypted length and its header, and returns the packet's plaintext
// region (header and contents) for the caller to fill.
func (s *Session) sealBegin(dst []byte, n int, ignore bool) (ret, body []byte) {
	if n < 0 || n > MaxLengthField {
		panic(fmt.Sprintf("v2core: packet contents of %d bytes do not fit the length field", n))
	}
	ret, out := sliceForAppend(dst, PacketOverhead+n)
	var l [LengthFieldSize]byte
	l[0], l[1], l[2] = byte(n), byte(n>>8), byte(n>>16)
	s.sendL.crypt(&l)
	copy(out, l[:])
	body = out[LengthFieldSize : LengthFieldSize+HeaderSize+n]
	body[0] = 0
	if ignore {
		body[0] = ignoreBit
		s.sentDecoys++
	}
	s.sent++
	return ret, body
}

// sealEnd encrypts body in place and appends the tag after it. The first
// packet in our direction authenticates our garbage as its AAD.
func (s *Session) sealEnd(body []byte) {
	s.sendP.seal(body[:0], body, s.sendAAD)
	s.sendAAD = nil
}

// sliceForAppend extends in by n bytes, reallocating only when its capacity
// is short, and returns the whole slice and the n new bytes.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	head = slices.Grow(in, n)[:len(in)+n]
	tail = head[len(in):]
	return
}

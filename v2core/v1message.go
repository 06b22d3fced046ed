package v2core

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// The v1 message framing of the Bitcoin P2P protocol, for translating
// between v1 and BIP324 and for v1 fallback (Bitcoin Core src/protocol.h,
// CMessageHeader; src/net.cpp, V1Transport):
//
//	+-----------+---------------------------+----------------+--------------+-------------+
//	| magic (4) | command, NUL-padded (12)  | length (4, LE) | checksum (4) | payload ... |
//	+-----------+---------------------------+----------------+--------------+-------------+
//
// The magic is the network's message start ([Network.Magic]) and the
// checksum is the first 4 bytes of SHA256(SHA256(payload)).

// Sizes and limits of v1 messages.
const (
	// V1HeaderSize is the size of a v1 message header.
	V1HeaderSize = 24
	// V1ChecksumSize is the size of a v1 header's checksum.
	V1ChecksumSize = 4
	// MaxV1PayloadLen is the largest v1 payload Bitcoin Core accepts
	// (MAX_PROTOCOL_MESSAGE_LENGTH). A header announcing more makes Core
	// disconnect before it reads the payload.
	MaxV1PayloadLen = 4_000_000
)

// v1RetainedBufSize is the largest payload buffer a [V1Decoder] keeps for
// the next message. A larger one (a block, say) is left to the garbage
// collector once the caller is done with it, so one big message does not
// pin megabytes for the life of the connection.
const v1RetainedBufSize = 256 << 10

// v1MinAlloc is the smallest payload buffer a [V1Decoder] allocates, so that
// a payload arriving in small pieces does not reallocate for each.
const v1MinAlloc = 512

// ErrV1Checksum is returned by [V1Decoder.Decode] when a payload does not
// match its header's checksum. It concerns that message alone: the decoder
// has consumed it and goes on with the next one, as Bitcoin Core drops such
// a message and keeps the connection.
var ErrV1Checksum = errors.New("v2core: v1 message checksum mismatch")

// V1MagicError reports a v1 header whose message start is not the expected
// network's. Bitcoin Core disconnects at once; for a [V1Decoder] the error
// is final.
type V1MagicError struct {
	Got  [4]byte // the message start read
	Want Network // the network expected
}

func (e *V1MagicError) Error() string {
	return fmt.Sprintf("v2core: v1 message start %x, want %x (%v)", e.Got, e.Want.Magic(), e.Want)
}

// V1PayloadTooLongError reports a v1 payload longer than the limit: read
// from a header, against the limit given to [ParseV1Header] or
// [V1Decoder.MaxPayload]; or handed to [AppendV1Message], against the
// 4-byte length field. A header's length is checked before any memory is
// set aside for the payload. Bitcoin Core disconnects at once; for a
// [V1Decoder] the error is final.
type V1PayloadTooLongError struct {
	Len, Max int64
}

func (e *V1PayloadTooLongError) Error() string {
	return fmt.Sprintf("v2core: v1 payload of %d bytes exceeds the limit of %d", e.Len, e.Max)
}

// V1Header is a parsed v1 message header.
type V1Header struct {
	Command  string               // the command, without padding
	Length   int                  // the payload's length in bytes
	Checksum [V1ChecksumSize]byte // SHA256(SHA256(payload))[:4]
}

// V1Message is a v1 message: its command and payload.
type V1Message struct {
	Command string
	Payload []byte
}

// v1Checksum returns the first 4 bytes of SHA256(SHA256(payload)).
func v1Checksum(payload []byte) [V1ChecksumSize]byte {
	h := sha256.Sum256(payload)
	h = sha256.Sum256(h[:])
	return [V1ChecksumSize]byte(h[:V1ChecksumSize])
}

// AppendV1Message appends a v1 message (header and payload) for net to dst
// and returns the extended slice.
//
// It fails, and returns dst unchanged, with an [*InvalidCommandError] when
// command is empty, longer than 12 bytes or holds a byte outside printable
// ASCII (0x20..0x7e), and with a [*V1PayloadTooLongError] when the payload's
// length does not fit the 4-byte field. It does not enforce
// [MaxV1PayloadLen]; a caller sending to Bitcoin Core should.
func AppendV1Message(dst []byte, net Network, command string, payload []byte) ([]byte, error) {
	if !validCommand(command) {
		return dst, &InvalidCommandError{Command: command}
	}
	if uint64(len(payload)) > math.MaxUint32 {
		return dst, &V1PayloadTooLongError{Len: int64(len(payload)), Max: math.MaxUint32}
	}
	magic := net.Magic()
	sum := v1Checksum(payload)
	var pad [CommandSize]byte
	dst = slices.Grow(dst, V1HeaderSize+len(payload))
	dst = append(dst, magic[:]...)
	dst = append(dst, command...)
	dst = append(dst, pad[:CommandSize-len(command)]...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = append(dst, sum[:]...)
	return append(dst, payload...), nil
}

// ParseV1Header parses a v1 message header for net. A maxPayload of zero or
// less means [MaxV1PayloadLen].
//
// The checks run in Bitcoin Core's order, and the errors say which failed:
// a wrong message start gives a [*V1MagicError], then a length above
// maxPayload a [*V1PayloadTooLongError]; Core disconnects for either, and
// the header is returned empty. A command field that breaks the rules of
// [InvalidCommandError] gives an [*InvalidCommandError]; the framing is
// intact, so the header is returned complete but for Command, and the caller
// can skip Length bytes of payload and carry on, as Core does.
func ParseV1Header(hdr *[V1HeaderSize]byte, net Network, maxPayload int) (V1Header, error) {
	if maxPayload <= 0 {
		maxPayload = MaxV1PayloadLen
	}
	if got := [4]byte(hdr[:4]); got != net.Magic() {
		return V1Header{}, &V1MagicError{Got: got, Want: net}
	}
	length := binary.LittleEndian.Uint32(hdr[16:20])
	if uint64(length) > uint64(maxPayload) {
		return V1Header{}, &V1PayloadTooLongError{Len: int64(length), Max: int64(maxPayload)}
	}
	h := V1Header{
		Length:   int(length),
		Checksum: [V1ChecksumSize]byte(hdr[20:24]),
	}
	command, err := parseCommandField(hdr[4:16])
	h.Command = command
	return h, err
}

// V1Decoder reads v1 messages from a byte stream fed to it in pieces of any
// size, down to one byte at a time. It never performs I/O.
//
// Set Network and MaxPayload before the first call to Decode and leave them
// alone afterwards. The zero value decodes mainnet messages of up to
// [MaxV1PayloadLen] bytes. A V1Decoder is not safe for concurrent use.
type V1Decoder struct {
	// Network is the network whose magic every message must carry. Zero
	// means Mainnet.
	Network Network
	// MaxPayload is the largest payload accepted, in bytes. Zero (or less)
	// means MaxV1PayloadLen, Bitcoin Core's limit.
	MaxPayload int

	hdr    [V1HeaderSize]byte
	hdrLen int // bytes of hdr filled
	inBody bool
	h      V1Header
	// skip holds the *InvalidCommandError of a message whose payload is
	// being discarded rather than stored.
	skip    error
	bodyLen int    // payload bytes read so far
	buf     []byte // the payload, reused between messages
	msg     V1Message
	err     error // final error, returned by every later call
}

// Decode consumes bytes from in until it completes one message or runs out
// of input, and reports how many bytes it consumed as n. When a message is
// complete, msg is non-nil and n stops right after it; the rest of in is for
// the next call. When in runs out first, msg and err are nil and n is
// len(in). A caller loops until in is used up:
//
//	for len(in) > 0 {
//		msg, n, err := d.Decode(in)
//		in = in[n:]
//		...
//	}
//
// NOTE: msg and msg.Payload belong to the decoder and are valid only until
// the next call to Decode. Copy what you keep. This keeps decoding free of
// allocations once the payload buffer has grown to the usual sizes.
//
// Memory for a payload grows as its bytes arrive (doubling), never past the
// length the header announced, which is itself at most MaxPayload: a header
// alone cannot make the decoder allocate the whole announced size.
//
// Errors come in two kinds. A [*V1MagicError] or a [*V1PayloadTooLongError]
// means the stream cannot be framed any more (Bitcoin Core disconnects): it
// is final, and every later call returns it with n == 0. [ErrV1Checksum] and
// [*InvalidCommandError] concern one message: the decoder has consumed all
// of it, n included, and the next call decodes the next message, the way
// Core drops such a message and keeps the connection. A message with an
// invalid command is discarded without being stored or its checksum
// checked.
func (d *V1Decoder) Decode(in []byte) (msg *V1Message, n int, err error) {
	if d.err != nil {
		return nil, 0, d.err
	}
	if !d.inBody {
		n = copy(d.hdr[d.hdrLen:], in)
		d.hdrLen += n
		if d.hdrLen < V1HeaderSize {
			return nil, n, nil
		}
		h, err := ParseV1Header(&d.hdr, d.network(), d.MaxPayload)
		switch err.(type) {
		case nil:
			if cap(d.buf) > v1RetainedBufSize {
				d.buf = nil
			}
			d.buf = d.buf[:0]
		case *InvalidCommandError:
			d.skip = err
		default:
			d.err = err
			return nil, n, err
		}
		d.h = h
		d.inBody = true
		d.bodyLen = 0
	}

	c := min(d.h.Length-d.bodyLen, len(in)-n)
	if d.skip == nil {
		d.reserve(c)
		d.buf = append(d.buf, in[n:n+c]...)
	}
	d.bodyLen += c
	n += c
	if d.bodyLen < d.h.Length {
		return nil, n, nil
	}

	// The message is complete; whatever happens next, the following byte
	// starts a new header.
	d.inBody = false
	d.hdrLen = 0
	if d.skip != nil {
		err, d.skip = d.skip, nil
		return nil, n, err
	}
	if v1Checksum(d.buf) != d.h.Checksum {
		return nil, n, ErrV1Checksum
	}
	d.msg = V1Message{Command: d.h.Command, Payload: d.buf}
	return &d.msg, n, nil
}

// network returns the network to expect, with zero meaning Mainnet.
func (d *V1Decoder) network() Network {
	if d.Network == 0 {
		return Mainnet
	}
	return d.Network
}

// reserve makes room in d.buf for c more payload bytes. Capacity doubles, so
// a payload fed byte by byte costs O(log n) allocations, and never exceeds
// the length the header announced.
func (d *V1Decoder) reserve(c int) {
	need := len(d.buf) + c
	if need <= cap(d.buf) {
		return
	}
	size := min(max(need, 2*cap(d.buf), v1MinAlloc), d.h.Length)
	b := make([]byte, len(d.buf), size)
	copy(b, d.buf)
	d.buf = b
}

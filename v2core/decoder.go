package v2core

import "slices"

// Packet is one decrypted packet.
type Packet struct {
	// Contents is the packet's contents: an encoded message type and its
	// payload for Bitcoin peers (see [ParseContents]), raw stream bytes
	// between two bip324-pt ends. It aliases the decoder's buffer and is
	// valid until the next call to [Decoder.Decode].
	Contents []byte
	// Ignore is the header's ignore bit: the packet is a decoy.
	Ignore bool
}

// Decoder is the receive side of a [Session]: it takes ciphertext in chunks
// of any size, one byte at a time included, and yields packets. It checks
// the decrypted length against its limit before it sets memory aside, and
// it grows its buffer only as the packet's bytes arrive, so a peer that
// announces a large packet and stalls holds little memory. A buffer of
// more than 256 KiB is given back once a smaller packet follows the one
// that needed it (and, under Conn's reader, as soon as the connection goes
// quiet), so one large message does not pin megabytes for the rest of the
// connection's life; back-to-back large packets reuse it.
//
// Not safe for concurrent use. Every error is final.
type Decoder struct {
	recvL fsChaCha20
	recvP fsAEAD
	max   int

	// aad is the peer's garbage, authenticated by its first packet.
	aad []byte
	// versionPending is set while the first non-decoy packet, the
	// peer's version packet, has not arrived; the handshake watches it.
	versionPending bool
	version        []byte

	lenBuf  [LengthFieldSize]byte
	lenHave int
	// bodyLen is header + contents + tag of the packet being read, or 0
	// while the length field is being read.
	bodyLen int
	buf     []byte
	have    int

	pkt     Packet
	packets uint64
	decoys  uint64
	err     error
}

// Decode consumes bytes from in until one packet is complete or in is used
// up, and reports how many bytes it consumed. When a packet is complete it
// is returned (decoys too, with Ignore set); otherwise pkt is nil and all of
// in was consumed. Call Decode again with in[n:] for the bytes that remain.
//
// The error is [ErrAuth] for a bad tag, a [*ContentTooLongError] for a
// length above the limit, or the first such error again on later calls.
func (d *Decoder) Decode(in []byte) (pkt *Packet, n int, err error) {
	if d.err != nil {
		return nil, 0, d.err
	}
	if d.bodyLen == 0 {
		n = copy(d.lenBuf[d.lenHave:], in)
		d.lenHave += n
		if d.lenHave < LengthFieldSize {
			return nil, n, nil
		}
		d.lenHave = 0
		d.recvL.crypt(&d.lenBuf)
		l := int(d.lenBuf[0]) | int(d.lenBuf[1])<<8 | int(d.lenBuf[2])<<16
		if l > d.max {
			d.err = &ContentTooLongError{Len: l, Max: d.max}
			return nil, n, d.err
		}
		d.bodyLen = HeaderSize + l + TagSize
		d.have = 0
		if d.bodyLen <= maxRetainedBuffer {
			d.shrink()
		}
		if rest := in[n:]; len(rest) >= d.bodyLen {
			// The whole packet is at hand: decrypt straight from the
			// caller's bytes into our buffer, with no copy first.
			ct := rest[:d.bodyLen]
			n += d.bodyLen
			if cap(d.buf) < d.bodyLen {
				d.buf = make([]byte, d.bodyLen)
			}
			pt, err := d.recvP.open(d.buf[:0], ct, d.aad)
			return d.finish(pt, err, n)
		}
	}
	rest := in[n:]
	want := min(len(rest), d.bodyLen-d.have)
	if need := d.have + want; cap(d.buf) < need {
		// Grow geometrically, but never past what has arrived or past
		// the announced packet.
		d.buf = slices.Grow(d.buf[:d.have], min(d.bodyLen, max(need, 2*cap(d.buf)))-d.have)
	}
	d.buf = d.buf[:cap(d.buf)]
	copy(d.buf[d.have:], rest[:want])
	d.have += want
	n += want
	if d.have < d.bodyLen {
		return nil, n, nil
	}
	ct := d.buf[:d.bodyLen]
	pt, err := d.recvP.open(ct[:0], ct, d.aad)
	return d.finish(pt, err, n)
}

func (d *Decoder) finish(pt []byte, err error, n int) (*Packet, int, error) {
	d.bodyLen = 0
	d.have = 0
	if err != nil {
		d.err = ErrAuth
		return nil, n, d.err
	}
	d.aad = nil
	d.packets++
	d.pkt = Packet{Contents: pt[HeaderSize:], Ignore: pt[0]&ignoreBit != 0}
	if d.pkt.Ignore {
		d.decoys++
	} else if d.versionPending {
		d.versionPending = false
		// Longer contents are dropped whole rather than truncated: a
		// negotiation between two bip324-pt ends then sees no offer at
		// all, never a prefix it might take for a complete one.
		if len(d.pkt.Contents) <= MaxPeerVersionLen {
			d.version = append([]byte{}, d.pkt.Contents...)
		}
	}
	return &d.pkt, n, nil
}

// shrink gives back a buffer above maxRetainedBuffer. Call it only
// between packets: the last packet's contents alias the buffer.
func (d *Decoder) shrink() {
	if cap(d.buf) > maxRetainedBuffer {
		d.buf = nil
	}
}

// Packets returns how many packets have been decrypted, decoys included.
func (d *Decoder) Packets() uint64 { return d.packets }

// Decoys returns how many of them were decoys.
func (d *Decoder) Decoys() uint64 { return d.decoys }

// Err returns the error that stopped the decoder, or nil.
func (d *Decoder) Err() error { return d.err }

// Buffered reports how many bytes of an unfinished packet the decoder holds.
func (d *Decoder) Buffered() int {
	if d.bodyLen == 0 {
		return d.lenHave
	}
	return LengthFieldSize + d.have
}

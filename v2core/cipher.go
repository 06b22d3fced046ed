package v2core

import (
	"crypto/cipher"
	"encoding/binary"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/chacha20poly1305"
)

// lengthStreamSize is the keystream one length-cipher epoch uses: 224
// three-byte lengths, then the 32-byte next key. It is exactly 11 ChaCha20
// blocks, so an epoch's keystream is made in one call.
const lengthStreamSize = RekeyInterval*LengthFieldSize + 32

// fsChaCha20 is the BIP's FSChaCha20, specialised to 3-byte chunks: the
// cipher that hides packet lengths. Within an epoch of 224 chunks the
// keystream runs on without a break under the nonce 0x00000000 ‖ epoch
// (little-endian); after the 224th chunk the next 32 keystream bytes become
// the key (BIP324, "Rekeying wrappers: FSChaCha20Poly1305 and FSChaCha20").
//
// Not safe for concurrent use. The zero value is not usable; call init.
type fsChaCha20 struct {
	key    [32]byte
	epoch  uint64
	chunk  int // chunks used in this epoch, 0..RekeyInterval-1
	stream [lengthStreamSize]byte
}

func (c *fsChaCha20) init(key *[32]byte) {
	c.key = *key
	c.epoch = 0
	c.chunk = 0
	c.refill()
}

// refill computes the whole keystream of the current epoch.
func (c *fsChaCha20) refill() {
	var nonce [chacha20.NonceSize]byte
	binary.LittleEndian.PutUint64(nonce[4:], c.epoch)
	s, err := chacha20.NewUnauthenticatedCipher(c.key[:], nonce[:])
	if err != nil {
		panic("v2core: chacha20 rejected a 32-byte key: " + err.Error())
	}
	clear(c.stream[:])
	s.XORKeyStream(c.stream[:], c.stream[:])
}

// crypt encrypts or decrypts one 3-byte length field in place.
func (c *fsChaCha20) crypt(b *[LengthFieldSize]byte) {
	ks := c.stream[c.chunk*LengthFieldSize:]
	b[0] ^= ks[0]
	b[1] ^= ks[1]
	b[2] ^= ks[2]
	c.chunk++
	if c.chunk == RekeyInterval {
		copy(c.key[:], c.stream[RekeyInterval*LengthFieldSize:])
		c.epoch++
		c.chunk = 0
		c.refill()
	}
}

// fsAEAD is the BIP's FSChaCha20Poly1305: ChaCha20-Poly1305 (RFC 8439) with
// the nonce (packet mod 224, 4 bytes LE) ‖ (packet / 224, 8 bytes LE), and a
// new key after every 224 packets: the first 32 bytes of the encryption of
// 32 zero bytes under nonce 0xffffffff ‖ (packet / 224).
//
// Not safe for concurrent use. The zero value is not usable; call init.
type fsAEAD struct {
	aead   cipher.AEAD
	epoch  uint64
	packet uint32 // packets sealed or opened in this epoch
	// n is the nonce of the current packet. It lives here, not on the
	// stack: passed through the cipher.AEAD interface, a stack array
	// escapes and costs an allocation per packet.
	n [chacha20poly1305.NonceSize]byte
}

func (c *fsAEAD) init(key *[32]byte) {
	c.setKey(key[:])
	c.epoch = 0
	c.packet = 0
}

func (c *fsAEAD) setKey(key []byte) {
	a, err := chacha20poly1305.New(key)
	if err != nil {
		panic("v2core: chacha20poly1305 rejected a 32-byte key: " + err.Error())
	}
	c.aead = a
}

func (c *fsAEAD) nonce() []byte {
	binary.LittleEndian.PutUint32(c.n[:4], c.packet)
	binary.LittleEndian.PutUint64(c.n[4:], c.epoch)
	return c.n[:]
}

// seal appends the sealed plaintext to dst, as cipher.AEAD.Seal does
// (plaintext may be dst[len(dst):len(dst)+len(plaintext)] to seal in place).
func (c *fsAEAD) seal(dst, plaintext, aad []byte) []byte {
	out := c.aead.Seal(dst, c.nonce(), plaintext, aad)
	c.advance()
	return out
}

// open authenticates and decrypts ciphertext, appending the plaintext to
// dst. The packet counter moves on whether or not the tag matched; after a
// failure the caller drops the connection, as the BIP requires.
func (c *fsAEAD) open(dst, ciphertext, aad []byte) ([]byte, error) {
	out, err := c.aead.Open(dst, c.nonce(), ciphertext, aad)
	c.advance()
	return out, err
}

func (c *fsAEAD) advance() {
	c.packet++
	if c.packet < RekeyInterval {
		return
	}
	binary.LittleEndian.PutUint32(c.n[:4], 0xffffffff)
	binary.LittleEndian.PutUint64(c.n[4:], c.epoch)
	// The new key is the AEAD ciphertext of 32 zero bytes under the rekey
	// nonce; its tag is discarded.
	var buf [32 + TagSize]byte
	c.aead.Seal(buf[:0], c.n[:], buf[:32], nil)
	c.setKey(buf[:32])
	clear(buf[:])
	c.epoch++
	c.packet = 0
}

package node

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxCompactSize is the largest CompactSize [ReadCompactSize] accepts:
// Bitcoin Core's MAX_SIZE (src/serialize.h), the range check it applies
// whenever it reads a length.
const MaxCompactSize = 0x02000000

var (
	// ErrTruncated means a payload ended inside a field. It is wrapped
	// with the field's name.
	ErrTruncated = errors.New("node: message truncated")
	// ErrNonCanonical means a CompactSize used a longer form than its
	// value needs (0xfd 0x10 0x00, say, for 16). Bitcoin Core rejects it.
	ErrNonCanonical = errors.New("node: non-canonical CompactSize")
)

// CompactSizeTooLargeError reports a CompactSize above [MaxCompactSize].
// The value is the one read.
type CompactSizeTooLargeError uint64

func (e CompactSizeTooLargeError) Error() string {
	return fmt.Sprintf("node: CompactSize %d exceeds the limit of %d", uint64(e), MaxCompactSize)
}

// AppendCompactSize appends v in Bitcoin's CompactSize encoding: one byte
// below 0xfd, else a marker (0xfd, 0xfe, 0xff) and 2, 4 or 8 bytes
// little-endian, always the shortest form.
func AppendCompactSize(dst []byte, v uint64) []byte {
	switch {
	case v < 0xfd:
		return append(dst, byte(v))
	case v <= 0xffff:
		return binary.LittleEndian.AppendUint16(append(dst, 0xfd), uint16(v))
	case v <= 0xffffffff:
		return binary.LittleEndian.AppendUint32(append(dst, 0xfe), uint32(v))
	}
	return binary.LittleEndian.AppendUint64(append(dst, 0xff), v)
}

// ReadCompactSize reads a CompactSize from the start of b and returns it
// with the number of bytes it took. Like Bitcoin Core's ReadCompactSize
// with its range check, it rejects a non-canonical encoding
// ([ErrNonCanonical]) and a value above [MaxCompactSize]
// ([CompactSizeTooLargeError]); a b too short gives [ErrTruncated].
func ReadCompactSize(b []byte) (v uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, ErrTruncated
	}
	var least uint64
	switch b[0] {
	case 0xfd:
		if len(b) < 3 {
			return 0, 0, ErrTruncated
		}
		v, n, least = uint64(binary.LittleEndian.Uint16(b[1:])), 3, 0xfd
	case 0xfe:
		if len(b) < 5 {
			return 0, 0, ErrTruncated
		}
		v, n, least = uint64(binary.LittleEndian.Uint32(b[1:])), 5, 0x10000
	case 0xff:
		if len(b) < 9 {
			return 0, 0, ErrTruncated
		}
		v, n, least = binary.LittleEndian.Uint64(b[1:]), 9, 0x100000000
	default:
		v, n = uint64(b[0]), 1
	}
	if v < least {
		return 0, 0, ErrNonCanonical
	}
	if v > MaxCompactSize {
		return 0, 0, CompactSizeTooLargeError(v)
	}
	return v, n, nil
}

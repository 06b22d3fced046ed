package shaper

import (
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
)

type fixedDist int

func (f fixedDist) Sample(*mrand.Rand) int { return int(f) }
func (f fixedDist) Bounds() (int, int)     { return int(f), int(f) }
func (f fixedDist) String() string         { return "fixed" }

// stream is the byte stream the tests drive a Conn with, framed as
// internal/bridge frames it (which cannot be imported here): stream
// records (0xff), then an end record (0xfe) for the half-close.
type stream struct {
	*Conn
	plain []byte
	eof   bool
	err   error
}

func newStream(c *Conn) *stream { return &stream{Conn: c} }

func (s *stream) Write(p []byte) (int, error) { return s.WriteStream([]byte{0xff}, p) }
func (s *stream) CloseWrite() error           { return s.End([]byte{0xfe}) }
func (s *stream) Close() error {
	s.CloseWrite()
	return s.Conn.Close()
}

func (s *stream) Read(p []byte) (int, error) {
	for len(s.plain) == 0 {
		if s.eof {
			return 0, io.EOF
		}
		if s.err != nil {
			return 0, s.err
		}
		b, err := s.ReadPacket()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // no end record: cut short
			}
			s.err = err
			return 0, err
		}
		switch {
		case len(b) == 0:
		case b[0] == 0xff:
			s.plain = b[1:]
		case b[0] == 0xfe:
			s.eof = true
		default:
			s.err = errors.New("unknown record")
		}
	}
	n := copy(p, s.plain)
	s.plain = s.plain[n:]
	return n, nil
}

var _ net.Conn = (*stream)(nil)

package socks5

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing/iotest"
)

// x decodes space-separated hex, such as "05 01 00"; it panics on a typo,
// which is a bug in the test.
func x(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// cat joins byte slices and strings (taken as raw bytes, such as a name)
// into one message.
func cat(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch p := p.(type) {
		case []byte:
			out = append(out, p...)
		case string:
			out = append(out, p...)
		default:
			panic("cat: not []byte or string")
		}
	}
	return out
}

// fakeConn is a client scripted in advance: Read serves in, through
// wrap if set (iotest.OneByteReader to split every read), and Write
// records what the server sends. Writes from the failAt-th on (counting
// from 1) fail with errWrite; 0 means never.
type fakeConn struct {
	in     *bytes.Reader
	r      io.Reader
	out    bytes.Buffer
	writes int
	failAt int
}

var errWrite = errors.New("test: write failed")

func newFakeConn(in []byte, wrap func(io.Reader) io.Reader) *fakeConn {
	c := &fakeConn{in: bytes.NewReader(in)}
	c.r = c.in
	if wrap != nil {
		c.r = wrap(c.in)
	}
	return c
}

func (c *fakeConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *fakeConn) Write(p []byte) (int, error) {
	c.writes++
	if c.failAt > 0 && c.writes >= c.failAt {
		return 0, errWrite
	}
	return c.out.Write(p)
}

// consumed returns how many bytes of its input the conn has served.
func (c *fakeConn) consumed() int { return int(c.in.Size()) - c.in.Len() }

// rest returns the input not yet read.
func (c *fakeConn) rest() []byte {
	b, _ := io.ReadAll(c.in)
	return b
}

// readers are the ways the tests split the client's bytes.
var readers = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", nil},
	{"onebyte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
}

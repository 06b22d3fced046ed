package bridge

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// requestPrefix starts the version packet contents a bip324-pt client
// sends its bridge. BIP324 peers ignore version packet contents, so this
// stays within the BIP.
const requestPrefix = "bip324-pt/1"

// maxRequestLen bounds what the bridge parses.
const maxRequestLen = 512

// appendApplied appends the body of a recordApplied record.
func appendApplied(dst []byte, profile string) []byte {
	return append(append(dst, "profile="...), profile...)
}

// parseApplied decodes the body of a recordApplied record.
func parseApplied(b []byte) (string, error) {
	name, ok := strings.CutPrefix(string(b), "profile=")
	if !ok || !validName(name) {
		return "", fmt.Errorf("bridge: bad answer from the bridge: %q", b)
	}
	return name, nil
}

// Request is what a client asks of its bridge: the profile that shapes
// the downstream direction, and optionally the seed of its decisions.
type Request struct {
	Profile string
	Seed    [32]byte // zero: the bridge draws a fresh seed
}

// Marshal encodes the request as version packet contents:
// "bip324-pt/1 profile=NAME [seed=HEX]". The zero Request encodes as
// nothing: an empty version packet, as Bitcoin Core sends, whose 36-byte
// flight a censor cannot tell apart; the bridge then uses its default.
func (r Request) Marshal() []byte {
	if r == (Request{}) {
		return nil
	}
	var b bytes.Buffer
	b.WriteString(requestPrefix)
	if r.Profile != "" {
		fmt.Fprintf(&b, " profile=%s", r.Profile)
	}
	if r.Seed != ([32]byte{}) {
		fmt.Fprintf(&b, " seed=%x", r.Seed)
	}
	return b.Bytes()
}

// ErrNoRequest means the version packet holds no bip324-pt request (a
// plain BIP324 peer sends it empty).
var ErrNoRequest = errors.New("bridge: no bip324-pt request in the version packet")

// ParseRequest decodes version packet contents made by Marshal. Unknown
// keys are ignored, so later versions can add some.
func ParseRequest(b []byte) (Request, error) {
	var r Request
	if len(b) > maxRequestLen {
		return r, fmt.Errorf("bridge: request of %d bytes, more than %d", len(b), maxRequestLen)
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 || fields[0] != requestPrefix {
		return r, ErrNoRequest
	}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return r, fmt.Errorf("bridge: request field %q is not key=value", f)
		}
		switch k {
		case "profile":
			if !validName(v) {
				return r, fmt.Errorf("bridge: bad profile name %q in request", v)
			}
			r.Profile = v
		case "seed":
			s, err := hex.DecodeString(v)
			if err != nil || len(s) != 32 {
				return r, errors.New("bridge: seed in request wants 64 hex digits")
			}
			copy(r.Seed[:], s)
		}
	}
	return r, nil
}

// validName accepts profile names: letters, digits, '-' and '_', at most
// 64 bytes. A client never names a file on the bridge.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

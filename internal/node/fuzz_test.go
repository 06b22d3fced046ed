package node

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParseVersion checks that the version decoder never panics, keeps its
// bounds, and that what it accepts encodes back to bytes that parse to the
// same message. Seeds live in testdata/fuzz/FuzzParseVersion: a Core-like
// message, cuts at and between group boundaries, user agents of 256 and
// 257 bytes, non-canonical and oversize lengths.
func FuzzParseVersion(f *testing.F) {
	v := coreLikeVersion()
	b, _ := AppendVersion(nil, &v)
	f.Add(b)
	f.Fuzz(func(t *testing.T, payload []byte) {
		orig := bytes.Clone(payload)
		v, err := ParseVersion(payload)
		if !bytes.Equal(orig, payload) {
			t.Fatal("ParseVersion modified its input")
		}
		if err != nil {
			if !reflect.DeepEqual(v, Version{}) {
				t.Fatalf("non-zero Version with error %v", err)
			}
			return
		}
		if len(payload) < minVersionLen {
			t.Fatalf("accepted %d bytes", len(payload))
		}
		if len(v.UserAgent) > MaxUserAgentLen {
			t.Fatalf("user agent of %d bytes accepted", len(v.UserAgent))
		}
		if len(v.UserAgent) > len(payload) {
			t.Fatal("user agent longer than the payload")
		}
		enc, err := AppendVersion(nil, &v)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		back, err := ParseVersion(enc)
		if err != nil {
			t.Fatalf("parsing the re-encoding: %v", err)
		}
		if !reflect.DeepEqual(back, v) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", back, v)
		}
	})
}

// FuzzReadCompactSize checks that a CompactSize that reads is canonical
// and within MaxCompactSize: it encodes back to the bytes it came from.
func FuzzReadCompactSize(f *testing.F) {
	for _, s := range [][]byte{{0}, {0xfc}, {0xfd, 0xfd, 0}, {0xfd, 0xfc, 0}, {0xfe, 0, 0, 0, 2}, {0xff, 1, 0, 0, 0, 0, 0, 0, 0}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n, err := ReadCompactSize(b)
		if err != nil {
			if v != 0 || n != 0 {
				t.Fatalf("(%d, %d) with error %v", v, n, err)
			}
			return
		}
		if v > MaxCompactSize {
			t.Fatalf("accepted %d", v)
		}
		if enc := AppendCompactSize(nil, v); !bytes.Equal(enc, b[:n]) {
			t.Fatalf("%x read as %d, which encodes as %x", b[:n], v, enc)
		}
	})
}

package v2core

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// bip324ShortIDs is the table of one-byte message type ids as printed in the
// BIP324 text ("v2 Bitcoin P2P message structure"), written out here
// independently of the package's own table.
var bip324ShortIDs = map[uint8]string{
	1: "addr", 2: "block", 3: "blocktxn", 4: "cmpctblock",
	5: "feefilter", 6: "filteradd", 7: "filterclear", 8: "filterload",
	9: "getblocks", 10: "getblocktxn", 11: "getdata", 12: "getheaders",
	13: "headers", 14: "inv", 15: "mempool", 16: "merkleblock",
	17: "notfound", 18: "ping", 19: "pong", 20: "sendcmpct",
	21: "tx", 22: "getcfilters", 23: "cfilter", 24: "getcfheaders",
	25: "cfheaders", 26: "getcfcheckpt", 27: "cfcheckpt", 28: "addrv2",
}

// longForm builds long-form contents by hand: 0x00, the 12-byte field, the
// payload.
func longForm(field string, payload []byte) []byte {
	var f [CommandSize]byte
	copy(f[:], field)
	return append(append([]byte{0}, f[:]...), payload...)
}

func TestShortID_Table(t *testing.T) {
	payload := []byte{0xde, 0xad, 0xbe, 0xef}
	if len(bip324ShortIDs) != 28 {
		t.Fatalf("test table has %d entries", len(bip324ShortIDs))
	}
	for id := 0; id <= 255; id++ {
		want, inTable := bip324ShortIDs[uint8(id)]
		got, ok := CommandForShortID(uint8(id))
		if got != want || ok != inTable {
			t.Errorf("CommandForShortID(%d) = %q, %v; want %q, %v", id, got, ok, want, inTable)
		}
		if !inTable {
			continue
		}
		t.Run(want, func(t *testing.T) {
			if got, ok := ShortID(want); !ok || got != uint8(id) {
				t.Errorf("ShortID(%q) = %d, %v; want %d, true", want, got, ok, id)
			}
			enc, err := AppendMessage([]byte("prefix"), want, payload)
			if err != nil {
				t.Fatal(err)
			}
			wantEnc := append([]byte("prefix"), byte(id))
			wantEnc = append(wantEnc, payload...)
			if !bytes.Equal(enc, wantEnc) {
				t.Fatalf("AppendMessage = %x, want %x", enc, wantEnc)
			}
			cmd, p, err := ParseContents(enc[len("prefix"):])
			if err != nil || cmd != want || !bytes.Equal(p, payload) {
				t.Fatalf("ParseContents = %q, %x, %v; want %q, %x, nil", cmd, p, err, want, payload)
			}
			// The long form of the same command is valid too, though we
			// never send it.
			cmd, p, err = ParseContents(longForm(want, payload))
			if err != nil || cmd != want || !bytes.Equal(p, payload) {
				t.Fatalf("ParseContents(long form) = %q, %x, %v; want %q, %x, nil", cmd, p, err, want, payload)
			}
		})
	}
	for _, cmd := range []string{"", "version", "verack", "Ping", "ping\x00", "feature", "uproof"} {
		if id, ok := ShortID(cmd); ok {
			t.Errorf("ShortID(%q) = %d, true; want none", cmd, id)
		}
	}
}

func TestParseContents_UnknownShortID(t *testing.T) {
	for id := 29; id <= 255; id++ {
		contents := []byte{byte(id), 1, 2, 3}
		cmd, payload, err := ParseContents(contents)
		var e UnknownShortIDError
		if !errors.As(err, &e) || int(e) != id {
			t.Fatalf("id %d: err = %v, want UnknownShortIDError(%d)", id, err, id)
		}
		if cmd != "" || !bytes.Equal(payload, contents[1:]) {
			t.Errorf("id %d: got %q, %x; want \"\", payload after the id", id, cmd, payload)
		}
		if want := "v2core: unknown short message type id " + strconv.Itoa(id); err.Error() != want {
			t.Errorf("id %d: Error() = %q, want %q", id, err, want)
		}
	}
}

func TestParseContents(t *testing.T) {
	payload := []byte("payload")
	tests := []struct {
		name     string
		contents []byte
		command  string // when err is nil
		payload  []byte
		err      error // sentinel to match with errors.Is; nil for success
		invalid  bool  // want *InvalidCommandError
	}{
		{name: "empty contents", contents: nil, err: ErrEmptyContents},
		{name: "short id no payload", contents: []byte{18}, command: "ping", payload: []byte{}},
		{name: "long marker only", contents: []byte{0}, err: ErrTruncatedMessageType},
		{name: "long 11 bytes", contents: []byte("\x00version\x00\x00\x00\x00"), err: ErrTruncatedMessageType},
		{name: "version", contents: longForm("version", payload), command: "version", payload: payload},
		{name: "version no payload", contents: longForm("version", nil), command: "version", payload: []byte{}},
		{name: "sendaddrv2", contents: longForm("sendaddrv2", nil), command: "sendaddrv2", payload: []byte{}},
		{name: "unknown command", contents: longForm("bip324-pt", payload), command: "bip324-pt", payload: payload},
		{name: "12 chars exactly", contents: longForm("abcdefghijkl", payload), command: "abcdefghijkl", payload: payload},
		{name: "one char", contents: longForm("x", nil), command: "x", payload: []byte{}},
		{name: "printable bounds", contents: longForm(" ~", nil), command: " ~", payload: []byte{}},
		{name: "all NUL", contents: longForm("", payload), invalid: true},
		{name: "NUL then non-NUL", contents: longForm("ab\x00c", payload), invalid: true},
		{name: "NUL then non-NUL at end", contents: longForm("ab\x00\x00\x00\x00\x00\x00\x00\x00\x00z", nil), invalid: true},
		{name: "leading NUL then text", contents: longForm("\x00abc", nil), invalid: true},
		{name: "control char", contents: longForm("ver\x1fack", nil), invalid: true},
		{name: "tab", contents: longForm("\tping", nil), invalid: true},
		// Bitcoin Core's v2 path admits 0x7f; its v1 check and we do not.
		{name: "DEL", contents: longForm("ping\x7f", nil), invalid: true},
		{name: "high bit", contents: longForm("p\x80ng", nil), invalid: true},
		{name: "0xff", contents: longForm("\xff", nil), invalid: true},
		{name: "UTF-8", contents: longForm("pé", nil), invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, p, err := ParseContents(tt.contents)
			switch {
			case tt.invalid:
				var e *InvalidCommandError
				if !errors.As(err, &e) {
					t.Fatalf("err = %v, want *InvalidCommandError", err)
				}
				if e.Command != string(tt.contents[1:longTypeSize]) {
					t.Errorf("InvalidCommandError.Command = %q, want the 12-byte field", e.Command)
				}
			case tt.err != nil:
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
			default:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if cmd != tt.command || !bytes.Equal(p, tt.payload) {
					t.Fatalf("got %q, %q; want %q, %q", cmd, p, tt.command, tt.payload)
				}
				return
			}
			if cmd != "" || p != nil {
				t.Errorf("on error got %q, %x; want zero values", cmd, p)
			}
			if !strings.HasPrefix(err.Error(), "v2core: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestAppendMessage(t *testing.T) {
	tests := []struct {
		command string
		want    string // hex of the type bytes; "" means invalid
	}{
		{"tx", "15"},
		{"addrv2", "1c"},
		{"version", "0076657273696f6e0000000000"},
		{"verack", "0076657261636b000000000000"},
		{"abcdefghijkl", "006162636465666768696a6b6c"},
		{" ", "00200000000000000000000000"},
		{"~", "007e0000000000000000000000"},
		{"", ""},
		{"abcdefghijklm", ""},
		{"ab\x00", ""},
		{"\x00", ""},
		{"ping\x7f", ""},
		{"\x1f", ""},
		{"pé", ""},
		{"PING\n", ""},
	}
	payload := []byte{1, 2, 3}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.command), func(t *testing.T) {
			dst := []byte("head")
			out, err := AppendMessage(dst, tt.command, payload)
			if tt.want == "" {
				var e *InvalidCommandError
				if !errors.As(err, &e) || e.Command != tt.command {
					t.Fatalf("err = %v, want *InvalidCommandError for %q", err, tt.command)
				}
				if string(out) != "head" {
					t.Errorf("dst changed on error: %q", out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := "68656164" + tt.want + "010203"
			if got := hex.EncodeToString(out); got != want {
				t.Fatalf("AppendMessage = %s, want %s", got, want)
			}
			cmd, p, err := ParseContents(out[4:])
			if err != nil || cmd != tt.command || !bytes.Equal(p, payload) {
				t.Fatalf("round trip: %q, %x, %v", cmd, p, err)
			}
		})
	}
}

func TestInvalidCommandError_Error(t *testing.T) {
	tests := []struct {
		command, want string
	}{
		{"", `v2core: invalid message type "": empty`},
		{"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", "empty"},
		{"abcdefghijklm", "longer than 12 bytes"},
		{"ab\x00c\x00\x00\x00\x00\x00\x00\x00\x00", "byte 0x63 at offset 3 follows NUL padding"},
		{"ab\x00", "NUL at offset 2"},
		{"p\x7f", "byte 0x7f at offset 1 is not printable ASCII"},
	}
	for _, tt := range tests {
		got := (&InvalidCommandError{Command: tt.command}).Error()
		if !strings.HasPrefix(got, "v2core: ") || !strings.HasSuffix(got, tt.want) {
			t.Errorf("Error() for %q = %q, want suffix %q", tt.command, got, tt.want)
		}
	}
}

func TestParseContents_Allocs(t *testing.T) {
	tests := []struct {
		name     string
		contents []byte
		allocs   float64
	}{
		{"short id", []byte{2, 0, 0, 0}, 0},
		{"known long", longForm("wtxidrelay", nil), 0},
		{"short-id command in long form", longForm("inv", []byte{1}), 0},
		{"unknown long", longForm("bip324-pt", nil), 1},
	}
	for _, tt := range tests {
		got := testing.AllocsPerRun(100, func() {
			if _, _, err := ParseContents(tt.contents); err != nil {
				t.Fatal(err)
			}
		})
		if got != tt.allocs {
			t.Errorf("%s: %v allocs, want %v", tt.name, got, tt.allocs)
		}
	}
}

func FuzzParseContents(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{18, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{28})
	f.Add([]byte{29, 0xff})
	f.Add([]byte{255})
	f.Add(longForm("version", []byte{0x80, 0x11, 0x01, 0x00}))
	f.Add(longForm("ping", []byte{1, 2, 3, 4, 5, 6, 7, 8}))
	f.Add(longForm("abcdefghijkl", nil))
	f.Add(longForm("ab\x00c", nil))
	f.Add(longForm("", nil))
	f.Add([]byte("\x00verack\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, contents []byte) {
		cmd, payload, err := ParseContents(contents)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "v2core: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			var unknown UnknownShortIDError
			if errors.As(err, &unknown) {
				if len(contents) == 0 || contents[0] != byte(unknown) || int(unknown) <= maxShortID {
					t.Fatalf("UnknownShortIDError(%d) for %x", unknown, contents)
				}
				if !bytes.Equal(payload, contents[1:]) {
					t.Fatalf("payload with UnknownShortIDError = %x, want %x", payload, contents[1:])
				}
			} else if payload != nil || cmd != "" {
				t.Fatalf("error %v with %q, %x", err, cmd, payload)
			}
			return
		}
		if !validCommand(cmd) {
			t.Fatalf("parsed command %q is not valid", cmd)
		}
		out, err := AppendMessage(nil, cmd, payload)
		if err != nil {
			t.Fatalf("AppendMessage(%q): %v", cmd, err)
		}
		// The encoding is canonical unless a command with a short id came
		// in the long form.
		if _, hasID := ShortID(cmd); contents[0] != 0 || !hasID {
			if !bytes.Equal(out, contents) {
				t.Fatalf("re-encoded %x, want %x", out, contents)
			}
		} else if want := append([]byte{shortIDByCommand[cmd]}, payload...); !bytes.Equal(out, want) {
			t.Fatalf("re-encoded %x, want %x", out, want)
		}
		cmd2, payload2, err := ParseContents(out)
		if err != nil || cmd2 != cmd || !bytes.Equal(payload2, payload) {
			t.Fatalf("second parse: %q, %x, %v; want %q, %x", cmd2, payload2, err, cmd, payload)
		}
	})
}

func BenchmarkParseContents(b *testing.B) {
	for _, size := range []int{64, 1350, 8 << 10} {
		for _, form := range []struct {
			name     string
			contents []byte
		}{
			{"short", append([]byte{21}, make([]byte, size-1)...)},
			{"long", longForm("wtxidrelay", make([]byte, size-longTypeSize))},
			{"long-unknown", longForm("bip324-pt", make([]byte, size-longTypeSize))},
		} {
			b.Run(form.name+"/"+strconv.Itoa(size), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(form.contents)))
				for b.Loop() {
					if _, _, err := ParseContents(form.contents); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkAppendMessage(b *testing.B) {
	for _, size := range []int{64, 1350, 8 << 10} {
		payload := make([]byte, size)
		buf := make([]byte, 0, size+longTypeSize)
		for _, cmd := range []string{"tx", "version"} {
			b.Run(cmd+"/"+strconv.Itoa(size), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					var err error
					if buf, err = AppendMessage(buf[:0], cmd, payload); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

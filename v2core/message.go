package v2core

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// The message-type codec for packet contents (BIP324, "v2 Bitcoin P2P
// message structure"). Decrypted contents are the encoded message type
// followed by the message payload:
//
//	short form:  | id (1..255) | payload ... |
//	long form:   | 0x00 | command, NUL-padded to 12 bytes | payload ... |
//
// The long form carries the same 12-byte field as a v1 message header, so a
// command valid in one framing is valid in the other.

// CommandSize is the size of a long-form message type and of the command
// field of a v1 message header (Bitcoin Core's
// CMessageHeader::MESSAGE_TYPE_SIZE).
const CommandSize = 12

// longTypeSize is the size of a long-form message type: the 0x00 marker and
// the 12-byte command.
const longTypeSize = 1 + CommandSize

// shortIDs is the table of one-byte message type ids from the BIP324 text
// (section "v2 Bitcoin P2P message structure"), indexed by id. Id 0 marks
// the long form.
//
// Only ids 1..28 are part of the BIP. The auxiliary table added in BIP324
// version 1.0.2 (bip-0324/message_type_ids.md, copied to
// testdata/message_type_ids.md) lists informative ids that other BIPs
// assign or propose: 29..36 for the utreexo messages of BIP 183 and 37 for
// "feature" from BIP 434. Earlier drafts of BIP324 gave 29..32 to Erlay,
// which is why Bitcoin Core's table has empty entries there. None of these
// are in this table: we never send them, and on receipt ParseContents
// reports them as an [UnknownShortIDError], leaving the payload to a caller
// that knows more.
var shortIDs = [...]string{
	1:  "addr",
	2:  "block",
	3:  "blocktxn",
	4:  "cmpctblock",
	5:  "feefilter",
	6:  "filteradd",
	7:  "filterclear",
	8:  "filterload",
	9:  "getblocks",
	10: "getblocktxn",
	11: "getdata",
	12: "getheaders",
	13: "headers",
	14: "inv",
	15: "mempool",
	16: "merkleblock",
	17: "notfound",
	18: "ping",
	19: "pong",
	20: "sendcmpct",
	21: "tx",
	22: "getcfilters",
	23: "cfilter",
	24: "getcfheaders",
	25: "cfheaders",
	26: "getcfcheckpt",
	27: "cfcheckpt",
	28: "addrv2",
}

// maxShortID is the highest short id in the table.
const maxShortID = len(shortIDs) - 1

// shortIDByCommand inverts shortIDs.
var shortIDByCommand = func() map[string]uint8 {
	m := make(map[string]uint8, maxShortID)
	for id, cmd := range shortIDs[1:] {
		m[cmd] = uint8(id + 1)
	}
	return m
}()

// knownCommands interns the commands Bitcoin Core sends, so that parsing
// one of them from a 12-byte field returns a static string instead of
// allocating. Lookups with a string([]byte) key do not allocate. It holds
// every command with a short id (a peer may still send those in long form)
// and the ones without (protocol.h, NetMsgType).
var knownCommands = func() map[string]string {
	m := make(map[string]string, maxShortID+16)
	for _, cmd := range shortIDs[1:] {
		m[cmd] = cmd
	}
	for _, cmd := range []string{
		"version", "verack", "getaddr", "sendheaders", "sendaddrv2",
		"wtxidrelay", "sendtxrcncl", "feature", "reject", "alert",
	} {
		m[cmd] = cmd
	}
	return m
}()

// ErrEmptyContents is returned by [ParseContents] for packet contents of
// zero length, which carry no message type. Bitcoin Core drops such a
// message and keeps the connection.
var ErrEmptyContents = errors.New("v2core: empty packet contents have no message type")

// ErrTruncatedMessageType is returned by [ParseContents] when contents start
// with 0x00 (the long form) but hold fewer than the 12 command bytes that
// must follow. Bitcoin Core drops such a message and keeps the connection.
var ErrTruncatedMessageType = errors.New("v2core: long message type needs 12 bytes after the 0x00 marker")

// UnknownShortIDError is returned by [ParseContents] for a one-byte message
// type id outside the BIP324 table (29..255). It concerns that message
// alone: Bitcoin Core drops it and keeps the connection, and so should a
// caller. The id is the error's value.
type UnknownShortIDError uint8

func (e UnknownShortIDError) Error() string {
	return "v2core: unknown short message type id " + strconv.Itoa(int(e))
}

// InvalidCommandError reports a command that cannot be encoded, or a
// command field from the wire that is not valid. A valid command is 1 to 12
// printable ASCII bytes (0x20..0x7e); on the wire it is padded to 12 bytes
// with NULs, and nothing but NULs may follow the first NUL.
//
// When the error comes from the wire it concerns that message alone:
// Bitcoin Core drops the message and keeps the connection.
type InvalidCommandError struct {
	// Command holds the offending bytes: the string given to an append
	// function, or the whole 12-byte field, padding included, when read
	// from the wire.
	Command string
}

func (e *InvalidCommandError) Error() string {
	return fmt.Sprintf("v2core: invalid message type %q: %s", e.Command, commandProblem(e.Command))
}

// commandProblem says what is wrong with the bytes of an
// [InvalidCommandError].
func commandProblem(s string) string {
	if len(s) > CommandSize {
		return "longer than 12 bytes"
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == 0:
			if i == 0 {
				return "empty"
			}
			for j := i + 1; j < len(s); j++ {
				if s[j] != 0 {
					return fmt.Sprintf("byte 0x%02x at offset %d follows NUL padding", s[j], j)
				}
			}
			// Valid padding; so this string was handed to an append
			// function, where NUL has no place.
			return fmt.Sprintf("NUL at offset %d", i)
		case c < 0x20 || c > 0x7e:
			return fmt.Sprintf("byte 0x%02x at offset %d is not printable ASCII", c, i)
		}
	}
	if len(s) == 0 {
		return "empty"
	}
	return "not a command"
}

// validCommand reports whether s is a command that can be sent: 1 to 12
// bytes, each printable ASCII.
func validCommand(s string) bool {
	if len(s) == 0 || len(s) > CommandSize {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// parseCommandField reads a 12-byte NUL-padded command field, as found in a
// long-form message type and in a v1 header. It follows Bitcoin Core's
// CMessageHeader::IsMessageTypeValid: bytes before the first NUL must be
// printable ASCII (0x20..0x7e) and every byte after it must be NUL. It adds
// one rule of its own: the command must not be empty.
//
// Core's V2Transport::GetMessageType is looser than its v1 check in two
// ways: it admits 0x7f, and it admits an empty command. No message type uses
// either, and Core's message processing ignores types it does not know, so
// such a message goes nowhere in Core either. Rejecting them here means
// every command this package returns is a valid v1 command, which
// translation between the two framings needs.
//
// A command Core sends comes back as a static string; others allocate.
func parseCommandField(f []byte) (string, error) {
	_ = f[CommandSize-1]
	n := 0
	for n < CommandSize && f[n] != 0 {
		if f[n] < 0x20 || f[n] > 0x7e {
			return "", &InvalidCommandError{Command: string(f[:CommandSize])}
		}
		n++
	}
	if n == 0 {
		return "", &InvalidCommandError{Command: string(f[:CommandSize])}
	}
	for i := n + 1; i < CommandSize; i++ {
		if f[i] != 0 {
			return "", &InvalidCommandError{Command: string(f[:CommandSize])}
		}
	}
	if s, ok := knownCommands[string(f[:n])]; ok {
		return s, nil
	}
	return string(f[:n]), nil
}

// ShortID returns the one-byte message type id BIP324 assigns to command,
// and false when command has none (and so travels in the long form).
func ShortID(command string) (uint8, bool) {
	id, ok := shortIDByCommand[command]
	return id, ok
}

// CommandForShortID returns the command BIP324 assigns to the one-byte id,
// and false for 0 (the long-form marker) and for ids outside the table
// (29..255).
func CommandForShortID(id uint8) (string, bool) {
	if id == 0 || int(id) > maxShortID {
		return "", false
	}
	return shortIDs[id], true
}

// AppendMessage appends packet contents for a message to dst and returns the
// extended slice: the short id when command has one, else 0x00 and the
// command padded with NULs to 12 bytes, then the payload. The result goes to
// [Session.Seal] as contents.
//
// It fails with an [*InvalidCommandError], and returns dst unchanged, when
// command is empty, longer than 12 bytes, or holds a byte outside printable
// ASCII (0x20..0x7e). It does not limit the payload's length.
func AppendMessage(dst []byte, command string, payload []byte) ([]byte, error) {
	if id, ok := shortIDByCommand[command]; ok {
		dst = slices.Grow(dst, 1+len(payload))
		dst = append(dst, id)
		return append(dst, payload...), nil
	}
	if !validCommand(command) {
		return dst, &InvalidCommandError{Command: command}
	}
	dst = slices.Grow(dst, longTypeSize+len(payload))
	dst = append(dst, 0)
	dst = append(dst, command...)
	var pad [CommandSize]byte
	dst = append(dst, pad[:CommandSize-len(command)]...)
	return append(dst, payload...), nil
}

// ParseContents splits decrypted packet contents into the command and the
// payload. The payload aliases contents. A short id returns a static string
// and so does a long-form command Bitcoin Core sends, so the usual messages
// parse without allocating.
//
// Every error concerns this message alone, never the connection: Bitcoin
// Core drops such a message (reject_message in V2Transport) and keeps the
// peer, and a caller should do the same. The errors are
// [ErrEmptyContents], [ErrTruncatedMessageType], [*InvalidCommandError] for
// a long-form command that breaks the rules of [InvalidCommandError], and
// [UnknownShortIDError] for a first byte in 29..255. With an
// UnknownShortIDError, and only then, payload is still returned: the bytes
// after the id, for a caller that knows more ids than the BIP table.
func ParseContents(contents []byte) (command string, payload []byte, err error) {
	if len(contents) == 0 {
		return "", nil, ErrEmptyContents
	}
	if id := contents[0]; id != 0 {
		if int(id) > maxShortID {
			return "", contents[1:], UnknownShortIDError(id)
		}
		return shortIDs[id], contents[1:], nil
	}
	if len(contents) < longTypeSize {
		return "", nil, ErrTruncatedMessageType
	}
	command, err = parseCommandField(contents[1:longTypeSize])
	if err != nil {
		return "", nil, err
	}
	return command, contents[longTypeSize:], nil
}

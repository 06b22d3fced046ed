package socks5

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

// Protocol values, RFC 1928 §3-§4 and RFC 1929 §2.
const (
	socksVersion       = 0x05
	methodNone         = 0x00
	methodUserPass     = 0x02
	methodNoAcceptable = 0xff
	cmdConnect         = 0x01
	authVersion        = 0x01 // of the RFC 1929 sub-negotiation
	authSucceeded      = 0x00
	authFailed         = 0x01
)

// Address types (RFC 1928 §5), the values of [Request.ATYP].
const (
	AddrTypeIPv4   byte = 0x01
	AddrTypeDomain byte = 0x03
	AddrTypeIPv6   byte = 0x04
)

// Reply codes, the REP field of a reply (RFC 1928 §6).
const (
	Succeeded               byte = 0x00 // succeeded
	GeneralFailure          byte = 0x01 // general SOCKS server failure
	NotAllowed              byte = 0x02 // connection not allowed by ruleset
	NetworkUnreachable      byte = 0x03 // network unreachable
	HostUnreachable         byte = 0x04 // host unreachable
	ConnectionRefused       byte = 0x05 // connection refused
	TTLExpired              byte = 0x06 // TTL expired
	CommandNotSupported     byte = 0x07 // command not supported
	AddressTypeNotSupported byte = 0x08 // address type not supported
)

// Wire sizes. Every length field is one byte, so each message has a
// fixed maximum; ReadRequest reads no more than their sum.
const (
	maxFieldLen     = 255
	maxGreetingLen  = 2 + maxFieldLen                             // VER NMETHODS METHODS
	maxAuthLen      = 2 + maxFieldLen + 1 + maxFieldLen           // VER ULEN UNAME PLEN PASSWD
	maxRequestLen   = 4 + 1 + maxFieldLen + 2                     // VER CMD RSV ATYP LEN NAME PORT
	maxHandshakeLen = maxGreetingLen + maxAuthLen + maxRequestLen // 1032
	maxReplyLen     = 4 + 1 + maxFieldLen + 2                     // as a client reads it
)

// ErrBadRequest is wrapped by every error of [ReadRequest] that is the
// client's fault: not SOCKS5, no acceptable method, a bad RFC 1929
// message, or a request that cannot be served. Errors that do not wrap it
// come from reading or writing conn.
var ErrBadRequest = errors.New("socks5: bad request")

// Request is a CONNECT request as the client sent it. ReadRequest returns
// it; the caller owns it.
type Request struct {
	// Host is the destination. For ATYP 03 it is the name exactly as
	// sent: 1 to 255 bytes without a NUL, and, from Bitcoin Core, often an
	// IP literal ("203.0.113.7", "2001:db8::1") or a .onion name. For ATYP
	// 01 and 04 it is the address in its string form (netip.Addr.String,
	// so an IPv4-mapped address reads "::ffff:203.0.113.7").
	Host string
	Port uint16
	ATYP byte // AddrTypeIPv4, AddrTypeDomain or AddrTypeIPv6

	// User and Pass are the RFC 1929 credentials, empty when the client
	// sent none. They are accepted whatever they are: a client such as
	// Bitcoin Core sends random ones only to ask for stream isolation.
	User, Pass string
}

// Addr returns Host and Port joined with net.JoinHostPort, ready for
// net.Dial. A bracketed IPv6 literal sent as a name ("[::1]") loses its
// brackets first, so that it does not get two pairs.
func (r *Request) Addr() string {
	return net.JoinHostPort(r.host(), strconv.Itoa(int(r.Port)))
}

// IP returns Host as an address when it is an IP literal, whatever the
// ATYP, and ok false when it is a name. It accepts what netip.ParseAddr
// does (so "127.1" is a name, and a zone is kept), and a bracketed IPv6
// literal. NOTE: an IPv4-mapped IPv6 address comes back as sent; call
// Unmap before checking it against IPv4 ranges.
func (r *Request) IP() (netip.Addr, bool) {
	h := r.Host
	if len(h) > 2 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
		ip, err := netip.ParseAddr(h)
		return ip, err == nil && ip.Is6()
	}
	ip, err := netip.ParseAddr(h)
	return ip, err == nil
}

// host returns Host, without brackets when they enclose an IPv6 literal.
func (r *Request) host() string {
	if ip, ok := r.IP(); ok && r.Host[0] == '[' {
		return ip.String()
	}
	return r.Host
}

// ReadRequest runs the server side of a SOCKS5 handshake on conn up to and
// including the request, and returns the request. The caller then dials
// [Request.Addr] and answers with exactly one [WriteReply], Succeeded
// (and then relays) or a failure code such as [ReplyFor] picks (and then
// closes conn).
//
// Of the methods the client offers it picks 02 (username/password), so
// that a client asking for stream isolation gets it, else 00 (none). If
// the client offers neither, it replies 05 FF. It accepts any credentials.
//
// A request it cannot serve it answers itself and returns an error that
// wraps ErrBadRequest: a command other than CONNECT gets
// CommandNotSupported, an ATYP other than 01, 03 and 04 gets
// AddressTypeNotSupported, and an empty name, a name with a NUL, or a
// request whose VER is not 05 gets GeneralFailure. A client that does not
// speak SOCKS5 at all (a first byte other than 05: SOCKS4, HTTP) gets no
// answer. Other errors are conn's, wrapped: io.EOF when the client closed
// before sending a byte, io.ErrUnexpectedEOF when it closed later, and
// the timeout of the caller's deadline. After any error the caller
// closes conn and must not call WriteReply.
//
// It reads with io.ReadFull exactly the bytes the protocol says come next,
// at most 1032 in all, and nothing after the request; what it allocates
// for the input is the request's strings, 255 bytes each at most. The RSV
// byte of the request is ignored. ReadRequest does not set deadlines: the caller sets one on conn.
// It never panics on any input.
func ReadRequest(conn io.ReadWriter) (*Request, error) {
	// One buffer fits any message body: a method list, a name or a
	// credential (255) with the fields read along with it.
	var buf [1 + maxFieldLen + 2]byte
	var req Request

	// Greeting (RFC 1928 §3).
	if _, err := io.ReadFull(conn, buf[:2]); err != nil {
		return nil, fmt.Errorf("socks5: reading greeting: %w", err)
	}
	if buf[0] != socksVersion {
		// No reply: a SOCKS4 client expects a SOCKS4 answer and RFC 1928
		// defines none for other versions.
		return nil, fmt.Errorf("%w: version 0x%02x", ErrBadRequest, buf[0])
	}
	methods := buf[:buf[1]]
	if err := readFull(conn, methods, "greeting"); err != nil {
		return nil, err
	}
	method := byte(methodNoAcceptable)
	for _, m := range methods {
		if m == methodUserPass {
			method = m
			break
		}
		if m == methodNone {
			method = m
		}
	}
	if err := write(conn, []byte{socksVersion, method}); err != nil {
		return nil, err
	}
	if method == methodNoAcceptable {
		return nil, fmt.Errorf("%w: no acceptable method among % x", ErrBadRequest, methods)
	}

	// Username/password sub-negotiation (RFC 1929 §2).
	if method == methodUserPass {
		if err := readFull(conn, buf[:2], "authentication"); err != nil {
			return nil, err
		}
		if buf[0] != authVersion {
			if err := write(conn, []byte{authVersion, authFailed}); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%w: authentication version 0x%02x", ErrBadRequest, buf[0])
		}
		// ULEN, then UNAME and PLEN together.
		user := buf[:int(buf[1])+1]
		if err := readFull(conn, user, "authentication"); err != nil {
			return nil, err
		}
		req.User = string(user[:len(user)-1])
		pass := buf[:user[len(user)-1]]
		if err := readFull(conn, pass, "authentication"); err != nil {
			return nil, err
		}
		req.Pass = string(pass)
		if err := write(conn, []byte{authVersion, authSucceeded}); err != nil {
			return nil, err
		}
	}

	// Request (RFC 1928 §4, §5).
	if err := readFull(conn, buf[:4], "request"); err != nil {
		return nil, err
	}
	ver, cmd, atyp := buf[0], buf[1], buf[3]
	if ver != socksVersion {
		return nil, refuse(conn, GeneralFailure, fmt.Errorf("%w: request version 0x%02x", ErrBadRequest, ver))
	}
	req.ATYP = atyp
	// Read the whole request before refusing an unsupported command, so
	// that no unread bytes make the close a reset that loses the reply.
	switch atyp {
	case AddrTypeIPv4:
		b := buf[:4+2]
		if err := readFull(conn, b, "request"); err != nil {
			return nil, err
		}
		req.Host = netip.AddrFrom4([4]byte(b)).String()
		req.Port = binary.BigEndian.Uint16(b[4:])
	case AddrTypeIPv6:
		b := buf[:16+2]
		if err := readFull(conn, b, "request"); err != nil {
			return nil, err
		}
		req.Host = netip.AddrFrom16([16]byte(b)).String()
		req.Port = binary.BigEndian.Uint16(b[16:])
	case AddrTypeDomain:
		if err := readFull(conn, buf[:1], "request"); err != nil {
			return nil, err
		}
		b := buf[:int(buf[0])+2]
		if err := readFull(conn, b, "request"); err != nil {
			return nil, err
		}
		name := b[:len(b)-2]
		req.Port = binary.BigEndian.Uint16(b[len(b)-2:])
		if cmd == cmdConnect {
			// tor answers a malformed name with a general failure too
			// (SOCKSPROTOCOL).
			if len(name) == 0 {
				return nil, refuse(conn, GeneralFailure, fmt.Errorf("%w: empty name", ErrBadRequest))
			}
			if bytes.IndexByte(name, 0) >= 0 {
				return nil, refuse(conn, GeneralFailure, fmt.Errorf("%w: name with a NUL", ErrBadRequest))
			}
		}
		req.Host = string(name)
	default:
		return nil, refuse(conn, AddressTypeNotSupported, fmt.Errorf("%w: address type 0x%02x", ErrBadRequest, atyp))
	}
	if cmd != cmdConnect {
		return nil, refuse(conn, CommandNotSupported, fmt.Errorf("%w: command 0x%02x", ErrBadRequest, cmd))
	}
	return &req, nil
}

// readFull fills b from r, past the first byte of the handshake: an end
// of stream here is always unexpected.
func readFull(r io.Reader, b []byte, what string) error {
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("socks5: reading %s: %w", what, err)
	}
	return nil
}

// write writes b to w in one call.
func write(w io.Writer, b []byte) error {
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("socks5: writing: %w", err)
	}
	return nil
}

// refuse sends a failure reply with code and returns why, joined with the
// error of the write if it failed.
func refuse(w io.Writer, code byte, why error) error {
	if err := WriteReply(w, code, netip.AddrPort{}); err != nil {
		return errors.Join(why, err)
	}
	return why
}

// WriteReply sends the reply to a request, RFC 1928 §6: 05, code, 00, and
// bound as ATYP 01 (IPv4, IPv4-mapped IPv6 included) or 04 (IPv6; any
// zone is dropped). An invalid bound (the zero netip.AddrPort) is sent as
// 0.0.0.0:0, as is usual with a failure. Bitcoin Core reads and ignores
// the bound address; after Succeeded it is conventionally the local
// address of the onward connection. The reply goes out in one Write of at
// most 22 bytes.
func WriteReply(w io.Writer, code byte, bound netip.AddrPort) error {
	var b [4 + 16 + 2]byte
	msg := append(b[:0], socksVersion, code, 0x00)
	addr, port := bound.Addr().Unmap(), bound.Port()
	if !addr.IsValid() {
		addr, port = netip.IPv4Unspecified(), 0
	}
	if addr.Is4() {
		a := addr.As4()
		msg = append(append(msg, AddrTypeIPv4), a[:]...)
	} else {
		a := addr.As16()
		msg = append(append(msg, AddrTypeIPv6), a[:]...)
	}
	msg = binary.BigEndian.AppendUint16(msg, port)
	return write(w, msg)
}

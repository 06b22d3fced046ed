package socks5

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// errProxy is wrapped by the errors of a proxy that broke the protocol.
var errProxy = errors.New("socks5: bad answer from proxy")

// Dial connects over TCP to the SOCKS5 server at proxy (host:port) and
// asks it to CONNECT to host and port, and returns the connection once the
// server has replied Succeeded, ready for the stream.
//
// host goes as ATYP 03, a name, even when it is an IP literal, as tor
// wants and as Bitcoin Core does; it must be 1 to 255 bytes without a NUL.
// With user or pass set, Dial offers methods 00 and 02, as Core does, and
// sends them (RFC 1929, each at most 255 bytes) if the server picks 02:
// tor puts streams with different credentials on different circuits.
// Without, it offers 00 only.
//
// A refusal is a [ReplyError] holding the server's code, which [ReplyFor]
// passes on. ctx bounds the whole dial and handshake; its deadline, if
// any, is set on the connection for the handshake and cleared after.
func Dial(ctx context.Context, proxy, host string, port uint16, user, pass string) (net.Conn, error) {
	if err := checkDialArgs(host, user, pass); err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", proxy)
	if err != nil {
		return nil, fmt.Errorf("socks5: proxy: %w", err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	err = connect(conn, host, port, user, pass)
	if !stop() {
		err = fmt.Errorf("socks5: handshake with proxy: %w", context.Cause(ctx))
	}
	if err == nil {
		err = conn.SetDeadline(time.Time{})
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// checkDialArgs checks what Dial must fit into one-byte length fields.
func checkDialArgs(host, user, pass string) error {
	switch {
	case len(host) == 0 || len(host) > maxFieldLen:
		return fmt.Errorf("socks5: host name of %d bytes, not 1 to 255", len(host))
	case strings.IndexByte(host, 0) >= 0:
		return fmt.Errorf("socks5: host name %q has a NUL", host)
	case len(user) > maxFieldLen || len(pass) > maxFieldLen:
		return fmt.Errorf("socks5: username of %d and password of %d bytes, at most 255 each", len(user), len(pass))
	}
	return nil
}

// connect runs the client side of the handshake on rw, in lock step as
// Bitcoin Core does: each message waits for the answer to the one before.
// It reads exactly the server's messages, nothing after the reply.
func connect(rw io.ReadWriter, host string, port uint16, user, pass string) error {
	var buf [maxReplyLen]byte
	auth := user != "" || pass != ""
	greeting := []byte{socksVersion, 1, methodNone}
	if auth {
		greeting = []byte{socksVersion, 2, methodNone, methodUserPass}
	}
	if err := write(rw, greeting); err != nil {
		return err
	}
	if err := readFull(rw, buf[:2], "method"); err != nil {
		return err
	}
	if buf[0] != socksVersion {
		return fmt.Errorf("%w: version 0x%02x", errProxy, buf[0])
	}
	switch method := buf[1]; {
	case method == methodNone:
	case method == methodUserPass && auth:
		msg := append(buf[:0], authVersion, byte(len(user)))
		msg = append(append(msg, user...), byte(len(pass)))
		msg = append(msg, pass...)
		if err := write(rw, msg); err != nil {
			return err
		}
		if err := readFull(rw, buf[:2], "authentication"); err != nil {
			return err
		}
		if buf[0] != authVersion || buf[1] != authSucceeded {
			return fmt.Errorf("%w: authentication refused (% x)", errProxy, buf[:2])
		}
	case method == methodNoAcceptable:
		return fmt.Errorf("%w: no acceptable method", errProxy)
	default:
		return fmt.Errorf("%w: method 0x%02x, not offered", errProxy, method)
	}

	msg := append(buf[:0], socksVersion, cmdConnect, 0x00, AddrTypeDomain, byte(len(host)))
	msg = binary.BigEndian.AppendUint16(append(msg, host...), port)
	if err := write(rw, msg); err != nil {
		return err
	}
	if err := readFull(rw, buf[:4], "reply"); err != nil {
		return err
	}
	if buf[0] != socksVersion {
		return fmt.Errorf("%w: reply version 0x%02x", errProxy, buf[0])
	}
	if buf[1] != Succeeded {
		return ReplyError(buf[1])
	}
	var n int
	switch buf[3] {
	case AddrTypeIPv4:
		n = 4
	case AddrTypeIPv6:
		n = 16
	case AddrTypeDomain:
		if err := readFull(rw, buf[:1], "reply"); err != nil {
			return err
		}
		n = int(buf[0])
	default:
		return fmt.Errorf("%w: reply address type 0x%02x", errProxy, buf[3])
	}
	// BND.ADDR and BND.PORT, which nothing here needs.
	return readFull(rw, buf[:n+2], "reply")
}

package tortest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// SOCKS5 constants (RFC 1928, RFC 1929).
const (
	socksVersion    = 5
	socksNoAuth     = 0x00
	socksUserPass   = 0x02
	socksNoMethod   = 0xff
	socksConnect    = 0x01
	socksIPv4       = 0x01
	socksDomain     = 0x03
	socksIPv6       = 0x04
	socksSucceeded  = 0x00
	userPassVersion = 1
)

// SOCKSReplyError is a SOCKS5 reply code other than success (RFC 1928,
// section 6): 1 general failure, 4 host unreachable, 5 connection refused,
// and so on.
type SOCKSReplyError byte

func (e SOCKSReplyError) Error() string {
	return "tortest: SOCKS5 reply " + strconv.Itoa(int(e))
}

// SOCKS5 is a minimal SOCKS5 client (RFC 1928 CONNECT, with RFC 1929
// username/password authentication when Username is set). Its zero value
// is not usable: set Addr. It is safe for concurrent use.
type SOCKS5 struct {
	// Addr is the proxy's host:port.
	Addr string
	// Username and Password are sent when Username is not empty. For a
	// managed transport's client they carry the bridge's arguments
	// ([SOCKSAuth]).
	Username, Password []byte
}

// DialContext connects to addr (an IP literal or a name, with a port)
// through the proxy. The network must be "tcp", "tcp4" or "tcp6". The
// context bounds the whole exchange; the connection returned has no
// deadline. It has the signature of net/http's Transport.DialContext.
func (s *SOCKS5) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("tortest: SOCKS5: network %q not supported", network)
	}
	req, err := socksConnectRequest(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	// Unblock the exchange if ctx ends without a deadline.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	err = s.handshake(c, req)
	if !stop() || ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("tortest: SOCKS5 %s via %s: %w", addr, s.Addr, err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// socksConnectRequest builds a CONNECT request for host:port.
func socksConnectRequest(addr string) ([]byte, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("tortest: SOCKS5: bad port in %q", addr)
	}
	req := []byte{socksVersion, socksConnect, 0}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Is4() {
			req = append(req, socksIPv4)
		} else {
			req = append(req, socksIPv6)
		}
		req = append(req, ip.AsSlice()...)
	} else {
		if len(host) > 255 {
			return nil, fmt.Errorf("tortest: SOCKS5: host name too long")
		}
		req = append(req, socksDomain, byte(len(host)))
		req = append(req, host...)
	}
	return binary.BigEndian.AppendUint16(req, uint16(port)), nil
}

// handshake runs the method negotiation, the authentication and the CONNECT
// request on c.
func (s *SOCKS5) handshake(c net.Conn, req []byte) error {
	method := byte(socksNoAuth)
	if len(s.Username) > 0 {
		method = socksUserPass
		if len(s.Username) > 255 || len(s.Password) > 255 || len(s.Password) == 0 {
			return errors.New("SOCKS5: username and password must be 1-255 bytes each")
		}
	}
	if _, err := c.Write([]byte{socksVersion, 1, method}); err != nil {
		return err
	}
	var b [4]byte
	if _, err := io.ReadFull(c, b[:2]); err != nil {
		return err
	}
	if b[0] != socksVersion {
		return fmt.Errorf("SOCKS5: server version %d", b[0])
	}
	if b[1] != method {
		return fmt.Errorf("SOCKS5: server chose method %#x, not %#x", b[1], method)
	}
	if method == socksUserPass {
		m := []byte{userPassVersion, byte(len(s.Username))}
		m = append(m, s.Username...)
		m = append(m, byte(len(s.Password)))
		m = append(m, s.Password...)
		if _, err := c.Write(m); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, b[:2]); err != nil {
			return err
		}
		if b[1] != 0 {
			return fmt.Errorf("SOCKS5: authentication refused (status %d)", b[1])
		}
	}
	if _, err := c.Write(req); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, b[:4]); err != nil {
		return err
	}
	if b[0] != socksVersion {
		return fmt.Errorf("SOCKS5: reply version %d", b[0])
	}
	if b[1] != socksSucceeded {
		return SOCKSReplyError(b[1])
	}
	var skip int
	switch b[3] {
	case socksIPv4:
		skip = 4
	case socksIPv6:
		skip = 16
	case socksDomain:
		if _, err := io.ReadFull(c, b[:1]); err != nil {
			return err
		}
		skip = int(b[0])
	default:
		return fmt.Errorf("SOCKS5: reply address type %d", b[3])
	}
	_, err := io.CopyN(io.Discard, c, int64(skip+2))
	return err
}

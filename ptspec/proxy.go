package ptspec

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Upstream proxies, for TOR_PT_PROXY (pt-spec 3.2.2, 3.3.2). tor also
// allows socks4a, which we do not speak; it gets a PROXY-ERROR.

// errProxy is the error a proxy's refusal wraps.
var errProxy = errors.New("ptspec: upstream proxy refused")

// proxyDialer returns a dialFunc that reaches its address through the
// proxy u, which it reaches with base.
func proxyDialer(u *url.URL, base dialFunc) (dialFunc, error) {
	var handshake func(rw io.ReadWriter, target string) error
	switch u.Scheme {
	case "socks5":
		var user, pass string
		if u.User != nil {
			user = u.User.Username()
			pass, _ = u.User.Password()
			if len(user) == 0 || len(user) > 255 || len(pass) > 255 {
				return nil, errors.New("socks5 proxy username must be 1 to 255 bytes, password at most 255")
			}
		}
		handshake = func(rw io.ReadWriter, target string) error {
			return socks5Connect(rw, target, user, pass)
		}
	case "http":
		var auth string
		if u.User != nil {
			pass, _ := u.User.Password()
			auth = base64.StdEncoding.EncodeToString([]byte(u.User.Username() + ":" + pass))
		}
		handshake = func(rw io.ReadWriter, target string) error {
			return httpConnect(rw, target, auth)
		}
	default:
		return nil, fmt.Errorf("proxy scheme %q is not supported", safeArg(u.Scheme))
	}
	proxy := u.Host
	return func(ctx context.Context, target string) (net.Conn, error) {
		c, err := base(ctx, proxy)
		if err != nil {
			return nil, fmt.Errorf("ptspec: upstream proxy: %w", err)
		}
		stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
		err = handshake(c, target)
		if !stop() && err == nil {
			err = context.Cause(ctx)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}, nil
}

// SOCKS5 client (RFC 1928, RFC 1929), CONNECT only.
const (
	socks5Version      = 0x05
	socks5AuthNone     = 0x00
	socks5AuthPassword = 0x02
	socks5AuthRefused  = 0xff
	socks5CmdConnect   = 0x01
	socks5AtypIPv4     = 0x01
	socks5AtypDomain   = 0x03
	socks5AtypIPv6     = 0x04
	rfc1929Version     = 0x01
)

// socks5Connect asks the SOCKS5 server on rw to connect to target.
func socks5Connect(rw io.ReadWriter, target, user, pass string) error {
	host, portStr, err := net.SplitHostPort(target)
	if err != nil {
		return err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return fmt.Errorf("ptspec: bad port in %q", target)
	}
	method := byte(socks5AuthNone)
	if user != "" {
		method = socks5AuthPassword
	}
	if _, err := rw.Write([]byte{socks5Version, 1, method}); err != nil {
		return err
	}
	var reply [2]byte
	if _, err := io.ReadFull(rw, reply[:]); err != nil {
		return err
	}
	if reply[0] != socks5Version || reply[1] != method {
		return fmt.Errorf("%w: SOCKS5 authentication method 0x%02x", errProxy, reply[1])
	}
	if method == socks5AuthPassword {
		msg := []byte{rfc1929Version, byte(len(user))}
		msg = append(msg, user...)
		msg = append(msg, byte(len(pass)))
		msg = append(msg, pass...)
		if _, err := rw.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(rw, reply[:]); err != nil {
			return err
		}
		if reply[1] != 0 {
			return fmt.Errorf("%w: SOCKS5 username and password", errProxy)
		}
	}

	req := []byte{socks5Version, socks5CmdConnect, 0}
	if ip := net.ParseIP(host); ip == nil {
		if len(host) == 0 || len(host) > 255 {
			return fmt.Errorf("ptspec: host name in %q too long for SOCKS5", target)
		}
		req = append(req, socks5AtypDomain, byte(len(host)))
		req = append(req, host...)
	} else if ip4 := ip.To4(); ip4 != nil {
		req = append(req, socks5AtypIPv4)
		req = append(req, ip4...)
	} else {
		req = append(req, socks5AtypIPv6)
		req = append(req, ip.To16()...)
	}
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	if _, err := rw.Write(req); err != nil {
		return err
	}

	// VER REP RSV ATYP, then BND.ADDR and BND.PORT, which we skip.
	var head [4]byte
	if _, err := io.ReadFull(rw, head[:]); err != nil {
		return err
	}
	if head[0] != socks5Version {
		return fmt.Errorf("%w: not a SOCKS5 reply", errProxy)
	}
	if head[1] != 0 {
		return fmt.Errorf("%w: SOCKS5 reply 0x%02x", errProxy, head[1])
	}
	var skip int
	switch head[3] {
	case socks5AtypIPv4:
		skip = net.IPv4len
	case socks5AtypIPv6:
		skip = net.IPv6len
	case socks5AtypDomain:
		var n [1]byte
		if _, err := io.ReadFull(rw, n[:]); err != nil {
			return err
		}
		skip = int(n[0])
	default:
		return fmt.Errorf("%w: SOCKS5 reply address type 0x%02x", errProxy, head[3])
	}
	_, err = io.CopyN(io.Discard, rw, int64(skip+2))
	return err
}

// maxHTTPResponseHeader bounds the proxy's answer to CONNECT.
const maxHTTPResponseHeader = 8 << 10

// httpConnect asks the HTTP proxy on rw to connect to target (RFC 9110,
// section 9.3.6). auth, if set, is the Basic credential. It reads the
// answer a byte at a time, so that nothing after it is read ahead.
func httpConnect(rw io.ReadWriter, target, auth string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", target, target)
	if auth != "" {
		fmt.Fprintf(&b, "Proxy-Authorization: Basic %s\r\n", auth)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(rw, b.String()); err != nil {
		return err
	}
	var head []byte
	var one [1]byte
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if len(head) >= maxHTTPResponseHeader {
			return fmt.Errorf("%w: HTTP answer too long", errProxy)
		}
		if _, err := io.ReadFull(rw, one[:]); err != nil {
			return err
		}
		head = append(head, one[0])
	}
	status, _, _ := strings.Cut(string(head), "\r\n")
	proto, rest, _ := strings.Cut(status, " ")
	code, _, _ := strings.Cut(rest, " ")
	if !strings.HasPrefix(proto, "HTTP/1.") {
		return fmt.Errorf("%w: not an HTTP answer", errProxy)
	}
	if len(code) != 3 || code[0] != '2' {
		return fmt.Errorf("%w: HTTP status %q", errProxy, safeArg(code))
	}
	return nil
}

package socks5

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// ReplyError is a SOCKS5 server's refusal of a request: the REP code of
// its reply (RFC 1928 §6), never Succeeded. [Dial] returns it, and
// [ReplyFor] passes it on unchanged, so a proxy in front of another
// SOCKS5 server (tor) can hand the upstream code back to its client.
type ReplyError byte

func (e ReplyError) Error() string {
	return fmt.Sprintf("socks5: proxy replied 0x%02x (%s)", byte(e), replyText(byte(e)))
}

// replyText names a reply code in the words of RFC 1928 §6.
func replyText(code byte) string {
	switch code {
	case Succeeded:
		return "succeeded"
	case GeneralFailure:
		return "general SOCKS server failure"
	case NotAllowed:
		return "connection not allowed by ruleset"
	case NetworkUnreachable:
		return "network unreachable"
	case HostUnreachable:
		return "host unreachable"
	case ConnectionRefused:
		return "connection refused"
	case TTLExpired:
		return "TTL expired"
	case CommandNotSupported:
		return "command not supported"
	case AddressTypeNotSupported:
		return "address type not supported"
	}
	return "unassigned"
}

// ReplyFor picks the reply code for the error of an onward dial, nil
// giving Succeeded:
//
//   - a [ReplyError] (from [Dial] to an upstream SOCKS5 server): its code;
//   - ECONNREFUSED, and ECONNRESET as tor maps it: ConnectionRefused;
//   - any *net.DNSError (no such host, and a failed or timed-out lookup
//     alike, as tor answers RESOLVEFAILED): HostUnreachable;
//   - EHOSTUNREACH, EHOSTDOWN: HostUnreachable;
//   - ENETUNREACH, ENETDOWN: NetworkUnreachable;
//   - EACCES, EPERM (a local firewall rule refused it): NotAllowed;
//   - a timeout (context.DeadlineExceeded, os.ErrDeadlineExceeded,
//     ETIMEDOUT, or a net.Error whose Timeout is true): TTLExpired;
//   - anything else, context.Canceled included: GeneralFailure.
//
// TTLExpired for a timeout: RFC 1928 gives the codes no meaning beyond
// their names, and an IP TTL running out is itself a connection that
// never arrived; tor replies TTLExpired when a stream times out (reasons.c,
// END_STREAM_REASON_TIMEOUT), and Bitcoin Core takes every failure code
// alike, logging its name. The checks run in the order above.
func ReplyFor(err error) byte {
	if err == nil {
		return Succeeded
	}
	var re ReplyError
	if errors.As(err, &re) && re != ReplyError(Succeeded) {
		return byte(re)
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return ConnectionRefused
	case errors.As(err, &dnsErr),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EHOSTDOWN):
		return HostUnreachable
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ENETDOWN):
		return NetworkUnreachable
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return NotAllowed
	case isTimeout(err):
		return TTLExpired
	}
	return GeneralFailure
}

// isTimeout reports whether err is a timeout.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, syscall.ETIMEDOUT) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

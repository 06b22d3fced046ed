package socks5

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestReplyFor_Real maps errors that real dials and reads return.
func TestReplyFor_Real(t *testing.T) {
	t.Run("closed port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			t.Skip("something listens on the closed port again")
		}
		if code := ReplyFor(err); code != ConnectionRefused {
			t.Errorf("ReplyFor(%v) = 0x%02x, want ConnectionRefused", err, code)
		}
	})
	t.Run("dial deadline", func(t *testing.T) {
		ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
		defer cancel()
		var d net.Dialer
		_, err := d.DialContext(ctx, "tcp", "127.0.0.1:9")
		if code := ReplyFor(err); code != TTLExpired {
			t.Errorf("ReplyFor(%v) = 0x%02x, want TTLExpired", err, code)
		}
	})
	t.Run("dial canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		var d net.Dialer
		_, err := d.DialContext(ctx, "tcp", "127.0.0.1:9")
		if code := ReplyFor(err); code != GeneralFailure {
			t.Errorf("ReplyFor(%v) = 0x%02x, want GeneralFailure", err, code)
		}
	})
	t.Run("read deadline", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		a.SetReadDeadline(time.Now().Add(-time.Second))
		_, err := a.Read(make([]byte, 1))
		if code := ReplyFor(err); code != TTLExpired {
			t.Errorf("ReplyFor(%v) = 0x%02x, want TTLExpired", err, code)
		}
	})
	t.Run("no such host", func(t *testing.T) {
		// A resolver whose DNS server cannot be reached, so that the
		// test needs no network and fails the same everywhere.
		r := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("test: no DNS")
		}}
		d := net.Dialer{Resolver: r}
		_, err := d.DialContext(t.Context(), "tcp", "no-such-host.invalid:8333")
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) {
			t.Fatalf("dial error %v is not a *net.DNSError", err)
		}
		if code := ReplyFor(err); code != HostUnreachable {
			t.Errorf("ReplyFor(%v) = 0x%02x, want HostUnreachable", err, code)
		}
	})
}

func TestReplyFor(t *testing.T) {
	dialErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
	}
	tests := []struct {
		err  error
		want byte
	}{
		{nil, Succeeded},
		{dialErr(syscall.ECONNREFUSED), ConnectionRefused},
		{dialErr(syscall.ECONNRESET), ConnectionRefused},
		{dialErr(syscall.EHOSTUNREACH), HostUnreachable},
		{dialErr(syscall.EHOSTDOWN), HostUnreachable},
		{dialErr(syscall.ENETUNREACH), NetworkUnreachable},
		{dialErr(syscall.ENETDOWN), NetworkUnreachable},
		{dialErr(syscall.EPERM), NotAllowed},
		{dialErr(syscall.EACCES), NotAllowed},
		{dialErr(syscall.ETIMEDOUT), TTLExpired},
		{&net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}}, HostUnreachable},
		{&net.DNSError{Err: "i/o timeout", Name: "x", IsTimeout: true}, HostUnreachable},
		{fmt.Errorf("onward: %w", context.DeadlineExceeded), TTLExpired},
		{fmt.Errorf("onward: %w", os.ErrDeadlineExceeded), TTLExpired},
		{fmt.Errorf("tor: %w", ReplyError(TTLExpired)), TTLExpired},
		{fmt.Errorf("tor: %w", ReplyError(NotAllowed)), NotAllowed},
		{ReplyError(0xf2), 0xf2},
		{ReplyError(Succeeded), GeneralFailure},
		{context.Canceled, GeneralFailure},
		{errors.New("something else"), GeneralFailure},
	}
	for _, tt := range tests {
		if got := ReplyFor(tt.err); got != tt.want {
			t.Errorf("ReplyFor(%v) = 0x%02x, want 0x%02x", tt.err, got, tt.want)
		}
	}
}

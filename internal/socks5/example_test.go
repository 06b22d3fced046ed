package socks5_test

import (
	"context"
	"log"
	"net"
	"net/netip"
	"time"

	"github.com/bip324pt/bip324-pt/internal/socks5"
)

// The shape of a proxy's handler for one connection from bitcoind.
func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:9050")
	if err != nil {
		log.Fatal(err)
	}
	conn, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	conn.SetDeadline(time.Now().Add(20 * time.Second))
	req, err := socks5.ReadRequest(conn)
	if err != nil {
		log.Print(err) // any answer has been sent; just close
		return
	}
	var d net.Dialer
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := d.DialContext(ctx, "tcp", req.Addr())
	if err != nil {
		socks5.WriteReply(conn, socks5.ReplyFor(err), netip.AddrPort{})
		return
	}
	defer out.Close()
	bound, _ := netip.ParseAddrPort(out.LocalAddr().String())
	if err := socks5.WriteReply(conn, socks5.Succeeded, bound); err != nil {
		return
	}
	conn.SetDeadline(time.Time{})
	// ... relay conn and out (internal/copyloop.Join).
}

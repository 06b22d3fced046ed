package bridge

import (
	"context"
	"net"
	"testing"
	"time"
)

// BenchmarkHandshake is one authenticated bridge handshake per iteration,
// client and server in this process over TCP loopback: the bridge's cost
// per client connection, key exchange, authentication and shaper setup.
func BenchmarkHandshake(b *testing.B) {
	br := startBridge(b, nil)
	cc := &ClientConfig{Secret: br.secret}
	b.ReportAllocs()
	for b.Loop() {
		raw, err := net.Dial("tcp", br.addr)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := Client(ctx, raw, cc)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

package ptspec_test

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/bip324pt/bip324-pt/ptspec"
)

// plain is a Wrapper that adds nothing: a stand-in for the transport.
type plain struct{}

func (plain) WrapConn(_ context.Context, c net.Conn) (net.Conn, error) { return c, nil }

// A standalone bridge in front of a local service.
func ExampleServe() {
	// The service: it greets and closes.
	service, _ := net.Listen("tcp", "127.0.0.1:0")
	defer service.Close()
	go func() {
		for {
			c, err := service.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello from the service")
			c.Close()
		}
	}()

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ptspec.Serve(ctx, ptspec.Config{}, ln, plain{}, service.Addr().String()) }()

	c, _ := net.Dial("tcp", ln.Addr().String())
	b, _ := io.ReadAll(c)
	c.Close()
	fmt.Println(string(b))

	cancel()
	fmt.Println(<-done)
	// Output:
	// hello from the service
	// <nil>
}

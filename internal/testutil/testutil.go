// Package testutil holds the helpers the project's tests share: a TCP
// connection pair on loopback, a goroutine leak check, and a buffer safe
// for a writer and a reader at once.
package testutil

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// modulePath marks the goroutines the leak check looks at: those running
// code of this project.
const modulePath = "github.com/bip324pt/bip324-pt/"

// TCPPair returns the two ends of a TCP connection on 127.0.0.1; both are
// closed when the test ends.
func TCPPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-ch
	if server == nil {
		client.Close()
		t.Fatal("testutil: accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// VerifyNoLeaks fails the test if, when it ends (after the cleanups
// registered later have run), goroutines running this project's code are
// left that did not exist when VerifyNoLeaks was called. It waits up to 5
// seconds for them to finish. Call it first in a test.
func VerifyNoLeaks(t testing.TB) {
	t.Helper()
	before := goroutines()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			var leaked []string
			for id, stack := range goroutines() {
				if _, ok := before[id]; !ok && strings.Contains(stack, modulePath) {
					leaked = append(leaked, stack)
				}
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines leaked:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// goroutines returns the stacks of every goroutine but the caller's, by
// their "goroutine N" header.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	m := make(map[string]string)
	for i, g := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 {
			continue // the caller
		}
		id, _, _ := bytes.Cut(g, []byte(" ["))
		m[string(id)] = string(g)
	}
	return m
}

// SyncBuffer is a bytes.Buffer safe for concurrent use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Transfer writes n chunks of size bytes to w while it reads them all from
// r, and returns the first error of either side. Throughput benchmarks
// time it. close, if not nil, is called when the write side fails, so a
// blocked reader returns.
func Transfer(w io.Writer, r io.Reader, n, size int, close func()) error {
	total := int64(n) * int64(size)
	readErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		var got int64
		for got < total {
			k, err := r.Read(buf)
			got += int64(k)
			if err != nil {
				readErr <- err
				return
			}
		}
		readErr <- nil
	}()
	p := make([]byte, size)
	for range n {
		if _, err := w.Write(p); err != nil {
			if close != nil {
				close()
			}
			<-readErr
			return err
		}
	}
	return <-readErr
}

// LossyConn is a test destination whose Close reports that the last K
// bytes written to it were never delivered, with an error whose Unsent
// method says so, as shaper.Conn does when its peer stopped reading. Its
// Conn must be a *net.TCPConn, for CloseWrite.
type LossyConn struct {
	net.Conn
	K int64
}

// LostError is LossyConn's Close error.
type LostError struct{ N int64 }

func (e *LostError) Error() string { return fmt.Sprintf("lost %d bytes", e.N) }

// Unsent returns N.
func (e *LostError) Unsent() int64 { return e.N }

// CloseWrite half-closes the TCP connection.
func (c *LossyConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

// Close closes the connection and reports K bytes undelivered.
func (c *LossyConn) Close() error {
	c.Conn.Close()
	return &LostError{c.K}
}

package measure

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// Unit tests of the parts that need no transport.

// splitReader returns at most n bytes per Read.
type splitReader struct {
	r io.Reader
	n int
}

func (s splitReader) Read(b []byte) (int, error) {
	return s.r.Read(b[:min(len(b), s.n)])
}

func TestPattern(t *testing.T) {
	const n = patternSize + 12345 // across the wrap-around
	var buf bytes.Buffer
	if err := writePattern(&buf, n); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != n {
		t.Fatalf("wrote %d bytes, want %d", buf.Len(), n)
	}
	data := buf.Bytes()
	if got, err := checkPattern(splitReader{bytes.NewReader(data), 7777}, n); got != n || err != nil {
		t.Fatalf("checkPattern: %d, %v", got, err)
	}
	data[patternSize+100] ^= 1
	if _, err := checkPattern(bytes.NewReader(data), n); err == nil {
		t.Error("a flipped bit went unnoticed")
	}
	if _, err := checkPattern(bytes.NewReader(data[:100]), n); err == nil {
		t.Error("a short stream went unnoticed")
	}
}

func TestSink(t *testing.T) {
	s, err := StartSink()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	const n = 3<<20 + 5

	c := dial()
	c.Write(sinkHeader(sinkUpload, n))
	if err := writePattern(c, n); err != nil {
		t.Fatal(err)
	}
	var ans [9]byte
	if _, err := io.ReadFull(c, ans[:]); err != nil || ans[0] != 0 {
		t.Fatalf("upload: answer %v, %v", ans, err)
	}
	c.Close()

	c = dial()
	c.Write(sinkHeader(sinkDownload, n))
	if got, err := checkPattern(c, n); got != n || err != nil {
		t.Fatalf("download: %d, %v", got, err)
	}
	c.Close()

	c = dial()
	c.Write(append(sinkHeader(sinkEcho, 3), "abc"...))
	var echo [3]byte
	if _, err := io.ReadFull(c, echo[:]); err != nil || string(echo[:]) != "abc" {
		t.Fatalf("echo: %q, %v", echo, err)
	}
	c.Close()
}

// direct is a Tunnel without a transport: a plain connection to the sink.
type direct struct{ sink *Sink }

func (d direct) Dial(ctx context.Context) (net.Conn, error) {
	var dl net.Dialer
	return dl.DialContext(ctx, "tcp", d.sink.Addr())
}

func (direct) CPU() (client, server time.Duration, err error) { return 0, 0, nil }

func TestBulkAndHandshakes(t *testing.T) {
	s, err := StartSink()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := Bulk(direct{s}, 5<<20+3)
	if err != nil {
		t.Fatal(err)
	}
	if r.Upload.Bytes != 5<<20+3 || r.Download.Bytes != 5<<20+3 || r.Upload.Elapsed <= 0 || r.Download.Elapsed <= 0 {
		t.Fatalf("%+v", r)
	}
	h, err := Handshakes(direct{s}, 50, 4)
	if err != nil {
		t.Fatal(err)
	}
	if h.N != 50 || h.Parallel != 4 || h.Latency <= 0 || h.Elapsed <= 0 {
		t.Fatalf("%+v", h)
	}
	t.Logf("%v; %v; %v", r.Upload, r.Download, h)
}

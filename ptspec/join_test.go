package ptspec

import (
	"context"
	"github.com/bip324pt/bip324-pt/internal/testutil"
	"io"
	"strings"
	"testing"
	"time"
)

// TestJoin_LogsUndelivered: join logs the bytes a destination reports
// undelivered on Close at warn level, with the count, and counts only the
// bytes delivered (internal/copyloop's TestCopyLoop_CountsDelivered
// checks the counting itself).
func TestJoin_LogsUndelivered(t *testing.T) {
	checkLeaks(t)
	client, a := tcpPair(t)
	b, server := tcpPair(t)
	client.SetDeadline(time.Now().Add(testTimeout))
	server.SetDeadline(time.Now().Add(testTimeout))
	lossy := &testutil.LossyConn{Conn: b, K: 300}
	log, logs := testLogger()
	r := &runner{log: log}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.join(context.Background(), a, lossy)
	}()
	io.WriteString(client, strings.Repeat("x", 1000))
	client.CloseWrite()
	if n, _ := io.Copy(io.Discard, server); n != 1000 {
		t.Fatalf("server read %d bytes", n)
	}
	server.Close()
	<-done
	out := logs.String()
	if !containsAll(out, "level=WARN", "undelivered", "dropped=300", "up=700") {
		t.Errorf("log %q, want a warning with dropped=300 and up=700", out)
	}

}

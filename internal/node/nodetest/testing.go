package nodetest

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"
)

// New starts a fake node for a test and closes it when the test ends.
func New(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := Start(cfg)
	if err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// modulePath marks the goroutines VerifyNoLeaks looks at: those running
// code of this module.
const modulePath = "github.com/bip324pt/bip324-pt/"

// VerifyNoLeaks fails t if goroutines running this module's code that were
// not there when it was called are still there when the test ends, after
// up to 5 seconds of grace. Call it first in a test, so that its check
// runs after every other cleanup. Not for parallel tests.
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
		header, _, _ := strings.Cut(string(g), " [")
		m[header] = string(g)
	}
	return m
}

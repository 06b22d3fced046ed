package shaper

import (
	"bytes"
	mrand "math/rand/v2"
	"testing"
)

// TestQueue_Model checks the ring buffer, growth included, against a plain
// slice over random pushes, peeks and pops.
func TestQueue_Model(t *testing.T) {
	for _, max := range []int{1, 7, initialQueue, 3 * initialQueue} {
		r := mrand.New(mrand.NewPCG(uint64(max), 1))
		q := newQueue(max)
		var model []byte
		next := byte(0)
		for range 5000 {
			switch r.IntN(3) {
			case 0:
				p := make([]byte, r.IntN(2*initialQueue))
				for i := range p {
					p[i] = next
					next++
				}
				n, ok := q.pushStream([]byte{0xff}, p)
				if !ok {
					t.Fatal("push on an open queue failed")
				}
				if want := min(len(p), max-len(model)); n != want {
					t.Fatalf("max %d: push took %d of %d with %d queued, want %d", max, n, len(p), len(model), want)
				}
				model = append(model, p[:n]...)
			case 1, 2:
				k := r.IntN(max + 1)
				a, b := q.peek(k)
				got := append(append([]byte{}, a...), b...)
				if want := model[:min(k, len(model))]; !bytes.Equal(got, want) {
					t.Fatalf("max %d: peek(%d) differs", max, k)
				}
				pop := r.IntN(len(got) + 1)
				if pop > 0 {
					q.take(pop)
				}
				model = model[pop:]
			}
			if q.len() != len(model) || len(q.buf) > max {
				t.Fatalf("max %d: len %d (buf %d), model %d", max, q.len(), len(q.buf), len(model))
			}
		}
	}
}

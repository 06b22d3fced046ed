package leak

import (
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
)

// sizeEdges are the bucket edges of the size histograms of
// [WindowFeatures], in bytes. Bucket i holds sizes in [sizeEdges[i-1],
// sizeEdges[i]), the first bucket everything below 64 and the last
// everything from 16384 up. 512 and 1024 put a Tor cell (512 or 514
// bytes) in a bucket of its own kind, 1500 is an Ethernet MTU, and
// 16384 sits below the large writes of a bulk transfer.
var sizeEdges = [...]int{64, 128, 256, 512, 1024, 1500, 4096, 16384}

// sizeBuckets is the number of buckets of each size histogram.
const sizeBuckets = len(sizeEdges) + 1

// burstGap is the quiet time that ends a burst in [WindowFeatures].
const burstGap = 100 * time.Millisecond

// WindowFeatures returns the features of the events within [start,
// start+window) that the workload classifiers read: what a censor sees
// on the wire alone. It has 2*bins+26 entries, in this order:
//
//	[0, 2*bins+2)             Features(ev, start, window, bins): bytes
//	                          sent per bin, bytes received per bin,
//	                          writes sent, writes received
//	[2*bins+2, 2*bins+11)     sizes sent, counted in 9 buckets with edges
//	                          64, 128, 256, 512, 1024, 1500, 4096, 16384
//	[2*bins+11, 2*bins+20)    sizes received, the same buckets
//	[2*bins+20, 2*bins+23)    bursts sent: number, mean bytes, max bytes
//	[2*bins+23, 2*bins+26)    bursts received: the same
//
// A size s falls in the bucket of the first edge above it (s < 64 in the
// first, 64 <= s < 128 in the second, s >= 16384 in the last). A burst is
// a run of writes in one direction, whatever the other direction does,
// that no quiet gap of 100 ms or more in that direction interrupts; a
// direction without writes has 0 bursts of mean and max 0. ev must be in
// time order, as traces and recordings are.
func WindowFeatures(ev []schedule.TraceEvent, start, window time.Duration, bins int) []float64 {
	f := Features(ev, start, window, bins)
	f = append(f, make([]float64, 2*sizeBuckets+6)...)
	hist := f[2*bins+2:]
	burst := f[2*bins+2+2*sizeBuckets:]
	type run struct {
		last  time.Duration
		bytes float64
		total float64
		open  bool
	}
	var runs [2]run
	endBurst := func(d int) {
		r := &runs[d]
		if !r.open {
			return
		}
		b := burst[3*d:]
		b[0]++
		r.total += r.bytes
		b[2] = max(b[2], r.bytes)
		r.bytes, r.open = 0, false
	}
	for _, e := range ev {
		if e.Time < start || e.Time >= start+window {
			continue
		}
		d := 0
		if e.Dir == schedule.DirReceived {
			d = 1
		}
		bucket := len(sizeEdges)
		for i, edge := range sizeEdges {
			if e.Size < edge {
				bucket = i
				break
			}
		}
		hist[d*sizeBuckets+bucket]++
		r := &runs[d]
		if r.open && e.Time-r.last >= burstGap {
			endBurst(d)
		}
		r.open, r.last = true, e.Time
		r.bytes += float64(e.Size)
	}
	for d := range runs {
		endBurst(d)
		if n := burst[3*d]; n > 0 {
			burst[3*d+1] = runs[d].total / n
		}
	}
	return f
}

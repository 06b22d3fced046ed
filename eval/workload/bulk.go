package workload

import (
	"context"
	"fmt"
	"net"
)

// bulkChunk is the size of bulk's messages: one Write each.
const bulkChunk = 64 << 10

// bulk moves Params.BulkBytes each way, both ends writing at once as fast
// as the tunnel takes the bytes, in messages of about 64 KiB. Completion is
// when both directions have arrived whole. The connection then stays open,
// idle, until Duration has passed (as a tunnel stays up after a download),
// so that how long it lives does not tell the workload; Run returns after
// the ends' end of stream, at the later of Duration and Completion.
type bulk struct{}

func (bulk) Name() string { return "bulk" }

func (bulk) Run(ctx context.Context, client, server net.Conn, p Params) (Result, error) {
	n := p.BulkBytes
	switch {
	case n == 0:
		n = DefaultBulkBytes
	case n < 0:
		return Result{Site: -1}, fmt.Errorf("%w: negative BulkBytes %d", ErrParams, n)
	}
	s, err := newSession(ctx, client, server, p)
	if err != nil {
		return Result{Site: -1}, err
	}
	sizes := bulkSizes(n)
	s.begin()
	for _, e := range []*peer{s.cli, s.srv} {
		for _, size := range sizes {
			e.push(kindData, size)
		}
	}
	s.spawn(func() error {
		s.afterDuration()
		s.cli.closeOutbox()
		s.srv.closeOutbox()
		return nil
	})
	res, err := s.wait()
	for _, m := range res.Messages {
		res.Completion = max(res.Completion, m.Recv)
	}
	return res, err
}

// bulkSizes cuts n bytes into messages of at most bulkChunk bytes, all of
// nearly the same size, so that none is smaller than a header (unless n
// itself is: then one header-sized message).
func bulkSizes(n int64) []int {
	count := max(1, (n+bulkChunk-1)/bulkChunk)
	sizes := make([]int, count)
	for i := range sizes {
		sizes[i] = int(n / count)
		if int64(i) < n%count {
			sizes[i]++
		}
	}
	return sizes
}

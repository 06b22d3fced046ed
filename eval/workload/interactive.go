package workload

import (
	"context"
	"fmt"
	"net"
	"time"
)

// Interactive's model: a person typing or clicking at a remote session.
const (
	interactiveMinSize = 50
	interactiveMaxSize = 500
	interactiveMeanGap = 500 * time.Millisecond
)

// interactive sends small messages (sizes uniform in 50..500 bytes) from
// the client at exponentially distributed gaps (mean 500 ms) until
// Duration; the server echoes each, with a message of the same size, as
// soon as it has arrived. Messages holds both, so both one-way delays are
// there, and the round trip of request i is the Recv of the i-th
// DirReceived message minus the Sent of the i-th DirSent one. The client
// ends its stream at Duration, the server once it has echoed all; Run
// returns then, a round trip or so after Duration.
type interactive struct{}

func (interactive) Name() string { return "interactive" }

func (interactive) Run(ctx context.Context, client, server net.Conn, p Params) (Result, error) {
	s, err := newSession(ctx, client, server, p)
	if err != nil {
		return Result{Site: -1}, err
	}
	plan := interactivePlan(p.Seed, p.Duration)
	s.srv.closeOnEOF = true
	s.srv.onMsg = func(k kind, seq uint64, size int) error {
		if k != kindData {
			return fmt.Errorf("%w: server: message %d has kind %d", ErrIntegrity, seq, k)
		}
		s.srv.push(kindData, size)
		return nil
	}
	s.cli.onMsg = func(k kind, seq uint64, size int) error {
		if k != kindData || s.sentSize(0, int(seq)) != size {
			return fmt.Errorf("%w: client: echo %d (%d bytes) does not match its request", ErrIntegrity, seq, size)
		}
		return nil
	}
	s.begin()
	s.spawn(func() error {
		for _, m := range plan {
			if !s.sleepUntil(m.at, nil) {
				return nil
			}
			s.cli.push(m.kind, m.size)
		}
		if s.afterDuration() {
			s.cli.closeOutbox()
		}
		return nil
	})
	return s.wait()
}

// interactivePlan is the client's messages in a run of duration d.
func interactivePlan(seed uint64, d time.Duration) []planned {
	r := newRand(seed, "interactive")
	var out []planned
	for t := expGap(r, interactiveMeanGap); t < d; t += expGap(r, interactiveMeanGap) {
		size := interactiveMinSize + r.IntN(interactiveMaxSize-interactiveMinSize+1)
		out = append(out, planned{at: t, kind: kindData, size: size})
	}
	return out
}

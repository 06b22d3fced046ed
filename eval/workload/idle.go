package workload

import (
	"context"
	"fmt"
	"net"
)

// idle sends nothing: both ends read until Duration, then end their
// streams. Any message that arrives is an error. Run returns just after
// Duration.
type idle struct{}

func (idle) Name() string { return "idle" }

func (idle) Run(ctx context.Context, client, server net.Conn, p Params) (Result, error) {
	s, err := newSession(ctx, client, server, p)
	if err != nil {
		return Result{Site: -1}, err
	}
	for _, e := range []*peer{s.cli, s.srv} {
		e.onMsg = func(k kind, seq uint64, size int) error {
			return fmt.Errorf("%w: %s: idle received message %d (%d bytes)", ErrIntegrity, e.name, seq, size)
		}
	}
	s.begin()
	s.spawn(func() error {
		if s.afterDuration() {
			s.cli.closeOutbox()
			s.srv.closeOutbox()
		}
		return nil
	})
	return s.wait()
}

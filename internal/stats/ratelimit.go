package stats

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// RateLimit wraps h so that a warning or error repeated with the same
// message passes at most once per every: the ones in between are
// counted, and the next that passes says how many were suppressed
// ("suppressed=N"). A probe storm or a dead node then costs a line per
// interval, not one per connection. Records below warning pass as they
// are.
func RateLimit(h slog.Handler, every time.Duration) slog.Handler {
	return &limiter{h: h, every: every, state: &limitState{seen: map[string]*limitEntry{}}}
}

type limitEntry struct {
	last       time.Time
	suppressed int
}

type limitState struct {
	mu   sync.Mutex
	seen map[string]*limitEntry
}

type limiter struct {
	h     slog.Handler
	every time.Duration
	state *limitState
}

// maxKeys bounds the messages remembered; past it the oldest interval
// simply restarts (messages are the program's own, so few).
const maxKeys = 1024

func (l *limiter) Enabled(ctx context.Context, level slog.Level) bool { return l.h.Enabled(ctx, level) }

func (l *limiter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return l.h.Handle(ctx, r)
	}
	l.state.mu.Lock()
	e := l.state.seen[r.Message]
	if e == nil {
		if len(l.state.seen) >= maxKeys {
			clear(l.state.seen)
		}
		e = &limitEntry{}
		l.state.seen[r.Message] = e
	}
	if !e.last.IsZero() && r.Time.Sub(e.last) < l.every {
		e.suppressed++
		l.state.mu.Unlock()
		return nil
	}
	n := e.suppressed
	e.last, e.suppressed = r.Time, 0
	l.state.mu.Unlock()
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", n))
	}
	return l.h.Handle(ctx, r)
}

func (l *limiter) WithAttrs(as []slog.Attr) slog.Handler {
	return &limiter{h: l.h.WithAttrs(as), every: l.every, state: l.state}
}

func (l *limiter) WithGroup(name string) slog.Handler {
	return &limiter{h: l.h.WithGroup(name), every: l.every, state: l.state}
}

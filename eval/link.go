package eval

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Link is an emulated network path between the client and the bridge:
// a bottleneck of Rate bytes a second each way and Delay one way,
// emulated in process by a relay on loopback. The zero Link is loopback
// as it is.
type Link struct {
	Rate  int64         // bytes per second each way; 0: no limit
	Delay time.Duration // one way
}

// IsZero reports whether the link adds nothing.
func (l Link) IsZero() bool { return l.Rate == 0 && l.Delay == 0 }

func (l Link) String() string {
	if l.IsZero() {
		return "loopback"
	}
	rate := "0"
	if l.Rate > 0 {
		rate = fmt.Sprintf("%gmbit", float64(l.Rate)*8/1e6)
	}
	return rate + "," + l.Delay.String()
}

// ParseLink reads "RATE,DELAY": a rate with a unit (kbit, mbit, gbit,
// or bit; 0 for no limit) and a one-way delay ("40ms"), as tc-netem's
// rate and delay. Either part may be left out ("20mbit", "40ms").
func ParseLink(s string) (Link, error) {
	var l Link
	if strings.TrimSpace(s) == "" {
		return l, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if d, err := time.ParseDuration(part); err == nil {
			if d < 0 || d > time.Minute {
				return Link{}, fmt.Errorf("eval: link delay %v, want 0..1m", d)
			}
			l.Delay = d
			continue
		}
		r, err := parseRate(part)
		if err != nil {
			return Link{}, fmt.Errorf("eval: link %q: %q is neither a rate (20mbit) nor a delay (40ms)", s, part)
		}
		l.Rate = r
	}
	return l, nil
}

// parseRate reads a bit rate with its unit and returns bytes per second.
func parseRate(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}}
	if s == "0" {
		return 0, nil
	}
	for _, u := range units {
		if num, ok := strings.CutSuffix(strings.ToLower(s), u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil || v <= 0 || v*u.mult > 100e9 {
				return 0, errors.New("bad rate")
			}
			return max(int64(v*u.mult/8), 1), nil
		}
	}
	return 0, errors.New("no unit")
}

// linkChunk is what the relay read at one time.
type linkChunk struct {
	b  []byte
	at time.Time
}

// relay carries bytes both ways between a and b through the link until
// both directions have ended or ctx is done, then closes both.
func (l Link) relay(ctx context.Context, a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.pipe(ctx, b, a) }()
	go func() { defer wg.Done(); l.pipe(ctx, a, b) }()
	stop := context.AfterFunc(ctx, func() { a.Close(); b.Close() })
	wg.Wait()
	stop()
	a.Close()
	b.Close()
}

// pipe carries src to dst: each chunk leaves the bottleneck when the
// link is free (its bytes at Rate) and arrives Delay later. At most 64
// chunks of 16 KiB wait, so a stalled reader stalls the writer, as a
// full path does. src's EOF becomes a half close of dst.
func (l Link) pipe(ctx context.Context, dst, src net.Conn) {
	ch := make(chan linkChunk, 64)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 16<<10)
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case ch <- linkChunk{buf[:n], time.Now()}:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	var free time.Time // when the bottleneck is free again
	for c := range ch {
		depart := c.at
		if l.Rate > 0 {
			if free.After(depart) {
				depart = free
			}
			depart = depart.Add(time.Duration(float64(len(c.b)) / float64(l.Rate) * float64(time.Second)))
			free = depart
		}
		if wait := time.Until(depart.Add(l.Delay)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		if _, err := dst.Write(c.b); err != nil {
			dst.Close()
			src.Close()
			for range ch { // let the reader end
			}
			return
		}
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// listenLink listens on loopback and relays every connection to target
// through the link; close the listener to stop.
func listenLink(ctx context.Context, l Link, target string) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				var d net.Dialer
				t, err := d.DialContext(ctx, "tcp", target)
				if err != nil {
					c.Close()
					return
				}
				l.relay(ctx, c, t)
			}()
		}
	}()
	return ln, nil
}

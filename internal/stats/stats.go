// Package stats keeps a running bridge's or client's counters: what an
// operator reads in the periodic "stats" log line, on SIGUSR1, and at
// /metrics in the Prometheus text format. Nothing in them identifies a
// client: counts and byte totals only, per refusal reason and per
// profile (a built-in's name, or "file" for a profile file).
//
// All methods are safe for concurrent use; a nil *Counters counts
// nothing, so code that may run without stats calls them unguarded.
package stats

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Refusal reasons: why a connection was not served as a client.
const (
	// RefusedProbe: no client's mark and MAC in its garbage (a prober,
	// a Bitcoin peer, a wrong secret): answered as Core would.
	RefusedProbe = "probe"
	// RefusedReplay: a client's first flight seen before.
	RefusedReplay = "replay"
	// RefusedHandshake: the handshake failed or timed out.
	RefusedHandshake = "handshake"
	// RefusedUpstream: authenticated, but the target (tor's ExtORPort,
	// --forward) could not be reached.
	RefusedUpstream = "upstream"
)

var reasons = []string{RefusedProbe, RefusedReplay, RefusedHandshake, RefusedUpstream}

// Traffic is what one connection carried, added when it ends.
type Traffic struct {
	DataOut, DataIn int64 // application bytes sent and received
	WireOut, WireIn int64 // every byte on the socket
	DecoyOut        int64 // decoy bytes sent
	DecoysIn        int64 // decoy packets received
	Dropped         int64 // queued bytes that Close could not deliver
}

// Counters are a process's totals since it started.
type Counters struct {
	start time.Time

	open, accepted, authenticated, handshakes atomic.Int64
	refused                                   map[string]*atomic.Int64

	dataOut, dataIn, wireOut, wireIn, decoyOut, decoysIn, dropped atomic.Int64

	mu      sync.Mutex
	profile map[string]int64
}

// New returns counters starting now.
func New() *Counters {
	c := &Counters{start: time.Now(), refused: map[string]*atomic.Int64{}, profile: map[string]int64{}}
	for _, r := range reasons {
		c.refused[r] = new(atomic.Int64)
	}
	return c
}

// Accepted counts a connection accepted; Closed must follow.
func (c *Counters) Accepted() {
	if c == nil {
		return
	}
	c.accepted.Add(1)
	c.open.Add(1)
}

// Closed counts a connection that Accepted counted as ended.
func (c *Counters) Closed() {
	if c == nil {
		return
	}
	c.open.Add(-1)
}

// Handshake counts a BIP324 handshake completed.
func (c *Counters) Handshake() {
	if c != nil {
		c.handshakes.Add(1)
	}
}

// Authenticated counts a client served, with the profile of our
// direction.
func (c *Counters) Authenticated(profile string) {
	if c == nil {
		return
	}
	c.authenticated.Add(1)
	c.Used(profile)
}

// Used counts a tunnel shaped with profile (a client's, say).
func (c *Counters) Used(profile string) {
	if c == nil {
		return
	}
	if strings.ContainsAny(profile, `/\.`) {
		profile = "file"
	}
	if profile == "" {
		profile = "none"
	}
	c.mu.Lock()
	c.profile[profile]++
	c.mu.Unlock()
}

// Refused counts a connection not served as a client, for reason (one
// of the Refused constants; others count as handshake).
func (c *Counters) Refused(reason string) {
	if c == nil {
		return
	}
	r, ok := c.refused[reason]
	if !ok {
		r = c.refused[RefusedHandshake]
	}
	r.Add(1)
}

// Add adds what a connection carried.
func (c *Counters) Add(t Traffic) {
	if c == nil {
		return
	}
	c.dataOut.Add(t.DataOut)
	c.dataIn.Add(t.DataIn)
	c.wireOut.Add(t.WireOut)
	c.wireIn.Add(t.WireIn)
	c.decoyOut.Add(t.DecoyOut)
	c.decoysIn.Add(t.DecoysIn)
	c.dropped.Add(t.Dropped)
}

// Snapshot is the counters at one moment.
type Snapshot struct {
	Uptime                           time.Duration
	Open, Accepted, Authenticated    int64
	Handshakes                       int64
	Refused                          map[string]int64
	DataOut, DataIn, WireOut, WireIn int64
	DecoyOut, DecoysIn, Dropped      int64
	Profiles                         map[string]int64
	HandshakesPerSecond              float64
}

// Snapshot reads the counters.
func (c *Counters) Snapshot() Snapshot {
	if c == nil {
		return Snapshot{}
	}
	s := Snapshot{
		Uptime: time.Since(c.start), Open: c.open.Load(), Accepted: c.accepted.Load(), Authenticated: c.authenticated.Load(),
		Handshakes: c.handshakes.Load(), Refused: map[string]int64{}, Profiles: map[string]int64{},
		DataOut: c.dataOut.Load(), DataIn: c.dataIn.Load(), WireOut: c.wireOut.Load(), WireIn: c.wireIn.Load(),
		DecoyOut: c.decoyOut.Load(), DecoysIn: c.decoysIn.Load(), Dropped: c.dropped.Load(),
	}
	for r, v := range c.refused {
		s.Refused[r] = v.Load()
	}
	c.mu.Lock()
	for p, n := range c.profile {
		s.Profiles[p] = n
	}
	c.mu.Unlock()
	if secs := s.Uptime.Seconds(); secs > 0 {
		s.HandshakesPerSecond = float64(s.Handshakes) / secs
	}
	return s
}

// Attrs are the snapshot as log attributes, in a fixed order.
func (s Snapshot) Attrs() []any {
	out := []any{"uptime", s.Uptime.Round(time.Second).String(), "open", s.Open, "accepted", s.Accepted,
		"authenticated", s.Authenticated}
	for _, r := range reasons {
		out = append(out, "refused_"+r, s.Refused[r])
	}
	out = append(out, "handshakes", s.Handshakes, "handshakes_per_s", fmt.Sprintf("%.3f", s.HandshakesPerSecond),
		"data_out", s.DataOut, "data_in", s.DataIn, "wire_out", s.WireOut, "wire_in", s.WireIn,
		"decoy_out", s.DecoyOut, "decoys_in", s.DecoysIn, "dropped", s.Dropped)
	names := make([]string, 0, len(s.Profiles))
	for p := range s.Profiles {
		names = append(names, p)
	}
	slices.Sort(names)
	var prof []string
	for _, p := range names {
		prof = append(prof, fmt.Sprintf("%s:%d", p, s.Profiles[p]))
	}
	return append(out, "profiles", strings.Join(prof, ","))
}

// Log writes the "stats" line at info level.
func (c *Counters) Log(log *slog.Logger) {
	log.Info("stats", c.Snapshot().Attrs()...)
}

// Status is the snapshot as the key=value pairs of a PT STATUS line (pt-spec
// 3.3.5), keys in upper case.
func (s Snapshot) Status() string {
	a := s.Attrs()
	var b strings.Builder
	for i := 0; i+1 < len(a); i += 2 {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", strings.ToUpper(a[i].(string)), a[i+1])
	}
	return b.String()
}

// Collector exports the counters to Prometheus, namespace bip324pt.
func (c *Counters) Collector() prometheus.Collector { return collector{c} }

type collector struct{ c *Counters }

var (
	descOpen     = prometheus.NewDesc("bip324pt_connections_open", "Connections open now.", nil, nil)
	descAccepted = prometheus.NewDesc("bip324pt_connections_accepted_total", "Connections accepted.", nil, nil)
	descAuth     = prometheus.NewDesc("bip324pt_connections_authenticated_total", "Connections served as clients.", nil, nil)
	descRefused  = prometheus.NewDesc("bip324pt_connections_refused_total", "Connections not served as clients, by reason.", []string{"reason"}, nil)
	descHS       = prometheus.NewDesc("bip324pt_handshakes_total", "BIP324 handshakes completed.", nil, nil)
	descBytes    = prometheus.NewDesc("bip324pt_bytes_total", "Bytes carried by ended connections, by direction and kind (data: the application's; wire: every byte on the socket; decoy: our decoy packets).", []string{"direction", "kind"}, nil)
	descDecoysIn = prometheus.NewDesc("bip324pt_decoys_received_total", "Decoy packets received on ended connections.", nil, nil)
	descDropped  = prometheus.NewDesc("bip324pt_queue_dropped_bytes_total", "Queued bytes a close could not deliver (should stay 0).", nil, nil)
	descProfile  = prometheus.NewDesc("bip324pt_profile_connections_total", "Tunnels by the profile of our direction.", []string{"profile"}, nil)
	descUptime   = prometheus.NewDesc("bip324pt_uptime_seconds", "Seconds since start.", nil, nil)
)

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOpen, descAccepted, descAuth, descRefused, descHS, descBytes, descDecoysIn, descDropped, descProfile, descUptime} {
		ch <- d
	}
}

func (k collector) Collect(ch chan<- prometheus.Metric) {
	s := k.c.Snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descOpen, float64(s.Open))
	gauge(descUptime, s.Uptime.Seconds())
	counter(descAccepted, s.Accepted)
	counter(descAuth, s.Authenticated)
	for _, r := range reasons {
		counter(descRefused, s.Refused[r], r)
	}
	counter(descHS, s.Handshakes)
	for _, b := range []struct {
		dir, kind string
		v         int64
	}{{"out", "data", s.DataOut}, {"in", "data", s.DataIn}, {"out", "wire", s.WireOut}, {"in", "wire", s.WireIn},
		{"out", "decoy", s.DecoyOut}} {
		counter(descBytes, b.v, b.dir, b.kind)
	}
	counter(descDropped, s.Dropped)
	counter(descDecoysIn, s.DecoysIn)
	for p, n := range s.Profiles {
		counter(descProfile, n, p)
	}
}

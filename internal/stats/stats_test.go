package stats

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestCounters: a scripted set of events and the figures they make, in
// the snapshot, the log line, the STATUS pairs and Prometheus.
func TestCounters(t *testing.T) {
	c := New()
	for range 3 {
		c.Accepted()
	}
	c.Handshake()
	c.Authenticated("cbr")
	c.Refused(RefusedProbe)
	c.Refused("something else") // counts as handshake
	c.Add(Traffic{DataOut: 100, DataIn: 50, WireOut: 300, WireIn: 200, DecoyOut: 150, DecoysIn: 2})
	c.Closed()
	c.Used("profiles/x.toml")
	s := c.Snapshot()
	if s.Accepted != 3 || s.Open != 2 || s.Authenticated != 1 || s.Handshakes != 1 || s.Refused[RefusedProbe] != 1 ||
		s.Refused[RefusedHandshake] != 1 || s.DataOut != 100 || s.DecoysIn != 2 || s.Profiles["cbr"] != 1 || s.Profiles["file"] != 1 {
		t.Errorf("snapshot %+v", s)
	}
	var buf bytes.Buffer
	c.Log(slog.New(slog.NewTextHandler(&buf, nil)))
	for _, want := range []string{"msg=stats", "open=2", "accepted=3", "authenticated=1", "refused_probe=1", "refused_handshake=1", "data_out=100", "decoy_out=150", "decoys_in=2", "profiles=cbr:1,file:1"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("stats line lacks %q: %s", want, buf.String())
		}
	}
	if st := s.Status(); !strings.Contains(st, "ACCEPTED=3 AUTHENTICATED=1") || strings.Contains(st, "\n") {
		t.Errorf("STATUS pairs %q", st)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.Collector())
	if n, err := testutil.GatherAndCount(reg); err != nil || n < 15 {
		t.Errorf("gathered %d series: %v", n, err)
	}
	if v := testutil.ToFloat64(constCollector(c, "bip324pt_connections_accepted_total")); v != 3 {
		t.Errorf("accepted_total %v", v)
	}
	var nilc *Counters
	nilc.Accepted() // a nil *Counters counts nothing, without a panic
	nilc.Add(Traffic{DataOut: 1})
}

// constCollector narrows c's collector to one metric name.
func constCollector(c *Counters, name string) prometheus.Collector {
	return filtered{c.Collector(), name}
}

type filtered struct {
	prometheus.Collector
	name string
}

func (f filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric, 64)
	go func() { f.Collector.Collect(all); close(all) }()
	for m := range all {
		if strings.Contains(m.Desc().String(), `"`+f.name+`"`) {
			ch <- m
		}
	}
}

// TestRateLimit: the same warning repeated passes once per interval,
// then says how many were suppressed; info lines and other messages pass.
func TestRateLimit(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(RateLimit(slog.NewTextHandler(&buf, nil), time.Minute))
	t0 := time.Now()
	at := func(d time.Duration, level slog.Level, msg string) {
		r := slog.NewRecord(t0.Add(d), level, msg, 0)
		log.Handler().Handle(context.Background(), r)
	}
	for i := range 100 {
		at(time.Duration(i)*time.Second/10, slog.LevelWarn, "node unreachable")
	}
	at(time.Second, slog.LevelInfo, "info passes")
	at(2*time.Second, slog.LevelWarn, "another warning")
	at(61*time.Second, slog.LevelWarn, "node unreachable")
	out := buf.String()
	if n := strings.Count(out, "node unreachable"); n != 2 {
		t.Errorf("%d lines of the repeated warning, want 2:\n%s", n, out)
	}
	if !strings.Contains(out, "suppressed=99") || !strings.Contains(out, "info passes") || !strings.Contains(out, "another warning") {
		t.Errorf("log:\n%s", out)
	}
}

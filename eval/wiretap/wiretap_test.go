package wiretap

import (
	"bytes"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
)

func TestTap(t *testing.T) {
	start := time.Now()
	rec := New(start, 3)
	a, b := net.Pipe()
	go func() {
		buf := make([]byte, 100)
		for {
			if _, err := b.Read(buf); err != nil {
				return
			}
		}
	}()
	cli := Tap(a, rec, true)
	for _, n := range []int{10, 20, 30, 40} {
		cli.Write(make([]byte, n))
	}
	a.Close()
	ev := rec.Events()
	if len(ev) != 3 {
		t.Fatalf("%d events kept, want the limit of 3", len(ev))
	}
	for i, e := range ev {
		if e.Dir != Sent || e.Size != 10*(i+1) || e.Time < 0 {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	rec2 := New(start, 0)
	rec2.Add(start.Add(1500*time.Nanosecond), Sent, 64)
	rec2.Add(start.Add(2*time.Millisecond), Received, 1448)
	var out bytes.Buffer
	if err := rec2.WriteTrace(&out); err != nil {
		t.Fatal(err)
	}
	if want := "1500,s,64\n2000000,r,1448\n"; out.String() != want {
		t.Fatalf("trace %q, want %q", out.String(), want)
	}
	if got := Filter(rec2.Events(), Received); len(got) != 1 || got[0].Size != 1448 {
		t.Fatalf("Filter: %+v", got)
	}
	if rec.Dropped() != 1 || rec2.Dropped() != 0 {
		t.Fatalf("dropped %d and %d, want 1 and 0", rec.Dropped(), rec2.Dropped())
	}
}

// TestTrace: a recording is a trace that schedule reads back as it was
// recorded, with a time before the start clamped to it and a write larger
// than schedule.MaxSize split.
func TestTrace(t *testing.T) {
	start := time.Now()
	rec := New(start, 0)
	rec.Add(start.Add(-time.Second), Sent, 10)
	rec.Add(start.Add(time.Millisecond), Received, schedule.MaxSize+5)
	want := []schedule.TraceEvent{
		{Time: 0, Dir: schedule.DirSent, Size: 10},
		{Time: time.Millisecond, Dir: schedule.DirReceived, Size: schedule.MaxSize},
		{Time: time.Millisecond, Dir: schedule.DirReceived, Size: 5},
	}
	if got := rec.Events(); !slices.Equal(got, want) {
		t.Fatalf("events %+v, want %+v", got, want)
	}
	var out bytes.Buffer
	if err := rec.WriteTrace(&out); err != nil {
		t.Fatal(err)
	}
	back, err := schedule.ParseTrace(&out)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back, want) {
		t.Fatalf("parsed back %+v, want %+v", back, want)
	}
	if !rec.Start().Equal(start) {
		t.Fatalf("Start() = %v, want %v", rec.Start(), start)
	}
}

package schedule

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzParseTrace checks that ParseTrace never panics, that what it
// accepts obeys its documented limits, and that WriteTrace gives it back
// unchanged. The seed corpus is in testdata/fuzz/FuzzParseTrace.
func FuzzParseTrace(f *testing.F) {
	f.Add([]byte("0,s,514\n3601999,r,514\n168959000,s,514\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := ParseTrace(bytes.NewReader(data))
		if err != nil {
			var te *TraceError
			if !errors.As(err, &te) || te.Line < 0 || te.Line > bytes.Count(data, []byte{'\n'})+1 {
				t.Fatalf("error %v is not a *TraceError with a line in the input", err)
			}
			return
		}
		if len(evs) == 0 || len(evs) > MaxTraceEvents {
			t.Fatalf("%d events", len(evs))
		}
		for i, ev := range evs {
			if ev.Time < 0 || ev.Size < 0 || ev.Size > MaxSize || (ev.Dir != DirSent && ev.Dir != DirReceived) {
				t.Fatalf("event %d out of range: %+v", i, ev)
			}
			if i > 0 && ev.Time < evs[i-1].Time {
				t.Fatalf("event %d goes back in time", i)
			}
		}
		var b bytes.Buffer
		if err := WriteTrace(&b, evs); err != nil {
			t.Fatal(err)
		}
		back, err := ParseTrace(&b)
		if err != nil || !reflect.DeepEqual(back, evs) {
			t.Fatalf("round trip: %v", err)
		}
		for _, role := range []Role{Client, Server} {
			if _, err := NewReplay(ReplayParams{Trace: evs, Role: role}); err != nil && !errors.Is(err, ErrNoReplayEvents) {
				t.Fatalf("NewReplay(%v): %v", role, err)
			}
		}
	})
}

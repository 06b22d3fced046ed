package schedule

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleTraces(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("../testdata/traces/*/*.log")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("../testdata/traces/*/*/*.log")
	files = append(files, more...)
	if len(files) == 0 {
		t.Fatal("no sample traces in ../testdata/traces (they ship with the repository)")
	}
	return files
}

// TestParseTrace_samples parses every sample trace shipped with the
// repository (Maybenot's, see testdata/traces/README.md).
func TestParseTrace_samples(t *testing.T) {
	total := 0
	for _, f := range sampleTraces(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := ParseTrace(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if want := bytes.Count(b, []byte{'\n'}); len(evs) != want {
			t.Errorf("%s: %d events from %d lines", f, len(evs), want)
		}
		if evs[0].Time != 0 {
			t.Errorf("%s: first event at %v, want 0", f, evs[0].Time)
		}
		for _, ev := range evs {
			if ev.Size != 512 && ev.Size != 514 || ev.Padding {
				t.Fatalf("%s: event %+v, want Tor cells", f, ev)
			}
		}
		total += len(evs)
	}
	t.Logf("%d events", total)
}

func TestParseTrace(t *testing.T) {
	ms := time.Millisecond
	in := "# a comment\n0,s,52\r\n\n 19714282 , r , 52 \n19714282,sn,1\n20000000,rn,0\n30000000,sp,1448\n30000000,rp,7\n"
	want := []TraceEvent{
		{0, DirSent, 52, false},
		{19714282, DirReceived, 52, false},
		{19714282, DirSent, 1, false},
		{20 * ms, DirReceived, 0, false},
		{30 * ms, DirSent, 1448, true},
		{30 * ms, DirReceived, 7, true},
	}
	got, err := ParseTrace(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// No final newline.
	got, err = ParseTrace(strings.NewReader("5,r,9"))
	if err != nil || len(got) != 1 || got[0] != (TraceEvent{5, DirReceived, 9, false}) {
		t.Errorf("without a final newline: %+v, %v", got, err)
	}
}

func TestParseTrace_errors(t *testing.T) {
	long := strings.Repeat("0", MaxTraceLineLen-4) + ",s,1"
	tests := []struct {
		name, in string
		line     int
		is       error
		msg      string
	}{
		{"empty", "", 0, ErrTraceEmpty, ""},
		{"only comments", "# x\n\n", 2, ErrTraceEmpty, ""},
		{"two fields", "0,s,1\n5,514\n", 2, nil, "3 comma-separated fields"},
		{"four fields", "0,s,1,2\n", 1, nil, "3 comma-separated fields"},
		{"bad time", "x,s,1\n", 1, nil, "time"},
		{"negative time", "-1,s,1\n", 1, nil, "time"},
		{"huge time", "9223372036854775808,s,1\n", 1, nil, "time"},
		{"bad direction", "0,out,1\n", 1, nil, "direction"},
		{"upper-case direction", "0,S,1\n", 1, nil, "direction"},
		{"negative size", "0,s,1\n1,r,-514\n", 2, nil, "negative"},
		{"bad size", "0,s,1k\n", 1, nil, "size"},
		{"size too big", "0,s,16777216\n", 1, nil, "size"},
		{"backwards", "0,s,1\n10,s,1\n9,r,1\n", 3, nil, "before the previous"},
		{"line at the limit is fine, one more is not", long + "\n0" + long + "\n", 2, ErrTraceLineTooLong, ""},
		{"line far too long", "0,s,1\n" + strings.Repeat("1", 100_000) + ",s,1\n", 2, ErrTraceLineTooLong, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTrace(strings.NewReader(tt.in))
			var te *TraceError
			if !errors.As(err, &te) {
				t.Fatalf("error %v, want a *TraceError", err)
			}
			if te.Line != tt.line {
				t.Errorf("line %d, want %d: %v", te.Line, tt.line, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "schedule: trace line ") {
				t.Errorf("error %q, want it to mention %q", err, tt.msg)
			}
		})
	}
}

func TestParseTrace_maxEvents(t *testing.T) {
	defer func(n int) { maxTraceEvents = n }(maxTraceEvents)
	maxTraceEvents = 100
	in := strings.Repeat("1,s,1\n", 100)
	if evs, err := ParseTrace(strings.NewReader(in + "# comments don't count\n")); err != nil || len(evs) != 100 {
		t.Fatalf("at the limit: %d events, %v", len(evs), err)
	}
	_, err := ParseTrace(strings.NewReader(in + "\n2,r,5\n"))
	var te *TraceError
	if !errors.Is(err, ErrTraceTooManyEvents) || !errors.As(err, &te) || te.Line != 102 {
		t.Errorf("one over the limit: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseTrace_readError(t *testing.T) {
	_, err := ParseTrace(errReader{})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("error %v, want the reader's", err)
	}
}

func TestWriteTrace(t *testing.T) {
	evs := []TraceEvent{{0, DirSent, 52, false}, {7, DirReceived, 0, true}, {1 << 40, DirSent, MaxSize, true}}
	var b bytes.Buffer
	if err := WriteTrace(&b, evs); err != nil {
		t.Fatal(err)
	}
	if want := "0,s,52\n7,rp,0\n1099511627776,sp,16777215\n"; b.String() != want {
		t.Errorf("wrote %q, want %q", b.String(), want)
	}
	back, err := ParseTrace(&b)
	if err != nil || !reflect.DeepEqual(back, evs) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	for _, bad := range []TraceEvent{{-1, DirSent, 1, false}, {0, 0, 1, false}, {0, DirSent, -1, false}, {0, DirSent, MaxSize + 1, false}} {
		var b bytes.Buffer
		if err := WriteTrace(&b, []TraceEvent{bad}); err == nil || b.Len() != 0 {
			t.Errorf("WriteTrace(%+v) = %v, wrote %q", bad, err, b.String())
		}
	}
}

// TestReplay_sampleTrace replays one sample trace from each end through a
// perfect shaper: the writes are the trace's own, to the nanosecond.
func TestReplay_sampleTrace(t *testing.T) {
	f, err := os.Open("../testdata/traces/data-df-wflib/10.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	trace, err := ParseTrace(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []Role{Client, Server} {
		t.Run(role.String(), func(t *testing.T) {
			s, err := NewReplay(ReplayParams{Trace: trace, Role: role})
			if err != nil {
				t.Fatal(err)
			}
			var got []write
			if role == Client {
				got = simulate(t, s, []arrival{{0, 3000}}, time.Hour)
			} else {
				s.Received(t0, 514) // the client's first cell starts the replay
				got = simulate(t, s, nil, time.Hour)
			}
			want := DirSent
			if role == Server {
				want = DirReceived
			}
			i := 0
			for _, ev := range trace {
				if ev.Dir != want {
					continue
				}
				if i >= len(got) {
					t.Fatalf("%d writes, trace has more", len(got))
				}
				if got[i].at != ev.Time || got[i].size != ev.Size {
					t.Fatalf("write %d = %+v, want %d bytes at %v", i, got[i], ev.Size, ev.Time)
				}
				i++
			}
			if i != len(got) {
				t.Errorf("%d writes, want %d", len(got), i)
			}
		})
	}
}

func TestReplay_loopAndAfter(t *testing.T) {
	ms := time.Millisecond
	trace := []TraceEvent{{0, DirSent, 100, false}, {10 * ms, DirSent, 200, false}, {30 * ms, DirReceived, 5, false}}
	loop, _ := NewReplay(ReplayParams{Trace: trace, Role: Client, Loop: true, LoopGap: 20 * ms})
	got := simulate(t, loop, []arrival{{5 * ms, 1}}, 120*ms)
	// Rounds of 30ms + 20ms, starting at the data at 5ms.
	want := []write{{5 * ms, 100, 1}, {15 * ms, 200, 0}, {55 * ms, 100, 0}, {65 * ms, 200, 0}, {105 * ms, 100, 0}, {115 * ms, 200, 0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("looping: %+v\nwant %+v", got, want)
	}
	once, _ := NewReplay(ReplayParams{Trace: trace, Role: Client})
	got = simulate(t, once, []arrival{{0, 1}, {time.Second, 7000}}, 2*time.Second)
	// The trace, then Immediate: all the data at once, no padding.
	want = []write{{0, 100, 1}, {10 * ms, 200, 0}, {time.Second, 7000, 7000}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after the trace: %+v\nwant %+v", got, want)
	}
}

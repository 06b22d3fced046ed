package schedule

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Direction says which way a trace event went, seen from the client.
type Direction uint8

const (
	// DirSent is a packet the client sent: "s" in a trace.
	DirSent Direction = iota + 1
	// DirReceived is a packet the client received: "r" in a trace.
	DirReceived
)

func (d Direction) String() string {
	switch d {
	case DirSent:
		return "s"
	case DirReceived:
		return "r"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// TraceEvent is one line of a trace. It is the project's one trace event
// type: the wire recorder (eval/wiretap) records each write on a socket
// as a TraceEvent, its time counted from the recorder's start, so a
// recording is a trace that WriteTrace writes and Replay replays.
type TraceEvent struct {
	Time    time.Duration // since the start of the trace, >= 0
	Dir     Direction
	Size    int  // bytes, 0..MaxSize
	Padding bool // marked as padding ("sp" or "rp")
}

// Limits of [ParseTrace]. A trace at the limits takes about 24 MiB.
const (
	// MaxTraceLineLen is the longest line ParseTrace accepts, in bytes,
	// without its line ending. The longest sensible line, two 19-digit
	// numbers and a direction, is 43 bytes.
	MaxTraceLineLen = 256
	// MaxTraceEvents is the most events ParseTrace returns.
	MaxTraceEvents = 1 << 20
)

// maxTraceEvents is MaxTraceEvents, lowered by tests.
var maxTraceEvents = MaxTraceEvents

// Errors that [ParseTrace] wraps in a *TraceError.
var (
	// ErrTraceLineTooLong: a line is longer than MaxTraceLineLen.
	ErrTraceLineTooLong = errors.New("line too long")
	// ErrTraceTooManyEvents: the trace has more than MaxTraceEvents events.
	ErrTraceTooManyEvents = errors.New("too many events")
	// ErrTraceEmpty: the trace has no events at all.
	ErrTraceEmpty = errors.New("no events")
)

// TraceError is a parse error at a line of a trace.
type TraceError struct {
	Line int // 1-based; for ErrTraceEmpty, the number of lines read
	Err  error
}

func (e *TraceError) Error() string {
	return fmt.Sprintf("schedule: trace line %d: %v", e.Line, e.Err)
}

func (e *TraceError) Unwrap() error { return e.Err }

// ParseTrace reads a trace in the Maybenot simulator's text format
// (github.com/maybenot-io/maybenot, crates/maybenot-simulator, parse_trace):
// one packet a line,
//
//	time_ns,direction,size
//
// where time_ns is nanoseconds since the start of the trace, direction is
// "s" (sent by the client) or "r" (received by the client), and size is
// the packet's size in bytes, unsigned (the direction is never in the
// sign). The simulator also reads "sn" and "rn" (the same as "s" and "r")
// and "sp" and "rp" (padding, which it skips); ParseTrace keeps those with
// Padding set. Spaces around a field and a CR before the LF are allowed,
// blank lines and lines starting with '#' are skipped.
//
// ParseTrace is stricter than the simulator, which silently skips a line
// without three fields and panics on a bad number: every other line is an
// error, and so is a time earlier than the line before. Memory stays
// bounded: at most MaxTraceLineLen bytes a line and MaxTraceEvents events.
// Errors are *TraceError with the line number.
func ParseTrace(r io.Reader) ([]TraceEvent, error) {
	sc := bufio.NewScanner(r)
	// The scanner's buffer bounds what it holds; a line that does not fit
	// ends the scan with bufio.ErrTooLong. A line that fits but is longer
	// than the limit is caught below: the message is the same either way.
	sc.Buffer(make([]byte, 0, 2*MaxTraceLineLen), 2*MaxTraceLineLen)
	var events []TraceEvent
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes() // without the LF, or the CR LF
		if len(b) > MaxTraceLineLen {
			return nil, &TraceError{line, ErrTraceLineTooLong}
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		if len(events) == maxTraceEvents {
			return nil, &TraceError{line, ErrTraceTooManyEvents}
		}
		ev, err := parseTraceLine(b)
		if err != nil {
			return nil, &TraceError{line, err}
		}
		if n := len(events); n > 0 && ev.Time < events[n-1].Time {
			return nil, &TraceError{line, fmt.Errorf("time %d is before the previous line's %d", ev.Time, events[n-1].Time)}
		}
		events = append(events, ev)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = ErrTraceLineTooLong
		}
		return nil, &TraceError{line + 1, err}
	}
	if len(events) == 0 {
		return nil, &TraceError{line, ErrTraceEmpty}
	}
	return events, nil
}

func parseTraceLine(b []byte) (TraceEvent, error) {
	var ev TraceEvent
	f1, rest, ok1 := bytes.Cut(b, []byte{','})
	f2, f3, ok2 := bytes.Cut(rest, []byte{','})
	if !ok1 || !ok2 || bytes.IndexByte(f3, ',') >= 0 {
		return ev, fmt.Errorf("want 3 comma-separated fields (time_ns,direction,size), got %q", b)
	}
	f1, f2, f3 = bytes.TrimSpace(f1), bytes.TrimSpace(f2), bytes.TrimSpace(f3)

	t, err := strconv.ParseUint(string(f1), 10, 63)
	if err != nil {
		return ev, fmt.Errorf("time %q: want nanoseconds, 0..%d", f1, int64(1<<63-1))
	}
	ev.Time = time.Duration(t)

	switch string(f2) {
	case "s", "sn":
		ev.Dir = DirSent
	case "r", "rn":
		ev.Dir = DirReceived
	case "sp":
		ev.Dir, ev.Padding = DirSent, true
	case "rp":
		ev.Dir, ev.Padding = DirReceived, true
	default:
		return ev, fmt.Errorf("direction %q: want s, r, sn, rn, sp or rp", f2)
	}

	if len(f3) > 0 && f3[0] == '-' {
		return ev, fmt.Errorf("size %q is negative: the direction goes in the second field, the size is unsigned", f3)
	}
	size, err := strconv.ParseUint(string(f3), 10, 64)
	if err != nil || size > MaxSize {
		return ev, fmt.Errorf("size %q: want bytes, 0..%d", f3, MaxSize)
	}
	ev.Size = int(size)
	return ev, nil
}

// WriteTrace writes events in the format [ParseTrace] reads, one line
// each, with "s", "r", "sp" or "rp" for the direction. It fails, before
// writing anything, on an event with a negative time, an unknown
// direction or a size outside 0..MaxSize.
func WriteTrace(w io.Writer, events []TraceEvent) error {
	for i, ev := range events {
		if ev.Time < 0 || (ev.Dir != DirSent && ev.Dir != DirReceived) || ev.Size < 0 || ev.Size > MaxSize {
			return fmt.Errorf("schedule: WriteTrace: event %d (%+v) cannot be written", i, ev)
		}
	}
	bw := bufio.NewWriter(w)
	var line []byte
	for _, ev := range events {
		line = strconv.AppendInt(line[:0], int64(ev.Time), 10)
		line = append(line, ',')
		line = append(line, ev.Dir.String()...)
		if ev.Padding {
			line = append(line, 'p')
		}
		line = append(line, ',')
		line = strconv.AppendInt(line, int64(ev.Size), 10)
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

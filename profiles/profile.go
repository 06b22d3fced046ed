package profiles

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/bip324pt/bip324-pt/padding"
	"github.com/bip324pt/bip324-pt/schedule"
	"github.com/bip324pt/bip324-pt/shaper"
	"github.com/bip324pt/bip324-pt/v2core"
)

// maxFileSize bounds a profile file.
const maxFileSize = 1 << 20

// Profile is a parsed profile file. Its fields mirror the TOML keys; see
// docs/profiles.md for each one.
type Profile struct {
	Name        string `toml:"name"`
	Description string `toml:"description"`
	// Seed is 64 hex digits that shape seeded distributions (weighted).
	// It fixes the shape, not the samples: each connection samples from
	// its own random source unless the user asks for a sample seed.
	Seed string `toml:"seed"`

	Handshake struct {
		GarbageLen  string `toml:"garbage_len"`
		GarbageFill string `toml:"garbage_fill"`
		Decoys      string `toml:"decoys"`
		DecoySize   string `toml:"decoy_size"`
		FirstWrite  int    `toml:"first_write"`
		// VersionRequest, when false, keeps the version packet empty
		// between two bip324-pt ends, as Bitcoin Core sends it: the
		// client asks its bridge for no profile, and the bridge uses its
		// default. Nil means true.
		VersionRequest *bool `toml:"version_request"`
	} `toml:"handshake"`

	Schedule struct {
		Kind string `toml:"kind"`
		// constant-rate
		Cell     int      `toml:"cell"`
		Interval duration `toml:"interval"`
		IdleStop duration `toml:"idle_stop"`
		// video
		Segment         duration `toml:"segment"`
		Ladder          []int    `toml:"ladder"`
		StartRung       int      `toml:"start_rung"`
		StartupSegments int      `toml:"startup_segments"`
		VBR             float64  `toml:"vbr"`
		MTU             int      `toml:"mtu"`
		RequestSize     string   `toml:"request_size"`
		QuietGap        duration `toml:"quiet_gap"`
		Rebuffer        bool     `toml:"rebuffer"`
		MaxBuffer       duration `toml:"max_buffer"`
		// jitter
		GapMicros string `toml:"gap_us"`
		Size      string `toml:"size"`
		// replay
		Trace   string   `toml:"trace"`
		Loop    bool     `toml:"loop"`
		LoopGap duration `toml:"loop_gap"`
	} `toml:"schedule"`

	Packets struct {
		Size string `toml:"size"`
	} `toml:"packets"`
	Writes struct {
		Size string `toml:"size"`
	} `toml:"writes"`
	Limits struct {
		Queue         int      `toml:"queue"`
		Linger        duration `toml:"linger"`
		MaxDecoyRatio float64  `toml:"max_decoy_ratio"`
	} `toml:"limits"`

	file string
	dir  string
	src  []byte
}

// duration is a time.Duration written as a string such as "20ms".
type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (write it like 20ms, 1.5s or 2m)", b)
	}
	d.Duration = v
	return nil
}

// Error is a problem in a profile file: the file, the line (0 when the
// problem is not on one line), the field and what is wrong.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": %s", e.Field)
	}
	fmt.Fprintf(&b, ": %s", e.Msg)
	return b.String()
}

// Parse reads a profile from src; file names it in errors. It checks the
// syntax, rejects unknown fields, and validates every value by compiling
// the profile once.
func Parse(file string, src []byte) (*Profile, error) {
	return parse(file, ".", src)
}

// parse is Parse with the directory relative paths in the file (a replay
// trace) are taken from.
func parse(file, dir string, src []byte) (*Profile, error) {
	if len(src) > maxFileSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("file of %d bytes, more than %d", len(src), maxFileSize)}
	}
	p := &Profile{file: file, dir: dir, src: src}
	md, err := toml.NewDecoder(bytes.NewReader(src)).Decode(p)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: file, Line: pe.Position.Line, Field: pe.LastKey, Msg: pe.Message}
		}
		// A type mismatch or an UnmarshalText error names no line; find
		// the key in the message if we can.
		return nil, &Error{File: file, Line: p.guessLine(err.Error()), Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		return nil, &Error{File: file, Line: p.lineOf(k...), Field: k.String(), Msg: "unknown field"}
	}
	if err := p.checkScheduleKeys(md); err != nil {
		return nil, err
	}
	if p.Name == "" {
		return nil, &Error{File: file, Field: "name", Msg: "missing (every profile has a name)"}
	}
	if _, err := p.compile(nil); err != nil {
		return nil, err
	}
	return p, nil
}

// scheduleKinds lists each schedule kind with the [schedule] keys it
// reads, besides kind itself. A key of another kind is an error rather
// than silently ignored. A new kind adds its row here and its case in
// scheduleMaker.
var scheduleKinds = []struct {
	kind string
	keys []string
}{
	{"immediate", nil},
	{"constant-rate", []string{"cell", "interval", "idle_stop"}},
	{"video", []string{"segment", "ladder", "start_rung", "startup_segments", "vbr", "mtu", "request_size", "quiet_gap", "idle_stop", "rebuffer", "max_buffer"}},
	{"jitter", []string{"gap_us", "size"}},
	{"replay", []string{"trace", "loop", "loop_gap"}},
}

// scheduleKindKeys returns the keys of kind ("" is immediate), and false
// if there is no such kind.
func scheduleKindKeys(kind string) ([]string, bool) {
	if kind == "" {
		kind = "immediate"
	}
	for _, k := range scheduleKinds {
		if k.kind == kind {
			return k.keys, true
		}
	}
	return nil, false
}

// scheduleKindNames returns the kinds for an error message: "a, b or c".
func scheduleKindNames() string {
	names := make([]string, len(scheduleKinds))
	for i, k := range scheduleKinds {
		names[i] = k.kind
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// checkScheduleKeys rejects a [schedule] key that the table's kind does
// not read, with the kinds that do.
func (p *Profile) checkScheduleKeys(md toml.MetaData) error {
	keys, ok := scheduleKindKeys(p.Schedule.Kind)
	if !ok {
		return p.fieldError("schedule", "kind", "%q, want %s", p.Schedule.Kind, scheduleKindNames())
	}
	kind := p.Schedule.Kind
	if kind == "" {
		kind = "immediate"
	}
	for _, k := range md.Keys() {
		if len(k) != 2 || k[0] != "schedule" || k[1] == "kind" || slices.Contains(keys, k[1]) {
			continue
		}
		var owners []string
		for _, sk := range scheduleKinds {
			if slices.Contains(sk.keys, k[1]) {
				owners = append(owners, sk.kind)
			}
		}
		takes := "takes no other key"
		if len(keys) > 0 {
			takes = "takes " + strings.Join(keys, ", ")
		}
		return p.fieldError("schedule", k[1], "a key of %s, not of kind %q (which %s)", strings.Join(owners, " and "), kind, takes)
	}
	return nil
}

// fieldError makes an Error for the field at table.key.
func (p *Profile) fieldError(table, key string, format string, args ...any) error {
	field := key
	path := []string{key}
	if table != "" {
		field = table + "." + key
		path = []string{table, key}
	}
	return &Error{File: p.file, Line: p.lineOf(path...), Field: field, Msg: fmt.Sprintf(format, args...)}
}

// lineOf finds the line that sets the key at path ("schedule", "cell"),
// by reading the file as the simple TOML profiles are written in: table
// headers and key = value lines. It returns 0 if it cannot tell.
func (p *Profile) lineOf(path ...string) int {
	if len(path) == 0 {
		return 0
	}
	table := strings.Join(path[:len(path)-1], ".")
	key := path[len(path)-1]
	cur := ""
	for i, line := range strings.Split(string(p.src), "\n") {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, "[") {
			cur = strings.TrimSpace(strings.Trim(l, "[]"))
			if j := strings.IndexByte(cur, ']'); j >= 0 {
				cur = cur[:j]
			}
			if len(path) == 1 && cur == key {
				return i + 1
			}
			continue
		}
		if cur != table {
			continue
		}
		if k, _, ok := strings.Cut(l, "="); ok && strings.Trim(strings.TrimSpace(k), `"`) == key {
			return i + 1
		}
	}
	return 0
}

// guessLine finds a line for a decode error that names a key.
func (p *Profile) guessLine(msg string) int {
	for _, line := range []string{"garbage_len", "interval", "idle_stop", "segment", "quiet_gap", "max_buffer", "loop_gap", "linger"} {
		if strings.Contains(msg, line) {
			for _, t := range []string{"handshake", "schedule", "limits"} {
				if n := p.lineOf(t, line); n > 0 {
					return n
				}
			}
		}
	}
	return 0
}

// Compile turns the profile into a shaper configuration. base, if not
// nil, supplies fields a profile does not set (Network, Seed, Logger and
// the like); the profile's own fields replace base's.
func (p *Profile) Compile(base *shaper.Config) (*shaper.Config, error) {
	return p.compile(base)
}

func (p *Profile) compile(base *shaper.Config) (*shaper.Config, error) {
	cfg := &shaper.Config{}
	if base != nil {
		*cfg = *base
	}
	var seed [32]byte
	if p.Seed != "" {
		b, err := hex.DecodeString(p.Seed)
		if err != nil || len(b) != 32 {
			return nil, p.fieldError("", "seed", "want 64 hex digits")
		}
		copy(seed[:], b)
	}
	dist := func(table, key, expr string) (padding.Dist, error) { return p.distField(table, key, expr, seed) }
	var err error
	h := &p.Handshake
	if cfg.GarbageLen, err = dist("handshake", "garbage_len", h.GarbageLen); err != nil {
		return nil, err
	}
	if cfg.GarbageLen != nil {
		if lo, hi := cfg.GarbageLen.Bounds(); lo < 0 || hi > v2core.MaxGarbageLen {
			return nil, p.fieldError("handshake", "garbage_len", "sizes %d..%d, want within 0..%d", lo, hi, v2core.MaxGarbageLen)
		}
	}
	switch strings.ToLower(h.GarbageFill) {
	case "", "random":
		cfg.Garbage = padding.RandomFiller{}
	case "printable":
		cfg.Garbage = padding.PrintableFiller{}
	case "low-popcount", "lowpopcount":
		cfg.Garbage = padding.LowPopcountFiller{}
	default:
		return nil, p.fieldError("handshake", "garbage_fill", "%q, want random, printable or low-popcount", h.GarbageFill)
	}
	if cfg.HandshakeDecoys, err = dist("handshake", "decoys", h.Decoys); err != nil {
		return nil, err
	}
	if cfg.DecoySize, err = dist("handshake", "decoy_size", h.DecoySize); err != nil {
		return nil, err
	}
	if h.FirstWrite != 0 && (h.FirstWrite < v2core.EllswiftKeySize || h.FirstWrite > v2core.EllswiftKeySize+v2core.MaxGarbageLen) {
		return nil, p.fieldError("handshake", "first_write", "%d, want 0 (one write) or 64..4159", h.FirstWrite)
	}
	cfg.FirstWriteSize = h.FirstWrite

	if cfg.PacketSize, err = dist("packets", "size", p.Packets.Size); err != nil {
		return nil, err
	}
	if cfg.PacketSize != nil {
		if lo, _ := cfg.PacketSize.Bounds(); lo < 2 {
			return nil, p.fieldError("packets", "size", "smallest size %d, want at least 2 (a record byte and a data byte)", lo)
		}
	}
	if cfg.WriteSize, err = dist("writes", "size", p.Writes.Size); err != nil {
		return nil, err
	}
	if cfg.WriteSize != nil {
		if lo, _ := cfg.WriteSize.Bounds(); lo < 1 {
			return nil, p.fieldError("writes", "size", "smallest size %d, want at least 1", lo)
		}
	}
	if q := p.Limits.Queue; q != 0 && (q < 4096 || q > 64<<20) {
		return nil, p.fieldError("limits", "queue", "%d, want 4096..67108864 bytes", q)
	}
	cfg.QueueSize = p.Limits.Queue
	if l := p.Limits.Linger.Duration; l < 0 || l > time.Hour {
		return nil, p.fieldError("limits", "linger", "%v, want 0..1h", l)
	}
	cfg.Linger = p.Limits.Linger.Duration
	if r := p.Limits.MaxDecoyRatio; r < 0 || r > 1000 {
		return nil, p.fieldError("limits", "max_decoy_ratio", "%v, want 0 (no cap) to 1000", r)
	}
	cfg.MaxDecoyRatio = p.Limits.MaxDecoyRatio

	mk, err := p.scheduleMaker(seed)
	if err != nil {
		return nil, err
	}
	cfg.Schedule = mk
	return cfg, nil
}

// scheduleMaker validates the [schedule] table by building a schedule for
// each role once, and returns the factory the shaper calls per connection.
func (p *Profile) scheduleMaker(seed [32]byte) (func(schedule.Role, *mrand.Rand) (schedule.Schedule, error), error) {
	s := &p.Schedule
	field := func(key string, err error) error {
		var pe *schedule.ParamError
		if errors.As(err, &pe) {
			return p.fieldError("schedule", key, "%s = %v, want %s", pe.Param, pe.Value, pe.Want)
		}
		return p.fieldError("schedule", key, "%v", err)
	}
	var mk func(schedule.Role, *mrand.Rand) (schedule.Schedule, error)
	switch s.Kind {
	case "", "immediate":
		return nil, nil
	case "constant-rate":
		if s.Cell != 0 && s.Cell < v2core.PacketOverhead+2 {
			return nil, p.fieldError("schedule", "cell", "%d bytes, want at least %d (one packet's framing and a data byte)", s.Cell, v2core.PacketOverhead+2)
		}
		params := schedule.ConstantRateParams{CellSize: s.Cell, Interval: s.Interval.Duration, IdleStop: s.IdleStop.Duration}
		mk = func(schedule.Role, *mrand.Rand) (schedule.Schedule, error) { return schedule.NewConstantRate(params) }
	case "video":
		req, err := p.distField("schedule", "request_size", s.RequestSize, seed)
		if err != nil {
			return nil, err
		}
		if s.MTU != 0 && s.MTU < v2core.PacketOverhead+2 {
			return nil, p.fieldError("schedule", "mtu", "%d, want at least %d", s.MTU, v2core.PacketOverhead+2)
		}
		mk = func(role schedule.Role, r *mrand.Rand) (schedule.Schedule, error) {
			vp := schedule.VideoParams{
				Role: role, SegmentDuration: s.Segment.Duration, Ladder: s.Ladder,
				StartRung: s.StartRung, StartupSegments: s.StartupSegments, VBR: s.VBR,
				MTU: s.MTU, QuietGap: s.QuietGap.Duration, IdleStop: s.IdleStop.Duration,
				Rebuffer: s.Rebuffer, MaxBuffer: s.MaxBuffer.Duration,
			}
			if req != nil {
				vp.RequestSize = req
			}
			return schedule.NewVideo(vp, r)
		}
	case "jitter":
		gap, err := p.distField("schedule", "gap_us", s.GapMicros, seed)
		if err != nil {
			return nil, err
		}
		size, err := p.distField("schedule", "size", s.Size, seed)
		if err != nil {
			return nil, err
		}
		mk = func(_ schedule.Role, r *mrand.Rand) (schedule.Schedule, error) {
			jp := schedule.JitterParams{}
			if gap != nil {
				jp.Gap = gap
			}
			if size != nil {
				jp.Size = size
			}
			return schedule.NewJitter(jp, r)
		}
	case "replay":
		if s.Trace == "" {
			return nil, p.fieldError("schedule", "trace", "missing: replay needs a trace file")
		}
		path := s.Trace
		if !filepath.IsAbs(path) {
			path = filepath.Join(p.dir, path)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, p.fieldError("schedule", "trace", "%v", err)
		}
		events, err := schedule.ParseTrace(f)
		f.Close()
		if err != nil {
			return nil, p.fieldError("schedule", "trace", "%v", err)
		}
		mk = func(role schedule.Role, _ *mrand.Rand) (schedule.Schedule, error) {
			return schedule.NewReplay(schedule.ReplayParams{Trace: events, Role: role, Loop: s.Loop, LoopGap: s.LoopGap.Duration})
		}
	default:
		return nil, p.fieldError("schedule", "kind", "%q, want %s", s.Kind, scheduleKindNames())
	}
	// Build once per role so bad parameters fail here, with a line.
	for _, role := range []schedule.Role{schedule.Client, schedule.Server} {
		if _, err := mk(role, mrand.New(mrand.NewPCG(1, 2))); err != nil {
			var pe *schedule.ParamError
			key := "kind"
			if errors.As(err, &pe) {
				key = scheduleKey(pe.Param)
			}
			return nil, field(key, err)
		}
	}
	return mk, nil
}

func (p *Profile) distField(table, key, expr string, seed [32]byte) (padding.Dist, error) {
	if expr == "" {
		return nil, nil
	}
	d, err := parseDistIn(expr, seed, p.dir)
	if err != nil {
		return nil, p.fieldError(table, key, "%v", err)
	}
	return d, nil
}

// scheduleKey maps a schedule parameter's Go name to its profile key.
func scheduleKey(param string) string {
	switch param {
	case "CellSize":
		return "cell"
	case "Interval":
		return "interval"
	case "IdleStop":
		return "idle_stop"
	case "SegmentDuration":
		return "segment"
	case "Ladder":
		return "ladder"
	case "StartRung":
		return "start_rung"
	case "StartupSegments":
		return "startup_segments"
	case "VBR":
		return "vbr"
	case "MTU":
		return "mtu"
	case "QuietGap":
		return "quiet_gap"
	case "MaxBuffer":
		return "max_buffer"
	case "LoopGap":
		return "loop_gap"
	}
	return strings.ToLower(param)
}

// Source returns the profile file's text.
func (p *Profile) Source() []byte { return p.src }

// WantsVersionRequest reports whether a client with this profile asks its
// bridge for a profile in its version packet (handshake.version_request).
func (p *Profile) WantsVersionRequest() bool {
	return p.Handshake.VersionRequest == nil || *p.Handshake.VersionRequest
}

package profiles

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/bip324pt/bip324-pt/padding"
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
		// FirstFlightDelay is a distribution of microseconds the
		// initiator waits before its first flight.
		FirstFlightDelay string `toml:"first_flight_delay"`
		// VersionRequest, when false, keeps the version packet empty
		// between two bip324-pt ends, as Bitcoin Core sends it: the
		// client asks its bridge for no profile, and the bridge uses its
		// default. Nil means true.
		VersionRequest *bool `toml:"version_request"`
	} `toml:"handshake"`

	// Schedule is the [schedule] table: its kind and the kind's own
	// keys. [Profile.CompileSchedule] gives its effective parameters.
	Schedule ScheduleTable `toml:"schedule"`

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
	// The [schedule] table waits until its kind is known: the kind's
	// entry in the registry says which struct its keys decode into.
	f := profileFile{Profile: p}
	md, err := toml.NewDecoder(bytes.NewReader(src)).Decode(&f)
	if err != nil {
		return nil, p.decodeError(&md, err)
	}
	if err := p.decodeSchedule(&md, f.Schedule); err != nil {
		return nil, err
	}
	if err := p.checkUndecoded(&md); err != nil {
		return nil, err
	}
	if p.Name == "" {
		return nil, &Error{File: file, Field: "name", Msg: "missing (every profile has a name)"}
	}
	if _, err := p.compile(); err != nil {
		return nil, err
	}
	return p, nil
}

// profileFile is what parse decodes: a Profile, with the [schedule]
// table held back (this field hides the Profile's).
type profileFile struct {
	*Profile
	Schedule toml.Primitive `toml:"schedule"`
}

// decodeError turns an error of the TOML decoder into an *Error.
func (p *Profile) decodeError(md *toml.MetaData, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Error{File: p.file, Line: pe.Position.Line, Field: pe.LastKey, Msg: pe.Message}
	}
	// A type mismatch names no line; find the key in the message if we
	// can.
	return &Error{File: p.file, Line: p.guessLine(md, err.Error()), Msg: strings.TrimPrefix(err.Error(), "toml: ")}
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

// guessLine finds a line for a decode error that names a key of the
// file, as in (last key "schedule.interval").
func (p *Profile) guessLine(md *toml.MetaData, msg string) int {
	for _, k := range md.Keys() {
		if strings.Contains(msg, strconv.Quote(k.String())) {
			if n := p.lineOf(k...); n > 0 {
				return n
			}
		}
	}
	return 0
}

// Compile turns the profile into the Shape a connection's send direction
// follows. The Shape may be shared by any number of connections; each
// connection's seed, network and hooks are its own shaper.Config.
func (p *Profile) Compile() (*shaper.Shape, error) {
	return p.compile()
}

func (p *Profile) compile() (*shaper.Shape, error) {
	cfg := &shaper.Shape{}
	seed, err := p.seed()
	if err != nil {
		return nil, err
	}
	dist := func(table, key, expr string) (padding.Dist, error) { return p.distField(table, key, expr, seed) }
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
	if cfg.FirstFlightDelay, err = dist("handshake", "first_flight_delay", h.FirstFlightDelay); err != nil {
		return nil, err
	}
	if cfg.FirstFlightDelay != nil {
		if lo, hi := cfg.FirstFlightDelay.Bounds(); lo < 0 || hi > 10_000_000 {
			return nil, p.fieldError("handshake", "first_flight_delay", "%d..%d µs, want within 0..10000000 (10 s)", lo, hi)
		}
	}

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

	sched, err := p.compileSchedule(seed)
	if err != nil {
		return nil, err
	}
	cfg.Schedule = sched.New
	return cfg, nil
}

// seed returns the profile's seed (zeros when it has none).
func (p *Profile) seed() ([32]byte, error) {
	var seed [32]byte
	if p.Seed != "" {
		b, err := hex.DecodeString(p.Seed)
		if err != nil || len(b) != 32 {
			return seed, p.fieldError("", "seed", "want 64 hex digits")
		}
		copy(seed[:], b)
	}
	return seed, nil
}

// relPath returns a file name the profile gives, taken relative to the
// profile's folder unless absolute.
func (p *Profile) relPath(name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(p.dir, name)
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

// Source returns the profile file's text.
func (p *Profile) Source() []byte { return p.src }

// WantsVersionRequest reports whether a client with this profile asks its
// bridge for a profile in its version packet (handshake.version_request).
func (p *Profile) WantsVersionRequest() bool {
	return p.Handshake.VersionRequest == nil || *p.Handshake.VersionRequest
}

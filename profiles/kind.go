package profiles

import (
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/bip324pt/bip324-pt/padding"
	"github.com/bip324pt/bip324-pt/schedule"
)

// ScheduleTable is a profile's [schedule] table: the kind, and that
// kind's own keys. Which keys a kind takes, and how they compile, is the
// kind's entry in the registry (see kindEntry); a key of another kind is
// an error.
type ScheduleTable struct {
	// Kind names the schedule: immediate (also when empty),
	// constant-rate, video, jitter or replay.
	Kind string `toml:"kind"`

	// fields is the kind's keys, a pointer to the struct its entry
	// declares (*videoFields for video), as parse decoded them.
	fields any
}

// newSchedule makes the schedule of one connection: the type of
// shaper.Shape.Schedule.
type newSchedule = func(schedule.Role, *mrand.Rand) (schedule.Schedule, error)

// defaultKind is the kind of a [schedule] table without one.
const defaultKind = "immediate"

// kindEntry is a schedule kind's entry in the registry: its keys and how
// they compile. A [kind] is one.
type kindEntry interface {
	// keys returns the kind's [schedule] keys besides kind, in the order
	// its fields struct declares them.
	keys() []string
	// newFields returns a pointer to a zero fields struct, for the TOML
	// decoder.
	newFields() any
	// compile validates fields (from newFields) and returns the factory
	// of the kind's schedule; nil means schedule.Immediate.
	compile(c *kindContext, fields any) (newSchedule, error)
	// params returns the effective parameters of s, a schedule the
	// factory made: the kind's schedule.*Params value.
	params(s schedule.Schedule) any
}

// kind is the registry entry of a schedule kind whose [schedule] keys
// are the fields of F, a struct. Each field of F has a toml tag naming its
// key, and is named after the field of the schedule's Params struct that
// it sets (CellSize for cell), so that a *schedule.ParamError from the
// constructor names its key. Defaults belong to the schedule: a key left
// out is the zero value, which the constructor fills in, and the
// effective value comes back through params.
type kind[F any] struct {
	// Compile validates what the schedule's constructor does not (with
	// c.errorf naming the key) and returns the factory. The factory
	// must be cheap and must not keep f's pointer past compile time.
	Compile func(c *kindContext, f *F) (newSchedule, error)
	// Params returns the effective parameters of a schedule Compile's
	// factory made: s.(*schedule.X).Params().
	Params func(s schedule.Schedule) any
}

func (k *kind[F]) keys() []string                 { return tomlKeys(reflect.TypeFor[F]()) }
func (k *kind[F]) newFields() any                 { return new(F) }
func (k *kind[F]) params(s schedule.Schedule) any { return k.Params(s) }
func (k *kind[F]) compile(c *kindContext, fields any) (newSchedule, error) {
	return k.Compile(c, fields.(*F))
}

// scheduleKinds is the registry of schedule kinds, by the name [schedule]
// kind gives. Each kind has a file, kind_NAME.go, that declares its fields
// struct and registers its entry from an init function with
// registerKind; that file and the schedule's own in package schedule are
// all a new kind touches.
var scheduleKinds = map[string]kindEntry{}

// registerKind adds a kind to the registry. It panics on a name given
// twice, or a fields struct that is not one (programmer errors).
func registerKind[F any](name string, k *kind[F]) {
	if _, dup := scheduleKinds[name]; dup {
		panic("profiles: schedule kind " + name + " registered twice")
	}
	if t := reflect.TypeFor[F](); t.Kind() != reflect.Struct {
		panic("profiles: schedule kind " + name + ": fields of type " + t.String() + ", want a struct")
	}
	scheduleKinds[name] = k
}

// tomlKeys returns the toml keys of struct type t's fields, in order.
func tomlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if key, ok := tomlKey(t.Field(i)); ok {
			keys = append(keys, key)
		}
	}
	return keys
}

// tomlKey returns the key the TOML decoder gives f, and false if it
// skips f.
func tomlKey(f reflect.StructField) (string, bool) {
	key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if !f.IsExported() || key == "-" {
		return "", false
	}
	if key == "" {
		key = f.Name
	}
	return key, true
}

// kindNames returns the registered kinds, the default first and the rest
// in alphabetical order.
func kindNames() []string {
	names := make([]string, 0, len(scheduleKinds))
	for name := range scheduleKinds {
		if name != defaultKind {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return append([]string{defaultKind}, names...)
}

// orList joins words for an error message: "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// keyOwners returns the kinds that take [schedule] key, in kindNames
// order.
func keyOwners(key string) []string {
	var owners []string
	for _, name := range kindNames() {
		if slices.Contains(scheduleKinds[name].keys(), key) {
			owners = append(owners, name)
		}
	}
	return owners
}

// decodeSchedule decodes the [schedule] table, held undecoded in prim,
// into p.Schedule: the kind, then the kind's fields. Keys it leaves
// undecoded are checked by checkUndecoded.
func (p *Profile) decodeSchedule(md *toml.MetaData, prim toml.Primitive) error {
	if t := md.Type("schedule"); t != "" && t != "Hash" {
		return &Error{File: p.file, Line: p.lineOf("schedule"), Field: "schedule", Msg: "want a table, [schedule]"}
	}
	var head struct {
		Kind string `toml:"kind"`
	}
	if err := md.PrimitiveDecode(prim, &head); err != nil {
		return p.decodeError(md, err)
	}
	p.Schedule = ScheduleTable{Kind: head.Kind}
	k, ok := scheduleKinds[p.kind()]
	if !ok {
		return nil // checkUndecoded reports it, after unknown keys
	}
	fields := k.newFields()
	if err := md.PrimitiveDecode(prim, fields); err != nil {
		return p.decodeError(md, err)
	}
	p.Schedule.fields = fields
	return nil
}

// checkUndecoded reports, in this order, a key that nothing reads, an
// unknown schedule kind, and a [schedule] key of another kind than the
// table's, with the kinds that take it.
func (p *Profile) checkUndecoded(md *toml.MetaData) error {
	und := md.Undecoded()
	for _, k := range und {
		if len(k) == 2 && k[0] == "schedule" && len(keyOwners(k[1])) > 0 {
			continue
		}
		return &Error{File: p.file, Line: p.lineOf(k...), Field: k.String(), Msg: "unknown field"}
	}
	kind := p.kind()
	entry, ok := scheduleKinds[kind]
	if !ok {
		return p.fieldError("schedule", "kind", "%q, want %s", p.Schedule.Kind, orList(kindNames()))
	}
	if len(und) == 0 {
		return nil
	}
	key := und[0][1] // a [schedule] key of other kinds
	takes := "takes no other key"
	if keys := entry.keys(); len(keys) > 0 {
		takes = "takes " + strings.Join(keys, ", ")
	}
	return p.fieldError("schedule", key, "a key of %s, not of kind %q (which %s)", strings.Join(keyOwners(key), " and "), kind, takes)
}

// kind returns the schedule kind, the default when the table names none.
func (p *Profile) kind() string {
	if p.Schedule.Kind == "" {
		return defaultKind
	}
	return p.Schedule.Kind
}

// kindContext is what a kind's Compile gets besides its fields: ways to
// read a distribution and to report an error at one of its keys.
type kindContext struct {
	p    *Profile
	seed [32]byte
}

// errorf returns an *Error at [schedule] key.
func (c *kindContext) errorf(key, format string, args ...any) error {
	return c.p.fieldError("schedule", key, format, args...)
}

// dist parses the distribution expr of [schedule] key; nil if expr is
// empty (the key is not set).
func (c *kindContext) dist(key, expr string) (padding.Dist, error) {
	return c.p.distField("schedule", key, expr, c.seed)
}

// path returns a file name given in the profile, relative to the
// profile's folder unless absolute.
func (c *kindContext) path(name string) string { return c.p.relPath(name) }

// CompiledSchedule is a profile's [schedule] table, compiled.
type CompiledSchedule struct {
	// Kind is the schedule kind, "immediate" when the table names none.
	Kind string
	// New makes the schedule of one connection, from its role and its
	// sampling source; nil means schedule.Immediate. It is what
	// [Profile.Compile] puts in shaper.Shape.Schedule.
	New func(role schedule.Role, r *mrand.Rand) (schedule.Schedule, error)

	client, server any
}

// Params returns the effective parameters of role's schedule, the
// defaults filled in by the schedule itself: a schedule.ImmediateParams,
// ConstantRateParams, VideoParams, JitterParams or ReplayParams (without
// its trace), by kind. It panics on a role other than schedule.Client or
// schedule.Server.
func (c *CompiledSchedule) Params(role schedule.Role) any {
	switch role {
	case schedule.Client:
		return c.client
	case schedule.Server:
		return c.server
	}
	panic(fmt.Sprintf("profiles: CompiledSchedule.Params(%v)", role))
}

// CompileSchedule compiles the profile's [schedule] table alone. Errors
// are *Error with the file, line and key, as from [Parse], which has
// compiled it once already.
func (p *Profile) CompileSchedule() (*CompiledSchedule, error) {
	seed, err := p.seed()
	if err != nil {
		return nil, err
	}
	return p.compileSchedule(seed)
}

// compileSchedule compiles the [schedule] table with its kind's entry,
// and builds the schedule for each role once, so that parameters the
// schedule's constructor refuses fail here, with a line.
func (p *Profile) compileSchedule(seed [32]byte) (*CompiledSchedule, error) {
	name := p.kind()
	k, ok := scheduleKinds[name]
	if !ok {
		return nil, p.fieldError("schedule", "kind", "%q, want %s", p.Schedule.Kind, orList(kindNames()))
	}
	fields := p.Schedule.fields
	if zero := k.newFields(); reflect.TypeOf(fields) != reflect.TypeOf(zero) {
		fields = zero // a Profile not from Parse, or Kind changed since: no key set
	}
	mk, err := k.compile(&kindContext{p: p, seed: seed}, fields)
	if err != nil {
		return nil, err
	}
	cs := &CompiledSchedule{Kind: name, New: mk}
	for _, role := range []schedule.Role{schedule.Client, schedule.Server} {
		var s schedule.Schedule = schedule.NewImmediate()
		if mk != nil {
			if s, err = mk(role, mrand.New(mrand.NewPCG(1, 2))); err != nil {
				return nil, p.scheduleError(fields, err)
			}
		}
		if role == schedule.Client {
			cs.client = k.params(s)
		} else {
			cs.server = k.params(s)
		}
	}
	return cs, nil
}

// scheduleError places an error from a schedule's constructor at the key
// whose field in fields is named after the parameter a *ParamError names
// ("Ladder" for "Ladder[2]" and "len(Ladder)"), or at kind.
func (p *Profile) scheduleError(fields any, err error) error {
	var pe *schedule.ParamError
	if !errors.As(err, &pe) {
		return p.fieldError("schedule", "kind", "%v", err)
	}
	param := strings.TrimSuffix(strings.TrimPrefix(pe.Param, "len("), ")")
	param, _, _ = strings.Cut(param, "[")
	key := strings.ToLower(param)
	if f, ok := reflect.TypeOf(fields).Elem().FieldByName(param); ok {
		if k, ok := tomlKey(f); ok {
			key = k
		}
	}
	return p.fieldError("schedule", key, "%s = %v, want %s", pe.Param, pe.Value, pe.Want)
}

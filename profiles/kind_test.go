package profiles

import (
	mrand "math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
)

// TestScheduleKinds_DeclaredOnce: each kind declares each of its keys
// once, in a field with a toml tag named after the field of the
// schedule's Params that it sets (so a *schedule.ParamError finds its
// key), and a key two kinds share has one type.
func TestScheduleKinds_DeclaredOnce(t *testing.T) {
	keyType := map[string]reflect.Type{}
	for _, name := range kindNames() {
		k := scheduleKinds[name]
		ft := reflect.TypeOf(k.newFields()).Elem()
		cs, err := minimal(t, name).CompileSchedule()
		if err != nil {
			t.Fatalf("kind %q: %v", name, err)
		}
		pt := reflect.TypeOf(cs.Params(schedule.Client))
		seen := map[string]bool{}
		for i := range ft.NumField() {
			f := ft.Field(i)
			key, ok := tomlKey(f)
			if !ok || f.Tag.Get("toml") == "" {
				t.Errorf("kind %q: field %s has no toml key", name, f.Name)
				continue
			}
			if key == "kind" || seen[key] {
				t.Errorf("kind %q: key %q declared twice", name, key)
			}
			seen[key] = true
			if _, ok := pt.FieldByName(f.Name); !ok {
				t.Errorf("kind %q: field %s (key %q) is no field of %v", name, f.Name, key, pt)
			}
			if prev, ok := keyType[key]; ok && prev != f.Type {
				t.Errorf("kind %q: key %q of type %v, another kind's is %v", name, key, f.Type, prev)
			}
			keyType[key] = f.Type
		}
		if got := k.keys(); len(got) != len(seen) {
			t.Errorf("kind %q: keys %v, fields %d", name, got, len(seen))
		}
	}
}

// minimal parses a profile with only [schedule] kind set (and replay's
// required trace).
func minimal(t *testing.T, kind string) *Profile {
	t.Helper()
	src := "name = \"x\"\n[schedule]\nkind = \"" + kind + "\"\n"
	if kind == "replay" {
		src += "trace = \"../testdata/traces/data-df-wflib/10.log\"\n"
	}
	p, err := Parse("test.toml", []byte(src))
	if err != nil {
		t.Fatalf("kind %q: %v", kind, err)
	}
	return p
}

// TestCompiledSchedule_Params: the effective parameters of each built-in
// are those of the schedule the compiled shaper.Shape makes for each
// role, and have the profile's values and the schedule's defaults.
func TestCompiledSchedule_Params(t *testing.T) {
	want := map[string]func(t *testing.T, role schedule.Role, params any){
		"none": wantImmediate,
		"bitcoin": func(t *testing.T, role schedule.Role, params any) {
			wantBitcoin(false)(t, role, params)
			if bp := params.(schedule.BitcoinParams); bp.DemandWait != 200*time.Millisecond {
				t.Errorf("demand wait %v, want 200ms", bp.DemandWait)
			}
		},
		"fet": wantImmediate,
		"cbr": func(t *testing.T, _ schedule.Role, params any) {
			want := schedule.ConstantRateParams{CellSize: 1448, Interval: 10 * time.Millisecond}
			if params != want {
				t.Errorf("params %+v, want %+v", params, want)
			}
		},
		"video": func(t *testing.T, role schedule.Role, params any) {
			vp := params.(schedule.VideoParams)
			if vp.Role != role || vp.SegmentDuration != 2*time.Second || vp.MTU != 1448 || len(vp.Ladder) != 4 || vp.StartupSegments != 3 ||
				vp.VBR != 0.2 || vp.QuietGap != 100*time.Millisecond || vp.IdleStop != 0 || vp.Rebuffer || vp.MaxBuffer != 30*time.Second ||
				vp.AudioBitrate != 128000 || vp.SeekEvery != time.Minute {
				t.Errorf("params %+v", vp)
			}
			if got := stringOf(vp.RequestSize); got != "uniform(2000,8000)" {
				t.Errorf("request size %s", got)
			}
		},
		"jitter": func(t *testing.T, _ schedule.Role, params any) {
			jp := params.(schedule.JitterParams)
			if g, s := stringOf(jp.Gap), stringOf(jp.Size); g != "uniform(0,10000)" || s != "uniform(1448,16384)" {
				t.Errorf("gap %s, size %s", g, s)
			}
		},
	}
	for _, name := range Builtins() {
		t.Run(name, func(t *testing.T) {
			p, err := Load(name)
			if err != nil {
				t.Fatal(err)
			}
			cs, err := p.CompileSchedule()
			if err != nil {
				t.Fatal(err)
			}
			if cs.Kind != p.kind() {
				t.Errorf("kind %q, profile's %q", cs.Kind, p.Schedule.Kind)
			}
			shape, err := p.Compile()
			if err != nil {
				t.Fatal(err)
			}
			check, ok := want[name]
			if !ok {
				t.Fatalf("no expected parameters for built-in %q", name)
			}
			for _, role := range []schedule.Role{schedule.Client, schedule.Server} {
				var s schedule.Schedule = schedule.NewImmediate()
				if shape.Schedule != nil {
					if s, err = shape.Schedule(role, mrand.New(mrand.NewPCG(3, 4))); err != nil {
						t.Fatal(err)
					}
				}
				got := cs.Params(role)
				if uses := paramsOf(t, s); !reflect.DeepEqual(got, uses) {
					t.Errorf("%v: params %+v, the schedule uses %+v", role, got, uses)
				}
				check(t, role, got)
			}
		})
	}
}

// TestExamples_BitcoinParams: the bitcoin-peer and bitcoin-ibd example
// profiles (profiles/examples) compile to the bitcoin kind's parameters.
func TestExamples_BitcoinParams(t *testing.T) {
	for name, ibd := range map[string]bool{"examples/bitcoin-peer.toml": false, "examples/bitcoin-ibd.toml": true} {
		p, err := Load(name)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := p.CompileSchedule()
		if err != nil {
			t.Fatal(err)
		}
		for _, role := range []schedule.Role{schedule.Client, schedule.Server} {
			wantBitcoin(ibd)(t, role, cs.Params(role))
		}
	}
}

func wantBitcoin(ibd bool) func(t *testing.T, role schedule.Role, params any) {
	return func(t *testing.T, role schedule.Role, params any) {
		bp := params.(schedule.BitcoinParams)
		inv := 5 * time.Second
		if role == schedule.Client {
			inv = 2 * time.Second
		}
		if bp.Role != role || bp.IBD != ibd || bp.PingInterval != 2*time.Minute || bp.InvInterval != inv || bp.InFlight != 16 {
			t.Errorf("params %+v", bp)
		}
		if got := stringOf(bp.BlockSize); got != "uniform(1000000,2000000)" {
			t.Errorf("block size %s", got)
		}
	}
}

func wantImmediate(t *testing.T, _ schedule.Role, params any) {
	if params != (schedule.ImmediateParams{}) {
		t.Errorf("params %#v, want ImmediateParams", params)
	}
}

// paramsOf calls s's Params method, which every schedule has.
func paramsOf(t *testing.T, s schedule.Schedule) any {
	m := reflect.ValueOf(s).MethodByName("Params")
	if !m.IsValid() {
		t.Fatalf("%T has no Params method", s)
	}
	return m.Call(nil)[0].Interface()
}

func orImmediate(kind string) string {
	if kind == "" {
		return "immediate"
	}
	return kind
}

func stringOf(s schedule.Sampler) string {
	if st, ok := s.(interface{ String() string }); ok {
		return st.String()
	}
	return "?"
}

// TestCompiledSchedule_Defaults: a kind with no keys set reports the
// schedule's defaults.
func TestCompiledSchedule_Defaults(t *testing.T) {
	cs, err := minimal(t, "constant-rate").CompileSchedule()
	if err != nil {
		t.Fatal(err)
	}
	want := schedule.ConstantRateParams{CellSize: schedule.DefaultMTU, Interval: schedule.DefaultCellInterval}
	if got := cs.Params(schedule.Server); got != want {
		t.Errorf("params %+v, want %+v", got, want)
	}
	if cs, err = minimal(t, "video").CompileSchedule(); err != nil {
		t.Fatal(err)
	}
	vp := cs.Params(schedule.Client).(schedule.VideoParams)
	if vp.SegmentDuration != schedule.DefaultSegmentDuration || !reflect.DeepEqual(vp.Ladder, schedule.DefaultLadder()) || vp.MaxBuffer != schedule.DefaultMaxBuffer {
		t.Errorf("params %+v", vp)
	}
	// A Profile made in code has no keys set beyond its Kind.
	for kind, want := range map[string]any{"": schedule.ImmediateParams{}, "constant-rate": want} {
		cs, err := (&Profile{Schedule: ScheduleTable{Kind: kind}}).CompileSchedule()
		if err != nil {
			t.Fatal(err)
		}
		if got := cs.Params(schedule.Client); got != want || cs.Kind != orImmediate(kind) {
			t.Errorf("kind %q: %s %+v, want %+v", kind, cs.Kind, got, want)
		}
	}
	p := minimal(t, "video")
	p.Schedule.Kind = "constant-rate" // the video fields no longer apply
	if cs, err = p.CompileSchedule(); err != nil || cs.Params(schedule.Server) != want {
		t.Errorf("kind changed after Parse: %v", err)
	}
}

// TestScheduleKinds_Docs: docs/profiles.md lists every kind and, in the
// kind's row of the [schedule] table, each of its keys.
func TestScheduleKinds_Docs(t *testing.T) {
	doc, err := os.ReadFile("../docs/profiles.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range kindNames() {
		var row string
		for line := range strings.SplitSeq(string(doc), "\n") {
			if strings.HasPrefix(line, "| `"+name+"`") {
				row = line // the [schedule] table comes before the built-ins'
				break
			}
		}
		if row == "" {
			t.Errorf("no row for kind %q", name)
			continue
		}
		for _, key := range scheduleKinds[name].keys() {
			if !strings.Contains(row, "`"+key+"`") {
				t.Errorf("kind %q: key %q not in its row", name, key)
			}
		}
	}
}

package profiles

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestBuiltins_Parse(t *testing.T) {
	want := []string{"bitcoin", "cbr", "fet", "jitter", "none", "video"}
	if got := Builtins(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("built-ins %v, want %v", got, want)
	}
	for _, name := range want {
		p, err := Load(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Name != name {
			t.Errorf("%s: name field is %q", name, p.Name)
		}
		if _, err := p.Compile(); err != nil {
			t.Errorf("%s: compile: %v", name, err)
		}
	}
}

func TestParse_Errors(t *testing.T) {
	cases := []struct {
		name, src string
		line      int
		field     string
		msg       string
	}{
		{"unknown field", "name = \"x\"\n[schedule]\nkind = \"constant-rate\"\ncel = 100\n", 4, "schedule.cel", "unknown field"},
		{"bad kind", "name = \"x\"\n\n[schedule]\nkind = \"warp\"\n", 4, "schedule.kind", "want immediate"},
		{"cell too small", "name = \"x\"\n[schedule]\nkind = \"constant-rate\"\ncell = 10\n", 4, "schedule.cell", "at least 22"},
		{"interval out of range", "name = \"x\"\n[schedule]\nkind = \"constant-rate\"\ninterval = \"1ns\"\n", 4, "schedule.interval", "Interval"},
		{"bad duration", "name = \"x\"\n[schedule]\nkind = \"constant-rate\"\ninterval = \"soon\"\n", 4, "", "not a duration"},
		{"garbage too long", "name = \"x\"\n[handshake]\ngarbage_len = \"uniform(0,5000)\"\n", 3, "handshake.garbage_len", "0..4095"},
		{"bad dist", "name = \"x\"\n[handshake]\ngarbage_len = \"gaussian(1,2)\"\n", 3, "handshake.garbage_len", "unknown distribution"},
		{"bad filler", "name = \"x\"\n[handshake]\ngarbage_fill = \"zeros\"\n", 3, "handshake.garbage_fill", "printable"},
		{"syntax", "name = \"x\"\n[schedule\n", 3, "", "table name"},
		{"no name", "[schedule]\nkind = \"immediate\"\n", 0, "name", "missing"},
		{"bad seed", "name = \"x\"\nseed = \"abc\"\n", 2, "seed", "64 hex"},
		{"replay without trace", "name = \"x\"\n[schedule]\nkind = \"replay\"\n", 0, "schedule.trace", "missing"},
		{"video vbr", "name = \"x\"\n[schedule]\nkind = \"video\"\nvbr = 5.0\n", 4, "schedule.vbr", "VBR"},
		{"video key with constant-rate", "name = \"x\"\n[schedule]\nkind = \"constant-rate\"\ncell = 1448\nladder = [365000, 730000]\n", 5, "schedule.ladder",
			`a key of video, not of kind "constant-rate" (which takes cell, interval, idle_stop)`},
		{"constant-rate key with video", "name = \"x\"\n[schedule]\ninterval = \"10ms\"\nkind = \"video\"\n", 3, "schedule.interval", `a key of constant-rate, not of kind "video"`},
		{"key shared by two kinds", "name = \"x\"\n[schedule]\nkind = \"jitter\"\nidle_stop = \"30s\"\n", 4, "schedule.idle_stop", "a key of constant-rate and video"},
		{"key without kind", "name = \"x\"\n[schedule]\ncell = 1448\n", 3, "schedule.cell", `not of kind "immediate" (which takes no other key)`},
		{"video ladder descending", "name = \"x\"\n[schedule]\nkind = \"video\"\nladder = [730000, 365000]\n", 4, "schedule.ladder", "Ladder[1] = 365000"},
		{"jitter bad dist", "name = \"x\"\n[schedule]\nkind = \"jitter\"\n\ngap_us = \"often\"\n", 5, "schedule.gap_us", "not a distribution"},
		{"unknown field before kind", "name = \"x\"\n[schedule]\nkind = \"warp\"\ncel = 1\n", 4, "schedule.cel", "unknown field"},
		{"schedule not a table", "name = \"x\"\nschedule = 5\n", 2, "schedule", "want a table"},
		{"replay key with immediate", "name = \"x\"\n[schedule]\nkind = \"immediate\"\nloop = true\n", 4, "schedule.loop", "a key of replay"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("test.toml", []byte(c.src))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *profiles.Error", err)
			}
			if pe.File != "test.toml" || pe.Line != c.line || (c.field != "" && pe.Field != c.field) || !strings.Contains(pe.Error(), c.msg) {
				t.Fatalf("err = %q (line %d, field %q), want line %d field %q containing %q", pe.Error(), pe.Line, pe.Field, c.line, c.field, c.msg)
			}
		})
	}
}

func TestParseDist(t *testing.T) {
	good := []string{"fixed(5)", "7", "uniform(0,10)", " uniform( 1 , 2 ) ", "lognormal(6.5,1)", "weighted(1,1448,20)",
		"empirical(1,2,3)", "clamp(lognormal(7,1),64,1448)", "clamp(uniform(0,100),10,20)"}
	for _, s := range good {
		if _, err := ParseDist(s, [32]byte{1}); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	bad := []string{"", "x", "fixed(", "fixed(1,2)", "uniform(5,1)", "uniform(a,b)", "clamp(fixed(1))", "clamp(fixed(1),2)",
		"empirical()", "lognormal(1)", "fixed(1) junk", strings.Repeat("clamp(", 10) + "fixed(1)" + strings.Repeat(",0,1)", 10), "weighted(1,2)"}
	for _, s := range bad {
		if _, err := ParseDist(s, [32]byte{}); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range Builtins() {
		src, _ := BuiltinSource(name)
		f.Add(src)
	}
	f.Add([]byte("name = \"x\"\n[handshake]\ngarbage_len = \"clamp(lognormal(7,1),64,1448)\"\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Parse("fuzz.toml", src)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if _, err := p.Compile(); err != nil {
			t.Fatalf("parsed but does not compile: %v", err)
		}
	})
}

func FuzzParseDist(f *testing.F) {
	f.Add("clamp(lognormal(7,1),64,1448)")
	f.Add("empirical(1,2,3)")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDist(s, [32]byte{})
		if err != nil {
			return
		}
		lo, hi := d.Bounds()
		if lo > hi {
			t.Fatalf("%q: bounds %d > %d", s, lo, hi)
		}
	})
}

// TestDocsExample keeps the example in docs/profiles.md valid.
func TestDocsExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/profiles.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```toml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no toml example in docs/profiles.md")
	}
	if _, err := Parse("docs/profiles.md", []byte(example)); err != nil {
		t.Fatal(err)
	}
}

// TestTraceDist: a distribution built from a real Tor trace's packet
// sizes, from a profile file that names the trace relative to itself.
func TestTraceDist(t *testing.T) {
	d, err := ParseDist("trace(../testdata/traces/data-df-wflib/10.log,r)", [32]byte{})
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi := d.Bounds(); lo <= 0 || hi > 1<<16 {
		t.Fatalf("bounds %d..%d", lo, hi)
	}
	p, err := Load("../testdata/traces/../../profiles/testdata/trace-sizes.toml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Compile(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"trace(nosuch.log,r)", "trace(../testdata/traces/data-df-wflib/10.log,x)", "trace(../go.mod,s)"} {
		if _, err := ParseDist(bad, [32]byte{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestScheduleKinds_Table: every kind in the registry parses with only
// kind set (and replay's required trace), and every key of every kind is
// accepted under that kind, so none is rejected by every kind.
func TestScheduleKinds_Table(t *testing.T) {
	if got, want := strings.Join(kindNames(), ","), "immediate,bitcoin,constant-rate,jitter,replay,video"; got != want {
		t.Errorf("kinds %s, want %s", got, want)
	}
	for _, name := range kindNames() {
		src := "name = \"x\"\n[schedule]\nkind = \"" + name + "\"\n"
		if name == "replay" {
			src += "trace = \"../testdata/traces/data-df-wflib/10.log\"\n"
		}
		if _, err := parse("test.toml", ".", []byte(src)); err != nil {
			t.Errorf("kind %q: %v", name, err)
		}
		// Each key, set to a value of the wrong type, fails as a type
		// error, not as a key of another kind: the kind reads it.
		for _, key := range scheduleKinds[name].keys() {
			_, err := parse("test.toml", ".", []byte(src+key+" = {}\n"))
			if err == nil || strings.Contains(err.Error(), "not of kind") || strings.Contains(err.Error(), "unknown field") {
				t.Errorf("kind %q, key %q: %v", name, key, err)
			}
		}
	}
}

// TestLoad_Example: the example profiles are built in under "example:".
func TestLoad_Example(t *testing.T) {
	p, err := Load(ExamplePrefix + "bitcoin-peer")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "bitcoin-peer" {
		t.Errorf("name %q", p.Name)
	}
	for _, bad := range []string{"example:nosuch", "example:../builtin/cbr", "example:"} {
		if _, err := Load(bad); err == nil {
			t.Errorf("Load(%q): no error", bad)
		}
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestDemo_CBR(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "wire.trace")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"demo", "--profile", "cbr", "--duration", "2s", "--quiet", "--trace", trace}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"profile: cbr (schedule constant-rate)", "goodput down:", "wire bytes:", "overhead:", "check: down: promised 1448-byte writes every 10ms"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// Every line of the trace is time_ns,direction,size.
	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^[0-9]+,[sr],[0-9]+$`)
	n, cells := 0, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if !line.MatchString(sc.Text()) {
			t.Fatalf("trace line %q", sc.Text())
		}
		if size, _ := strconv.Atoi(strings.Split(sc.Text(), ",")[2]); size == 1448 {
			cells++
		}
		n++
	}
	if n < 100 || cells < n-6 {
		t.Fatalf("trace: %d writes, %d of them 1448-byte cells", n, cells)
	}
}

func TestDemo_BadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "--duration", "0s"},
		{"demo", "extra"},
		{"demo", "--nope"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"demo", "--profile", "nosuch", "--duration", "1s"}, &out, &errb); code != exitFailure ||
		!strings.Contains(errb.String(), "no built-in profile") {
		t.Errorf("unknown profile: exit %d, stderr %q", code, errb.String())
	}
}

func TestProfileCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"profile", "list"}, &out, &errb); code != exitOK {
		t.Fatalf("list: exit %d", code)
	}
	for _, name := range []string{"none", "bitcoin", "cbr", "video", "fet", "jitter"} {
		if !regexp.MustCompile(`(?m)^` + name + ` `).MatchString(out.String()) {
			t.Errorf("list lacks %s:\n%s", name, out.String())
		}
	}
	// show prints a file that check accepts; a broken copy fails with
	// file, line and field.
	dir := t.TempDir()
	out.Reset()
	if code := run(context.Background(), []string{"profile", "show", "video"}, &out, &errb); code != exitOK {
		t.Fatalf("show: exit %d", code)
	}
	good := filepath.Join(dir, "mine.toml")
	os.WriteFile(good, out.Bytes(), 0o644)
	out.Reset()
	if code := run(context.Background(), []string{"profile", "check", good}, &out, &errb); code != exitOK {
		t.Fatalf("check: exit %d: %s", code, errb.String())
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, bytes.Replace(mustRead(t, good), []byte("vbr = 0.2"), []byte("vbr = 7"), 1), 0o644)
	errb.Reset()
	if code := run(context.Background(), []string{"profile", "check", bad}, &out, &errb); code != exitFailure {
		t.Fatalf("check bad: exit %d", code)
	}
	if !regexp.MustCompile(`bad\.toml:[0-9]+: schedule\.vbr: `).MatchString(errb.String()) {
		t.Fatalf("check bad: stderr %q", errb.String())
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEval_ShardsAndMerge: two shards of a small campaign through the
// command, merged by "eval merge": one report with every run.
func TestEval_ShardsAndMerge(t *testing.T) {
	dir := t.TempDir()
	common := []string{"eval", "--profiles", "none,cbr", "--workload", "interactive,idle", "--runs", "2", "--duration", "1s", "--quiet"}
	var dirs []string
	for _, k := range []string{"1/2", "2/2"} {
		out := filepath.Join(dir, strings.ReplaceAll(k, "/", "of"))
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append(common, "--shard", k, "--out", out), &stdout, &stderr); code != exitOK {
			t.Fatalf("shard %s: exit %d: %s", k, code, stderr.String())
		}
		dirs = append(dirs, out)
	}
	merged := filepath.Join(dir, "merged")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), append([]string{"eval", "merge", "--out", merged}, dirs...), &stdout, &stderr); code != exitOK {
		t.Fatalf("merge: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "report: "+filepath.Join(merged, "report.md")) || !strings.Contains(stdout.String(), "cbr") {
		t.Errorf("merge output:\n%s", stdout.String())
	}
	b, err := os.ReadFile(filepath.Join(merged, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Runs []struct {
			Profile, Workload string
			Run               int
		} `json:"runs"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 8 {
		t.Errorf("merged %d runs, want 8 (2 profiles, 2 workloads, 2 runs)", len(res.Runs))
	}
	md, err := os.ReadFile(filepath.Join(merged, "report.md"))
	if err != nil || !strings.Contains(string(md), "| | none | cbr |") {
		t.Errorf("report.md: %v\n%s", err, md)
	}
}

func TestEval_BadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"eval", "--shard", "3/2"},
		{"eval", "--shard", "x"},
		{"eval", "--link", "fast"},
		{"eval", "--runs", "0"},
		{"eval", "--seed", "0"},
		{"eval", "--duration", "-1s"},
		{"eval", "--workload", ""},
		{"eval", "extra"},
		{"eval", "merge"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, errb.String())
		}
	}
	for _, args := range [][]string{
		{"eval", "--workload", "ftp", "--out", t.TempDir()},
		{"eval", "--profiles", "nosuch", "--out", t.TempDir()},
		{"eval", "--workload", "web", "--traces", t.TempDir(), "--out", t.TempDir()},
		{"eval", "merge", t.TempDir()},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != exitFailure || !strings.Contains(errb.String(), "bip324-pt: eval") {
			t.Errorf("%v: exit %d, want %d with an error (%s)", args, code, exitFailure, errb.String())
		}
	}
}

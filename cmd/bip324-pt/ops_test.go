package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// daemon is a bip324-pt process run by a test, with its stdout lines
// readable as they come.
type daemon struct {
	cmd   *exec.Cmd
	lines chan string
	errb  *syncBuffer
	done  chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startDaemon(t *testing.T, bin string, args ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(bin, args...), lines: make(chan string, 100), errb: &syncBuffer{}, done: make(chan error, 1)}
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stderr = d.errb
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			d.lines <- sc.Text()
		}
		close(d.lines)
		d.done <- d.cmd.Wait()
	}()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("%v stderr:\n%s", args, d.errb.String())
		}
	})
	return d
}

// line waits for a stdout line matching re and returns its submatches.
func (d *daemon) line(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-d.lines:
			if !ok {
				t.Fatalf("exited before printing %q; stderr:\n%s", re, d.errb.String())
			}
			if m := rx.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-timeout:
			t.Fatalf("no line %q after 30 s; stderr:\n%s", re, d.errb.String())
		}
	}
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrape fetches and parses /metrics with Prometheus's own text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	return fams
}

// metric returns the value of the family's series whose labels include
// want (name=value pairs), -1 if none.
func metric(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == want[i] && l.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	return -1
}

// TestOperator: what a bridge operator relies on, through the binary as
// the README runs it: client --check with the right and a wrong secret,
// stats counted for a scripted run and scraped at /metrics with
// Prometheus's text parser, a "stats" line on SIGUSR1, SIGHUP reopening
// a rotated log without exiting, and SIGTERM draining an open tunnel
// before exit 0.
func TestOperator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bip324-pt")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The target behind the bridge: an echo server.
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	metricsLn, _ := net.Listen("tcp", "127.0.0.1:0")
	metricsAddr := metricsLn.Addr().String()
	metricsLn.Close()
	logPath := filepath.Join(dir, "bridge.log")
	srv := startDaemon(t, bin, "server", "--listen", "127.0.0.1:0", "--forward", echo.Addr().String(), "--state", filepath.Join(dir, "state"),
		"--metrics", metricsAddr, "--log-file", logPath, "--drain", "5s", "--stats-interval", "0")
	m := srv.line(t, `^bridge: (\S+) (secret=\S+)`)
	bridgeAddr, secret := m[1], m[2]
	url := "http://" + metricsAddr + "/metrics"

	// client --check, right and wrong secret.
	out, err := exec.Command(bin, "client", "--check", "--bridge", bridgeAddr+" "+secret+" profile=cbr").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "profile: ours cbr, the bridge's cbr") || !strings.HasSuffix(string(out), "ok\n") {
		t.Fatalf("check: %v\n%s", err, out)
	}
	wrong := "secret=" + strings.Repeat("A", len(secret)-len("secret="))
	out, err = exec.Command(bin, "client", "--check", "--timeout", "3s", "--bridge", bridgeAddr+" "+wrong).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "secret= is most likely wrong") {
		t.Fatalf("check with a wrong secret: %v\n%s", err, out)
	}

	// A tunnel: 1000 bytes there and back.
	cli := startDaemon(t, bin, "client", "--listen", "127.0.0.1:0", "--forward", "--bridge", bridgeAddr+" "+secret)
	fwd := cli.line(t, `^forwarding: (\S+) ->`)[1]
	c, err := net.Dial("tcp", fwd)
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("x"), 1000)
	c.Write(msg)
	back := make([]byte, 1000)
	if _, err := io.ReadFull(c, back); err != nil || !bytes.Equal(back, msg) {
		t.Fatalf("echo through the tunnel: %v", err)
	}
	c.Close()

	// Counters: 3 connections (two checks, the tunnel), 2 authenticated,
	// the wrong secret refused as a probe, the tunnel's 1000 bytes in
	// each way once it has closed, nothing dropped.
	var fams map[string]*dto.MetricFamily
	// A scrape reads the counters one by one, so it may come while a
	// closing connection adds its bytes: wait until both ways show.
	waitUntil(t, "the tunnel's bytes in the metrics", func() bool {
		fams = scrape(t, url)
		return metric(fams, "bip324pt_bytes_total", "direction", "in", "kind", "data") >= 1000 &&
			metric(fams, "bip324pt_bytes_total", "direction", "out", "kind", "data") >= 1000
	})
	for _, want := range []struct {
		name   string
		labels []string
		v      float64
	}{
		{"bip324pt_connections_accepted_total", nil, 3},
		{"bip324pt_connections_authenticated_total", nil, 2},
		{"bip324pt_connections_refused_total", []string{"reason", "probe"}, 1},
		{"bip324pt_connections_refused_total", []string{"reason", "replay"}, 0},
		{"bip324pt_profile_connections_total", []string{"profile", "cbr"}, 1},
		{"bip324pt_profile_connections_total", []string{"profile", "none"}, 1},
		{"bip324pt_queue_dropped_bytes_total", nil, 0},
	} {
		if got := metric(fams, want.name, want.labels...); got != want.v {
			t.Errorf("%s%v = %v, want %v", want.name, want.labels, got, want.v)
		}
	}
	if got := metric(fams, "bip324pt_bytes_total", "direction", "out", "kind", "data"); got < 1000 {
		t.Errorf("data out %v, want at least 1000", got)
	}

	// SIGUSR1: a stats line.
	srv.cmd.Process.Signal(syscall.SIGUSR1)
	waitUntil(t, "a stats line", func() bool {
		b, _ := os.ReadFile(logPath)
		return regexp.MustCompile(`msg=stats .*accepted=3 authenticated=2 refused_probe=1`).Match(b)
	})
	// SIGHUP after logrotate moved the log: a new file, the bridge alive.
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	srv.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the log reopened", func() bool {
		b, _ := os.ReadFile(logPath)
		return bytes.Contains(b, []byte("SIGHUP: log reopened"))
	})
	select {
	case err := <-srv.done:
		t.Fatalf("the bridge exited on SIGHUP: %v", err)
	default:
	}

	// SIGTERM with a tunnel open: no new connection is accepted, the open
	// one still carries data, and the bridge exits 0 within the drain.
	c, err = net.Dial("tcp", fwd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("before"))
	io.ReadFull(c, make([]byte, 6))
	srv.cmd.Process.Signal(syscall.SIGTERM)
	waitUntil(t, "the listener closed", func() bool {
		conn, err := net.DialTimeout("tcp", bridgeAddr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	c.Write([]byte("during"))
	got := make([]byte, 6)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "during" {
		t.Errorf("the open tunnel during the drain: %q, %v", got, err)
	}
	select {
	case err := <-srv.done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the bridge did not exit within the drain")
	}
	b, _ := os.ReadFile(logPath)
	if !bytes.Contains(b, []byte("no longer accepting")) || !bytes.Contains(b, []byte("server stopped")) {
		t.Errorf("log after SIGTERM:\n%s", b)
	}
	first, _ := os.ReadFile(logPath + ".1")
	if !regexp.MustCompile(`(?s)^[^\n]*server starting" version=\S+\n[^\n]*msg="bip324-pt: config" listen=`).Match(first) {
		t.Errorf("the log does not open with the version and the config:\n%.600s", first)
	}
	if bytes.Contains(first, []byte(secret[len("secret="):])) {
		t.Error("the secret is in the log")
	}
}

package tortest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Time limits of the process machinery.
const (
	// stopGrace is how long a process has to exit after SIGTERM (or, for a
	// transport, after its stdin closes) before it is killed.
	stopGrace = 10 * time.Second
	// childGrace is how long tor's transport children have to exit once
	// tor has gone.
	childGrace = 5 * time.Second
	// logTailLines is how many lines of each log a failed test shows.
	logTailLines = 60
)

// stream says where a captured line came from.
type stream int

const (
	stdout stream = iota
	stderr
)

// line is one line a process printed.
type line struct {
	stream stream
	text   string
}

// proc is a process this package started: its output is captured line by
// line into memory and into a log file, and it is stopped by PID.
// It is safe for concurrent use.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	stdin   io.WriteCloser // nil unless asked for

	exited   chan struct{} // closed once Wait returned
	readers  sync.WaitGroup
	readDone chan struct{} // closed once both output pipes hit EOF

	mu       sync.Mutex
	lines    []line
	changed  chan struct{} // closed and replaced on each new line
	waitErr  error
	stopOnce sync.Once
}

// startProc starts cmd with its stdout and stderr captured into logPath
// (stderr lines prefixed "stderr: ") and into memory. With withStdin, the
// process gets a pipe as stdin, closed by stop. The process gets SIGKILL
// if the test binary dies first.
func startProc(name string, cmd *exec.Cmd, logPath string, withStdin bool) (*proc, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	p := &proc{
		name:     name,
		cmd:      cmd,
		logPath:  logPath,
		exited:   make(chan struct{}),
		readDone: make(chan struct{}),
		changed:  make(chan struct{}),
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		logFile.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	if withStdin {
		w, err := cmd.StdinPipe()
		if err != nil {
			logFile.Close()
			outR.Close()
			outW.Close()
			errR.Close()
			errW.Close()
			return nil, err
		}
		p.stdin = w
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	fmt.Fprintf(logFile, "# %s: %s\n", name, strings.Join(cmd.Args, " "))
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		logFile.Close()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("tortest: start %s: %w", name, err)
	}
	var logMu sync.Mutex
	read := func(r *os.File, s stream) {
		defer p.readers.Done()
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			text := sc.Text()
			logMu.Lock()
			if s == stderr {
				fmt.Fprintf(logFile, "stderr: %s\n", text)
			} else {
				fmt.Fprintln(logFile, text)
			}
			logMu.Unlock()
			p.mu.Lock()
			p.lines = append(p.lines, line{s, text})
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
	}
	p.readers.Add(2)
	go read(outR, stdout)
	go read(errR, stderr)
	go func() {
		p.readers.Wait()
		logFile.Close()
		close(p.readDone)
	}()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(p.exited)
	}()
	return p, nil
}

// pid returns the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// running reports whether the process has not exited yet.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// exitErr returns what Wait returned; only meaningful once exited is closed.
func (p *proc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// waitLine returns the first captured line, from the start of the output,
// for which match is true. It fails when ctx ends or when the process exits
// without printing such a line.
func (p *proc) waitLine(ctx context.Context, match func(line) bool) (string, error) {
	next := 0
	for {
		p.mu.Lock()
		for ; next < len(p.lines); next++ {
			if match(p.lines[next]) {
				l := p.lines[next].text
				p.mu.Unlock()
				return l, nil
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return "", fmt.Errorf("tortest: %s: %w", p.name, ctx.Err())
		case <-p.exited:
			// Let the readers drain what the process printed last.
			select {
			case <-p.readDone:
			case <-time.After(time.Second):
			}
			p.mu.Lock()
			for ; next < len(p.lines); next++ {
				if match(p.lines[next]) {
					l := p.lines[next].text
					p.mu.Unlock()
					return l, nil
				}
			}
			p.mu.Unlock()
			return "", fmt.Errorf("tortest: %s exited (%v)", p.name, p.exitErr())
		}
	}
}

// stop ends the process: it closes stdin if there is one (a managed
// transport with TOR_PT_EXIT_ON_STDIN_CLOSE=1 exits on that), else sends
// SIGTERM; after stopGrace it sends SIGTERM (again), then SIGKILL. It
// signals only this process, by PID, and is idempotent. It returns an error
// when the process had to be killed.
func (p *proc) stop() error {
	var err error
	p.stopOnce.Do(func() {
		if !p.running() {
			return
		}
		if p.stdin != nil {
			p.stdin.Close()
		} else {
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-p.exited:
			return
		case <-time.After(stopGrace):
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			return
		case <-time.After(stopGrace):
		}
		p.cmd.Process.Kill()
		<-p.exited
		err = fmt.Errorf("tortest: %s (pid %d) ignored SIGTERM for %v and was killed", p.name, p.pid(), 2*stopGrace)
	})
	return err
}

// procID names a process by PID and start time (field 22 of
// /proc/PID/stat), so a reused PID is never mistaken for it.
type procID struct {
	pid   int
	start uint64
	comm  string
}

// procStat is what this package reads from /proc/PID/stat.
type procStat struct {
	comm         string
	state        byte
	ppid         int
	utime, stime uint64 // clock ticks
	start        uint64 // clock ticks after boot
}

// readStat parses /proc/PID/stat (proc(5)). The command name may hold
// spaces and parentheses, so fields are counted from the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("tortest: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[end+1:])
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("tortest: short /proc/%d/stat", pid)
	}
	var st procStat
	st.comm = s[open+1 : end]
	st.state = f[0][0]
	var errs [4]error
	st.ppid, errs[0] = strconv.Atoi(f[1])
	st.utime, errs[1] = strconv.ParseUint(f[11], 10, 64)
	st.stime, errs[2] = strconv.ParseUint(f[12], 10, 64)
	st.start, errs[3] = strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(errs[:]...); err != nil {
		return procStat{}, fmt.Errorf("tortest: /proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// clockTicksPerSecond is USER_HZ, the unit of utime and stime in
// /proc/PID/stat: 100 on every Linux architecture Go supports (the kernel
// fixes it for user space whatever CONFIG_HZ is).
const clockTicksPerSecond = 100

// cpuTime returns the user+system CPU time a process has used so far, all
// its threads included (proc(5), utime and stime).
func cpuTime(pid int) (time.Duration, error) {
	st, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	return time.Duration(st.utime+st.stime) * time.Second / clockTicksPerSecond, nil
}

// childrenOf lists the live processes whose parent is pid.
func childrenOf(pid int) []procID {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []procID
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(n)
		if err != nil || st.ppid != pid || st.state == 'Z' {
			continue
		}
		kids = append(kids, procID{pid: n, start: st.start, comm: st.comm})
	}
	return kids
}

// alive reports whether the process id names still runs: same PID, same
// start time, and not a zombie (an orphan whose reaper is slow counts as
// gone).
func (id procID) alive() bool {
	st, err := readStat(id.pid)
	return err == nil && st.start == id.start && st.state != 'Z'
}

// waitGone waits up to d for every process in ids to end, then kills the
// ones left (by PID, each one checked to be the same process) and returns
// an error naming them.
func waitGone(ids []procID, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		var left []procID
		for _, id := range ids {
			if id.alive() {
				left = append(left, id)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var names []string
			for _, id := range left {
				if id.alive() {
					syscall.Kill(id.pid, syscall.SIGKILL)
				}
				names = append(names, fmt.Sprintf("%s (pid %d)", id.comm, id.pid))
			}
			return fmt.Errorf("tortest: stray processes still running %v after their parent stopped (now killed): %s",
				d, strings.Join(names, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// dumpLogs shows the tail of every *.log file under dir, for a failed test.
func dumpLogs(tb testing.TB, dir string) {
	tb.Helper()
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".log") {
			return nil
		}
		tb.Logf("==== %s (last %d lines) ====\n%s", path, logTailLines, tail(path, logTailLines))
		return nil
	})
}

// tempDir returns a new directory for one process group of a test: under
// tb.TempDir, or, with BIP324PT_TORTEST_KEEP set, a directory that
// survives the test (its path is logged).
func tempDir(tb testing.TB, name string) string {
	tb.Helper()
	var base string
	if os.Getenv("BIP324PT_TORTEST_KEEP") != "" {
		d, err := os.MkdirTemp("", "tortest-")
		if err != nil {
			tb.Fatal(err)
		}
		tb.Logf("tortest: keeping %s in %s", name, d)
		base = d
	} else {
		base = tb.TempDir()
	}
	dir := filepath.Join(base, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	return dir
}

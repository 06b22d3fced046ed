package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bip324pt/bip324-pt/internal/stats"
)

// opsFlags are what an operator sets on a long-running bridge or client
// (server, client, managed mode).
type opsFlags struct {
	statsInterval time.Duration
	metrics       string
	drain         time.Duration
	logFile       string
}

// Defaults of the operator's flags.
const (
	defaultStatsInterval = time.Hour // tor's heartbeat period
	defaultDrain         = 30 * time.Second
	// warnEvery is how often one warning may repeat in the log; the
	// ones between are counted.
	warnEvery = time.Minute
)

// register adds the flags; managed mode has no --log-file (its log is in
// the state directory) and drains for 0 by default: tor has let its
// circuits finish (ShutdownWaitLength) before it stops its transports,
// and expects them gone at once.
func (o *opsFlags) register(fs *flag.FlagSet, standalone bool) {
	drain := defaultDrain
	if !standalone {
		drain = 0
	}
	fs.DurationVar(&o.statsInterval, "stats-interval", defaultStatsInterval, "how often a \"stats\" line goes to the log (0: never; SIGUSR1 prints one at any time)")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics (say 127.0.0.1:9100)")
	fs.DurationVar(&o.drain, "drain", drain, "on SIGTERM or SIGINT, how long open connections may finish before they are closed")
	if standalone {
		fs.StringVar(&o.logFile, "log-file", "", "log to `file` instead of stderr (reopened on SIGHUP, for logrotate)")
	}
}

func (o *opsFlags) check() error {
	switch {
	case o.statsInterval < 0:
		return fmt.Errorf("--stats-interval %v, want 0 or more", o.statsInterval)
	case o.drain < 0 || o.drain > time.Hour:
		return fmt.Errorf("--drain %v, want 0..1h", o.drain)
	}
	if o.metrics != "" {
		if _, _, err := net.SplitHostPort(o.metrics); err != nil {
			return fmt.Errorf("--metrics %q: want HOST:PORT", o.metrics)
		}
	}
	return nil
}

// logWriter is a log file that SIGHUP reopens (logrotate moves the file,
// then signals), or stderr.
type logWriter struct {
	mu   sync.Mutex
	path string
	f    *os.File
	w    io.Writer
}

// openLog opens path for appending, or returns w as is when path is "".
func openLog(path string, w io.Writer) (*logWriter, error) {
	l := &logWriter{path: path, w: w}
	if path == "" {
		return l, nil
	}
	return l, l.Reopen()
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Reopen opens the file again under its name.
func (l *logWriter) Reopen() error {
	if l.path == "" {
		return nil
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f, l.w = f, f
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// Close closes the file.
func (l *logWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		return l.f.Close()
	}
	return nil
}

// newLogger is the daemon's logger: text lines on w at level, repeated
// warnings limited to one a minute with a count.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(stats.RateLimit(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}), warnEvery))
}

// operator runs what an operator relies on beside the service: the
// periodic stats line (and a STATUS line to tor in managed mode),
// SIGUSR1's stats dump, SIGHUP's reopen of the log and reload, and the
// metrics server.
type operator struct {
	log      *slog.Logger
	counters *stats.Counters
	flags    opsFlags
	// reopen reopens the log; reload re-reads what can change while
	// running. Either may be nil.
	reopen, reload func() error
	// status, if not nil, gets the stats as STATUS pairs (managed mode).
	status func(kv string)

	srv    *http.Server
	done   chan struct{}
	cancel context.CancelFunc
}

// start starts the metrics server (failing if it cannot listen) and the
// signal and ticker loop, until ctx is done; stop waits for them.
func (o *operator) start(ctx context.Context) error {
	ctx, o.cancel = context.WithCancel(ctx)
	o.done = make(chan struct{})
	if o.flags.metrics != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(o.counters.Collector())
		ln, err := net.Listen("tcp", o.flags.metrics)
		if err != nil {
			o.cancel()
			close(o.done)
			return fmt.Errorf("--metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		o.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := o.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				o.log.Error("bip324-pt: metrics server stopped", "err", err)
			}
		}()
		o.log.Info("bip324-pt: serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1)
	go func() {
		defer close(o.done)
		defer signal.Stop(sigs)
		var tick <-chan time.Time
		if o.flags.statsInterval > 0 {
			t := time.NewTicker(o.flags.statsInterval)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick:
				o.report()
			case s := <-sigs:
				switch s {
				case syscall.SIGUSR1:
					o.report()
				case syscall.SIGHUP:
					o.hangup()
				}
			}
		}
	}()
	return nil
}

func (o *operator) report() {
	o.counters.Log(o.log)
	if o.status != nil {
		o.status(o.counters.Snapshot().Status())
	}
}

// hangup reopens the log and reloads; it never exits.
func (o *operator) hangup() {
	if o.reopen != nil {
		if err := o.reopen(); err != nil {
			o.log.Error("bip324-pt: SIGHUP: cannot reopen the log", "err", err)
		}
	}
	o.log.Info("bip324-pt: SIGHUP: log reopened")
	if o.reload != nil {
		if err := o.reload(); err != nil {
			o.log.Error("bip324-pt: SIGHUP: reload failed; keeping the settings in force", "err", err)
			return
		}
		o.log.Info("bip324-pt: SIGHUP: reloaded")
	}
}

// stop ends the metrics server and waits for the loop, then logs the
// last stats.
func (o *operator) stop() {
	if o.cancel != nil {
		o.cancel()
	}
	if o.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		o.srv.Shutdown(ctx)
		cancel()
	}
	if o.done != nil {
		<-o.done
	}
	o.counters.Log(o.log)
}

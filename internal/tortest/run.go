package tortest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// Time limits of the end-to-end scenarios (the tests must finish in about
// two minutes each).
const (
	// bootstrap15Timeout bounds a client's way to 15% through a bridge
	// (a few seconds is normal).
	bootstrap15Timeout = 60 * time.Second
	// bootstrap100Timeout bounds a client's way to 100% once its bridge
	// has a full consensus (seconds are normal; a client that got an early
	// consensus waits up to its 60 s lifetime for the next).
	bootstrap100Timeout = 75 * time.Second
	// fetchTimeout bounds one download through the network.
	fetchTimeout = 60 * time.Second
)

// BootstrapResult is what [RunBootstrap15] measured.
type BootstrapResult struct {
	// Line is the bootstrap line that met the target.
	Line string
	// Percent is the highest percentage the client had logged then.
	Percent int
	// Elapsed is the time from the client's start to that line.
	Elapsed time.Duration
}

// RunBootstrap15 is the simple end-to-end test of a transport: a bridge
// serving tr and a client using it, no directory authority. It passes when
// the client logs Bootstrapped 15% (handshake_done) or beyond, which takes
// a Tor link handshake carried through tr, and then checks that stopping
// both tors leaves no transport process behind.
func RunBootstrap15(t *testing.T, tr Transport) BootstrapResult {
	t.Helper()
	b := Bridge(t, tr)
	c := Client(t, tr, b.BridgeLine)
	ctx, cancel := context.WithTimeout(context.Background(), bootstrap15Timeout)
	defer cancel()
	l, err := c.WaitBootstrap(ctx, 15)
	if err != nil {
		t.Fatal(err)
	}
	res := BootstrapResult{Line: l, Percent: c.Bootstrapped(), Elapsed: time.Since(c.Started)}
	t.Logf("tortest: %s: client bootstrapped to %d%% in %v: %s", tr.Name, res.Percent, res.Elapsed.Round(time.Millisecond), l)
	checkTransportsRun(t, c, b)
	stopAll(t, c, b)
	return res
}

// NetworkResult is what [RunPrivateNetwork] measured.
type NetworkResult struct {
	// Bootstrap is the time from the client's start to Bootstrapped 100%.
	Bootstrap time.Duration
	// Network is the time from the authority's start to the client's
	// Bootstrapped 100%: the whole set-up.
	Network time.Duration
	// Download is the file fetch through the client's SocksPort.
	Download Download
}

// Download is one download through tor.
type Download struct {
	// Bytes is the size of the body, every byte checked.
	Bytes int64
	// FirstByte is the time from the request to the first byte of the
	// body: the stream's setup through the circuit, and the request.
	FirstByte time.Duration
	// Elapsed is the time from the request to the last byte.
	Elapsed time.Duration
}

// MiBps returns the download's rate in MiB/s, over Elapsed.
func (d Download) MiBps() float64 {
	return float64(d.Bytes) / (1 << 20) / d.Elapsed.Seconds()
}

// String formats the download on one line.
func (d Download) String() string {
	return fmt.Sprintf("%d bytes in %v (first byte after %v): %.1f MiB/s",
		d.Bytes, d.Elapsed.Round(time.Millisecond), d.FirstByte.Round(time.Millisecond), d.MiBps())
}

// FetchRetry fetches srv's file through c's SocksPort and checks it byte
// for byte, failing the test if it cannot. Right at 100% a fresh private
// network may not yet give the client a usable exit (tor: "Have tried
// resolving or connecting to address ... Giving up", a SOCKS failure
// before any byte); tor builds new circuits within seconds, so a refused
// connection is tried again a few times. A fetch that starts and then
// fails is never retried.
func FetchRetry(t testing.TB, srv *FileServer, c *Tor) Download {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		d, err := srv.Fetch(ctx, c.SOCKS())
		cancel()
		var se SOCKSReplyError
		if err == nil {
			return d
		}
		if attempt == 3 || !errors.As(err, &se) {
			t.Fatal(err)
		}
		t.Logf("tortest: fetch attempt %d: %v; trying again in 5 s", attempt, err)
		time.Sleep(5 * time.Second)
	}
}

// RunPrivateNetwork is the full end-to-end test of a transport: a private
// Tor network ([StartNetwork]) with a bridge serving tr and a client that
// uses it; the client must reach Bootstrapped 100%, then fetch size random
// bytes from a local HTTP server through its SocksPort (a circuit bridge →
// relay → exit relay), checked byte for byte (SHA-256 and length).
func RunPrivateNetwork(t *testing.T, tr Transport, size int) NetworkResult {
	t.Helper()
	srv := StartFileServer(t, size)
	n := StartNetwork(t, NetworkConfig{ExitPorts: []int{srv.Port}})
	b := n.Bridge(t, tr)
	c := n.Client(t, tr, b.BridgeLine)

	ctx, cancel := context.WithTimeout(context.Background(), bootstrap100Timeout)
	defer cancel()
	if _, err := c.WaitBootstrap(ctx, 100); err != nil {
		t.Fatal(err)
	}
	var res NetworkResult
	res.Bootstrap = time.Since(c.Started)
	res.Network = time.Since(n.Authority.Started)
	t.Logf("tortest: %s: client bootstrapped to 100%% in %v (%v after the network's start)",
		tr.Name, res.Bootstrap.Round(time.Millisecond), res.Network.Round(time.Millisecond))

	d := FetchRetry(t, srv, c)
	res.Download = d
	t.Logf("tortest: %s: fetched through tor: %v; SHA-256 matches", tr.Name, d)
	checkTransportsRun(t, c, b)
	members := append([]*Tor{c, b}, n.Relays...)
	stopAll(t, append(members, n.Authority)...)
	return res
}

// checkTransportsRun fails the test unless each tor has a transport child
// process, so the stray-process check at Stop has something to check.
func checkTransportsRun(t testing.TB, tors ...*Tor) {
	t.Helper()
	for _, tor := range tors {
		pids := tor.TransportPIDs()
		if len(pids) == 0 {
			t.Errorf("tortest: %s has no transport process", tor.Name)
		}
		t.Logf("tortest: %s (pid %d) runs its transport as pid %v", tor.Name, tor.PID(), pids)
	}
}

// stopAll stops the tors and fails the test on any error (a stray
// transport process, a tor that had to be killed).
func stopAll(t testing.TB, tors ...*Tor) {
	t.Helper()
	for _, tor := range tors {
		if err := tor.Stop(); err != nil {
			t.Error(err)
		}
	}
}

// FileServer is an HTTP server on 127.0.0.1 that serves one file of random
// bytes at "/file". Cleanup closes it.
type FileServer struct {
	// Port is the server's port on 127.0.0.1.
	Port int
	// URL is the file's URL.
	URL string
	// Content is the file.
	Content []byte
	// SHA256 is the file's digest.
	SHA256 [32]byte
}

// StartFileServer starts a [FileServer] with size random bytes.
func StartFileServer(tb testing.TB, size int) *FileServer {
	tb.Helper()
	content := make([]byte, size)
	rand.Read(content)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	fs := &FileServer{
		Port:    l.Addr().(*net.TCPAddr).Port,
		Content: content,
		SHA256:  sha256.Sum256(content),
	}
	fs.URL = "http://127.0.0.1:" + strconv.Itoa(fs.Port) + "/file"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /file", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "file", time.Time{}, bytes.NewReader(content))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	go srv.Serve(l)
	tb.Cleanup(func() { srv.Close() })
	return fs
}

// Fetch downloads the file through proxy (a tor's SocksPort) and checks
// it byte for byte. The time counts from the request to the last byte.
func (fs *FileServer) Fetch(ctx context.Context, proxy *SOCKS5) (Download, error) {
	tr := &http.Transport{DialContext: proxy.DialContext, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	req, err := http.NewRequestWithContext(ctx, "GET", fs.URL, nil)
	if err != nil {
		return Download{}, err
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return Download{}, fmt.Errorf("tortest: fetch %s: %w", fs.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Download{}, fmt.Errorf("tortest: fetch %s: %s", fs.URL, resp.Status)
	}
	h := sha256.New()
	var first [1]byte
	n, err := io.ReadFull(resp.Body, first[:])
	d := Download{FirstByte: time.Since(start)}
	if err == nil {
		h.Write(first[:])
		var rest int64
		rest, err = io.Copy(h, resp.Body)
		n += int(rest)
	}
	d.Bytes, d.Elapsed = int64(n), time.Since(start)
	if err != nil {
		return d, fmt.Errorf("tortest: fetch %s: after %d bytes: %w", fs.URL, n, err)
	}
	if d.Bytes != int64(len(fs.Content)) {
		return d, fmt.Errorf("tortest: fetch %s: got %d bytes, want %d", fs.URL, d.Bytes, len(fs.Content))
	}
	if got := h.Sum(nil); !bytes.Equal(got, fs.SHA256[:]) {
		return d, fmt.Errorf("tortest: fetch %s: SHA-256 %x, want %x", fs.URL, got, fs.SHA256)
	}
	return d, nil
}

package tortest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing tool from a
// skip into a failure. CI sets it, so the end-to-end tests cannot pass by
// being skipped.
const RequireEnv = "BIP324PT_REQUIRE_TOR"

// LookPath returns the path of the named executable (tor, tor-gencert,
// obfs4proxy). When it is not on PATH, the test is skipped, or fails if
// the environment variable [RequireEnv] is set.
func LookPath(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv(RequireEnv) != "" {
		tb.Fatalf("tortest: %s not found on PATH and %s is set (run .ci/install-deps): %v", name, RequireEnv, err)
	}
	tb.Skipf("tortest: %s not found on PATH (run .ci/install-deps; set %s=1 to fail instead of skipping)", name, RequireEnv)
	return ""
}

// Obfs4 returns the obfs4 transport from Debian's obfs4proxy, with its
// logging on (into the state directory, where a failed test shows it).
// obfs4proxy writes <state>/obfs4_bridgeline.txt, which the default
// [Transport.BridgeArgs] reads. Options are the server's transport options,
// such as "iat-mode=1".
func Obfs4(tb testing.TB, options ...string) Transport {
	tb.Helper()
	return Transport{
		Name:          "obfs4",
		Binary:        LookPath(tb, "obfs4proxy"),
		Args:          []string{"-enableLogging", "-unsafeLogging", "-logLevel", "INFO"},
		ServerOptions: options,
	}
}

// BuildBip324 builds ./cmd/bip324-pt of this module into tb.TempDir with
// go build and returns the binary's path. The build runs in this package's
// source directory and is bounded to 5 minutes; a failed build fails the
// test.
func BuildBip324(tb testing.TB) string {
	tb.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		tb.Fatalf("tortest: go not found on PATH: %v", err)
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("tortest: cannot find the package's source directory")
	}
	out := filepath.Join(tb.TempDir(), "bip324-pt")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "github.com/bip324pt/bip324-pt/cmd/bip324-pt")
	cmd.Dir = filepath.Dir(file)
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("tortest: go build ./cmd/bip324-pt: %v\n%s", err, b)
	}
	return out
}

var (
	portsMu sync.Mutex
	// portsGiven holds every port FreePort returned in this process, so two
	// callers never get the same one even before either binds it.
	portsGiven = map[int]bool{}
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that FreePort has not returned before in this process. (Another process
// may still take it before the caller binds it; the window is small.)
func FreePort(tb testing.TB) int {
	tb.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("tortest: pick a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !portsGiven[port] {
			portsGiven[port] = true
			return port
		}
	}
	tb.Fatal("tortest: no fresh free port after 100 tries")
	return 0
}

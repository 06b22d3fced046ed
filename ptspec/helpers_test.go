package ptspec

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/bip324pt/bip324-pt/internal/testutil"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// checkLeaks fails t if goroutines of this package that were not running
// when it was called are still running once t's other cleanups are done
// (register it first, so it runs last), in the manner of wireguard-go's
// goroutineLeakCheck.
func checkLeaks(t *testing.T) {
	t.Helper()
	testutil.VerifyNoLeaks(t)
}

// lineWriter is an io.Writer that hands out each complete line on a
// channel, for Config.Stdout.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines chan string
}

func newLineWriter() *lineWriter { return &lineWriter{lines: make(chan string, 100)} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case w.lines <- string(w.buf[:i]):
		default:
			return 0, errors.New("lineWriter: too many lines")
		}
		w.buf = w.buf[i+1:]
	}
}

// next returns the next line, failing t if none comes in time.
func (w *lineWriter) next(t *testing.T) string {
	t.Helper()
	select {
	case l := <-w.lines:
		return l
	case <-time.After(testTimeout):
		t.Fatal("no line on stdout")
		return ""
	}
}

// rest returns the lines written so far.
func (w *lineWriter) rest() []string {
	var ls []string
	for {
		select {
		case l := <-w.lines:
			ls = append(ls, l)
		default:
			return ls
		}
	}
}

// addrOf returns the address at the end of a CMETHOD or SMETHOD line.
func addrOf(t *testing.T, line, prefix string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(line, prefix)
	if !ok {
		t.Fatalf("line %q does not start with %q", line, prefix)
	}
	addr, _, _ := strings.Cut(rest, " ")
	if h, _, err := net.SplitHostPort(addr); err != nil || h != "127.0.0.1" {
		t.Fatalf("line %q: address %q is not on 127.0.0.1", line, addr)
	}
	return addr
}

// stdinPipe returns a pipe for Config.Stdin; closing w is tor going away.
func stdinPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Close()
		w.Close()
	})
	return r, w
}

// run runs fn in a goroutine; the returned function waits for its error.
func run(t *testing.T, fn func() error) (wait func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- fn() }()
	var once sync.Once
	var err error
	wait = func() error {
		once.Do(func() {
			select {
			case err = <-errc:
			case <-time.After(testTimeout):
				err = errors.New("did not return in time")
			}
		})
		return err
	}
	t.Cleanup(func() { wait() })
	return wait
}

// clientEnv sets a managed client's environment.
func clientEnv(t *testing.T) {
	t.Setenv("TOR_PT_MANAGED_TRANSPORT_VER", "1")
	t.Setenv("TOR_PT_STATE_LOCATION", filepath.Join(t.TempDir(), "state"))
	t.Setenv("TOR_PT_CLIENT_TRANSPORTS", "bip324")
	t.Setenv("TOR_PT_EXIT_ON_STDIN_CLOSE", "1")
	t.Setenv("TOR_PT_PROXY", "")
}

// serverEnv sets a managed server's environment with tor's ORPort at
// orport; extOR and cookieFile, if set, are its extended ORPort.
func serverEnv(t *testing.T, orport, extOR, cookieFile string) {
	t.Setenv("TOR_PT_MANAGED_TRANSPORT_VER", "1")
	t.Setenv("TOR_PT_STATE_LOCATION", filepath.Join(t.TempDir(), "state"))
	t.Setenv("TOR_PT_SERVER_TRANSPORTS", "bip324")
	t.Setenv("TOR_PT_SERVER_BINDADDR", "bip324-127.0.0.1:0")
	t.Setenv("TOR_PT_SERVER_TRANSPORT_OPTIONS", "")
	t.Setenv("TOR_PT_ORPORT", orport)
	t.Setenv("TOR_PT_EXTENDED_SERVER_PORT", extOR)
	t.Setenv("TOR_PT_AUTH_COOKIE_FILE", cookieFile)
	t.Setenv("TOR_PT_EXIT_ON_STDIN_CLOSE", "1")
}

// testLogger returns a debug-level logger into a buffer.
func testLogger() (*slog.Logger, *testutil.SyncBuffer) {
	var b testutil.SyncBuffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

// identity is a Wrapper that returns the connection as it is.
type identity struct{}

func (identity) WrapConn(_ context.Context, c net.Conn) (net.Conn, error) { return c, nil }

// identityServer is a ServerFactory around identity.
type identityServer struct {
	identity
	args pt.Args
}

func (s identityServer) Args() pt.Args { return s.args }

// recordingClients is a ClientFactory that records each request's
// arguments and rejects those with profile=bad.
type recordingClients struct {
	mu   sync.Mutex
	args []pt.Args
}

func (f *recordingClients) NewClient(args pt.Args) (Wrapper, error) {
	f.mu.Lock()
	f.args = append(f.args, args)
	f.mu.Unlock()
	if p, _ := args.Get("profile"); p == "bad" {
		return nil, errors.New("unknown profile")
	}
	return identity{}, nil
}

// listen listens on 127.0.0.1 and closes the listener when t ends.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// serveConns runs handle for each connection on ln in its own goroutine
// until t ends.
func serveConns(t *testing.T, ln net.Listener, handle func(net.Conn)) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
}

// echo copies what c sends back to it until EOF, then writes "bye" and
// closes: a half-close aware echo.
func echo(c net.Conn) {
	c.SetDeadline(time.Now().Add(testTimeout))
	io.Copy(c, c)
	io.WriteString(c, "bye")
}

// echoServer runs echo on a new listener and returns its address.
func echoServer(t *testing.T) string {
	ln := listen(t)
	serveConns(t, ln, echo)
	return ln.Addr().String()
}

// checkEcho sends msg on c, reads it back, half-closes, and expects "bye"
// and the end.
func checkEcho(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo: got %q, %v; want %q", got, err, msg)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "bye" {
		t.Fatalf("after half-close: got %q, %v; want \"bye\" and EOF", rest, err)
	}
}

// socks5 connects to the SOCKS5 server at addr with username/password
// authentication and asks for target (an IPv4 address and port). It
// returns the connection and the reply code.
func socks5(t *testing.T, addr, user, pass, target string) (net.Conn, byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testTimeout))
	fail := func(format string, a ...any) {
		t.Helper()
		t.Fatalf("socks5: "+format, a...)
	}
	write := func(b []byte) {
		t.Helper()
		if _, err := c.Write(b); err != nil {
			fail("%v", err)
		}
	}
	read := func(n int) []byte {
		t.Helper()
		b := make([]byte, n)
		if _, err := io.ReadFull(c, b); err != nil {
			fail("%v", err)
		}
		return b
	}
	write([]byte{5, 1, 2})
	if r := read(2); r[0] != 5 || r[1] != 2 {
		fail("method reply %x", r)
	}
	msg := append([]byte{1, byte(len(user))}, user...)
	msg = append(append(msg, byte(len(pass))), pass...)
	write(msg)
	if r := read(2); r[0] != 1 || r[1] != 0 {
		fail("auth reply %x", r)
	}
	ta, err := net.ResolveTCPAddr("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	req := append([]byte{5, 1, 0, 1}, ta.IP.To4()...)
	write(binary.BigEndian.AppendUint16(req, uint16(ta.Port)))
	r := read(10)
	if r[0] != 5 {
		fail("reply %x", r)
	}
	c.SetDeadline(time.Time{})
	return c, r[1]
}

// ExtORPort (ext-orport-spec) command codes and auth strings.
const (
	extCmdDone      = 0x0000
	extCmdUserAddr  = 0x0001
	extCmdTransport = 0x0002
	extCmdOkay      = 0x1000
	extServerHash   = "ExtORPort authentication server-to-client hash"
	extClientHash   = "ExtORPort authentication client-to-server hash"
)

// extORSession is what the fake ExtORPort learnt about one connection.
type extORSession struct {
	userAddr, transport string
	err                 error
}

// fakeExtOR is tor's extended ORPort: SafeCookie authentication,
// USERADDR, TRANSPORT and DONE, then echo.
type fakeExtOR struct {
	addr       string
	cookieFile string
	sessions   chan extORSession
}

// newFakeExtOR starts a fake extended ORPort with a fresh cookie file.
func newFakeExtOR(t *testing.T) *fakeExtOR {
	var cookie [32]byte
	rand.Read(cookie[:])
	file := filepath.Join(t.TempDir(), "extended_orport_auth_cookie")
	content := append([]byte("! Extended ORPort Auth Cookie !\n"), cookie[:]...)
	if err := os.WriteFile(file, content, 0o600); err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	f := &fakeExtOR{addr: ln.Addr().String(), cookieFile: file, sessions: make(chan extORSession, 100)}
	serveConns(t, ln, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(testTimeout))
		s, err := extORHandshake(c, cookie[:])
		s.err = err
		f.sessions <- s
		if err == nil {
			echo(c)
		}
	})
	return f
}

// session returns the next connection's session.
func (f *fakeExtOR) session(t *testing.T) extORSession {
	t.Helper()
	select {
	case s := <-f.sessions:
		return s
	case <-time.After(testTimeout):
		t.Fatal("no ExtORPort session")
		return extORSession{}
	}
}

// extORHandshake is the server side of ext-orport-spec sections 2 and 3.
func extORHandshake(c net.Conn, cookie []byte) (s extORSession, err error) {
	if _, err := c.Write([]byte{1, 0}); err != nil { // SAFE_COOKIE, end of list
		return s, err
	}
	var b [64]byte
	if _, err := io.ReadFull(c, b[:1]); err != nil {
		return s, err
	}
	if b[0] != 1 {
		return s, fmt.Errorf("client chose auth type %d", b[0])
	}
	clientNonce := make([]byte, 32)
	if _, err := io.ReadFull(c, clientNonce); err != nil {
		return s, err
	}
	serverNonce := make([]byte, 32)
	rand.Read(serverNonce)
	mac := func(label string) []byte {
		h := hmac.New(sha256.New, cookie)
		io.WriteString(h, label)
		h.Write(clientNonce)
		h.Write(serverNonce)
		return h.Sum(nil)
	}
	if _, err := c.Write(append(mac(extServerHash), serverNonce...)); err != nil {
		return s, err
	}
	if _, err := io.ReadFull(c, b[:32]); err != nil {
		return s, err
	}
	if !hmac.Equal(b[:32], mac(extClientHash)) {
		c.Write([]byte{0})
		return s, errors.New("bad client hash")
	}
	if _, err := c.Write([]byte{1}); err != nil {
		return s, err
	}
	for {
		if _, err := io.ReadFull(c, b[:4]); err != nil {
			return s, err
		}
		cmd, n := binary.BigEndian.Uint16(b[:2]), binary.BigEndian.Uint16(b[2:4])
		body := make([]byte, n)
		if _, err := io.ReadFull(c, body); err != nil {
			return s, err
		}
		switch cmd {
		case extCmdUserAddr:
			s.userAddr = string(body)
		case extCmdTransport:
			s.transport = string(body)
		case extCmdDone:
			_, err := c.Write([]byte{extCmdOkay >> 8, extCmdOkay & 0xff, 0, 0})
			return s, err
		default:
			return s, fmt.Errorf("unknown command 0x%04x", cmd)
		}
	}
}

// tcpPair returns the two ends of a TCP connection on 127.0.0.1.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

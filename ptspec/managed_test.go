package ptspec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"
)

// checkLines compares stdout with want, line by line; a want line ending
// in "*" matches any line with that prefix.
func checkLines(t *testing.T, stdout string, want []string) {
	t.Helper()
	got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		if p, isPrefix := strings.CutSuffix(want[i], "*"); isPrefix {
			ok = strings.HasPrefix(got[i], p)
		} else {
			ok = got[i] == want[i]
		}
	}
	if !ok {
		t.Errorf("stdout:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRunClient_SetupErrors: each bad environment gets its line on
// stdout and an error, and nothing is left listening.
func TestRunClient_SetupErrors(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notADir, nil, 0o600)
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"no managed version", map[string]string{"TOR_PT_MANAGED_TRANSPORT_VER": ""},
			[]string{"ENV-ERROR no TOR_PT_MANAGED_TRANSPORT_VER environment variable"}},
		{"unsupported version", map[string]string{"TOR_PT_MANAGED_TRANSPORT_VER": "2,3"},
			[]string{"VERSION-ERROR no-version"}},
		{"no transports", map[string]string{"TOR_PT_CLIENT_TRANSPORTS": ""},
			[]string{"VERSION 1", "ENV-ERROR no TOR_PT_CLIENT_TRANSPORTS environment variable"}},
		{"no state location", map[string]string{"TOR_PT_STATE_LOCATION": ""},
			[]string{"VERSION 1", "ENV-ERROR no TOR_PT_STATE_LOCATION environment variable"}},
		{"state location not a directory", map[string]string{"TOR_PT_STATE_LOCATION": filepath.Join(notADir, "state")},
			[]string{"VERSION 1", "ENV-ERROR cannot make TOR_PT_STATE_LOCATION *"}},
		{"unknown transport", map[string]string{"TOR_PT_CLIENT_TRANSPORTS": "obfs4,meek\xff"},
			[]string{"VERSION 1", "CMETHOD-ERROR obfs4 no such method", "CMETHOD-ERROR meek? no such method", "CMETHODS DONE"}},
		{"proxy scheme", map[string]string{"TOR_PT_PROXY": "ftp://127.0.0.1:21"},
			[]string{"VERSION 1", `PROXY-ERROR proxy scheme "ftp" is not supported`}},
		{"socks4a proxy", map[string]string{"TOR_PT_PROXY": "socks4a://127.0.0.1:1080"},
			[]string{"VERSION 1", `PROXY-ERROR proxy scheme "socks4a" is not supported`}},
		{"proxy without port", map[string]string{"TOR_PT_PROXY": "socks5://user:hunter2@127.0.0.1"},
			[]string{"VERSION 1", "PROXY-ERROR bad TOR_PT_PROXY: address 127.0.0.1: missing port in address"}},
		{"proxy unparsable", map[string]string{"TOR_PT_PROXY": "socks5://user:hunter2@127.0.0.1:1080/%zz"},
			[]string{"VERSION 1", `PROXY-ERROR bad TOR_PT_PROXY: invalid URL escape "%zz"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			clientEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out bytes.Buffer
			err := RunClient(t.Context(), Config{Stdout: &out}, &recordingClients{})
			if err == nil {
				t.Fatal("RunClient succeeded")
			}
			checkLines(t, out.String(), tt.want)
			if strings.Contains(out.String(), "hunter2") {
				t.Error("stdout has the proxy password")
			}
		})
	}
}

// TestRunServer_SetupErrors: each bad environment gets its line on
// stdout and an error.
func TestRunServer_SetupErrors(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		factory func(pt.Bindaddr) (ServerFactory, error)
		want    []string
	}{
		{"no managed version", map[string]string{"TOR_PT_MANAGED_TRANSPORT_VER": ""}, nil,
			[]string{"ENV-ERROR no TOR_PT_MANAGED_TRANSPORT_VER environment variable"}},
		{"unsupported version", map[string]string{"TOR_PT_MANAGED_TRANSPORT_VER": "0"}, nil,
			[]string{"VERSION-ERROR no-version"}},
		{"no bindaddr", map[string]string{"TOR_PT_SERVER_BINDADDR": ""}, nil,
			[]string{"VERSION 1", "ENV-ERROR no TOR_PT_SERVER_BINDADDR environment variable"}},
		{"bindaddr without port", map[string]string{"TOR_PT_SERVER_BINDADDR": "bip324-127.0.0.1"}, nil,
			[]string{"VERSION 1", `ENV-ERROR TOR_PT_SERVER_BINDADDR: "bip324-127.0.0.1": *`}},
		{"bindaddr without method", map[string]string{"TOR_PT_SERVER_BINDADDR": "127.0.0.1:0"}, nil,
			[]string{"VERSION 1", `ENV-ERROR TOR_PT_SERVER_BINDADDR: "127.0.0.1:0": doesn't contain "-"`}},
		{"bindaddr host name", map[string]string{"TOR_PT_SERVER_BINDADDR": "bip324-localhost:0"}, nil,
			[]string{"VERSION 1", `ENV-ERROR TOR_PT_SERVER_BINDADDR: "bip324-localhost:0": not an IP string: "localhost"`}},
		{"bad transport options", map[string]string{"TOR_PT_SERVER_TRANSPORT_OPTIONS": "bip324"}, nil,
			[]string{"VERSION 1", `ENV-ERROR TOR_PT_SERVER_TRANSPORT_OPTIONS: "bip324": *`}},
		{"no transports", map[string]string{"TOR_PT_SERVER_TRANSPORTS": ""}, nil,
			[]string{"VERSION 1", "ENV-ERROR no TOR_PT_SERVER_TRANSPORTS environment variable"}},
		{"no orport", map[string]string{"TOR_PT_ORPORT": ""}, nil,
			[]string{"VERSION 1", "ENV-ERROR need TOR_PT_ORPORT or TOR_PT_EXTENDED_SERVER_PORT environment variable"}},
		{"extended orport without cookie", map[string]string{"TOR_PT_EXTENDED_SERVER_PORT": "127.0.0.1:1"}, nil,
			[]string{"VERSION 1", "ENV-ERROR need TOR_PT_AUTH_COOKIE_FILE environment variable with TOR_PT_EXTENDED_SERVER_PORT"}},
		{"no state location", map[string]string{"TOR_PT_STATE_LOCATION": ""}, nil,
			[]string{"VERSION 1", "ENV-ERROR no TOR_PT_STATE_LOCATION environment variable"}},
		{"unknown transport", map[string]string{"TOR_PT_SERVER_TRANSPORTS": "obfs4", "TOR_PT_SERVER_BINDADDR": "obfs4-127.0.0.1:0"}, nil,
			[]string{"VERSION 1", "SMETHOD-ERROR obfs4 no such method", "SMETHODS DONE"}},
		{"factory error", nil,
			func(pt.Bindaddr) (ServerFactory, error) { return nil, errors.New("no secret:\nkey file é") },
			[]string{"VERSION 1", `LOG SEVERITY=error MESSAGE="cannot start server method bip324: no secret:\012key file \303\251"`,
				"SMETHOD-ERROR bip324 no secret:?key file ??", "SMETHODS DONE"}},
		{"unprintable args", nil,
			func(pt.Bindaddr) (ServerFactory, error) {
				return identityServer{args: pt.Args{"secret": {"a b"}}}, nil
			},
			[]string{"VERSION 1", `LOG SEVERITY=error MESSAGE="cannot start server method bip324: argument \042secret\042 cannot go in an SMETHOD line"`,
				`SMETHOD-ERROR bip324 ptspec: argument "secret" cannot go in an SMETHOD line`, "SMETHODS DONE"}},
		{"bindaddr in use", nil, nil,
			[]string{"VERSION 1", `LOG SEVERITY=error MESSAGE="cannot start server method bip324: listen tcp [scrubbed]: bind: address already in use"`,
				"SMETHOD-ERROR bip324 listen tcp 127.0.0.1:*", "SMETHODS DONE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			serverEnv(t, "127.0.0.1:1", "", "")
			if tt.name == "bindaddr in use" {
				t.Setenv("TOR_PT_SERVER_BINDADDR", "bip324-"+listen(t).Addr().String())
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			factory := tt.factory
			if factory == nil {
				factory = func(pt.Bindaddr) (ServerFactory, error) { return identityServer{}, nil }
			}
			var out bytes.Buffer
			err := RunServer(t.Context(), Config{Stdout: &out}, factory)
			if err == nil {
				t.Fatal("RunServer succeeded")
			}
			checkLines(t, out.String(), tt.want)
		})
	}
}

// TestManaged_EndToEnd: tor's SOCKS request, with the bridge's arguments,
// goes through RunClient to RunServer and on to tor's extended ORPort;
// data and half-closes pass both ways; closing stdin ends both.
func TestManaged_EndToEnd(t *testing.T) {
	checkLeaks(t)
	extOR := newFakeExtOR(t)
	serverEnv(t, "", extOR.addr, extOR.cookieFile)
	clientEnv(t)
	logger, logs := testLogger()

	var gotBindaddr pt.Bindaddr
	t.Setenv("TOR_PT_SERVER_TRANSPORT_OPTIONS", "bip324:profile=cbr")
	serverOut := newLineWriter()
	serverIn, serverInW := stdinPipe(t)
	serverDone := run(t, func() error {
		return RunServer(context.Background(), Config{Stdout: serverOut, Stdin: serverIn, Logger: logger},
			func(b pt.Bindaddr) (ServerFactory, error) {
				gotBindaddr = b
				if _, err := StateDir(); err != nil {
					return nil, err
				}
				return identityServer{args: pt.Args{"secret": {"SERVERSECRET"}}}, nil
			})
	})
	if l := serverOut.next(t); l != "VERSION 1" {
		t.Fatalf("server: %q", l)
	}
	l := serverOut.next(t)
	bridge := addrOf(t, l, "SMETHOD bip324 ")
	if want := "SMETHOD bip324 " + bridge + " ARGS:secret=SERVERSECRET"; l != want {
		t.Fatalf("server: %q; want %q", l, want)
	}
	if l := serverOut.next(t); l != "SMETHODS DONE" {
		t.Fatalf("server: %q", l)
	}
	if v, _ := gotBindaddr.Options.Get("profile"); gotBindaddr.MethodName != "bip324" || v != "cbr" {
		t.Errorf("factory got %+v", gotBindaddr)
	}

	clientOut := newLineWriter()
	clientIn, clientInW := stdinPipe(t)
	clients := &recordingClients{}
	clientDone := run(t, func() error {
		return RunClient(context.Background(), Config{Stdout: clientOut, Stdin: clientIn, Logger: logger}, clients)
	})
	if l := clientOut.next(t); l != "VERSION 1" {
		t.Fatalf("client: %q", l)
	}
	socksAddr := addrOf(t, clientOut.next(t), "CMETHOD bip324 socks5 ")
	if l := clientOut.next(t); l != "CMETHODS DONE" {
		t.Fatalf("client: %q", l)
	}

	// Tor passes the arguments in the username, and NUL as the password
	// when they fit.
	c, rep := socks5(t, socksAddr, "secret=abc;profile=cbr", "\x00", bridge)
	if rep != 0 {
		t.Fatalf("SOCKS reply %d", rep)
	}
	s := extOR.session(t)
	if s.err != nil || s.transport != "bip324" || !strings.HasPrefix(s.userAddr, "127.0.0.1:") {
		t.Fatalf("ExtORPort session %+v", s)
	}
	checkEcho(t, c, "hello, tor")

	// Longer arguments spill into the password, as tor does it.
	c2, rep := socks5(t, socksAddr, "secret=abc;prof", "ile=cbr;seed=s33d", bridge)
	if rep != 0 {
		t.Fatalf("SOCKS reply %d", rep)
	}
	if s := extOR.session(t); s.err != nil {
		t.Fatal(s.err)
	}
	checkEcho(t, c2, "again")

	clients.mu.Lock()
	want := []pt.Args{
		{"secret": {"abc"}, "profile": {"cbr"}},
		{"secret": {"abc"}, "profile": {"cbr"}, "seed": {"s33d"}},
	}
	if !reflect.DeepEqual(clients.args, want) {
		t.Errorf("factory got %v; want %v", clients.args, want)
	}
	clients.mu.Unlock()

	clientInW.Close()
	if err := clientDone(); err != nil {
		t.Errorf("RunClient after stdin closed: %v", err)
	}
	serverInW.Close()
	if err := serverDone(); err != nil {
		t.Errorf("RunServer after stdin closed: %v", err)
	}
	if _, err := net.Dial("tcp", socksAddr); err == nil {
		t.Error("the SOCKS listener is still open")
	}
	if rest := append(clientOut.rest(), serverOut.rest()...); len(rest) > 0 {
		t.Errorf("more lines on stdout: %q", rest)
	}
	if text := logs.String(); strings.Contains(text, "abc") || strings.Contains(text, "s33d") ||
		strings.Contains(text, "SERVERSECRET") || !strings.Contains(text, "secret=[redacted]") {
		t.Errorf("logs show a secret, or no redacted args:\n%s", text)
	}
	if text := logs.String(); strings.Contains(text, "127.0.0.1") {
		t.Errorf("logs show addresses:\n%s", text)
	}
}

// TestRunServer_ORPort: without an extended ORPort, connections go to
// the plain ORPort; a bad cookie fails the ExtORPort and closes the
// connection.
func TestRunServer_ORPort(t *testing.T) {
	for _, mode := range []string{"orport", "bad cookie"} {
		t.Run(mode, func(t *testing.T) {
			checkLeaks(t)
			extOR := newFakeExtOR(t)
			switch mode {
			case "orport":
				serverEnv(t, echoServer(t), "", "")
			case "bad cookie":
				serverEnv(t, "", extOR.addr, extOR.cookieFile)
				bad := append([]byte("! Extended ORPort Auth Cookie !\n"), make([]byte, 32)...)
				os.WriteFile(extOR.cookieFile, bad, 0o600)
			}
			t.Setenv("TOR_PT_EXIT_ON_STDIN_CLOSE", "")
			out := newLineWriter()
			ctx, cancel := context.WithCancel(t.Context())
			done := run(t, func() error {
				return RunServer(ctx, Config{Stdout: out, Stdin: bytes.NewReader(nil)},
					func(pt.Bindaddr) (ServerFactory, error) { return identityServer{}, nil })
			})
			out.next(t)
			bridge := addrOf(t, out.next(t), "SMETHOD bip324 ")
			c, err := net.Dial("tcp", bridge)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			switch mode {
			case "orport":
				checkEcho(t, c, "plain")
			case "bad cookie":
				if s := extOR.session(t); s.err == nil {
					t.Error("ExtORPort accepted a bad cookie")
				}
				c.SetDeadline(time.Now().Add(testTimeout))
				if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
					t.Errorf("read %d, %v; want the connection closed", n, err)
				}
			}
			cancel()
			if err := done(); err != nil {
				t.Errorf("RunServer after cancel: %v", err)
			}
		})
	}
}

// TestRunClient_Cancel: without TOR_PT_EXIT_ON_STDIN_CLOSE, stdin's end
// changes nothing, and ctx ends RunClient.
func TestRunClient_Cancel(t *testing.T) {
	checkLeaks(t)
	clientEnv(t)
	t.Setenv("TOR_PT_EXIT_ON_STDIN_CLOSE", "")
	out := newLineWriter()
	ctx, cancel := context.WithCancel(t.Context())
	done := run(t, func() error {
		return RunClient(ctx, Config{Stdout: out, Stdin: bytes.NewReader(nil)}, &recordingClients{})
	})
	out.next(t)
	socksAddr := addrOf(t, out.next(t), "CMETHOD bip324 socks5 ")
	out.next(t)
	c, rep := socks5(t, socksAddr, "secret=abc", "\x00", echoServer(t))
	if rep != 0 {
		t.Fatalf("SOCKS reply %d", rep)
	}
	// An open connection does not hold up the shutdown.
	cancel()
	if err := done(); err != nil {
		t.Errorf("RunClient after cancel: %v", err)
	}
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("connection still open after RunClient returned")
	}
}

// TestRunClient_TorLog: a SOCKS request whose bridge arguments the
// factory refuses, and one whose bridge cannot be reached, each put a LOG
// line on stdout, so that tor's own log says why and not only "connection
// not allowed by ruleset"; the secret never, and the bridge's address
// only with LogAddrs. ServeSOCKS, without tor, writes no LOG line.
func TestRunClient_TorLog(t *testing.T) {
	for _, logAddrs := range []bool{false, true} {
		t.Run(fmt.Sprintf("LogAddrs=%v", logAddrs), func(t *testing.T) {
			checkLeaks(t)
			clientEnv(t)
			closed := listen(t)
			closed.Close()
			bridge := closed.Addr().String()
			out := newLineWriter()
			in, inW := stdinPipe(t)
			done := run(t, func() error {
				return RunClient(context.Background(), Config{Stdout: out, Stdin: in, LogAddrs: logAddrs}, &recordingClients{})
			})
			out.next(t)
			socksAddr := addrOf(t, out.next(t), "CMETHOD bip324 socks5 ")
			out.next(t)

			shown := "[scrubbed]"
			if logAddrs {
				shown = bridge
			}
			for _, tt := range []struct {
				user string
				rep  byte
				want string
			}{
				{"secret=TOPSECRET;profile=bad", pt.SocksRepConnectionNotAllowed,
					`LOG SEVERITY=warning MESSAGE="rejecting SOCKS request for bridge ` + shown + `: bad bridge arguments: unknown profile"`},
				{"secret=TOPSECRET", pt.SocksRepConnectionRefused,
					`LOG SEVERITY=warning MESSAGE="cannot reach bridge ` + shown + `: dial tcp ` + shown + `: connect: connection refused"`},
			} {
				if _, rep := socks5(t, socksAddr, tt.user, "\x00", bridge); rep != tt.rep {
					t.Errorf("%s: SOCKS reply %d; want %d", tt.user, rep, tt.rep)
				}
				if l := out.next(t); l != tt.want {
					t.Errorf("%s: stdout %q; want %q", tt.user, l, tt.want)
				}
			}
			inW.Close()
			if err := done(); err != nil {
				t.Errorf("RunClient: %v", err)
			}
			if rest := out.rest(); len(rest) > 0 {
				t.Errorf("more lines on stdout: %q", rest)
			}
		})
	}
	t.Run("standalone", func(t *testing.T) {
		checkLeaks(t)
		out := newLineWriter()
		ln := listen(t)
		ctx, cancel := context.WithCancel(t.Context())
		done := run(t, func() error { return ServeSOCKS(ctx, Config{Stdout: out}, ln, &recordingClients{}) })
		if _, rep := socks5(t, ln.Addr().String(), "secret=x;profile=bad", "\x00", echoServer(t)); rep != pt.SocksRepConnectionNotAllowed {
			t.Errorf("SOCKS reply %d", rep)
		}
		cancel()
		if err := done(); err != nil {
			t.Errorf("ServeSOCKS: %v", err)
		}
		if rest := out.rest(); len(rest) > 0 {
			t.Errorf("ServeSOCKS wrote on stdout: %q", rest)
		}
	})
}

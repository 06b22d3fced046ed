package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/internal/testutil"
)

// managedEnv sets tor's environment for a managed transport with its
// state in the returned directory; server says which side.
func managedEnv(t *testing.T, server bool) string {
	state := filepath.Join(t.TempDir(), "pt_state")
	t.Setenv("TOR_PT_MANAGED_TRANSPORT_VER", "1")
	t.Setenv("TOR_PT_STATE_LOCATION", state)
	t.Setenv("TOR_PT_EXIT_ON_STDIN_CLOSE", "")
	t.Setenv("TOR_PT_PROXY", "")
	if server {
		t.Setenv("TOR_PT_CLIENT_TRANSPORTS", "")
		t.Setenv("TOR_PT_SERVER_TRANSPORTS", "bip324")
		t.Setenv("TOR_PT_SERVER_BINDADDR", "bip324-127.0.0.1:0")
		t.Setenv("TOR_PT_SERVER_TRANSPORT_OPTIONS", "")
		t.Setenv("TOR_PT_ORPORT", "127.0.0.1:1")
		t.Setenv("TOR_PT_EXTENDED_SERVER_PORT", "")
		t.Setenv("TOR_PT_AUTH_COOKIE_FILE", "")
	} else {
		t.Setenv("TOR_PT_CLIENT_TRANSPORTS", "bip324")
	}
	return state
}

// firstLogLine returns the first line of the managed log in state.
func firstLogLine(t *testing.T, state string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, logFile))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return first
}

// TestManaged_ServerOptionErrors: an unknown key or a bad fallback= in
// ServerTransportOptions fails the method (SMETHOD-ERROR), tells tor's
// log why (LOG), and ends the process with status 1.
func TestManaged_ServerOptionErrors(t *testing.T) {
	for _, tt := range []struct {
		options, msg string
	}{
		{"bip324:profle=cbr", `ServerTransportOptions: unknown key "profle" (known: profile, allow, node, fallback)`},
		{"bip324:profile=cbr;bip324:fallback=nonsense", `ServerTransportOptions: fallback=: "nonsense" is not HOST:PORT (missing port in address)`},
	} {
		t.Run(tt.options, func(t *testing.T) {
			state := managedEnv(t, true)
			t.Setenv("TOR_PT_SERVER_TRANSPORT_OPTIONS", tt.options)
			var out, errb testutil.SyncBuffer
			if code := run(t.Context(), nil, &out, &errb); code != exitFailure {
				t.Fatalf("exit %d; stderr %q", code, errb.String())
			}
			want := "VERSION 1\n" +
				`LOG SEVERITY=error MESSAGE="cannot start server method bip324: ` + strings.ReplaceAll(tt.msg, `"`, `\042`) + "\"\n" +
				"SMETHOD-ERROR bip324 " + tt.msg + "\n" +
				"SMETHODS DONE\n"
			if out.String() != want {
				t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), want)
			}
			if first := firstLogLine(t, state); !strings.Contains(first, `msg="bip324-pt: managed server starting" version=`+version()) {
				t.Errorf("first log line %q does not name the version", first)
			}
		})
	}
}

// TestManaged_ClientUnknownKey: a bridge line with a misspelt key gets
// its SOCKS request refused, and tor's log (a LOG line) and ours say
// which key; neither shows the secret or the bridge's address.
func TestManaged_ClientUnknownKey(t *testing.T) {
	state := managedEnv(t, false)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errb testutil.SyncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, nil, &out, &errb) }()
	socksAddr := strings.Fields(waitLine(t, &out, "CMETHOD bip324 socks5 "))[0]
	waitLine(t, &out, "CMETHODS DONE")

	if rep := socks5Request(t, socksAddr, "secret="+testSecret+";profle=cbr", "127.0.0.1:29333"); rep != 2 {
		t.Errorf("SOCKS reply %d; want 2 (connection not allowed)", rep)
	}
	want := `MESSAGE="rejecting SOCKS request for bridge [scrubbed]: bad bridge arguments: bridge line: unknown key \042profle\042 (known: secret, profile, seed, network)"`
	if l := waitLine(t, &out, "LOG SEVERITY=warning "); l != want {
		t.Errorf("LOG line %q; want %q", l, want)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d; stderr %q", code, errb.String())
	}
	logs, err := os.ReadFile(filepath.Join(state, logFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), `bridge line: unknown key \"profle\" (known: secret, profile, seed, network)`) {
		t.Errorf("log lacks the unknown key:\n%s", logs)
	}
	if all := out.String() + string(logs); strings.Contains(all, testSecret) || strings.Contains(all, "29333") {
		t.Errorf("stdout or log shows the secret or the bridge's address:\n%s", all)
	}
	if first := firstLogLine(t, state); !strings.Contains(first, `msg="bip324-pt: managed client starting" version=`+version()) {
		t.Errorf("first log line %q does not name the version", first)
	}
}

// TestStandalone_LogNamesVersion: the standalone server's and client's
// logs start with the version.
func TestStandalone_LogNamesVersion(t *testing.T) {
	for _, args := range [][]string{
		{"server", "--listen", "127.0.0.1:0", "--forward", "127.0.0.1:1", "--state", t.TempDir()},
		{"client", "--listen", "127.0.0.1:0", "--bridge", "secret=" + testSecret},
	} {
		ctx, cancel := context.WithCancel(t.Context())
		var out, errb testutil.SyncBuffer
		done := make(chan int, 1)
		go func() { done <- run(ctx, args, &out, &errb) }()
		waitLine(t, &out, "")
		cancel()
		if code := <-done; code != exitOK {
			t.Fatalf("%s: exit %d; stderr %q", args[0], code, errb.String())
		}
		first, _, _ := strings.Cut(errb.String(), "\n")
		if !strings.Contains(first, `msg="bip324-pt: `+args[0]+` starting" version=`+version()) {
			t.Errorf("%s: first log line %q does not name the version", args[0], first)
		}
	}
}

// socks5Request asks the SOCKS5 server at addr for target (IPv4:port)
// with the bridge's arguments as the username, as tor does, and returns
// the reply code.
func socks5Request(t *testing.T, addr, user, target string) byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	read := func(n int) []byte {
		t.Helper()
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			t.Fatalf("socks5: %v", err)
		}
		return b
	}
	c.Write([]byte{5, 1, 2})
	if b := read(2); b[1] != 2 {
		t.Fatalf("socks5: method reply %x", b)
	}
	msg := append([]byte{1, byte(len(user))}, user...)
	c.Write(append(msg, 1, 0))
	if b := read(2); b[1] != 0 {
		t.Fatalf("socks5: auth reply %x", b)
	}
	ta, err := net.ResolveTCPAddr("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	req := append([]byte{5, 1, 0, 1}, ta.IP.To4()...)
	c.Write(binary.BigEndian.AppendUint16(req, uint16(ta.Port)))
	return read(10)[1]
}

package tortest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Unit tests of the parts that need neither tor nor a transport binary.

// obfs4BridgeLineFile is what obfs4proxy 0.0.14 writes into its state
// directory (the cert shortened).
const obfs4BridgeLineFile = `# obfs4 torrc client bridge line
#
# This file is an automatically generated bridge line based on
# the current obfs4proxy configuration.  EDITING IT WILL HAVE
# NO EFFECT.
#
# Before distributing this Bridge, edit the placeholder fields
# to contain the actual values:
#  <IP ADDRESS>  - The public IP address of your obfs4 bridge.
#  <PORT>        - The TCP/IP port of your obfs4 bridge.
#  <FINGERPRINT> - The bridge's fingerprint.

Bridge obfs4 <IP ADDRESS>:<PORT> <FINGERPRINT> cert=yxVeOS9nE0qGeSxRtVL+MaJ5CJB1Tw iat-mode=0
`

func TestParseBridgeLineArgs(t *testing.T) {
	tests := []struct {
		name, file, transport string
		want                  []string
		wantErr               bool
	}{
		{"obfs4proxy", obfs4BridgeLineFile, "obfs4", []string{"cert=yxVeOS9nE0qGeSxRtVL+MaJ5CJB1Tw", "iat-mode=0"}, false},
		{"bip324 placeholder", "# bip324-pt\nBridge bip324 <IP>:<PORT> <FINGERPRINT> secret=q83vEjRWeJ-rze8SNFZ4kA\n", "bip324", []string{"secret=q83vEjRWeJ-rze8SNFZ4kA"}, false},
		{"real address", "Bridge bip324 127.0.0.1:9000 0123456789ABCDEF0123456789ABCDEF01234567 secret=x profile=cbr\n", "bip324", []string{"secret=x", "profile=cbr"}, false},
		{"no arguments", "Bridge plain 127.0.0.1:1 ABCD\n", "plain", nil, false},
		{"other transport", obfs4BridgeLineFile, "bip324", nil, true},
		{"empty", "", "obfs4", nil, true},
		{"junk after arguments", "Bridge obfs4 <IP ADDRESS>:<PORT> <FINGERPRINT> cert=a junk\n", "obfs4", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseBridgeLineArgs([]byte(tt.file), tt.transport)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTransport_BridgeArgs(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/obfs4_bridgeline.txt", []byte(obfs4BridgeLineFile), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Transport{Name: "obfs4"}.bridgeArgs(dir)
	if err != nil || len(got) != 2 {
		t.Fatalf("default BridgeArgs: %q, %v", got, err)
	}
	if _, err := (Transport{Name: "bip324"}).bridgeArgs(dir); err == nil {
		t.Error("read bip324's arguments from a directory without bip324_bridgeline.txt")
	}
	custom := Transport{Name: "x", BridgeArgs: func(string) ([]string, error) { return []string{"k=v"}, nil }}
	if got, _ := custom.bridgeArgs(dir); !slices.Equal(got, []string{"k=v"}) {
		t.Errorf("custom BridgeArgs: %q", got)
	}
}

func TestSOCKSAuth(t *testing.T) {
	user, pass := SOCKSAuth([]string{"cert=ab+/c", "iat-mode=0"})
	if string(user) != "cert=ab+/c;iat-mode=0" || !bytes.Equal(pass, []byte{0}) {
		t.Errorf("got %q / %q", user, pass)
	}
	user, _ = SOCKSAuth([]string{`k=a;b=c\d`})
	if want := `k=a\;b\=c\\d`; string(user) != want {
		t.Errorf("escaping: got %q, want %q", user, want)
	}
	long := "secret=" + strings.Repeat("x", 300)
	user, pass = SOCKSAuth([]string{long})
	if len(user) != 255 || string(user)+string(pass) != long {
		t.Errorf("long arguments: %d+%d bytes", len(user), len(pass))
	}
}

func TestServerTransportOptions(t *testing.T) {
	got := serverTransportOptions("obfs4", []string{"iat-mode=1", `x=a:b;c\`})
	if want := `obfs4:iat-mode=1;obfs4:x=a\:b\;c\\`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestFingerprints(t *testing.T) {
	const fp = "9E046DB2E2ED96A9BAAEF70828E5B629BE50E221"
	if got, err := parseFingerprintFile([]byte("auth " + fp + "\n")); got != fp || err != nil {
		t.Errorf("fingerprint file: %q, %v", got, err)
	}
	out := "Nov 24 02:17:44.781 [notice] Updating address for directory authority auth\n" +
		"auth 9E04 6DB2 E2ED 96A9 BAAE F708 28E5 B629 BE50 E221\n"
	if got, err := listedFingerprint([]byte(out), "auth"); got != fp || err != nil {
		t.Errorf("--list-fingerprint: %q, %v", got, err)
	}
	if _, err := listedFingerprint([]byte("nothing\n"), "auth"); err == nil {
		t.Error("no error without a fingerprint line")
	}
	cert := "dir-key-certificate-version 3\ndir-address 127.0.0.1:5001\nfingerprint BDE311AC08A84250B85BAA9E756767F9ACB101D3\n"
	if got, err := certFingerprint([]byte(cert)); got != "BDE311AC08A84250B85BAA9E756767F9ACB101D3" || err != nil {
		t.Errorf("certificate: %q, %v", got, err)
	}
	if _, err := parseFingerprintFile([]byte("auth XYZ")); err == nil {
		t.Error("accepted a malformed fingerprint")
	}
}

func TestReadStat(t *testing.T) {
	st, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != os.Getppid() || st.state == 'Z' {
		t.Errorf("got ppid %d state %c, want ppid %d", st.ppid, st.state, os.Getppid())
	}
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Error(err)
	}
	self := procID{pid: os.Getpid(), start: st.start}
	if !self.alive() {
		t.Error("this process is not alive")
	}
	if (procID{pid: os.Getpid(), start: st.start + 1}).alive() {
		t.Error("a different start time still counts as the same process")
	}
	if err := waitGone([]procID{{pid: os.Getpid(), start: st.start + 1}}, time.Second); err != nil {
		t.Error(err)
	}
}

// fakeSOCKS accepts one connection on l and plays a SOCKS5 server without
// authentication: it expects want (greeting, then request) and answers
// with reply code rep.
func fakeSOCKS(l net.Listener, want []byte, rep byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c, got[:3]); err != nil {
			done <- err
			return
		}
		c.Write([]byte{5, socksNoAuth})
		if _, err := io.ReadFull(c, got[3:]); err != nil {
			done <- err
			return
		}
		if !bytes.Equal(got, want) {
			done <- fmt.Errorf("client sent %x, want %x", got, want)
			return
		}
		c.Write([]byte{5, rep, 0, socksIPv4, 127, 0, 0, 1, 0x12, 0x34})
		done <- nil
	}()
	return done
}

func TestSOCKS5_DialContext(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// No authentication, an IPv4 target.
	want := []byte{5, 1, 0, 5, 1, 0, socksIPv4, 127, 0, 0, 1, 0x1f, 0x90}
	done := fakeSOCKS(l, want, 0)
	c, err := (&SOCKS5{Addr: l.Addr().String()}).DialContext(ctx, "tcp", "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSOCKS5_UserPassAndRefusal(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// Each step: read exactly what the client must send, then answer.
	user, pass := SOCKSAuth([]string{"cert=abc", "iat-mode=0"})
	s := &SOCKS5{Addr: l.Addr().String(), Username: user, Password: pass}
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		step := func(n int, want []byte, answer []byte) error {
			got := make([]byte, n)
			if _, err := io.ReadFull(c, got); err != nil {
				return err
			}
			if !bytes.Equal(got, want) {
				return fmt.Errorf("client sent %x, want %x", got, want)
			}
			_, err := c.Write(answer)
			return err
		}
		auth := append(append(append([]byte{1, byte(len(user))}, user...), byte(len(pass))), pass...)
		req := append([]byte{5, 1, 0, socksDomain, 9}, "localhost\x00\x50"...)
		done <- errors.Join(
			step(3, []byte{5, 1, socksUserPass}, []byte{5, socksUserPass}),
			step(len(auth), auth, []byte{1, 0}),
			step(len(req), req, []byte{5, 5, 0, socksIPv4, 0, 0, 0, 0, 0, 0}),
		)
	}()
	_, err = s.DialContext(ctx, "tcp", "localhost:80")
	var rep SOCKSReplyError
	if !errors.As(err, &rep) || rep != 5 {
		t.Errorf("got %v, want SOCKS reply 5 (connection refused)", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestVotingTorrc_FirstVote(t *testing.T) {
	for _, sec := range []int64{0, 3, 7, 12, 19} {
		start := time.Unix(1_800_000_000+sec, 0)
		var offset int64 = -1
		for _, l := range votingTorrc(start) {
			if v, ok := strings.CutPrefix(l, "TestingV3AuthVotingStartOffset "); ok {
				fmt.Sscan(v, &offset)
			}
		}
		// The first consensus becomes valid at the first interval
		// boundary (multiples of 20 s, shifted by the offset) after start;
		// its vote is voteDelay+distDelay before that.
		validAfter := start.Unix() + 1
		for (validAfter-offset)%20 != 0 {
			validAfter++
		}
		vote := time.Unix(validAfter, 0).Add(-voteDelay - distDelay)
		if got := vote.Sub(start); got != firstVoteLead {
			t.Errorf("start at :%02d: offset %d puts the first vote %v after start, want %v", sec, offset, got, firstVoteLead)
		}
	}
}

func TestMissingDirInfo(t *testing.T) {
	md1 := "onion-key\n-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\nntor-onion-key abc\np accept 80\nid ed25519 x\n"
	md2 := "onion-key\n-----BEGIN RSA PUBLIC KEY-----\nBBBB\n-----END RSA PUBLIC KEY-----\nntor-onion-key def\nid ed25519 y\n"
	digest := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return base64.RawStdEncoding.EncodeToString(sum[:])
	}
	consensus := "network-status-version 3 microdesc\nvalid-after 2026-11-24 02:39:58\n" +
		"r relay1 AROXeIXy1ElgGcb0c4+KHMwUTe0 2038-01-01 00:00:00 127.0.0.1 34737 0\n" +
		"m " + digest(md1) + "\ns Exit Fast Running Valid\nw Bandwidth=0\n" +
		"r auth PzdBByVfrS+uU8SyTHsQxl0+5hM 2038-01-01 00:00:00 127.0.0.1 44521 33831\n" +
		"m " + digest(md2) + "\ns Authority Fast Running Valid\n" +
		"r relay2 PDfOlOUutSmqkljwGaUGHzcUzFk 2038-01-01 00:00:00 127.0.0.1 34901 0\n" +
		"m " + digest(md2) + "\ns Exit Fast Valid\n" +
		"directory-footer\n"
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"auth", "relay1", "relay2"}
	if got := missingDirInfo(dir, want); !slices.Equal(got, want) {
		t.Errorf("empty directory: missing %v, want %v", got, want)
	}
	write("cached-microdesc-consensus", consensus)
	write("cached-microdescs.new", "@last-listed 2026-11-24 02:40:40\n"+md1)
	// relay2 is not Running; auth's microdescriptor is not there yet.
	if got := missingDirInfo(dir, want); !slices.Equal(got, []string{"auth", "relay2"}) {
		t.Errorf("missing %v, want [auth relay2]", got)
	}
	write("cached-microdescs", "@last-listed 2026-11-24 02:40:40\n"+md2)
	if got := missingDirInfo(dir, want[:2]); len(got) != 0 {
		t.Errorf("missing %v, want none", got)
	}
}

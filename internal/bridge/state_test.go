package bridge

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/internal/bridgeauth"
)

func TestState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s, err := LoadOrCreateSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, SecretFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v, mode %v", err, fi.Mode())
	}
	again, err := LoadOrCreateSecret(dir)
	if err != nil || again != s {
		t.Fatalf("the secret changed on the second start: %v", err)
	}
	if err := WriteBridgeLine(dir, BridgeArgs(s)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, BridgeLineFile))
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^Bridge bip324 <IP>:<PORT> <FINGERPRINT> secret=([A-Za-z0-9_-]{43})$`)
	m := line.FindSubmatch(b)
	if m == nil || string(m[1]) != s.Encode() {
		t.Fatalf("bridge line file:\n%s", b)
	}
	// A damaged secret file is an error, not a new secret.
	os.WriteFile(filepath.Join(dir, SecretFile), []byte("garbage\n"), 0o600)
	if _, err := LoadOrCreateSecret(dir); err == nil {
		t.Fatal("a damaged secret file was accepted")
	}
}

// TestOpenVerifier: the replay file lives in the state directory, a
// flight accepted before a restart is refused after it, and a damaged
// file is moved aside with a warning instead of stopping the bridge.
func TestOpenVerifier(t *testing.T) {
	dir := t.TempDir()
	path := ReplayPath(dir)
	if path != filepath.Join(dir, ReplayFile) {
		t.Fatalf("ReplayPath = %s", path)
	}
	s := bridgeauth.Secret{1}
	keys := s.Keys()
	now := time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC)
	var x [64]byte
	x[0] = 1
	f := keys.AppendGarbage(x[:], &x, []byte("p"), nil, now)
	v, err := OpenVerifier(path, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(f, now); err != nil {
		t.Fatal(err)
	}
	v.Close()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("replay file: %v, mode %v", err, fi.Mode())
	}
	v, err = OpenVerifier(path, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(f, now); !errors.Is(err, bridgeauth.ErrReplay) {
		t.Fatalf("replay after restart: %v", err)
	}
	v.Close()

	os.WriteFile(path, []byte("garbage"), 0o600)
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	v, err = OpenVerifier(path, s, log)
	if err != nil || v == nil {
		t.Fatalf("damaged file: %v", err)
	}
	defer v.Close()
	if !strings.Contains(logged.String(), "level=WARN") || !strings.Contains(logged.String(), path+".corrupt") {
		t.Fatalf("log: %s", logged.String())
	}
	if err := v.Verify(f, now); err != nil {
		t.Fatalf("after a damaged file the set starts empty: %v", err)
	}
}

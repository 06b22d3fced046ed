package bridge

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
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
	if err := WriteBridgeLine(dir, s); err != nil {
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

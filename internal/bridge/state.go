package bridge

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/bip324pt/bip324-pt/internal/bridgeauth"
)

// File names in the state directory.
const (
	SecretFile     = "bip324_secret"
	BridgeLineFile = "bip324_bridgeline.txt"
)

// LoadOrCreateSecret reads the bridge's secret from dir, or makes one and
// keeps it there with mode 0600 on first start.
func LoadOrCreateSecret(dir string) (bridgeauth.Secret, error) {
	path := filepath.Join(dir, SecretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		s, err := bridgeauth.ParseSecret(strings.TrimSpace(string(b)))
		if err != nil {
			return s, fmt.Errorf("bridge: %s: %w", path, err)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return bridgeauth.Secret{}, fmt.Errorf("bridge: %w", err)
	}
	s, err := bridgeauth.NewSecret(rand.Reader)
	if err != nil {
		return s, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return s, fmt.Errorf("bridge: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return s, fmt.Errorf("bridge: %w", err)
	}
	if _, err := fmt.Fprintln(f, s.Encode()); err != nil {
		f.Close()
		return s, fmt.Errorf("bridge: %w", err)
	}
	return s, f.Close()
}

// BridgeArgs returns the arguments a client needs, in the order the bridge
// line gives them.
func BridgeArgs(s bridgeauth.Secret) string { return "secret=" + s.Encode() }

// WriteBridgeLine writes a ready bridge line to dir, with placeholders,
// as obfs4proxy does, for what the bridge cannot know:
// "Bridge bip324 <IP>:<PORT> <FINGERPRINT> secret=...".
func WriteBridgeLine(dir string, s bridgeauth.Secret) error {
	text := "# bip324-pt: a bridge line for this bridge. Replace <IP>, <PORT> and\n" +
		"# <FINGERPRINT> with the bridge's public address, its bip324 port and its\n" +
		"# Tor fingerprint; the secret= argument is what clients need from here.\n\n" +
		"Bridge bip324 <IP>:<PORT> <FINGERPRINT> " + BridgeArgs(s) + "\n"
	return os.WriteFile(filepath.Join(dir, BridgeLineFile), []byte(text), 0o600)
}

package bridge

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/bip324pt/bip324-pt/internal/bridgeauth"
)

// File names in the state directory.
const (
	SecretFile     = "bip324_secret"
	BridgeLineFile = "bip324_bridgeline.txt"
	// ReplayFile keeps the marks of accepted flights across restarts
	// (bridgeauth.OpenVerifier); its format is bridgeauth's.
	ReplayFile = "bip324_replay"
)

// ReplayPath returns the path of the replay file in the state directory dir.
func ReplayPath(dir string) string { return filepath.Join(dir, ReplayFile) }

// OpenVerifier returns the bridge's verifier for secret s, with its replay
// set kept in the file at path (ReplayPath), so a first flight accepted
// before a restart is refused after it. A damaged replay file does not
// stop the bridge: it is moved to path+".corrupt" and the bridge starts
// with an empty set, which OpenVerifier logs on log as a warning (nil log:
// not logged). Any other error, such as an unwritable state directory, is
// returned. The caller closes the verifier.
func OpenVerifier(path string, s bridgeauth.Secret, log *slog.Logger) (*bridgeauth.Verifier, error) {
	v, err := bridgeauth.OpenVerifier(s.Keys(), path)
	if v != nil && err != nil {
		if log != nil {
			log.Warn("bip324-pt: replay file damaged; starting with an empty replay set", "err", err)
		}
		err = nil
	}
	return v, err
}

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
// "Bridge bip324 <IP>:<PORT> <FINGERPRINT> secret=...", args being what
// follows the fingerprint (Server.BridgeArgs).
func WriteBridgeLine(dir, args string) error {
	text := "# bip324-pt: a bridge line for this bridge. Replace <IP>, <PORT> and\n" +
		"# <FINGERPRINT> with the bridge's public address, its bip324 port and its\n" +
		"# Tor fingerprint. Tor also writes it, filled in, to <DataDirectory>/bridgelines.\n\n" +
		"Bridge bip324 <IP>:<PORT> <FINGERPRINT> " + args + "\n"
	return os.WriteFile(filepath.Join(dir, BridgeLineFile), []byte(text), 0o600)
}

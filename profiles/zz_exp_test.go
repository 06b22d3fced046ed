package profiles_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/profiles"
	"github.com/bip324pt/bip324-pt/shaper"
	"github.com/bip324pt/bip324-pt/internal/memconn"
)

type cap1 struct {
	net.Conn
	b []byte
}

var errStop = errors.New("stop")

func (c *cap1) Write(p []byte) (int, error) { c.b = append([]byte(nil), p...); return 0, errStop }

func TestZZExp(t *testing.T) {
	p, _ := profiles.Load("fet")
	start := time.Now()
	for i := range 1000 {
		cfg, _ := p.Compile(&shaper.Config{Seed: [32]byte{byte(i), byte(i >> 8)}}); cfg.QueueSize = 4096
		a, _ := memconn.Pipe(1)
		c := &cap1{Conn: a}
		shaper.Client(c, cfg).Handshake()
		if len(c.b) == 0 {
			t.Fatal("no")
		}
	}
	t.Logf("1000 flights: %v", time.Since(start))
}

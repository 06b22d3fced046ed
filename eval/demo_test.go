package eval

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestDemo(t *testing.T) {
	for _, p := range []string{"none", "cbr"} {
		t.Run(p, func(t *testing.T) {
			res, err := Demo(context.Background(), DemoOptions{Profile: p, Duration: time.Second, Seed: [32]byte{1}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Down == 0 || res.Up == 0 {
				t.Fatalf("nothing delivered: down %d, up %d", res.Down, res.Up)
			}
			if res.Server.WireOut < res.Down {
				t.Fatalf("server wrote %d bytes for %d delivered", res.Server.WireOut, res.Down)
			}
			if len(res.Events) == 0 || len(res.Check) == 0 {
				t.Fatalf("no events (%d) or checks (%d)", len(res.Events), len(res.Check))
			}
			if p == "cbr" && !strings.Contains(res.Check[0], "promised 1448-byte writes") {
				t.Fatalf("check line %q", res.Check[0])
			}
		})
	}
	if _, err := Demo(context.Background(), DemoOptions{Profile: "nosuch"}); err == nil {
		t.Fatal("unknown profile accepted")
	}
}

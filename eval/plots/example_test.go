package plots_test

import (
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"

	"github.com/bip324pt/bip324-pt/eval/plots"
)

func Example_usage() {
	dir, err := os.MkdirTemp("", "plots")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	base := filepath.Join(dir, "figs", "cost")
	err = plots.Scatter(base, "Cost against leakage", "bandwidth overhead (%)", "classifier accuracy",
		0.25, // chance with four workloads; math.NaN() draws no line
		plots.Point{Label: "plain", X: 0, Y: 0.97},
		plots.Point{Label: "web", X: 38, Y: 0.41},
		plots.Point{Label: "broken", X: math.NaN(), Y: 1}, // left out
	)
	if err != nil {
		log.Fatal(err)
	}
	for _, ext := range []string{".png", ".svg"} {
		_, err := os.Stat(base + ext)
		fmt.Println(filepath.Base(base+ext), err == nil)
	}
	// Output:
	// cost.png true
	// cost.svg true
}

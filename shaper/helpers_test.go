package shaper

import (
	mrand "math/rand/v2"
)

type fixedDist int

func (f fixedDist) Sample(*mrand.Rand) int { return int(f) }
func (f fixedDist) Bounds() (int, int)     { return int(f), int(f) }
func (f fixedDist) String() string         { return "fixed" }

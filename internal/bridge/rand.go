package bridge

import "crypto/rand"

var cryptoRand = rand.Reader

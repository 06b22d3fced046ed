module github.com/bip324pt/bip324-pt

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/btcsuite/btcd/btcec/v2 v2.5.0
	github.com/btcsuite/btcd/v2transport v1.1.0
	gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib v1.6.0
	golang.org/x/crypto v0.58.0
)

require (
	github.com/btcsuite/btcd/chainhash/v2 v2.0.0 // indirect
	github.com/btcsuite/btclog v0.0.0-20170628155309-84c8d2346e9f // indirect
	github.com/decred/dcrd/dcrec/secp256k1/v4 v4.4.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

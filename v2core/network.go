package v2core

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Network is a Bitcoin network, identified by its 4-byte message start
// ("magic"). The magic salts the BIP324 key derivation and starts every v1
// message, so two ends on different networks never complete a handshake.
//
// The zero value is not a network; [Config] treats it as [Mainnet].
type Network uint32

// The networks Bitcoin Core knows. The value is the magic read as a
// big-endian integer, so Mainnet's bytes on the wire are f9 be b4 d9
// (Bitcoin Core src/kernel/chainparams.cpp, pchMessageStart).
const (
	Mainnet  Network = 0xf9beb4d9
	Testnet3 Network = 0x0b110907
	Testnet4 Network = 0x1c163f28
	Signet   Network = 0x0a03cf40 // the default signet challenge
	Regtest  Network = 0xfabfb5da
)

// Networks lists every built-in network, in a stable order.
var Networks = []Network{Mainnet, Testnet3, Testnet4, Signet, Regtest}

// Magic returns the network's message start as it appears on the wire.
func (n Network) Magic() [4]byte {
	var m [4]byte
	binary.BigEndian.PutUint32(m[:], uint32(n))
	return m
}

// V1Prefix returns the 16 bytes every v1 connection to this network starts
// with: the magic, then "version" padded with NULs to 12 bytes. A BIP324
// responder that reads exactly these bytes first falls back to v1.
func (n Network) V1Prefix() [V1PrefixSize]byte {
	var p [V1PrefixSize]byte
	m := n.Magic()
	copy(p[:4], m[:])
	copy(p[4:], "version")
	return p
}

// DefaultPort returns the network's default P2P port.
func (n Network) DefaultPort() int {
	switch n {
	case Mainnet:
		return 8333
	case Testnet3:
		return 18333
	case Testnet4:
		return 48333
	case Signet:
		return 38333
	case Regtest:
		return 18444
	}
	return 0
}

// String returns the network's name as bitcoind's -chain option spells it,
// or the magic in hex for a network it does not know.
func (n Network) String() string {
	switch n {
	case Mainnet:
		return "main"
	case Testnet3:
		return "test"
	case Testnet4:
		return "testnet4"
	case Signet:
		return "signet"
	case Regtest:
		return "regtest"
	}
	return fmt.Sprintf("magic:%08x", uint32(n))
}

// ParseNetwork accepts the names bitcoind's -chain option takes, plus
// "mainnet", "testnet" and "testnet3" as aliases.
func ParseNetwork(s string) (Network, error) {
	switch strings.ToLower(s) {
	case "main", "mainnet", "bitcoin":
		return Mainnet, nil
	case "test", "testnet", "testnet3":
		return Testnet3, nil
	case "testnet4":
		return Testnet4, nil
	case "signet":
		return Signet, nil
	case "regtest":
		return Regtest, nil
	}
	return 0, fmt.Errorf("v2core: unknown network %q (want main, test, testnet4, signet or regtest)", s)
}

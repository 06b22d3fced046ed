// Package fet implements the rule the Great Firewall of China applied from
// November 2021 to block fully encrypted traffic, as inferred by Wu et al.,
// "How the Great Firewall of China Detects and Blocks Fully Encrypted
// Traffic", USENIX Security 2023 (Algorithm 1). The rule looks at the
// payload of the first data packet a client sends on a TCP connection and
// exempts it if any of five tests passes; a connection not exempted was
// blocked with a probability of about 26%.
package fet

import "math/bits"

// Rule names the exemption that applied, or Blocked.
type Rule string

// The exemptions of Algorithm 1, in the order the paper lists them.
const (
	// Ex1: the average number of set bits per byte is at most 3.4 or at
	// least 4.6 (random bytes average 4).
	Ex1Popcount Rule = "ex1-popcount"
	// Ex2: the first six bytes are printable ASCII.
	Ex2FirstSix Rule = "ex2-first-six-printable"
	// Ex3: more than half of the bytes are printable ASCII.
	Ex3HalfPrintable Rule = "ex3-half-printable"
	// Ex4: more than 20 contiguous bytes are printable ASCII.
	Ex4PrintableRun Rule = "ex4-printable-run"
	// Ex5: the packet starts like TLS or HTTP.
	Ex5Protocol Rule = "ex5-tls-or-http"
	// Blocked: no exemption applied; the censor blocks with p ≈ 0.26.
	Blocked Rule = "blocked"
)

// BlockProbability is the fraction of non-exempt connections the paper
// measured being blocked.
const BlockProbability = 0.26

func printable(b byte) bool { return b >= 0x20 && b <= 0x7e }

// Check applies the rule to the payload of a client's first data packet
// and returns the first exemption that holds, or Blocked. An empty payload
// is not a data packet; Check returns Ex1Popcount for it, since the censor
// has nothing to judge.
func Check(p []byte) Rule {
	if len(p) == 0 {
		return Ex1Popcount
	}
	ones, print, run, longest := 0, 0, 0, 0
	for _, b := range p {
		ones += bits.OnesCount8(b)
		if printable(b) {
			print++
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	// avg <= 3.4 || avg >= 4.6, in integers: 10·ones vs 34·len, 46·len.
	if 10*ones <= 34*len(p) || 10*ones >= 46*len(p) {
		return Ex1Popcount
	}
	if len(p) >= 6 {
		six := true
		for _, b := range p[:6] {
			six = six && printable(b)
		}
		if six {
			return Ex2FirstSix
		}
	}
	if 2*print > len(p) {
		return Ex3HalfPrintable
	}
	if longest > 20 {
		return Ex4PrintableRun
	}
	if looksLikeTLS(p) || looksLikeHTTP(p) {
		return Ex5Protocol
	}
	return Blocked
}

// Exempt reports whether Check does not block p.
func Exempt(p []byte) bool { return Check(p) != Blocked }

// looksLikeTLS matches a TLS record header: content type handshake,
// change-cipher-spec, alert or application data, then version 3.x
// (paper: [\x16-\x17]\x03[\x00-\x09]; we take 0x14-0x17, which contains it).
func looksLikeTLS(p []byte) bool {
	return len(p) >= 3 && p[0] >= 0x14 && p[0] <= 0x17 && p[1] == 0x03 && p[2] <= 0x09
}

// looksLikeHTTP matches the start of an HTTP/1 request.
func looksLikeHTTP(p []byte) bool {
	for _, m := range []string{"GET ", "PUT ", "POST ", "HEAD ", "DELETE ", "OPTIONS ", "CONNECT ", "PATCH ", "TRACE "} {
		if len(p) >= len(m) && string(p[:len(m)]) == m {
			return true
		}
	}
	return false
}

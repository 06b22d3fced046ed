package profiles

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bip324pt/bip324-pt/padding"
	"github.com/bip324pt/bip324-pt/schedule"
)

// maxDistExpr bounds a distribution expression, so a hostile profile file
// cannot make the parser work hard.
const maxDistExpr = 4096

// ParseDist parses a size distribution expression:
//
//	fixed(N)
//	uniform(MIN,MAX)
//	lognormal(MU,SIGMA)             log-normal: exp of a normal(MU, SIGMA)
//	weighted(MIN,MAX,BINS)          obfs4-style: the profile seed picks BINS
//	                                values in MIN..MAX and their weights
//	empirical(N,N,...)              the given sizes, each equally likely
//	trace(FILE,s|r)                 the sizes of one direction's packets in
//	                                a time_ns,direction,size trace
//	clamp(DIST,MIN,MAX)             DIST moved into MIN..MAX
//
// A bare integer N is fixed(N). seed shapes weighted distributions. A
// relative trace FILE is taken from the current directory; profile files
// take it from their own folder.
func ParseDist(s string, seed [32]byte) (padding.Dist, error) {
	return parseDistIn(s, seed, ".")
}

func parseDistIn(s string, seed [32]byte, dir string) (padding.Dist, error) {
	if len(s) > maxDistExpr {
		return nil, fmt.Errorf("distribution expression of %d bytes, more than %d", len(s), maxDistExpr)
	}
	d, rest, err := parseDist(strings.TrimSpace(s), seed, dir, 0)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(rest) != "" {
		return nil, fmt.Errorf("unexpected %q after the distribution", rest)
	}
	return d, nil
}

func parseDist(s string, seed [32]byte, dir string, depth int) (padding.Dist, string, error) {
	if depth > 4 {
		return nil, "", fmt.Errorf("distribution nested too deep")
	}
	if n, err := strconv.Atoi(s); err == nil {
		d, err := padding.Fixed(n)
		return d, "", err
	}
	open := strings.IndexByte(s, '(')
	if open < 0 {
		return nil, "", fmt.Errorf("%q is not a distribution (want fixed(N), uniform(MIN,MAX), lognormal(MU,SIGMA), weighted(MIN,MAX,BINS), empirical(N,...) or clamp(DIST,MIN,MAX))", s)
	}
	name := strings.TrimSpace(s[:open])
	s = s[open+1:]
	if name == "clamp" {
		inner, rest, err := parseDist(strings.TrimSpace(s), seed, dir, depth+1)
		if err != nil {
			return nil, "", err
		}
		args, rest, err := splitArgs(rest, true)
		if err != nil {
			return nil, "", fmt.Errorf("clamp: %w", err)
		}
		lo, hi, err := twoInts("clamp", args)
		if err != nil {
			return nil, "", err
		}
		d, err := padding.Clamp(inner, lo, hi)
		return d, rest, err
	}
	args, rest, err := splitArgs(s, false)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	var d padding.Dist
	switch name {
	case "fixed":
		if len(args) != 1 {
			return nil, "", fmt.Errorf("fixed takes one argument, got %d", len(args))
		}
		n, err := atoi("fixed", args[0])
		if err != nil {
			return nil, "", err
		}
		d, err = padding.Fixed(n)
		if err != nil {
			return nil, "", err
		}
	case "uniform":
		lo, hi, err := twoInts("uniform", args)
		if err != nil {
			return nil, "", err
		}
		if d, err = padding.Uniform(lo, hi); err != nil {
			return nil, "", err
		}
	case "lognormal":
		if len(args) != 2 {
			return nil, "", fmt.Errorf("lognormal takes MU,SIGMA, got %d arguments", len(args))
		}
		mu, err1 := strconv.ParseFloat(args[0], 64)
		sigma, err2 := strconv.ParseFloat(args[1], 64)
		if err1 != nil || err2 != nil {
			return nil, "", fmt.Errorf("lognormal(%s,%s): want two numbers", args[0], args[1])
		}
		if d, err = padding.LogNormal(mu, sigma); err != nil {
			return nil, "", err
		}
	case "weighted":
		if len(args) != 3 {
			return nil, "", fmt.Errorf("weighted takes MIN,MAX,BINS, got %d arguments", len(args))
		}
		var v [3]int
		for i := range v {
			if v[i], err = atoi("weighted", args[i]); err != nil {
				return nil, "", err
			}
		}
		if d, err = padding.NewWeighted(seed, v[0], v[1], v[2]); err != nil {
			return nil, "", err
		}
	case "empirical":
		if len(args) == 0 || len(args) > 1024 {
			return nil, "", fmt.Errorf("empirical takes 1 to 1024 sizes, got %d", len(args))
		}
		sizes := make([]int, len(args))
		for i, a := range args {
			if sizes[i], err = atoi("empirical", a); err != nil {
				return nil, "", err
			}
		}
		if d, err = padding.NewEmpirical(sizes); err != nil {
			return nil, "", err
		}
	case "trace":
		if len(args) != 2 || (args[1] != "s" && args[1] != "r") {
			return nil, "", fmt.Errorf("trace takes FILE,s or FILE,r")
		}
		if d, err = traceSizes(filepath.Join(dir, args[0]), args[1]); err != nil {
			return nil, "", err
		}
	default:
		return nil, "", fmt.Errorf("unknown distribution %q", name)
	}
	return d, rest, nil
}

// splitArgs reads comma-separated arguments up to the closing parenthesis
// and returns them and what follows it. With leadingComma, s starts after
// a nested distribution and must go on with a comma.
func splitArgs(s string, leadingComma bool) ([]string, string, error) {
	s = strings.TrimSpace(s)
	if leadingComma {
		if !strings.HasPrefix(s, ",") {
			return nil, "", fmt.Errorf("want a comma after the distribution")
		}
		s = s[1:]
	}
	end := strings.IndexByte(s, ')')
	if end < 0 {
		return nil, "", fmt.Errorf("missing ')'")
	}
	inner := strings.TrimSpace(s[:end])
	if inner == "" {
		return nil, s[end+1:], nil
	}
	parts := strings.Split(inner, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts, s[end+1:], nil
}

func twoInts(name string, args []string) (int, int, error) {
	if len(args) != 2 {
		return 0, 0, fmt.Errorf("%s takes MIN,MAX, got %d arguments", name, len(args))
	}
	a, err := atoi(name, args[0])
	if err != nil {
		return 0, 0, err
	}
	b, err := atoi(name, args[1])
	return a, b, err
}

func atoi(name, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not an integer", name, s)
	}
	return n, nil
}

// traceSizes builds an empirical distribution from the sizes of one
// direction's packets in a trace file.
func traceSizes(path, dir string) (padding.Dist, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	defer f.Close()
	events, err := schedule.ParseTrace(f)
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", path, err)
	}
	want := schedule.DirSent
	if dir == "r" {
		want = schedule.DirReceived
	}
	var sizes []int
	for _, e := range events {
		if e.Dir == want && e.Size > 0 {
			sizes = append(sizes, e.Size)
		}
	}
	if len(sizes) == 0 {
		return nil, fmt.Errorf("trace %s: no %s packets", path, dir)
	}
	return padding.NewEmpirical(sizes)
}

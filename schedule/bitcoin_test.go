package schedule

import (
	"encoding/csv"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// coreMessage is a row of post_handshake_messages.csv.
type coreMessage struct {
	session, role, typ string
	at                 time.Duration
	wireLen            int
}

// coreMessages reads the messages Bitcoin Core v28.1 sent after the
// handshake, measured on loopback (testdata/bitcoin-core-wire/README.md,
// copied from shared/testdata), by header name.
func coreMessages(t *testing.T) []coreMessage {
	t.Helper()
	f, err := os.Open("../testdata/bitcoin-core-wire/post_handshake_messages.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	var out []coreMessage
	for _, r := range rows[1:] {
		secs, err := strconv.ParseFloat(r[col["t_s_after_handshake"]], 64)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(r[col["wire_len"]])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, coreMessage{
			session: r[col["session"]], role: r[col["core_role"]], typ: r[col["type"]],
			at: time.Duration(secs * 1e6 * float64(time.Microsecond)), wireLen: n,
		})
	}
	return out
}

// coreOpening returns Core's messages in role's opening: those of the
// session within its first second.
func coreOpening(t *testing.T, session, role string) []coreMessage {
	var out []coreMessage
	for _, m := range coreMessages(t) {
		if m.session == session && m.role == role && m.at < time.Second {
			out = append(out, m)
		}
	}
	if role == "responder" && len(out) < 7 {
		t.Fatalf("%s %s: %d messages in the opening", session, role, len(out))
	}
	return out
}

func newBitcoin(t *testing.T, p BitcoinParams, seed uint64) *Bitcoin {
	t.Helper()
	s, err := NewBitcoin(p, rand.New(rand.NewPCG(seed, 0)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBitcoin_Opening: the first opportunities of each role are Core's
// messages, in Core's order, at Core's offsets from the start (the
// client's first event, the server's first bytes received), and pad.
// The sizes are the same in the other measured session.
func TestBitcoin_Opening(t *testing.T) {
	for _, tc := range []struct {
		role Role
		name string
	}{{Client, "initiator"}, {Server, "responder"}} {
		t.Run(tc.name, func(t *testing.T) {
			want := coreOpening(t, "observer_35s", tc.name)
			// The other session has the responder's only.
			other := coreOpening(t, "observer_135s_with_3_blocks", tc.name)
			for _, ibd := range []bool{false, true} {
				s := newBitcoin(t, BitcoinParams{Role: tc.role, IBD: ibd}, 1)
				if o := s.Next(t0); !o.Idle() {
					t.Fatalf("before any event: %v, want idle", show(o))
				}
				switch tc.role {
				case Client:
					s.Queued(t0, 0) // the shaper's first report
				case Server:
					s.Queued(t0, 0)
					if o := s.Next(t0); !o.Idle() {
						t.Fatalf("server before the peer's first bytes: %v, want idle", show(o))
					}
					s.Received(t0, 135)
				}
				got := simulate(t, s, nil, time.Second)
				if len(got) < len(want) {
					t.Fatalf("ibd %v: %d writes in the first second, want at least %d", ibd, len(got), len(want))
				}
				for i, m := range want {
					if got[i].size != m.wireLen || got[i].at != m.at || got[i].data != 0 {
						t.Errorf("ibd %v: write %d = %+v, want %s: %d bytes at %v (decoys)", ibd, i, got[i], m.typ, m.wireLen, m.at)
					}
					if i < len(other) && other[i].wireLen != m.wireLen {
						t.Errorf("sessions differ at %d: %s %d, %s %d", i, m.typ, m.wireLen, other[i].typ, other[i].wireLen)
					}
				}
				sizes, offsets := BitcoinOpening(tc.role)
				if len(sizes) != len(want) || len(offsets) != len(want) {
					t.Errorf("BitcoinOpening: %d messages, want %d", len(sizes), len(want))
				}
			}
		})
	}
}

// TestBitcoin_DataRides: data queued during the opening rides in Core's
// messages without changing their sizes.
func TestBitcoin_DataRides(t *testing.T) {
	s := newBitcoin(t, BitcoinParams{Role: Client}, 2)
	got := simulate(t, s, []arrival{{0, 100}}, time.Second)
	want := []int{135, 33, 33, 33, 33, 30, 29, 29}
	data := 0
	for i, w := range want {
		if got[i].size != w {
			t.Errorf("write %d of %d bytes, want %d", i, got[i].size, w)
		}
		data += got[i].data
	}
	if data != 100 {
		t.Errorf("the opening carried %d data bytes, want 100", data)
	}
	if got[0].data != 100 {
		t.Errorf("version carried %d, want all 100", got[0].data)
	}
}

// TestBitcoin_Relay: an hour of a full-relay link after the opening,
// idle: a ping exactly every 2 minutes; invs of 22+36k bytes about every
// InvInterval; addrv2 of 37 bytes; each block's 103-byte headers 100 ms
// before its 1-2 MB burst; nothing else. Then with 200 kB queued: invs
// grow to carry it, up to 1000 entries.
func TestBitcoin_Relay(t *testing.T) {
	for _, role := range []Role{Client, Server} {
		s := newBitcoin(t, BitcoinParams{Role: role}, 3)
		p := s.Params()
		s.Queued(t0, 0)
		s.Received(t0, 1)
		const hour = time.Hour
		got := simulate(t, s, nil, hour)
		open := len(bitcoinServerOpening)
		if role == Client {
			open = len(bitcoinClientOpening)
		}
		var lastPing time.Duration
		pings, invs, addrs, blocks := 0, 0, 0, 0
		var bytes int
		for i, w := range got[open:] {
			bytes += w.size
			switch {
			case w.size == bitcoinPingSize:
				if pings == 0 {
					lastPing = got[open-2].at // the opening's ping
				}
				if d := w.at - lastPing; d != p.PingInterval {
					t.Errorf("%v: ping %v after the last", role, d)
				}
				lastPing = w.at
				pings++
			case w.size == bitcoinAddrSize:
				addrs++
			case w.size == bitcoinHdrsSize:
				next := got[open+i+1]
				if next.at-w.at != bitcoinBlockLead || next.size < 1_000_000 || next.size > 2_000_000 {
					t.Errorf("%v: headers at %v followed by %+v", role, w.at, next)
				}
			case w.size >= 1_000_000:
				blocks++
			case (w.size-22)%36 == 0 && w.size >= 58:
				invs++
			default:
				t.Errorf("%v: write %+v of no Core message", role, w)
			}
		}
		if pings != 29 && pings != 30 {
			t.Errorf("%v: %d pings in an hour", role, pings)
		}
		if lo, hi := int(0.8*float64(hour/p.InvInterval)), int(1.2*float64(hour/p.InvInterval)); invs < lo || invs > hi {
			t.Errorf("%v: %d invs in an hour, want %d..%d", role, invs, lo, hi)
		}
		if addrs < 80 || addrs > 160 {
			t.Errorf("%v: %d addrs in an hour, want about 120", role, addrs)
		}
		t.Logf("%v: %d writes in an hour, %d bytes (%.0f B/s): %d pings, %d invs, %d addrs, %d blocks",
			role, len(got), bytes, float64(bytes)/hour.Seconds(), pings, invs, addrs, blocks)
	}

	s := newBitcoin(t, BitcoinParams{Role: Client}, 4)
	got := simulate(t, s, []arrival{{0, 0}, {time.Second, 200_000}}, 5*time.Minute)
	data, largest := 0, 0
	for _, w := range got {
		data += w.data
		if w.size < 1_000_000 {
			largest = max(largest, w.size)
		}
	}
	if data != 200_000 {
		t.Errorf("%d of 200000 bytes went in 5 minutes", data)
	}
	if want := 22 + 36*bitcoinInvMax; largest != want {
		t.Errorf("largest inv %d bytes, want %d (1000 entries)", largest, want)
	}
}

// TestBitcoin_IBD: the client asks for 16 blocks after its opening, then
// for one per MiB received; the server sends 16 blocks back to back
// after its opening, then one per getdata.
func TestBitcoin_IBD(t *testing.T) {
	c := newBitcoin(t, BitcoinParams{Role: Client, IBD: true}, 5)
	got := simulate(t, c, []arrival{{0, 0}}, time.Minute)
	n := len(bitcoinClientOpening)
	if len(got) != n+1 || got[n].size != 22+36*16 || got[n].at != got[n-1].at {
		t.Fatalf("client: %+v, want the opening and a getdata of 16 at once", got)
	}
	now := t0.Add(time.Second)
	c.Received(now, 1<<19)
	if o := c.Next(now); o.At.Sub(t0) != 2*time.Minute+got[n-2].at || o.Size != 29 {
		t.Errorf("after half a block: %v, want the next ping", show(o))
	}
	c.Received(now, 1<<19)
	if o := c.Next(now); o.At != now || o.Size != 58 || !o.Pad {
		t.Errorf("after a block: %v, want a getdata of one", show(o))
	}
	c.Queued(now, 300)
	if o := c.Next(now); o.Size != 22+36*8 {
		t.Errorf("with 300 bytes waiting: %v, want a getdata of 8 (310 bytes)", show(o))
	}

	s := newBitcoin(t, BitcoinParams{Role: Server, IBD: true}, 6)
	s.Received(t0, 135)
	got = simulate(t, s, nil, time.Minute)
	n = len(bitcoinServerOpening)
	if len(got) != n+16 {
		t.Fatalf("server: %d writes, want the opening and 16 blocks", len(got))
	}
	for _, w := range got[n:] {
		if w.at != got[n-1].at || w.size < 1_000_000 || w.size > 2_000_000 {
			t.Errorf("server: %+v, want a block at once", w)
		}
	}
	now = t0.Add(time.Second)
	s.Received(now, 58)
	if o := s.Next(now); o.At != now || o.Size < 1_000_000 {
		t.Errorf("after a getdata of one: %v, want a block", show(o))
	}
	s.Sent(now, s.Next(now).Size, true)
	if o := s.Next(now); o.Size != 29 {
		t.Errorf("after that block: %v, want the next ping", show(o))
	}
}

// TestBitcoin_Seed: the same seed and events give the same writes.
func TestBitcoin_Seed(t *testing.T) {
	run := func(seed uint64) []write {
		s := newBitcoin(t, BitcoinParams{Role: Server}, seed)
		s.Received(t0, 1)
		return simulate(t, s, []arrival{{time.Second, 5000}}, 10*time.Minute)
	}
	a, b, c := run(7), run(7), run(8)
	same := func(x, y []write) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) || same(a, c) {
		t.Errorf("seed: same %v, different %v", same(a, b), !same(a, c))
	}
}

func TestBitcoin_Params(t *testing.T) {
	var pe *ParamError
	for _, p := range []BitcoinParams{
		{}, {Role: Client, PingInterval: time.Millisecond}, {Role: Server, InvInterval: -1},
		{Role: Client, TxRate: -1}, {Role: Server, InFlight: 1001}, {Role: Client, BlockInterval: time.Millisecond},
	} {
		if _, err := NewBitcoin(p, rand.New(rand.NewPCG(1, 1))); !errors.As(err, &pe) {
			t.Errorf("%+v: %v, want a *ParamError", p, err)
		}
	}
	if _, err := NewBitcoin(BitcoinParams{Role: Client}, nil); err != ErrNilRand {
		t.Errorf("nil rand: %v", err)
	}
	s := newBitcoin(t, BitcoinParams{Role: Server}, 1)
	if p := s.Params(); p.InvInterval != 5*time.Second || p.PingInterval != 2*time.Minute || p.InFlight != 16 || p.TxRate != 7 {
		t.Errorf("server defaults %+v", p)
	}
	if p := newBitcoin(t, BitcoinParams{Role: Client}, 1).Params(); p.InvInterval != 2*time.Second {
		t.Errorf("client inv interval %v", p.InvInterval)
	}
}

// TestBitcoin_DemandWait: with DemandWait, data that arrives after the
// opening goes in an inv no later than DemandWait after it came (the
// trickle's own timer would take seconds), and more than an inv carries
// goes as headers at the deadline, then a block of 1-2 MB a round trip
// later, block after block while the data lasts. Without it (the same
// seed), the data waits for Core's timers.
func TestBitcoin_DemandWait(t *testing.T) {
	const wait = 200 * time.Millisecond
	for _, role := range []Role{Client, Server} {
		first := func(demand time.Duration, n int) (inv, hdrs, block time.Duration, blocks int, carried int) {
			s := newBitcoin(t, BitcoinParams{Role: role, DemandWait: demand}, 9)
			s.Queued(t0, 0)
			s.Received(t0, 1)
			arrive := 10 * time.Second // well after the opening
			got := simulate(t, s, []arrival{{arrive, n}}, arrive+30*time.Second)
			inv, hdrs, block = -1, -1, -1
			for _, w := range got {
				carried += w.data
				if w.at < arrive || w.data == 0 {
					continue
				}
				switch {
				case w.size >= 58 && (w.size-22)%36 == 0 && inv < 0:
					inv = w.at - arrive
				case w.size == 103 && hdrs < 0:
					hdrs = w.at - arrive
				case w.size >= 1_000_000:
					if block < 0 {
						block = w.at - arrive
					}
					blocks++
				}
			}
			return inv, hdrs, block, blocks, carried
		}
		if inv, _, _, _, c := first(wait, 500); inv < 0 || inv > wait || c != 500 {
			t.Errorf("%v: 500 bytes in an inv after %v (carried %d), want within %v", role, inv, c, wait)
		}
		if inv, _, _, _, _ := first(0, 500); inv >= 0 && inv <= wait {
			// The same seed's timer falls within the wait: the test
			// proves nothing then.
			t.Fatalf("%v: without DemandWait the inv came after %v; pick another seed", role, inv)
		}
		_, hdrs, block, blocks, c := first(wait, 3_000_000)
		if hdrs != wait || block != wait+bitcoinBlockLead || blocks < 2 || c != 3_000_000 {
			t.Errorf("%v: 3 MB: headers at +%v, first block at +%v, %d blocks, %d carried; want headers at +%v, block %v later, at least 2 blocks, all carried",
				role, hdrs, block, blocks, c, wait, bitcoinBlockLead)
		}
	}
	var pe *ParamError
	if _, err := NewBitcoin(BitcoinParams{Role: Client, IBD: true, DemandWait: time.Second}, rand.New(rand.NewPCG(1, 1))); !errors.As(err, &pe) {
		t.Errorf("DemandWait with IBD: %v, want a *ParamError", err)
	}
}

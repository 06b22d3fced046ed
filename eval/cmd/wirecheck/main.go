// Command wirecheck runs a bridge and a client of each of the profiles
// cbr, video, bitcoin and none over real TCP on loopback and records
// every write on the wire (both directions) to /tmp/wire-PROFILE.trace
// (time_ns,direction,size). It measures, per profile: the wire each way
// while idle (both applications reading, 10 s), 10 round trips of a
// 200-byte message, then a transfer each way (3 MB; 100 kB up through
// video, whose upstream is request-sized) with the sender closing at once
// after its last write, SHA-256 compared at the far end, and the wire
// bytes per data byte. It prints one line a profile.
//
//	go run ./eval/cmd/wirecheck
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/bip324pt/bip324-pt/eval/wiretap"
	"github.com/bip324pt/bip324-pt/internal/bridge"
	"github.com/bip324pt/bip324-pt/internal/bridgeauth"
	"github.com/bip324pt/bip324-pt/profiles"
	"github.com/bip324pt/bip324-pt/schedule"
)

func run(profile string, up, down int, idle time.Duration) string {
	p, _ := profiles.Load(profile)
	shape, _ := p.Compile()
	secret, _ := bridgeauth.NewSecret(rand.Reader)
	srv, err := bridge.NewServer(bridge.ServerConfig{Secret: secret, Shape: shape, Profile: profile})
	if err != nil {
		fmt.Fprintln(os.Stderr, "wirecheck:", err)
		os.Exit(1)
	}
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	rec := wiretap.New(time.Now(), 0)
	sc := make(chan net.Conn, 1)
	go func() {
		raw, _ := ln.Accept()
		c, err := srv.WrapConn(context.Background(), wiretap.Tap(raw, rec, false))
		if err != nil {
			fmt.Fprintln(os.Stderr, "wirecheck:", err)
			os.Exit(1)
		}
		sc <- c
	}()
	raw, _ := net.Dial("tcp", ln.Addr().String())
	req := bridge.Request{Profile: profile}
	if !p.WantsVersionRequest() {
		req = bridge.Request{}
	}
	cli, err := bridge.Client(context.Background(), wiretap.Tap(raw, rec, true), &bridge.ClientConfig{Secret: secret, Shape: shape, Request: req})
	if err != nil {
		fmt.Fprintln(os.Stderr, "wirecheck:", err)
		os.Exit(1)
	}
	s := <-sc
	// Idle, with both applications reading, as a tunnel's copy loop does.
	var dw sync.WaitGroup
	for _, c := range []net.Conn{cli, s} {
		c.SetReadDeadline(time.Now().Add(idle))
		dw.Add(1)
		go func() { defer dw.Done(); io.Copy(io.Discard, c) }()
	}
	dw.Wait()
	cli.SetReadDeadline(time.Time{})
	s.SetReadDeadline(time.Time{})
	idleEnd := time.Since(rec.Start())
	// Latency: 10 round trips of a 200-byte message echoed by the far end.
	var rtts []time.Duration
	buf := make([]byte, 200)
	for range 10 {
		t0 := time.Now()
		cli.Write(buf)
		io.ReadFull(s, buf)
		s.Write(buf)
		io.ReadFull(cli, buf)
		rtts = append(rtts, time.Since(t0))
	}
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	rttLine := fmt.Sprintf("rtt p50 %v p90 %v", rtts[5].Round(time.Millisecond), rtts[9].Round(time.Millisecond))
	upData, downData := make([]byte, up), make([]byte, down)
	rand.Read(upData)
	rand.Read(downData)
	var wg sync.WaitGroup
	var gotUp, gotDown [32]byte
	var nUp, nDown int64
	var tUp, tDown time.Duration
	start := time.Now()
	xfer := func(w, r net.Conn, data []byte, sum *[32]byte, n *int64, took *time.Duration) {
		defer wg.Done()
		go func() {
			w.Write(data)
			w.(*bridge.Conn).CloseWrite() // the sender closes at once
		}()
		h := sha256.New()
		*n, _ = io.Copy(h, r)
		copy(sum[:], h.Sum(nil))
		*took = time.Since(start)
	}
	wg.Add(2)
	go xfer(cli, s, upData, &gotUp, &nUp, &tUp)
	go xfer(s, cli, downData, &gotDown, &nDown, &tDown)
	wg.Wait()
	cli.Close()
	s.Close()
	ev := rec.Events()
	f, _ := os.Create("/tmp/wire-" + profile + ".trace")
	schedule.WriteTrace(f, ev)
	f.Close()
	var idleW, busyW [2]int64
	sizes := map[int]int{}
	for _, e := range ev {
		d := 0
		if e.Dir == schedule.DirReceived {
			d = 1
		}
		if e.Time < idleEnd {
			idleW[d] += int64(e.Size)
		} else {
			busyW[d] += int64(e.Size)
		}
		sizes[e.Size]++
	}
	type kv struct{ k, v int }
	var top []kv
	for k, v := range sizes {
		top = append(top, kv{k, v})
	}
	sort.Slice(top, func(i, j int) bool { return top[i].v > top[j].v })
	if len(top) > 4 {
		top = top[:4]
	}
	return rttLine + " | " + fmt.Sprintf("%-8s idle %.1fs: up %d B/s, down %d B/s | busy: up %d B in %v (sha ok %v, %.2f MB/s, wire/data %.2f), down %d B in %v (sha ok %v, %.2f MB/s, wire/data %.2f) | writes %d, commonest sizes %v",
		profile, idle.Seconds(), int64(float64(idleW[0])/idle.Seconds()), int64(float64(idleW[1])/idle.Seconds()),
		nUp, tUp.Round(time.Millisecond), gotUp == sha256.Sum256(upData) && nUp == int64(up), float64(nUp)/tUp.Seconds()/1e6, float64(busyW[0])/float64(max(nUp, 1)),
		nDown, tDown.Round(time.Millisecond), gotDown == sha256.Sum256(downData) && nDown == int64(down), float64(nDown)/tDown.Seconds()/1e6, float64(busyW[1])/float64(max(nDown, 1)),
		len(ev), top)
}

func main() {
	cases := []struct {
		p        string
		up, down int
	}{{"cbr", 3 << 20, 3 << 20}, {"video", 100 << 10, 3 << 20}, {"bitcoin", 3 << 20, 3 << 20}, {"none", 3 << 20, 3 << 20}}
	out := make([]string, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Add(1)
		go func() { defer wg.Done(); out[i] = run(c.p, c.up, c.down, 10*time.Second) }()
	}
	wg.Wait()
	for _, o := range out {
		fmt.Println(o)
	}
}

package nodeproxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	mrand "math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/internal/node"
	"github.com/bip324pt/bip324-pt/shaper"
	"github.com/bip324pt/bip324-pt/v2core"
)

// echoPeer is a v2 peer that sends every message back. Its connections'
// ends go to ended.
type echoPeer struct {
	ln    net.Listener
	ended chan error
}

func startEchoPeer(t *testing.T) *echoPeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoPeer{ln: ln, ended: make(chan error, 8)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				sc := shaper.Server(c, &shaper.Config{})
				mc := node.NewShapedConn(sc)
				defer mc.Close()
				for {
					cmd, payload, err := mc.ReadMessage()
					if err != nil {
						e.ended <- err
						return
					}
					if err := mc.WriteMessage(cmd, payload); err != nil {
						e.ended <- err
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return e
}

// TestTranslate_EveryMessage: every message type of BIP324's short-id
// table and a long-form one go from a v1 node to a v2 peer and back
// intact, a 4,000,000-byte message too.
func TestTranslate_EveryMessage(t *testing.T) {
	peer := startEchoPeer(t)
	proxy, _ := startProxy(t, Config{})
	c := dialVia(t, proxy, peer.ln.Addr().String())
	c.SetDeadline(time.Now().Add(30 * time.Second))
	mc := node.NewV1Conn(c, v2core.Mainnet, nil)
	r := mrand.New(mrand.NewPCG(1, 2))
	var cmds []string
	for id := uint8(1); ; id++ {
		cmd, ok := v2core.CommandForShortID(id)
		if !ok {
			break
		}
		cmds = append(cmds, cmd)
	}
	if len(cmds) != 28 {
		t.Fatalf("%d short ids, want BIP324's 28", len(cmds))
	}
	// A node's first message is its version (the proxy tells v1 from
	// v2 by it); then the rest in any order.
	cmds = append([]string{"version"}, cmds...)
	cmds = append(cmds, "sendtxrcncl", "x12345678901") // long form: not in the table
	for i, cmd := range cmds {
		payload := make([]byte, r.IntN(2000))
		if i == 2 {
			payload = make([]byte, 4_000_000) // a block at Core's message limit
		}
		for j := range payload {
			payload[j] = byte(r.Uint32())
		}
		if err := mc.WriteMessage(cmd, payload); err != nil {
			t.Fatal(err)
		}
		got, back, err := mc.ReadMessage()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		if got != cmd || !bytes.Equal(back, payload) {
			t.Fatalf("sent %s of %d bytes, got %s of %d back", cmd, len(payload), got, len(back))
		}
	}
}

// v1Raw is a v1 message with a checksum of our choosing.
func v1Raw(t *testing.T, cmd string, payload []byte, badSum bool) []byte {
	t.Helper()
	b, err := v2core.AppendV1Message(nil, v2core.Mainnet, cmd, payload)
	if err != nil {
		t.Fatal(err)
	}
	if badSum {
		b[20] ^= 0xff
	}
	return b
}

// TestTranslate_BadInput: a bad checksum drops that message alone, as
// Core does; a length over Core's limit closes the connection; a node
// closing mid-message ends the peer's side; a peer closing mid-packet
// ends the node's.
func TestTranslate_BadInput(t *testing.T) {
	t.Run("bad checksum", func(t *testing.T) {
		peer := startEchoPeer(t)
		proxy, logs := startProxy(t, Config{})
		c := dialVia(t, proxy, peer.ln.Addr().String())
		c.SetDeadline(time.Now().Add(10 * time.Second))
		mc := node.NewV1Conn(c, v2core.Mainnet, nil)
		c.Write(v1Raw(t, "version", []byte("v"), false))
		if cmd, _, err := mc.ReadMessage(); err != nil || cmd != "version" {
			t.Fatalf("version: %s, %v", cmd, err)
		}
		c.Write(append(v1Raw(t, "ping", []byte("12345678"), true), v1Raw(t, "pong", []byte("abcdefgh"), false)...))
		cmd, p, err := mc.ReadMessage()
		if err != nil || cmd != "pong" || string(p) != "abcdefgh" {
			t.Fatalf("got %s %q, %v; want only the pong back", cmd, p, err)
		}
		c.Close()
		if err := waitEnd(t, peer); err == nil {
			t.Error("peer's connection did not end")
		}
		_ = logs
	})
	t.Run("oversize", func(t *testing.T) {
		peer := startEchoPeer(t)
		proxy, logs := startProxy(t, Config{})
		c := dialVia(t, proxy, peer.ln.Addr().String())
		c.SetDeadline(time.Now().Add(10 * time.Second))
		hdr := v1Raw(t, "block", nil, false)[:24]
		binary.LittleEndian.PutUint32(hdr[16:20], 4_000_001)
		c.Write(append(v1Raw(t, "version", []byte("v"), false), hdr...))
		if _, err := io.ReadAll(c); err != nil {
			t.Logf("read: %v", err)
		}
		waitEnd(t, peer)
		if !bytes.Contains([]byte(logs.String()), []byte("a message Core would refuse")) {
			t.Errorf("log:\n%s", logs.String())
		}
	})
	t.Run("node closes mid-message", func(t *testing.T) {
		peer := startEchoPeer(t)
		proxy, _ := startProxy(t, Config{})
		c := dialVia(t, proxy, peer.ln.Addr().String())
		m := v1Raw(t, "version", make([]byte, 500), false)
		c.Write(m[:100])
		time.Sleep(50 * time.Millisecond)
		c.Close()
		if err := waitEnd(t, peer); err == nil {
			t.Error("no end at the peer")
		}
	})
	t.Run("peer closes mid-packet", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			vc := v2core.Server(c, &v2core.Config{})
			if vc.Handshake() != nil {
				c.Close()
				return
			}
			// Half a packet, then gone.
			c.Write([]byte{0x10, 0x00, 0x00, 0x01, 0x02})
			c.Close()
		}()
		proxy, _ := startProxy(t, Config{})
		c := dialVia(t, proxy, ln.Addr().String())
		c.SetDeadline(time.Now().Add(10 * time.Second))
		payload, _ := node.AppendVersion(nil, &node.Version{Protocol: node.ProtocolVersion, UserAgent: "/t/"})
		c.Write(v1Raw(t, "version", payload, false))
		if n, err := io.Copy(io.Discard, c); err != nil && !isClosed(err) || n != 0 {
			t.Errorf("node side: %d bytes, %v; want a close and nothing", n, err)
		}
	})
}

func isClosed(err error) bool {
	var ne net.Error
	return err == nil || err == io.EOF || (asNetErr(err, &ne) && !ne.Timeout())
}

func asNetErr(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}

// waitEnd waits for the echo peer's connection to end and returns why.
func waitEnd(t *testing.T, p *echoPeer) error {
	t.Helper()
	select {
	case err := <-p.ended:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the peer's connection did not end")
		return nil
	}
}

// FuzzTranslate: whatever a node sends, each v1 message the decoder
// accepts survives the v2 encoding and back unchanged, and nothing
// panics.
func FuzzTranslate(f *testing.F) {
	f.Add(append(mustV1("ping", []byte("12345678")), mustV1("version", make([]byte, 100))...))
	f.Add(mustV1("x12345678901", []byte{1, 2, 3}))
	f.Add([]byte{0xf9, 0xbe, 0xb4, 0xd9})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		go func() { a.Write(data); a.Close() }()
		mc := node.NewV1Conn(b, v2core.Mainnet, nil)
		defer b.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for ctx.Err() == nil {
			cmd, payload, err := mc.ReadMessage()
			if _, dropped := err.(*node.DroppedMessageError); dropped {
				continue
			}
			if err != nil {
				return
			}
			contents, err := v2core.AppendMessage(nil, cmd, payload)
			if err != nil {
				t.Fatalf("%q accepted from v1 but not encodable for v2: %v", cmd, err)
			}
			cmd2, payload2, err := v2core.ParseContents(contents)
			if err != nil || cmd2 != cmd || !bytes.Equal(payload2, payload) {
				t.Fatalf("%q: v2 round trip gave %q, %v", cmd, cmd2, err)
			}
			back, err := v2core.AppendV1Message(nil, v2core.Mainnet, cmd2, payload2)
			if err != nil || len(back) != 24+len(payload) {
				t.Fatalf("%q: back to v1: %v", cmd, err)
			}
		}
	})
}

func mustV1(cmd string, payload []byte) []byte {
	b, err := v2core.AppendV1Message(nil, v2core.Mainnet, cmd, payload)
	if err != nil {
		panic(err)
	}
	return b
}

package v2core_test

// Interoperability with an independent BIP324 implementation: btcd's
// github.com/btcsuite/btcd/v2transport v1.1.0, in both roles, over TCP
// loopback.
//
// Why TCP and not net.Pipe: btcd writes everything it has before it reads
// (its responder sends key and garbage, then terminator, decoys and version,
// before it reads a byte of ours), and net.Pipe has no buffer, so each
// Write waits for the peer's Read. Both ends would sit in Write and the test
// would deadlock. A loopback socket buffers far more than one handshake
// flight (at most 64 + 4095 + 16 + decoys + 20 bytes each way).

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/v2core"
	"github.com/btcsuite/btcd/v2transport"
)

// interopTimeout bounds every connection in these tests.
const interopTimeout = 10 * time.Second

// btcdNoTerminator is the text of btcd's unexported errGarbageTermNotRecv
// (transport.go), which CompleteHandshake returns when it gives up on the
// peer's garbage terminator.
const btcdNoTerminator = "no garbage term received"

// interopHooks shapes our handshake: a fixed amount of seeded garbage,
// handshake decoys and version contents.
type interopHooks struct {
	garbageLen int
	decoys     []int
	version    []byte
	seed       uint64
}

func (h *interopHooks) AppendGarbage(dst []byte, _ *[v2core.EllswiftKeySize]byte) []byte {
	if h.garbageLen == 0 {
		return dst
	}
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], h.seed)
	g := make([]byte, h.garbageLen)
	rand.NewChaCha8(s).Read(g)
	return append(dst, g...)
}

func (h *interopHooks) HandshakeDecoys() []int  { return h.decoys }
func (h *interopHooks) VersionContents() []byte { return h.version }

// interopRand is a seeded Config.Rand, so a failing case can be replayed
// with the same keys on our side (btcd always draws from crypto/rand).
type interopRand struct{ r *rand.ChaCha8 }

func newInteropRand(seed uint64) *interopRand {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[8:], seed)
	return &interopRand{rand.NewChaCha8(s)}
}

func (r *interopRand) Read(p []byte) (int, error) { return r.r.Read(p) }

// btcdNet converts our network to btcd's BitcoinNet, which btcd writes
// little-endian where we write the magic big-endian.
func btcdNet(n v2core.Network) v2transport.BitcoinNet {
	m := n.Magic()
	return v2transport.BitcoinNet(binary.LittleEndian.Uint32(m[:]))
}

// btcdSessionID reads btcd's session id. v2transport keeps it in the
// unexported field Peer.sessionID and has no accessor, so the test reads it
// by reflection (read-only). The check is exact, and it is backed by the
// packets both ways: they decrypt only if both ends derived the same keys
// from the same HKDF PRK that the session id comes from.
func btcdSessionID(p *v2transport.Peer) ([]byte, error) {
	f := reflect.ValueOf(p).Elem().FieldByName("sessionID")
	if !f.IsValid() || f.Kind() != reflect.Slice || f.Type().Elem().Kind() != reflect.Uint8 {
		return nil, errors.New("btcd's Peer has no sessionID []byte field any more; update btcdSessionID")
	}
	return bytes.Clone(f.Bytes()), nil
}

// interopPayload is n bytes of a pattern that differs per direction.
func interopPayload(n int, tag byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31+i>>8) ^ tag
	}
	return b
}

const (
	tagFromUs   = 0x5a
	tagFromBtcd = 0xa5
)

// Packet sizes sent each way after the handshake, and the decoy sent just
// before each of them: by us (which btcd's V2ReceivePacket must skip) and
// by btcd (which our ReadPacket must skip).
var (
	interopSizes      = []int{0, 1, 1000, 100000}
	interopOurDecoys  = []int{300, 0, 1, 70000}
	interopBtcdDecoys = []int{0, 17, 4096, 1}
)

// interopCase is one handshake shape. Our garbage never is 4095 bytes
// toward btcd: btcd v1.1.0 rejects that (see TestConn_BtcdGarbage4095).
type interopCase struct {
	ourGarbage, btcdGarbage int
	ourDecoys, btcdDecoys   []int // handshake decoys, before the version packet
	ourVersion              []byte
}

func (c interopCase) name() string {
	s := fmt.Sprintf("garbage=%d/%d", c.ourGarbage, c.btcdGarbage)
	if len(c.ourDecoys) > 0 || len(c.btcdDecoys) > 0 {
		s += fmt.Sprintf(",decoys=%v/%v", c.ourDecoys, c.btcdDecoys)
	}
	if len(c.ourVersion) > 0 {
		s += fmt.Sprintf(",version=%d", len(c.ourVersion))
	}
	return s
}

func interopCases() []interopCase {
	var cases []interopCase
	for _, og := range []int{0, 1, 4094} {
		// btcd toward us does get 4095: our terminator scan must take it.
		for _, bg := range []int{0, 1, 4094, 4095} {
			cases = append(cases, interopCase{ourGarbage: og, btcdGarbage: bg})
		}
	}
	return append(cases,
		interopCase{ourGarbage: 1, btcdGarbage: 1, ourDecoys: []int{0, 1, 1000, 100000}},
		interopCase{ourGarbage: 4094, btcdGarbage: 0, btcdDecoys: []int{0, 5, 70000}},
		interopCase{
			ourGarbage: 17, btcdGarbage: 4095,
			ourDecoys: []int{3, 0}, btcdDecoys: []int{1, 0, 2},
			// BIP324: version contents are ignored by current peers.
			ourVersion: []byte("bip324-pt interop"),
		},
	)
}

// TestConn_BtcdInterop runs our Conn against btcd's v2transport.Peer, each
// in both roles, and passes packets and decoys both ways.
func TestConn_BtcdInterop(t *testing.T) {
	checkInteropGoroutines(t)
	for i, c := range interopCases() {
		for _, weInitiate := range []bool{true, false} {
			role := "ours-client"
			if !weInitiate {
				role = "ours-server"
			}
			t.Run(role+"/"+c.name(), func(t *testing.T) {
				runInterop(t, c, weInitiate, uint64(i))
			})
		}
	}
}

// interopPair is two ends of a fresh loopback TCP connection, both with a
// deadline of interopTimeout.
func interopPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// The dial has completed, so the connection waits in the backlog.
	server, err = ln.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	deadline := time.Now().Add(interopTimeout)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)
	return client, server
}

type btcdResult struct {
	sessionID []byte
	err       error
}

func runInterop(t *testing.T, c interopCase, weInitiate bool, seed uint64) {
	clientConn, serverConn := interopPair(t)
	ourRaw, btcdRaw := clientConn, serverConn
	if !weInitiate {
		ourRaw, btcdRaw = serverConn, clientConn
	}
	closeBoth := func() {
		clientConn.Close()
		serverConn.Close()
	}

	cfg := &v2core.Config{
		Rand: newInteropRand(seed),
		Hooks: &interopHooks{
			garbageLen: c.ourGarbage,
			decoys:     c.ourDecoys,
			version:    c.ourVersion,
			seed:       seed,
		},
	}

	done := make(chan btcdResult, 1)
	go func() {
		id, err := btcdSide(btcdRaw, c, !weInitiate)
		done <- btcdResult{id, err}
	}()

	var ours *v2core.Conn
	if weInitiate {
		ours = v2core.Client(ourRaw, cfg)
	} else {
		ours = v2core.Server(ourRaw, cfg)
	}
	ourErr := ourSide(ours, c)
	if ourErr != nil {
		// Unblock btcd before waiting for it.
		closeBoth()
	}
	res := <-done
	closeBoth()

	if ourErr != nil {
		t.Errorf("our side: %v", ourErr)
	}
	if res.err != nil {
		t.Errorf("btcd side: %v", res.err)
	}
	if ourErr != nil || res.err != nil {
		return
	}
	id, ok := ours.SessionID()
	if !ok {
		t.Fatal("our SessionID is not available after a good handshake")
	}
	if !bytes.Equal(id[:], res.sessionID) {
		t.Errorf("session ids differ:\nours %x\nbtcd %x", id, res.sessionID)
	}
}

// ourSide runs our end: handshake, our decoys and packets, then btcd's
// packets, then the counters.
func ourSide(conn *v2core.Conn, c interopCase) error {
	ctx, cancel := context.WithTimeout(context.Background(), interopTimeout)
	defer cancel()
	if err := conn.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	// btcd sends the empty version packet of BIP324.
	if v := conn.PeerVersion(); len(v) != 0 {
		return fmt.Errorf("btcd's version contents: got %x, want none", v)
	}
	for i, n := range interopSizes {
		if err := conn.WriteDecoy(interopOurDecoys[i]); err != nil {
			return fmt.Errorf("WriteDecoy(%d): %w", interopOurDecoys[i], err)
		}
		if err := conn.WritePacket(interopPayload(n, tagFromUs)); err != nil {
			return fmt.Errorf("WritePacket(%d bytes): %w", n, err)
		}
	}
	for _, n := range interopSizes {
		got, err := conn.ReadPacket()
		if err != nil {
			return fmt.Errorf("ReadPacket (want %d bytes): %w", n, err)
		}
		if want := interopPayload(n, tagFromBtcd); !bytes.Equal(got, want) {
			return fmt.Errorf("packet from btcd: got %d bytes, want %d bytes of the pattern", len(got), n)
		}
	}
	st := conn.Stats()
	wantDecoys := uint64(len(c.btcdDecoys) + len(interopSizes))
	if st.DecoysIn != wantDecoys {
		return fmt.Errorf("decoys from btcd: dropped %d, want %d", st.DecoysIn, wantDecoys)
	}
	// Handshake decoys, version, then a decoy and a packet per size.
	wantPackets := wantDecoys + 1 + uint64(len(interopSizes))
	if st.PacketsIn != wantPackets {
		return fmt.Errorf("packets from btcd: decrypted %d, want %d", st.PacketsIn, wantPackets)
	}
	return nil
}

// btcdSide runs btcd's end and returns its session id. It runs on its own
// goroutine and reports through its result only.
func btcdSide(conn net.Conn, c interopCase, initiator bool) ([]byte, error) {
	p := v2transport.NewPeer()
	p.UseReadWriter(conn)
	bnet := btcdNet(v2core.Mainnet)
	if initiator {
		if err := p.InitiateV2Handshake(c.btcdGarbage); err != nil {
			return nil, fmt.Errorf("InitiateV2Handshake: %w", err)
		}
	} else {
		if err := p.RespondV2Handshake(c.btcdGarbage, bnet); err != nil {
			return nil, fmt.Errorf("RespondV2Handshake: %w", err)
		}
	}
	if err := p.CompleteHandshake(initiator, c.btcdDecoys, bnet); err != nil {
		return nil, fmt.Errorf("CompleteHandshake: %w", err)
	}
	// V2ReceivePacket drops decoys itself, so each call must return the
	// packet that follows our decoy.
	for _, n := range interopSizes {
		got, err := p.V2ReceivePacket(nil)
		if err != nil {
			return nil, fmt.Errorf("V2ReceivePacket (want %d bytes): %w", n, err)
		}
		if want := interopPayload(n, tagFromUs); !bytes.Equal(got, want) {
			return nil, fmt.Errorf("packet from us: got %d bytes, want %d bytes of the pattern", len(got), n)
		}
	}
	for i, n := range interopSizes {
		if _, _, err := p.V2EncPacket(make([]byte, interopBtcdDecoys[i]), nil, true); err != nil {
			return nil, fmt.Errorf("V2EncPacket(decoy %d): %w", interopBtcdDecoys[i], err)
		}
		if _, _, err := p.V2EncPacket(interopPayload(n, tagFromBtcd), nil, false); err != nil {
			return nil, fmt.Errorf("V2EncPacket(%d bytes): %w", n, err)
		}
	}
	return btcdSessionID(p)
}

// TestConn_BtcdGarbage4095 is the evidence for leaving 4095 bytes of our
// garbage out of TestConn_BtcdInterop. BIP324 allows 0..4095 bytes of
// garbage ("MAX_GARBAGE_LEN = 4095") and a receiver must search 4095 + 16
// bytes for the terminator. btcd v1.1.0 does not: in transport.go,
// (*Peer).CompleteHandshake reads 16 bytes and then loops
// `for i := 0; i < MaxGarbageLen; i++` (line 774), comparing the last 16
// bytes with the terminator *before* it reads one more byte. The last
// comparison runs at i = 4094, on 4094 bytes of garbage; the 4111th byte
// is read at the end of that iteration and never compared, so a terminator
// after exactly 4095 bytes of garbage fails with errGarbageTermNotRecv
// ("no garbage term received"). The bound should be i <= MaxGarbageLen.
//
// The subtests show the failure is btcd's: our 4095 bytes are accepted by
// our own responder and initiator, btcd's own 4095 bytes are rejected by
// btcd in both roles, and btcd accepts 4094.
func TestConn_BtcdGarbage4095(t *testing.T) {
	checkInteropGoroutines(t)
	const maxGarbage = v2core.MaxGarbageLen // 4095

	t.Run("ours-to-ours", func(t *testing.T) {
		for _, ourClient4095 := range []bool{true, false} {
			clientConn, serverConn := interopPair(t)
			clientHooks := &interopHooks{garbageLen: 0, seed: 1}
			serverHooks := &interopHooks{garbageLen: maxGarbage, seed: 2}
			if ourClient4095 {
				clientHooks, serverHooks = serverHooks, clientHooks
			}
			client := v2core.Client(clientConn, &v2core.Config{Hooks: clientHooks})
			server := v2core.Server(serverConn, &v2core.Config{Hooks: serverHooks})
			errc := make(chan error, 1)
			go func() {
				err := server.Handshake()
				if err == nil {
					var got []byte
					if got, err = server.ReadPacket(); err == nil && string(got) != "ping" {
						err = fmt.Errorf("server read %q, want ping", got)
					}
				}
				errc <- err
			}()
			err := client.Handshake()
			if err == nil {
				err = client.WritePacket([]byte("ping"))
			}
			if err != nil {
				clientConn.Close()
				serverConn.Close()
			}
			serr := <-errc
			clientConn.Close()
			serverConn.Close()
			if err != nil || serr != nil {
				t.Errorf("4095 bytes of garbage from our client=%v: client %v, server %v", ourClient4095, err, serr)
			}
		}
	})

	// Our 4095 bytes toward btcd, in both roles: btcd gives up on our
	// terminator. Our end may or may not see the handshake through (btcd
	// has sent all of its flight before it scans), so only btcd's error is
	// checked.
	t.Run("ours-to-btcd", func(t *testing.T) {
		for _, weInitiate := range []bool{true, false} {
			c := interopCase{ourGarbage: maxGarbage}
			clientConn, serverConn := interopPair(t)
			ourRaw, btcdRaw := clientConn, serverConn
			if !weInitiate {
				ourRaw, btcdRaw = serverConn, clientConn
			}
			done := make(chan error, 1)
			go func() {
				_, err := btcdSide(btcdRaw, c, !weInitiate)
				btcdRaw.Close() // let our end see the failure
				done <- err
			}()
			cfg := &v2core.Config{Hooks: &interopHooks{garbageLen: maxGarbage, seed: 3}}
			var ours *v2core.Conn
			if weInitiate {
				ours = v2core.Client(ourRaw, cfg)
			} else {
				ours = v2core.Server(ourRaw, cfg)
			}
			ourErr := ours.Handshake()
			if ourErr == nil {
				_, ourErr = ours.ReadPacket() // ends when btcd closes
			}
			err := <-done
			clientConn.Close()
			serverConn.Close()
			if err == nil || !strings.Contains(err.Error(), btcdNoTerminator) {
				t.Errorf("we initiate=%v: btcd's error is %v, want %q", weInitiate, err, btcdNoTerminator)
			}
			if ourErr == nil {
				t.Errorf("we initiate=%v: our end read a packet from a btcd that failed", weInitiate)
			}
		}
	})

	// btcd against btcd: 4094 bytes pass, 4095 fail, whichever end sends
	// them. So the bug needs no help from our implementation.
	t.Run("btcd-to-btcd", func(t *testing.T) {
		for _, garbage := range []int{maxGarbage - 1, maxGarbage} {
			for _, initiatorSends := range []bool{true, false} {
				ig, rg := garbage, 0
				if !initiatorSends {
					ig, rg = 0, garbage
				}
				clientConn, serverConn := interopPair(t)
				done := make(chan error, 1)
				go func() {
					p := v2transport.NewPeer()
					p.UseReadWriter(serverConn)
					err := p.RespondV2Handshake(rg, btcdNet(v2core.Mainnet))
					if err == nil {
						err = p.CompleteHandshake(false, nil, btcdNet(v2core.Mainnet))
					}
					serverConn.Close()
					done <- err
				}()
				p := v2transport.NewPeer()
				p.UseReadWriter(clientConn)
				ierr := p.InitiateV2Handshake(ig)
				if ierr == nil {
					ierr = p.CompleteHandshake(true, nil, btcdNet(v2core.Mainnet))
				}
				clientConn.Close()
				rerr := <-done
				// The receiver of the garbage is the end that fails.
				recvErr := rerr
				if !initiatorSends {
					recvErr = ierr
				}
				if garbage == maxGarbage {
					if recvErr == nil || !strings.Contains(recvErr.Error(), btcdNoTerminator) {
						t.Errorf("garbage %d from initiator=%v: receiver's error %v, want %q",
							garbage, initiatorSends, recvErr, btcdNoTerminator)
					}
				} else if ierr != nil || rerr != nil {
					t.Errorf("garbage %d from initiator=%v: initiator %v, responder %v",
						garbage, initiatorSends, ierr, rerr)
				}
			}
		}
	})

	// btcd's 4095 bytes toward us pass in both roles (also covered by
	// TestConn_BtcdInterop's cases with btcd garbage 4095).
	t.Run("btcd-to-ours", func(t *testing.T) {
		for _, weInitiate := range []bool{true, false} {
			runInterop(t, interopCase{ourGarbage: 0, btcdGarbage: maxGarbage}, weInitiate, 4)
		}
	})
}

// checkInteropGoroutines fails the test if goroutines started during it
// are still running a few seconds after it ends (the idea of wireguard-go's
// goroutineLeakCheck, by count).
func checkInteropGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines before the test, %d after:\n%s", before, runtime.NumGoroutine(), buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

package v2core

// The official BIP324 test vectors, from the bips repository's bip-0324/
// folder (BIP version 1.0.2), copied byte for byte into testdata/. Every
// row is checked, intermediate (mid_*) columns included.

import (
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"os"
	"strconv"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ellswift"
)

// readVectors parses a CSV file into rows keyed by the header's names.
func readVectors(t *testing.T, name string) []map[string]string {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 2 {
		t.Fatalf("%s: no rows", name)
	}
	var rows []map[string]string
	for _, rec := range recs[1:] {
		row := make(map[string]string)
		for i, col := range recs[0] {
			row[col] = rec[i]
		}
		rows = append(rows, row)
	}
	return rows
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func fieldVal(t *testing.T, s string) *btcec.FieldVal {
	t.Helper()
	var f btcec.FieldVal
	f.SetByteSlice(unhex(t, s))
	f.Normalize() // SetByteSlice does not reduce mod p
	return &f
}

func TestPacketEncodingVectors(t *testing.T) {
	rows := readVectors(t, "packet_encoding_test_vectors.csv")
	if len(rows) != 7 {
		t.Fatalf("got %d rows, want 7", len(rows))
	}
	for i, row := range rows {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			checkPacketVector(t, row)
		})
	}
}

func checkPacketVector(t *testing.T, row map[string]string) {
	eq := func(name string, got []byte) {
		t.Helper()
		if want := unhex(t, row[name]); !bytes.Equal(got, want) {
			t.Errorf("%s = %x, want %x", name, got, want)
		}
	}
	priv, _ := btcec.PrivKeyFromBytes(unhex(t, row["in_priv_ours"]))
	var ours, theirs [EllswiftKeySize]byte
	copy(ours[:], unhex(t, row["in_ellswift_ours"]))
	copy(theirs[:], unhex(t, row["in_ellswift_theirs"]))
	initiator := row["in_initiating"] == "1"

	eq("mid_x_ours", priv.PubKey().X().FillBytes(make([]byte, 32)))
	xTheirs, err := ellswift.XSwiftEC(fieldVal(t, row["in_ellswift_theirs"][:64]), fieldVal(t, row["in_ellswift_theirs"][64:]))
	if err != nil {
		t.Fatal(err)
	}
	eq("mid_x_theirs", xTheirs.Bytes()[:])
	xShared, err := ellswift.EllswiftECDHXOnly(theirs, priv)
	if err != nil {
		t.Fatal(err)
	}
	eq("mid_x_shared", xShared[:])

	secret, err := sharedSecret(priv, &ours, &theirs, initiator)
	if err != nil {
		t.Fatal(err)
	}
	eq("mid_shared_secret", secret[:])
	keys := deriveKeys(&secret, Mainnet)
	eq("mid_initiator_l", keys.initiatorL[:])
	eq("mid_initiator_p", keys.initiatorP[:])
	eq("mid_responder_l", keys.responderL[:])
	eq("mid_responder_p", keys.responderP[:])
	sendTerm, recvTerm := keys.garbageTerminators[:16], keys.garbageTerminators[16:]
	if !initiator {
		sendTerm, recvTerm = recvTerm, sendTerm
	}
	eq("mid_send_garbage_terminator", sendTerm)
	eq("mid_recv_garbage_terminator", recvTerm)
	eq("out_session_id", keys.sessionID[:])

	s := newSession(keys, initiator, DefaultMaxContentLen)
	idx, _ := strconv.Atoi(row["in_idx"])
	var scratch []byte
	for range idx {
		scratch = s.seal(scratch[:0], nil, 0, false)
	}
	contents := unhex(t, row["in_contents"])
	mult, _ := strconv.Atoi(row["in_multiply"])
	contents = bytes.Repeat(contents, mult)
	s.sendAAD = unhex(t, row["in_aad"])
	pkt := s.seal(nil, contents, len(contents), row["in_ignore"] == "1")
	if want := row["out_ciphertext"]; want != "" {
		eq("out_ciphertext", pkt)
	} else {
		eq("out_ciphertext_endswith", pkt[len(pkt)-len(row["out_ciphertext_endswith"])/2:])
	}

	// The receive path: a peer holding the same keys in the other role
	// decrypts the same packet stream.
	peer := newSession(keys, !initiator, MaxLengthField)
	dec := peer.Decoder()
	var stream []byte
	s2 := newSession(keys, initiator, DefaultMaxContentLen)
	for range idx {
		stream = s2.seal(stream[:0], nil, 0, false)
		p, n, err := dec.Decode(stream)
		if err != nil || p == nil || n != len(stream) || len(p.Contents) != 0 {
			t.Fatalf("decoding filler packet: %v %v %d", err, p, n)
		}
	}
	dec.aad = unhex(t, row["in_aad"])
	p, n, err := dec.Decode(pkt)
	if err != nil || p == nil || n != len(pkt) {
		t.Fatalf("decoding the vector's packet: %v, %v, %d", err, p, n)
	}
	if !bytes.Equal(p.Contents, contents) || p.Ignore != (row["in_ignore"] == "1") {
		t.Errorf("decoded contents differ (ignore=%v)", p.Ignore)
	}
}

func TestEllswiftDecodeVectors(t *testing.T) {
	rows := readVectors(t, "ellswift_decode_test_vectors.csv")
	if len(rows) != 76 {
		t.Fatalf("got %d rows, want 76", len(rows))
	}
	// priv = 1 makes the x-only ECDH the decoded x itself, so this runs
	// the exact path sharedSecret takes with a peer's 64 bytes.
	var one [32]byte
	one[31] = 1
	priv, _ := btcec.PrivKeyFromBytes(one[:])
	for i, row := range rows {
		var ell [EllswiftKeySize]byte
		copy(ell[:], unhex(t, row["ellswift"]))
		want := unhex(t, row["x"])
		x, err := ellswift.XSwiftEC(fieldVal(t, row["ellswift"][:64]), fieldVal(t, row["ellswift"][64:]))
		if err != nil || !bytes.Equal(x.Bytes()[:], want) {
			t.Errorf("row %d (%s): XSwiftEC = %v, %v; want %x", i, row["comment"], x, err, want)
		}
		got, err := ellswift.EllswiftECDHXOnly(ell, priv)
		if err != nil || !bytes.Equal(got[:], want) {
			t.Errorf("row %d (%s): ECDH with 1 = %x, %v; want %x", i, row["comment"], got, err, want)
		}
	}
}

func TestXSwiftECInvVectors(t *testing.T) {
	rows := readVectors(t, "xswiftec_inv_test_vectors.csv")
	if len(rows) != 32 {
		t.Fatalf("got %d rows, want 32", len(rows))
	}
	checked := 0
	for i, row := range rows {
		u, x := fieldVal(t, row["u"]), fieldVal(t, row["x"])
		for c := range 8 {
			want := row["case"+strconv.Itoa(c)+"_t"]
			got := ellswift.XSwiftECInv(u, x, c)
			checked++
			if want == "" {
				if got != nil {
					t.Errorf("row %d case %d: got t=%v, want none", i, c, got)
				}
				continue
			}
			if got == nil {
				t.Errorf("row %d case %d: got none, want %s", i, c, want)
				continue
			}
			got.Normalize()
			if hex.EncodeToString(got.Bytes()[:]) != want {
				t.Errorf("row %d case %d: t = %v, want %s", i, c, got, want)
			}
			back, err := ellswift.XSwiftEC(u, got)
			if err != nil || !back.Equals(x) {
				t.Errorf("row %d case %d: XSwiftEC(u, t) = %v, %v; want x", i, c, back, err)
			}
		}
	}
	if checked != 256 {
		t.Fatalf("checked %d cases, want 256", checked)
	}
}

// TestEncodeKey_RoundTrip checks our encoder loop: every encoding it makes
// decodes to the public key's x.
func TestEncodeKey_RoundTrip(t *testing.T) {
	r := newTestRand(1)
	var one [32]byte
	one[31] = 1
	unit, _ := btcec.PrivKeyFromBytes(one[:])
	for range 64 {
		kp, err := newKeyPair(r)
		if err != nil {
			t.Fatal(err)
		}
		x, err := ellswift.EllswiftECDHXOnly(kp.ellswift, unit)
		if err != nil {
			t.Fatal(err)
		}
		if want := kp.priv.PubKey().X().FillBytes(make([]byte, 32)); !bytes.Equal(x[:], want) {
			t.Fatalf("encoding decodes to %x, want %x", x, want)
		}
	}
}

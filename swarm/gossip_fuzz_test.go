package swarm

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzGossipMessage feeds the ms_manifest decoder arbitrary bytes, as a
// peer may send. It must not panic; what it accepts must be within the
// bounds a follower relies on (a data message's bytes exactly its piece
// of total, total within the cap) and the canonical encoding of what it
// returns.
func FuzzGossipMessage(f *testing.F) {
	h := make([]byte, 32)
	for _, m := range []*gossipMsg{
		{Type: gossipHave, List: "demo", Seq: 3, Hash: h},
		{Type: gossipRequest, List: "demo", Seq: 3, Piece: 1, Have: h},
		{Type: gossipRequest, List: "demo", Seq: 3},
		{Type: gossipData, List: "demo", Seq: 3, Piece: 0, Total: 5, Data: []byte("hello")},
		{Type: gossipData, List: "demo", Seq: 3, Piece: 1, Total: gossipPiece + 2, Patch: 1, Data: []byte("hi")},
		{Type: gossipReject, List: "demo", Seq: 3},
	} {
		b := m.Encode()
		if got, err := decodeGossip(b); err != nil || !reflect.DeepEqual(got, m) {
			f.Fatalf("decodeGossip(Encode(%+v)) = %+v, %v", m, got, err)
		}
		f.Add(b)
		f.Add(b[:len(b)-1])
	}
	f.Add([]byte("de"))
	f.Add([]byte("d1:ti9ee"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeGossip(b)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Encode(), b) {
			t.Fatalf("accepted a non-canonical message %q", b)
		}
		if m.Type == gossipData {
			limit := maxFollowManifest
			if m.Patch == 1 {
				limit = maxPatchSize
			}
			if m.Total <= 0 || m.Total > limit || m.Piece*gossipPiece+len(m.Data) > m.Total || len(m.Data) == 0 || len(m.Data) > gossipPiece {
				t.Fatalf("data out of bounds: piece %d, %d bytes, total %d", m.Piece, len(m.Data), m.Total)
			}
		} else if len(m.Data) != 0 {
			t.Fatalf("type %d with %d trailing bytes", m.Type, len(m.Data))
		}
	})
}

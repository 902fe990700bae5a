package swarm

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/anacrolix/torrent/bencode"
)

// The ms_manifest extension (BEP 10) carries manifests between nodes
// connected on a list's rendezvous torrent (gossip.go). A message is a
// bencoded dictionary, followed for "data" by the bytes of one piece, as
// in ut_metadata (BEP 9):
//
//	have    {t:0, list, seq, hash}           the newest manifest the sender holds
//	request {t:1, list, seq, piece, have?}   piece of manifest seq; have: the
//	                                         file hash of the manifest the
//	                                         requester holds (answer a patch)
//	data    {t:2, list, seq, piece, total, patch} + bytes
//	reject  {t:3, list, seq}                 not held (any more)
//
// Every message is canonical bencode (what Encode writes), and a decoder
// refuses anything else: one spelling per message, so the fuzzer checks
// decode(encode(m)) == m.
const (
	gossipExt = "ms_manifest"
	// gossipPiece is the size of a data message's bytes, ut_metadata's.
	gossipPiece = 16 << 10
	// maxGossipMsg bounds a message: a piece and its dictionary.
	maxGossipMsg = gossipPiece + 512
)

// Message types.
const (
	gossipHave = iota
	gossipRequest
	gossipData
	gossipReject
)

// gossipMsg is one ms_manifest message.
type gossipMsg struct {
	Type  int    `bencode:"t"`
	List  string `bencode:"list"`
	Seq   int64  `bencode:"seq"`
	Hash  []byte `bencode:"hash,omitempty"`  // have: the manifest's file hash
	Piece int    `bencode:"piece,omitempty"` // request, data
	Total int    `bencode:"total,omitempty"` // data: the body's size
	Patch int    `bencode:"patch,omitempty"` // data: 1 when the body is a patch
	Have  []byte `bencode:"have,omitempty"`  // request: the requester's manifest hash
	// Data is a data message's piece, after the dictionary.
	Data []byte `bencode:"-"`
}

var errGossipMsg = errors.New("swarm: bad ms_manifest message")

// Encode returns the message's bytes.
func (m *gossipMsg) Encode() []byte {
	b, err := bencode.Marshal(m)
	if err != nil {
		panic(err) // only strings and integers
	}
	return append(b, m.Data...)
}

// decodeGossip parses one message; it refuses one that is not canonical,
// has a field its type does not carry, or is out of bounds.
func decodeGossip(b []byte) (*gossipMsg, error) {
	if len(b) > maxGossipMsg {
		return nil, fmt.Errorf("%w: %d bytes", errGossipMsg, len(b))
	}
	var m gossipMsg
	err := bencode.Unmarshal(b, &m)
	var trailing bencode.ErrUnusedTrailingBytes
	n := 0
	if errors.As(err, &trailing) {
		n, err = trailing.NumUnusedBytes, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errGossipMsg, err)
	}
	if n > 0 {
		m.Data = bytes.Clone(b[len(b)-n:])
	}
	bad := func(why string) (*gossipMsg, error) {
		return nil, fmt.Errorf("%w: type %d: %s", errGossipMsg, m.Type, why)
	}
	if m.List == "" || len(m.List) > 255 || m.Seq <= 0 {
		return bad("no list or seq")
	}
	switch m.Type {
	case gossipHave:
		if len(m.Hash) != 32 || m.Piece != 0 || m.Total != 0 || m.Patch != 0 || m.Have != nil || n > 0 {
			return bad("a have is list, seq and a 32-byte hash")
		}
	case gossipRequest:
		if (m.Have != nil && len(m.Have) != 32) || m.Piece < 0 || m.Hash != nil || m.Total != 0 || m.Patch != 0 || n > 0 {
			return bad("a request is list, seq, piece and have")
		}
		if m.Piece > maxFollowManifest/gossipPiece {
			return bad("piece out of range")
		}
	case gossipData:
		if m.Hash != nil || m.Have != nil || m.Patch < 0 || m.Patch > 1 || m.Piece < 0 {
			return bad("a data is list, seq, piece, total, patch")
		}
		if limit := map[int]int{0: maxFollowManifest, 1: maxPatchSize}[m.Patch]; m.Total <= 0 || m.Total > limit {
			return bad(fmt.Sprintf("oversized: a body of %d bytes, more than the %d a follower reads", m.Total, limit))
		}
		pieces := (m.Total + gossipPiece - 1) / gossipPiece
		want := gossipPiece
		if m.Piece == pieces-1 {
			want = m.Total - m.Piece*gossipPiece
		}
		if m.Piece >= pieces || n != want {
			return bad(fmt.Sprintf("piece %d of %d bytes carries %d", m.Piece, m.Total, n))
		}
	case gossipReject:
		if m.Hash != nil || m.Have != nil || m.Piece != 0 || m.Total != 0 || m.Patch != 0 || n > 0 {
			return bad("a reject is list and seq")
		}
	default:
		return bad("unknown type")
	}
	if !bytes.Equal(m.Encode(), b) {
		return bad("not canonical bencode")
	}
	return &m, nil
}

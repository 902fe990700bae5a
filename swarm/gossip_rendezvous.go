package swarm

import (
	"context"
	"crypto/ed25519"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"io"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
)

// A list's rendezvous torrent is where the nodes of one list meet, found
// from the list's key and name alone (a peer's BitTorrent address, or
// the DHT's peers of its infohash): every node adds it, origin and
// mirror, a mirror before its first manifest too, and manifests travel
// on its connections (ms_manifest, gossip.go).
//
// Its info is built from the key and the name, so every node computes
// the same infohash and needs no ut_metadata. It has two pieces: the
// first, 32 bytes every node writes itself (sha256 of the key and name),
// and the second, whose hash is 20 zero bytes, which nobody can write.
// So no node ever completes it: anacrolix drops a connection between two
// nodes complete on a torrent (ClientConfig.DropMutuallyCompletePeers),
// which for a torrent everyone completes is every connection. Turning
// that off for the whole client would instead keep every seeder-seeder
// connection of every pack torrent (one per pack and bundle a pair of
// mirrors ever exchanged: hundreds), where this costs one connection per
// peer per list. Nobody requests the second piece: no peer has it.
const rendezvousPiece = 16 << 10

// rendezvousData is the rendezvous torrent's first piece.
func rendezvousData(key ed25519.PublicKey, list string) []byte {
	h := sha256.New()
	io.WriteString(h, "mailswarm rendezvous\x00")
	io.WriteString(h, list)
	h.Write([]byte{0})
	h.Write(key)
	return h.Sum(nil)
}

// rendezvousInfo returns the rendezvous torrent's info dictionary.
func rendezvousInfo(key ed25519.PublicKey, list string) []byte {
	data := rendezvousData(key, list)
	info := metainfo.Info{
		Name:        "mailswarm-rendezvous",
		PieceLength: rendezvousPiece,
		Length:      rendezvousPiece + int64(len(data)),
		// The first piece is the data, zero-padded to a piece; the
		// second, 32 bytes, has a hash no bytes are known to have.
		Pieces: append(sha1Padded(data), make([]byte, sha1.Size)...),
	}
	b, err := bencode.Marshal(info)
	if err != nil {
		panic(err)
	}
	return b
}

func sha1Padded(data []byte) []byte {
	p := make([]byte, rendezvousPiece)
	copy(p, data)
	h := sha1.Sum(p)
	return h[:]
}

// RendezvousInfoHash is the infohash of the list's rendezvous torrent:
// the peers of a list, from its key and name alone (DHT get_peers).
func RendezvousInfoHash(key ed25519.PublicKey, list string) metainfo.Hash {
	return metainfo.HashBytes(rendezvousInfo(key, list))
}

// rendezvousStorage holds the rendezvous torrent in memory: its first
// piece complete (the data, zero-padded), its second never.
type rendezvousStorage struct{ piece []byte }

func newRendezvousStorage(key ed25519.PublicKey, list string) rendezvousStorage {
	p := make([]byte, rendezvousPiece)
	copy(p, rendezvousData(key, list))
	return rendezvousStorage{piece: p}
}

func (s rendezvousStorage) OpenTorrent(context.Context, *metainfo.Info, metainfo.Hash) (storage.TorrentImpl, error) {
	return storage.TorrentImpl{
		Piece: func(p metainfo.Piece) storage.PieceImpl { return rendezvousPieceImpl{s.piece, p.Index() == 0} },
		Close: func() error { return nil },
	}, nil
}

type rendezvousPieceImpl struct {
	data     []byte
	complete bool
}

var errRendezvousWrite = errors.New("swarm: the rendezvous torrent takes no data")

func (p rendezvousPieceImpl) ReadAt(b []byte, off int64) (int, error) {
	if !p.complete {
		return 0, errRendezvousWrite
	}
	if off >= int64(len(p.data)) {
		return 0, io.EOF
	}
	n := copy(b, p.data[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (p rendezvousPieceImpl) WriteAt(b []byte, off int64) (int, error) {
	return 0, errRendezvousWrite
}

func (p rendezvousPieceImpl) MarkComplete() error    { return nil }
func (p rendezvousPieceImpl) MarkNotComplete() error { return nil }
func (p rendezvousPieceImpl) Completion() storage.Completion {
	return storage.Completion{Ok: true, Complete: p.complete}
}

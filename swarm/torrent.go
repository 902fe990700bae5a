package swarm

import (
	"crypto/sha1"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// Torrents follow one fixed recipe so that anyone holding a pack computes
// the same infohash from its bytes alone: BitTorrent v1 (anacrolix cannot
// make v2, and hybrids fail with libtorrent and aria2), single file, info
// = {length, name, piece length, pieces} with name = the file's name and
// the piece length a function of the size; no announce, creation date,
// comment, created by, private or source keys. Web seeds (BEP 19
// url-list) sit outside the info dictionary and do not change the hash.

// Piece lengths: the smallest power of two from 16 KiB to 4 MiB that
// keeps the file within 2,048 pieces (beyond 8 GiB, 4 MiB pieces).
const (
	minPieceLength = 16 << 10
	maxPieceLength = 4 << 20
	targetPieces   = 2048
)

// PieceLength is the recipe's piece length for a file of size bytes.
func PieceLength(size int64) int64 {
	pl := int64(minPieceLength)
	for pl < maxPieceLength && (size+pl-1)/pl > targetPieces {
		pl *= 2
	}
	return pl
}

// TorrentFor returns the torrent of the file at path made with the fixed
// recipe, with webSeeds as its BEP 19 url-list.
func TorrentFor(path string, webSeeds ...string) (*metainfo.MetaInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("swarm: torrent of %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("swarm: torrent of %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() == 0 {
		return nil, fmt.Errorf("swarm: torrent of %s: not a non-empty regular file", path)
	}
	info := metainfo.Info{
		Name:        filepath.Base(path),
		Length:      fi.Size(),
		PieceLength: PieceLength(fi.Size()),
	}
	buf := make([]byte, info.PieceLength)
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			sum := sha1.Sum(buf[:n])
			info.Pieces = append(info.Pieces, sum[:]...)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("swarm: torrent of %s: %w", path, err)
		}
	}
	if got := int64(len(info.Pieces) / sha1.Size); got != (fi.Size()+info.PieceLength-1)/info.PieceLength {
		return nil, fmt.Errorf("swarm: torrent of %s: the file changed while it was hashed", path)
	}
	ib, err := bencode.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("swarm: torrent of %s: %w", path, err)
	}
	return &metainfo.MetaInfo{InfoBytes: ib, UrlList: webSeeds}, nil
}

// BundleTorrentFor returns the multi-file torrent named name over the
// files at paths, in that order, made with the fixed recipe: info = {files
// (length, path = the file's name), name, piece length, pieces}, pieces
// running across file boundaries as BitTorrent v1 has them, the piece
// length by the total size.
func BundleTorrentFor(name string, paths []string, webSeeds ...string) (*metainfo.MetaInfo, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("swarm: bundle %s: no files", name)
	}
	info := metainfo.Info{Name: name}
	var total int64
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("swarm: bundle %s: %w", name, err)
		}
		if !fi.Mode().IsRegular() || fi.Size() == 0 {
			return nil, fmt.Errorf("swarm: bundle %s: %s is not a non-empty regular file", name, p)
		}
		info.Files = append(info.Files, metainfo.FileInfo{Length: fi.Size(), Path: []string{filepath.Base(p)}})
		total += fi.Size()
	}
	info.PieceLength = PieceLength(total)
	buf := make([]byte, 0, info.PieceLength)
	var hashed int64
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("swarm: bundle %s: %w", name, err)
		}
		n, err := hashInto(&info, &buf, io.LimitReader(f, info.Files[i].Length))
		f.Close()
		hashed += n
		if err != nil {
			return nil, fmt.Errorf("swarm: bundle %s: %w", name, err)
		}
		if n != info.Files[i].Length {
			return nil, fmt.Errorf("swarm: bundle %s: %s changed while it was hashed", name, p)
		}
	}
	if len(buf) > 0 {
		sum := sha1.Sum(buf)
		info.Pieces = append(info.Pieces, sum[:]...)
	}
	ib, err := bencode.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("swarm: bundle %s: %w", name, err)
	}
	return &metainfo.MetaInfo{InfoBytes: ib, UrlList: webSeeds}, nil
}

// hashInto feeds r into the piece buffer buf, appending a piece hash to
// info each time a piece fills.
func hashInto(info *metainfo.Info, buf *[]byte, r io.Reader) (int64, error) {
	var n int64
	for {
		b := *buf
		m, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		n += int64(m)
		if len(b) == cap(b) {
			sum := sha1.Sum(b)
			info.Pieces = append(info.Pieces, sum[:]...)
			b = b[:0]
		}
		*buf = b
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

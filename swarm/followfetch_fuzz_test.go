package swarm

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// FuzzTorrentInfo feeds a follower's .torrent path arbitrary files: what
// getTorrent and fetch do with the bytes a source sends as
// lists/L/torrents/NAME.torrent (metainfo.Load under the size cap, the
// info dictionary unmarshalled, checkInfo against the job) and then what
// httpFill reads of an info that passed (every piece's offset, length
// and hash). The infohash check, which a fuzzer cannot pass, is left out:
// this is the defence behind it. Nothing may panic, and an info checkInfo
// passes has exactly the job's files and sizes and a piece hash for every
// piece.
func FuzzTorrentInfo(f *testing.F) {
	dir := f.TempDir()
	var paths []string
	var packs []*PackEntry
	for i, size := range []int{100, 40 << 10} {
		p := filepath.Join(dir, "d"+string(rune('1'+i))+".pack")
		if err := os.WriteFile(p, bytes.Repeat([]byte{byte(i)}, size), 0o644); err != nil {
			f.Fatal(err)
		}
		paths = append(paths, p)
		packs = append(packs, &PackEntry{File: filepath.Base(p), Size: int64(size)})
	}
	single, err := TorrentFor(paths[1])
	if err != nil {
		f.Fatal(err)
	}
	bundle, err := BundleTorrentFor("b", paths)
	if err != nil {
		f.Fatal(err)
	}
	for _, mi := range []*metainfo.MetaInfo{single, bundle} {
		b, err := bencode.Marshal(mi)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, mi == bundle)
		f.Add(bytes.Replace(b, []byte("12:piece lengthi16384e"), []byte("12:piece lengthi0e"), 1), mi == bundle)
		f.Add(bytes.Replace(b, []byte("6:pieces"), []byte("6:piecez"), 1), mi == bundle)
	}
	f.Add([]byte("d4:infod4:name1:b12:piece lengthi-1e6:pieces0:6:lengthi1eee"), false)
	f.Fuzz(func(t *testing.T, b []byte, isBundle bool) {
		j := &job{name: packs[1].File, packs: packs[1:]}
		if isBundle {
			j = &job{name: "b", bundle: &BundleEntry{Name: "b"}, packs: packs}
		}
		mi, err := metainfo.Load(bytes.NewReader(b[:min(len(b), maxTorrentFile)]))
		if err != nil {
			return
		}
		info, err := mi.UnmarshalInfo()
		if err != nil {
			return
		}
		if checkInfo(&info, j) != nil {
			return
		}
		if info.TotalLength() != j.size() {
			t.Fatalf("checkInfo passed %d bytes for a job of %d", info.TotalLength(), j.size())
		}
		var sum int64
		for i := range info.NumPieces() {
			p := info.Piece(i)
			if p.Offset() != sum || p.Length() <= 0 {
				t.Fatalf("piece %d at %d, %d bytes; want at %d", i, p.Offset(), p.Length(), sum)
			}
			sum += p.Length()
			_ = p.V1Hash().Unwrap()
		}
		if sum != j.size() {
			t.Fatalf("pieces cover %d bytes of %d", sum, j.size())
		}
	})
}

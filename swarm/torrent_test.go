package swarm

import (
	"bytes"
	"crypto/sha1"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
)

func TestPieceLength(t *testing.T) {
	for _, tc := range []struct{ size, want int64 }{
		{1, 16 << 10}, {32 << 20, 16 << 10}, {32<<20 + 1, 32 << 10}, {1 << 30, 512 << 10},
		{8 << 30, 4 << 20}, {100 << 30, 4 << 20},
	} {
		if got := PieceLength(tc.size); got != tc.want {
			t.Errorf("PieceLength(%d) = %d, want %d", tc.size, got, tc.want)
		}
	}
}

// The same bytes under the same name give the same infohash wherever
// they are; the info dictionary holds the recipe's four keys only; the
// pieces hash the file; web seeds stay outside the hash.
func TestTorrentForIsDeterministic(t *testing.T) {
	data := make([]byte, 3<<20+12345)
	for i := range data {
		data[i] = byte(i*7 + i/4096)
	}
	var hashes []string
	for i, seeds := range [][]string{nil, {"http://127.0.0.1:8080/lists/demo/packs/"}} {
		path := filepath.Join(t.TempDir(), "2026-11-23.pack")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		mi, err := TorrentFor(path, seeds...)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, mi.HashInfoBytes().HexString())
		var info map[string]any
		if err := bencode.Unmarshal(mi.InfoBytes, &info); err != nil {
			t.Fatal(err)
		}
		keys := make([]string, 0, len(info))
		for k := range info {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := []string{"length", "name", "piece length", "pieces"}; !slices.Equal(keys, want) {
			t.Errorf("info keys %v, want %v", keys, want)
		}
		if info["name"] != "2026-11-23.pack" || info["length"] != int64(len(data)) || info["piece length"] != int64(16<<10) {
			t.Errorf("info %v %v %v", info["name"], info["length"], info["piece length"])
		}
		pieces := []byte(info["pieces"].(string))
		for p := 0; p*(16<<10) < len(data); p++ {
			sum := sha1.Sum(data[p*(16<<10) : min(len(data), (p+1)*(16<<10))])
			if !bytes.Equal(pieces[p*20:p*20+20], sum[:]) {
				t.Fatalf("piece %d hash differs", p)
			}
		}
		raw, err := bencode.Marshal(mi)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"announce", "creation date", "created by", "comment", "private", "source"} {
			if bytes.Contains(raw, []byte(key)) {
				t.Errorf("torrent %d has a %q key", i, key)
			}
		}
		if (seeds != nil) != bytes.Contains(raw, []byte("url-list")) {
			t.Errorf("torrent %d: url-list present = %v", i, !bytes.Contains(raw, []byte("url-list")))
		}
	}
	if hashes[0] != hashes[1] {
		t.Errorf("infohashes differ: %v", hashes)
	}
	if _, err := TorrentFor(filepath.Join(t.TempDir(), "missing.pack")); err == nil {
		t.Error("a missing file gave a torrent")
	}
}

// anacrolix/torrent, built with our go-utp stub and run TCP only, takes a
// recipe torrent of a file it already holds as complete: ready to seed.
func TestClientSeedsRecipeTorrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "2026-11-23.pack")
	data := bytes.Repeat([]byte("mailswarm "), 100000)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mi, err := TorrentFor(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testClientConfig(dir)
	cfg.Seed = true
	c, err := torrent.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tt, err := c.AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	<-tt.GotInfo()
	if err := tt.VerifyDataContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if missing := tt.BytesMissing(); missing != 0 {
		t.Fatalf("%d bytes missing of a file on disk", missing)
	}
}

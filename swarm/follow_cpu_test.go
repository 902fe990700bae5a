package swarm

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"mailswarm/internal/durable"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// takePatch is a follower's CPU work for a patch against base: decode,
// rebuild (applyParsed when fast, else Apply and ParseManifest of the
// whole file, the way before it), chain, Follows.
func takePatch(patch []byte, base *Manifest, fast bool) error {
	p, err := DecodePatch(patch)
	if err != nil {
		return err
	}
	var m *Manifest
	if fast {
		m, err = p.applyParsed(base, manTestPub())
	} else {
		var file []byte
		if file, err = p.Apply(base); err == nil {
			m, err = ParseManifest(file, manTestPub())
		}
	}
	if err != nil {
		return err
	}
	if err := checkChain(m); err != nil {
		return err
	}
	return m.Follows(base)
}

// BenchmarkFollowSliceCPU breaks a follower's CPU for one new slice of a
// list with a long history into its steps, and the origin's for
// publishing it: where the time goes that grows with the history.
//
//	go test -run '^$' -bench FollowSliceCPU -benchtime 20x ./swarm
func BenchmarkFollowSliceCPU(b *testing.B) {
	for _, days := range []int{2000, 7300} {
		base, next := benchManifest(b, days)
		patch := makePatch(base, next)
		if patch == nil {
			b.Fatal("no patch")
		}
		body, sig, err := decodeFile(next.Bytes())
		if err != nil {
			b.Fatal(err)
		}
		run := func(name string, f func(b *testing.B)) {
			b.Run(fmt.Sprintf("days=%d/%s", days, name), f)
		}
		// The follower's steps, in the order takeManifest, offer and
		// apply run them.
		run("total/before", func(b *testing.B) {
			for b.Loop() {
				if err := takePatch(patch, base, false); err != nil {
					b.Fatal(err)
				}
			}
		})
		run("total", func(b *testing.B) {
			for b.Loop() {
				if err := takePatch(patch, base, true); err != nil {
					b.Fatal(err)
				}
			}
		})
		run("decodepatch", func(b *testing.B) {
			for b.Loop() {
				if _, err := DecodePatch(patch); err != nil {
					b.Fatal(err)
				}
			}
		})
		p, _ := DecodePatch(patch)
		run("apply", func(b *testing.B) {
			for b.Loop() {
				if _, err := p.Apply(base); err != nil {
					b.Fatal(err)
				}
			}
		})
		run("applyparsed", func(b *testing.B) {
			for b.Loop() {
				if _, err := p.applyParsed(base, manTestPub()); err != nil {
					b.Fatal(err)
				}
			}
		})
		run("applyparsed/merge", func(b *testing.B) {
			for b.Loop() {
				if _, err := p.merge(base); err != nil {
					b.Fatal(err)
				}
			}
		})
		run("applyparsed/checkfrom", func(b *testing.B) {
			mg, _ := p.merge(base)
			for b.Loop() {
				if err := mg.m.checkFrom(mg.samePacks, mg.sameBundles); err != nil {
					b.Fatal(err)
				}
			}
		})
		run("parse", func(b *testing.B) {
			for b.Loop() {
				if _, err := ParseManifest(next.Bytes(), manTestPub()); err != nil {
					b.Fatal(err)
				}
			}
		})
		run("parse/decode+reencode", func(b *testing.B) {
			for b.Loop() {
				if _, err := decodeBody(body); err != nil {
					b.Fatal(err)
				}
			}
		})
		run("parse/encode", func(b *testing.B) {
			for b.Loop() {
				encodeBody(next)
			}
		})
		run("parse/verify", func(b *testing.B) {
			for b.Loop() {
				if !ed25519.Verify(next.Key, body, sig) {
					b.Fatal("bad signature")
				}
			}
		})
		run("parse/check", func(b *testing.B) {
			for b.Loop() {
				if err := next.check(); err != nil {
					b.Fatal(err)
				}
			}
		})
		run("parse/sha256", func(b *testing.B) {
			for b.Loop() {
				sha256.Sum256(next.Bytes())
			}
		})
		run("checkchain", func(b *testing.B) {
			for b.Loop() {
				if err := checkChain(next); err != nil {
					b.Fatal(err)
				}
			}
		})
		parsed, err := ParseManifest(next.Bytes(), manTestPub())
		if err != nil {
			b.Fatal(err)
		}
		run("follows/parsed", func(b *testing.B) {
			for b.Loop() {
				if err := parsed.Follows(base); err != nil {
					b.Fatal(err)
				}
			}
		})
		patched, err := p.applyParsed(base, manTestPub())
		if err != nil {
			b.Fatal(err)
		}
		run("follows", func(b *testing.B) {
			for b.Loop() {
				if err := patched.Follows(base); err != nil {
					b.Fatal(err)
				}
			}
		})
		// State and torrent bookkeeping at commit, on disk.
		dir := b.TempDir()
		tm := benchTorrents(b, dir, next)
		f := &follower{dir: dir, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		run("torrentfiles", func(b *testing.B) {
			if err := f.torrentFiles(tm); err != nil { // the first in a process checks them all
				b.Fatal(err)
			}
			for b.Loop() {
				if err := f.torrentFiles(tm); err != nil {
					b.Fatal(err)
				}
			}
		})
		run("torrentfiles/first", func(b *testing.B) {
			for b.Loop() {
				f.torrentsOK = nil
				if err := f.torrentFiles(tm); err != nil {
					b.Fatal(err)
				}
			}
		})
		held := make([]*PackEntry, len(tm.Packs))
		for i := range tm.Packs {
			held[i] = &tm.Packs[i]
		}
		run("seedable", func(b *testing.B) {
			if err := f.seedable(b.Context(), tm, held); err != nil { // the first in a process looks at all
				b.Fatal(err)
			}
			for b.Loop() {
				if err := f.seedable(b.Context(), tm, held); err != nil {
					b.Fatal(err)
				}
			}
		})
		run("seedable/first", func(b *testing.B) {
			for b.Loop() {
				f.packsOK = nil
				if err := f.seedable(b.Context(), tm, held); err != nil {
					b.Fatal(err)
				}
			}
		})
		// adoptDays asked List.Installed, two stats, of every day pack.
		run("adoptdays/stats", func(b *testing.B) {
			for b.Loop() {
				for i := range tm.Packs {
					p := filepath.Join(dir, packsDir, tm.Packs[i].File)
					_, err1 := os.Stat(p + ".idx")
					_, err2 := os.Stat(p)
					if err1 == nil || err2 != nil {
						b.Fatal(err1, err2)
					}
				}
			}
		})
		run("removestale", func(b *testing.B) {
			prev := manClone(tm)
			prev.Seq--
			for b.Loop() {
				removeStaleSince(dir, prev, tm, f.log)
			}
		})
		run("removestale/first", func(b *testing.B) {
			for b.Loop() {
				removeStale(dir, tm, f.log)
			}
		})
		run("writemanifest", func(b *testing.B) {
			for b.Loop() {
				if err := durable.WriteFile(filepath.Join(dir, manifestFile), next.Bytes(), 0o644, true); err != nil {
					b.Fatal(err)
				}
			}
		})
		run("writestate", func(b *testing.B) {
			for b.Loop() {
				js, _ := json.MarshalIndent(FollowStatus{Seq: next.Seq}, "", "  ")
				if err := durable.WriteFile(filepath.Join(dir, followFile), js, 0o644, false); err != nil {
					b.Fatal(err)
				}
			}
		})
		// The origin: sign the next manifest, then the patch to it for a
		// follower one behind.
		run("origin/sign", func(b *testing.B) {
			m := manClone(next)
			for b.Loop() {
				if _, err := m.Sign(manTestKey); err != nil {
					b.Fatal(err)
				}
			}
		})
		run("origin/signafter", func(b *testing.B) {
			m := manClone(next)
			for b.Loop() {
				if _, err := m.signAfter(base, manTestKey); err != nil {
					b.Fatal(err)
				}
			}
		})
		run("origin/makepatch", func(b *testing.B) {
			for b.Loop() {
				if makePatch(base, next) == nil {
					b.Fatal("no patch")
				}
			}
		})
	}
}

// benchTorrents writes dir's packs/ and torrents/ for m as a follower
// holds them (a sparse file per pack, a small torrent per pack and
// bundle) and returns m with the infohashes of those torrents.
func benchTorrents(tb testing.TB, dir string, m *Manifest) *Manifest {
	tm := manClone(m)
	for _, d := range []string{packsDir, torrentsDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	write := func(name string, info metainfo.Info) [20]byte {
		ib, err := bencode.Marshal(info)
		if err != nil {
			tb.Fatal(err)
		}
		mb, err := bencode.Marshal(metainfo.MetaInfo{InfoBytes: ib})
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, torrentsDir, name+".torrent"), mb, 0o644); err != nil {
			tb.Fatal(err)
		}
		return metainfo.HashBytes(ib)
	}
	sizes := map[string]int64{}
	for i := range tm.Packs {
		p := &tm.Packs[i]
		sizes[p.File] = p.Size
		if err := os.WriteFile(filepath.Join(dir, packsDir, p.File), nil, 0o644); err != nil {
			tb.Fatal(err)
		}
		if err := os.Truncate(filepath.Join(dir, packsDir, p.File), p.Size); err != nil { // sparse
			tb.Fatal(err)
		}
		p.InfoHash = write(p.File, metainfo.Info{Name: p.File, Length: p.Size, PieceLength: 256 << 10,
			Pieces: make([]byte, 20*((p.Size+256<<10-1)/(256<<10)))})
	}
	for i := range tm.Bundles {
		bd := &tm.Bundles[i]
		info := metainfo.Info{Name: bd.Name, PieceLength: 256 << 10}
		for _, file := range bd.Files {
			info.Files = append(info.Files, metainfo.FileInfo{Path: []string{file}, Length: sizes[file]})
		}
		info.Pieces = make([]byte, 20*((bd.Size+256<<10-1)/(256<<10)))
		bd.InfoHash = write(bd.Name, info)
	}
	return tm
}

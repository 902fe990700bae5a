package swarm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"mailswarm/archive"
	"mailswarm/internal/durable"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// job is one torrent to download: a month bundle, or one day pack or
// slice. install lists the packs to install from it in chain order;
// suffix marks a pack whose first commits are held already (the mirror
// had some of the day's slices when the day was sealed).
type job struct {
	name    string
	ih      [20]byte
	bundle  *BundleEntry
	packs   []*PackEntry
	install bool // false: only seed it (a day pack whose commits are held)
	suffix  bool

	done chan struct{}
	err  error
	// prep is the job's packs verified and parsed ahead of their install
	// (archive.List.PrepareInstall); prepared is closed when prep and
	// prepErr are set.
	prep     *archive.InstallPrep
	prepErr  error
	prepared chan struct{}
}

func (j *job) size() int64 {
	var n int64
	for _, p := range j.packs {
		n += p.Size
	}
	return n
}

// plan returns the downloads m needs beyond what the list holds, in chain
// order, and the packs whose commits are held (to be seeded from a local
// file).
func (f *follower) plan(m *Manifest) (jobs []*job, held []*PackEntry, err error) {
	// A day pack file → the bundle starting with it, a year bundle
	// before a month bundle: a closed year none of whose days is held is
	// one torrent, a closed month of the open year (or of a year partly
	// held) another.
	bundleOf := map[string][]*BundleEntry{}
	for i := range m.Bundles {
		b := &m.Bundles[i]
		if b.Year() {
			bundleOf[b.Files[0]] = append([]*BundleEntry{b}, bundleOf[b.Files[0]]...)
		} else {
			bundleOf[b.Files[0]] = append(bundleOf[b.Files[0]], b)
		}
	}
	f.mu.Lock()
	prev := f.cur
	f.mu.Unlock()
	byEpoch := map[int][]*PackEntry{}
	var epochs []int
	for i := range m.Packs {
		p := &m.Packs[i]
		if _, ok := byEpoch[p.Epoch]; !ok {
			epochs = append(epochs, p.Epoch)
		}
		byEpoch[p.Epoch] = append(byEpoch[p.Epoch], p)
	}
	for _, e := range epochs {
		ps := byEpoch[e]
		tip, err := f.tip(e)
		if err != nil {
			return nil, nil, err
		}
		start := 0
		if !tip.IsZero() {
			start = -1
			for k, p := range ps {
				if p.To == tip {
					start = k + 1
					break
				}
			}
			if start < 0 {
				// The tip is inside a pack: a day sealed after this
				// mirror took some of its slices. Download that day pack
				// and install the commits after the tip.
				k := containing(ps, prev, tip)
				if k < 0 {
					return nil, nil, fmt.Errorf("epoch %d: the local tip %s is at no pack boundary of seq %d: this list's history is not the manifest's", e, tip, m.Seq)
				}
				held = append(held, ps[:k]...)
				jobs = append(jobs, &job{name: ps[k].File, ih: ps[k].InfoHash, packs: []*PackEntry{ps[k]}, install: true, suffix: true})
				start = k + 1
				ps = ps[:0:0]
			}
		}
		if start > 0 && len(ps) > 0 {
			held = append(held, ps[:start]...)
		}
		if len(ps) == 0 {
			continue
		}
		for k := start; k < len(ps); {
			p := ps[k]
			if b := bundleAt(bundleOf[p.File], ps[k:]); b != nil {
				j := &job{name: b.Name, ih: b.InfoHash, bundle: b, install: true}
				j.packs = append(j.packs, ps[k:k+len(b.Files)]...)
				jobs = append(jobs, j)
				k += len(b.Files)
				continue
			}
			jobs = append(jobs, &job{name: p.File, ih: p.InfoHash, packs: []*PackEntry{p}, install: true})
			k++
		}
	}
	return jobs, held, nil
}

// bundleAt returns the first of bs whose files are the packs ps starts
// with, nil when none is.
func bundleAt(bs []*BundleEntry, ps []*PackEntry) *BundleEntry {
	for _, b := range bs {
		if len(b.Files) <= len(ps) && ps[0].File == b.Files[0] && ps[len(b.Files)-1].File == b.Files[len(b.Files)-1] {
			return b
		}
	}
	return nil
}

// containing returns the index in ps of the day pack that holds tip: the
// day of the slice of prev that ended at tip. -1 when there is none.
func containing(ps []*PackEntry, prev *Manifest, tip archive.Hash) int {
	if prev == nil {
		return -1
	}
	for _, s := range prev.Packs {
		if s.Kind != KindSlice || s.To != tip {
			continue
		}
		for k, p := range ps {
			if p.Kind == KindDay && p.Epoch == s.Epoch && p.Day == s.Day {
				return k
			}
		}
	}
	return -1
}

func (f *follower) tip(epoch int) (archive.Hash, error) {
	for _, e := range f.list.Epochs() {
		if e == epoch {
			h, err := f.list.Tip(epoch)
			if errors.Is(err, fs.ErrNotExist) {
				return archive.Hash{}, nil
			}
			return h, err
		}
	}
	return archive.Hash{}, nil
}

// apply brings the list to m: downloads what it lacks (a few torrents
// ahead), installs each pack in chain order, makes the files m names to
// seed, then writes m, serves and seeds it.
func (f *follower) apply(ctx context.Context, m *Manifest) (err error) {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	defer func() {
		if err != nil {
			// What a failed apply placed, the next commit's removeStale
			// finds by listing the directories.
			f.staleFrom = nil
		}
	}()
	if cur := f.current(); cur != nil && cur.Seq >= m.Seq {
		return nil // applied meanwhile
	}
	jobs, held, err := f.plan(m)
	if err != nil {
		return err
	}
	var total int64
	npacks := 0
	for _, j := range jobs {
		total += j.size()
		npacks += len(j.packs)
	}
	f.mu.Lock()
	f.st.Missing = npacks
	f.mu.Unlock()
	if len(jobs) > 0 {
		f.log.Info("swarm: follow: syncing", "seq", m.Seq, "torrents", len(jobs), "packs", npacks, "MiB", total>>20)
	}
	start := time.Now()
	var fmu sync.Mutex
	var lastFetched time.Time
	var installing time.Duration
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Downloads run ahead of installs, at most downloadAhead at once.
	sem := make(chan struct{}, downloadAhead)
	var wg sync.WaitGroup
	defer func() {
		cancel() // a failed apply stops the downloads under way
		wg.Wait()
		for _, j := range jobs {
			if j.prep != nil {
				j.prep.Close()
			}
		}
	}()
	for _, j := range jobs {
		j.done, j.prepared = make(chan struct{}), make(chan struct{})
	}
	allFetched := make(chan struct{})
	var fetches sync.WaitGroup
	wg.Go(func() {
		defer func() { fetches.Wait(); close(allFetched) }()
		for _, j := range jobs {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				j.err = ctx.Err()
				close(j.done)
				continue
			}
			fetches.Go(func() {
				defer func() { <-sem }()
				j.err = f.fetch(ctx, m, j)
				fmu.Lock()
				lastFetched = time.Now()
				fmu.Unlock()
				close(j.done)
			})
		}
	})
	// Installs start when the downloads are done, or after
	// downloadFirst: installing takes both cores (verify, parse, index)
	// and, run beside them, held alsa-devel's downloads to 17.5 MiB/s
	// (387 MiB in 22 s) where libtorrent alone took 2 s.
	select {
	case <-allFetched:
	case <-time.After(downloadFirst):
	case <-ctx.Done():
		return ctx.Err()
	}
	// The next torrent's packs are verified and parsed (both cores)
	// while the one before is committed (git, then the index: one
	// core), at most two ahead.
	tok := make(chan struct{}, 2)
	tok <- struct{}{}
	tok <- struct{}{}
	wg.Go(func() {
		for _, j := range jobs {
			select {
			case <-tok:
			case <-ctx.Done():
				return
			}
			select {
			case <-j.done:
			case <-ctx.Done():
				return
			}
			if j.err == nil && !j.suffix {
				j.prep, j.prepErr = f.prepare(j)
			}
			close(j.prepared)
		}
	})
	prog := newProgress(f, total, npacks)
	defer prog.stop()
	for _, j := range jobs {
		select {
		case <-j.prepared:
		case <-ctx.Done():
			return ctx.Err()
		}
		if j.err != nil {
			return fmt.Errorf("%s: %w", j.name, j.err)
		}
		if j.prepErr != nil {
			return fmt.Errorf("%s: %w", j.name, j.prepErr)
		}
		t := time.Now()
		err := f.install(ctx, j)
		if j.prep != nil {
			j.prep.Close()
			j.prep = nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", j.name, err)
		}
		tok <- struct{}{}
		installing += time.Since(t)
		for _, p := range j.packs {
			prog.packDone(p.Size)
		}
		f.mu.Lock()
		f.st.Missing -= len(j.packs)
		f.mu.Unlock()
	}
	if err := f.seedable(ctx, m, held); err != nil {
		return err
	}
	if len(jobs) > 0 {
		fmu.Lock()
		fig := &SyncFigures{Seq: m.Seq, Torrents: len(jobs), Bytes: total, DownloadSeconds: lastFetched.Sub(start).Seconds(),
			InstallSeconds: installing.Seconds(), Seconds: time.Since(start).Seconds()}
		fmu.Unlock()
		f.mu.Lock()
		f.st.LastSync = fig
		f.mu.Unlock()
		f.log.Info("swarm: follow: downloaded and installed", "seq", m.Seq, "torrents", fig.Torrents,
			"MiB", fmt.Sprintf("%.1f", float64(fig.Bytes)/(1<<20)), "download_s", fmt.Sprintf("%.2f", fig.DownloadSeconds),
			"install_s", fmt.Sprintf("%.2f", fig.InstallSeconds), "s", fmt.Sprintf("%.2f", fig.Seconds))
	}
	return f.commit(m)
}

func (f *follower) current() *Manifest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

// wantOf is the range each of j's packs must hold, as the manifest says.
func wantOf(j *job) []archive.PackRange {
	want := make([]archive.PackRange, len(j.packs))
	for i, q := range j.packs {
		want[i] = archive.PackRange{From: q.From, To: q.To, Commits: q.Commits}
	}
	return want
}

// prepare verifies j's downloaded packs (and the range each must hold)
// and parses their messages, changing nothing (archive.List.PrepareInstall).
func (f *follower) prepare(j *job) (*archive.InstallPrep, error) {
	paths := make([]string, len(j.packs))
	for i, p := range j.packs {
		paths[i] = filepath.Join(f.dir, incomingDir, p.File)
	}
	return f.list.PrepareInstall(j.packs[0].Epoch, paths, wantOf(j))
}

// install installs j's verified packs into the list (one copy: the files
// become the epoch's git packs; a month's days with one ref move) and
// moves them to packs/.
func (f *follower) install(ctx context.Context, j *job) error {
	paths := make([]string, len(j.packs))
	for i, p := range j.packs {
		paths[i] = filepath.Join(f.dir, incomingDir, p.File)
	}
	p := j.packs[len(j.packs)-1]
	// Every pack's range is checked before anything changes (in the
	// install's own pass): the sha256 ties the bytes to the manifest, but
	// a manifest the key signed may still name a pack of another range
	// that continues the tip (TestFollowSignedPackOfAnotherRange).
	want := wantOf(j)
	if j.suffix {
		tip, err := f.tip(p.Epoch)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(paths[0])
		if err != nil {
			return err
		}
		if _, err := f.list.AppendPackAfter(ctx, p.Epoch, b, tip, want[0]); err != nil {
			return err
		}
	} else if j.prep != nil {
		if _, err := f.list.CommitInstall(ctx, j.prep); err != nil {
			return err
		}
	} else if _, err := f.list.InstallPacks(ctx, p.Epoch, paths, want); err != nil {
		return err
	}
	if tip, err := f.tip(p.Epoch); err != nil {
		return err
	} else if tip != p.To {
		return fmt.Errorf("installed, but epoch %d is at %s, not the pack's end %x", p.Epoch, tip, p.To)
	}
	for i, p := range j.packs {
		if err := f.place(p, paths[i]); err != nil {
			return err
		}
	}
	return nil
}

// place moves a verified pack file into packs/. The directory is synced
// once, before the manifest naming the file is written (commit); a
// rename lost in a crash leaves the file in the quarantine, where the
// next apply finds it (seedable).
func (f *follower) place(p *PackEntry, path string) error {
	return os.Rename(path, filepath.Join(f.dir, packsDir, p.File))
}

// forgetDropped deletes from seen, a follower's record of what it found
// in place, the names m no longer has (a sealed day's slices, whose
// files removeStale removes), once it holds more names than m: after a
// day's seal, not at every slice.
func forgetDropped[V any](seen map[string]V, m *Manifest) {
	if len(seen) <= len(m.Packs)+len(m.Bundles) {
		return
	}
	names := make(map[string]bool, len(m.Packs)+len(m.Bundles))
	for i := range m.Packs {
		names[m.Packs[i].File] = true
	}
	for i := range m.Bundles {
		names[m.Bundles[i].Name] = true
	}
	for k := range seen {
		if !names[k] {
			delete(seen, k)
		}
	}
}

// seedable makes every pack and bundle of m seedable: each held pack's
// file in packs/ (found in the quarantine after a crash, else rebuilt
// from git, else downloaded: a day close costs no download when the
// mirror held the day's slices), and every torrent file written.
//
// A held pack found in packs/ by this process before (f.packsOK) is not
// looked for again: the stat of each of a 7,300-day list's files was
// 19 ms of every slice (BenchmarkFollowSliceCPU, "seedable/first").
func (f *follower) seedable(ctx context.Context, m *Manifest, held []*PackEntry) error {
	if f.packsOK == nil {
		f.packsOK = map[string][32]byte{}
	}
	for _, p := range held {
		if sum, ok := f.packsOK[p.File]; ok && sum == p.SHA256 {
			continue
		}
		dst := filepath.Join(f.dir, packsDir, p.File)
		if fi, err := os.Stat(dst); err == nil && fi.Size() == p.Size {
			f.packsOK[p.File] = p.SHA256
			continue
		}
		inc := filepath.Join(f.dir, incomingDir, p.File)
		if checkFile(inc, p) == nil {
			if err := f.place(p, inc); err != nil {
				return err
			}
			continue
		}
		err := f.rebuild(p)
		if err == nil {
			f.mu.Lock()
			if p.Kind == KindDay {
				f.st.DaysRebuilt++
			}
			f.mu.Unlock()
			continue
		}
		f.log.Warn("swarm: follow: rebuilt pack differs from the manifest's; downloading it", "file", p.File, "err", err)
		j := &job{name: p.File, ih: p.InfoHash, packs: []*PackEntry{p}}
		if err := f.fetch(ctx, m, j); err != nil {
			return fmt.Errorf("%s: %w", p.File, err)
		}
		if err := f.place(p, inc); err != nil {
			return err
		}
		f.mu.Lock()
		if p.Kind == KindDay {
			f.st.DaysDownloaded++
		}
		f.mu.Unlock()
	}
	forgetDropped(f.packsOK, m) // it kept every slice of the process's life
	return f.torrentFiles(m)
}

// torrentFiles writes the torrent file of every pack and bundle of m
// that has none (or a damaged one), from the files in packs/. A torrent
// file checked here before (f.torrentsOK: the first call in a process
// checks them all) is not read again: reading and hashing every one of
// a 7,300-day list's 7,559 torrent files was 287 ms of each slice's
// apply; now 0.2 ms (BenchmarkFollowSliceCPU).
func (f *follower) torrentFiles(m *Manifest) error {
	if f.torrentsOK == nil {
		f.torrentsOK = map[string][20]byte{}
	}
	checked := 0
	for i := range m.Packs {
		p := &m.Packs[i]
		if ih, ok := f.torrentsOK[p.File]; ok && ih == p.InfoHash {
			continue
		}
		if err := f.torrentFile(p.File, p.InfoHash, func() (*metainfo.MetaInfo, error) {
			return TorrentFor(filepath.Join(f.dir, packsDir, p.File))
		}); err != nil {
			return err
		}
		f.torrentsOK[p.File] = p.InfoHash
		checked++
	}
	for i := range m.Bundles {
		b := &m.Bundles[i]
		if ih, ok := f.torrentsOK[b.Name]; ok && ih == b.InfoHash {
			continue
		}
		if err := f.torrentFile(b.Name, b.InfoHash, func() (*metainfo.MetaInfo, error) {
			paths := make([]string, len(b.Files))
			for k, file := range b.Files {
				paths[k] = filepath.Join(f.dir, packsDir, file)
			}
			return BundleTorrentFor(b.Name, paths)
		}); err != nil {
			return err
		}
		f.torrentsOK[b.Name] = b.InfoHash
		checked++
	}
	forgetDropped(f.torrentsOK, m)
	if checked == 0 {
		return nil
	}
	// One directory fsync for them all: a torrent file is checked when
	// read and remade when damaged, so each needs no fsync of its own
	// (955 of them were 1,910 fsyncs per late join).
	return durable.SyncDir(filepath.Join(f.dir, torrentsDir))
}

// rebuild writes the canonical pack of p's commits from the list's own
// git and keeps it when its sha256 is the manifest's.
func (f *follower) rebuild(p *PackEntry) error {
	tmp, err := os.CreateTemp(filepath.Join(f.dir, incomingDir), ".tmp-rebuild-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	if _, err := f.list.WriteCanonicalPack(io.MultiWriter(tmp, h), p.Epoch, p.From, p.To); err != nil {
		return err
	}
	if got := [32]byte(h.Sum(nil)); got != p.SHA256 {
		return fmt.Errorf("sha256 %x, the manifest says %x", got, p.SHA256)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	return f.place(p, tmp.Name())
}

// torrentFile writes torrents/name.torrent from make when it is missing
// or is not the torrent of infohash ih, after checking that make's has
// that infohash.
func (f *follower) torrentFile(name string, ih [20]byte, make func() (*metainfo.MetaInfo, error)) error {
	path := filepath.Join(f.dir, torrentsDir, name+".torrent")
	if mi, err := metainfo.LoadFromFile(path); err == nil && mi.HashInfoBytes() == ih {
		return nil
	}
	mi, err := make()
	if err != nil {
		return err
	}
	if got := mi.HashInfoBytes(); got != ih {
		return fmt.Errorf("torrent %s: infohash %s, the manifest says %x", name, got, ih)
	}
	b, err := bencode.Marshal(metainfo.MetaInfo{InfoBytes: mi.InfoBytes})
	if err != nil {
		return err
	}
	return durable.WriteFile(path, b, 0o644, false)
}

// commit makes m the list's manifest: written (the chain's new anchor),
// served and seeded; files it no longer names are removed.
func (f *follower) commit(m *Manifest) error {
	if err := durable.SyncDir(filepath.Join(f.dir, packsDir)); err != nil {
		return err
	}
	if err := durable.WriteFile(filepath.Join(f.dir, manifestFile), m.Bytes(), 0o644, !f.n.opts.NoSync); err != nil {
		return err
	}
	// The manifest naming them is written: its day packs are final and
	// may become the storage (one copy), before m counts as applied.
	f.adoptDays(m)
	f.mu.Lock()
	f.cur = m
	if f.best != nil && f.best.Seq <= m.Seq {
		f.best = nil
	}
	f.st.Missing = 0
	f.st.LastError = ""
	close(f.applied)
	f.applied = make(chan struct{})
	f.mu.Unlock()
	err := f.n.sync(f.nl, m)
	removeStaleSince(f.dir, f.staleFrom, m, f.log)
	f.staleFrom = m
	f.saveState()
	f.log.Info("swarm: follow: synced", "seq", m.Seq, "lag", f.n.opts.Now().Sub(time.Unix(m.Time, 0)).Round(time.Millisecond))
	return err
}

// checkFile checks a pack file's size and sha256 against p.
func checkFile(path string, p *PackEntry) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != p.Size {
		return fmt.Errorf("%w: %s: %d bytes, the manifest says %d", archive.ErrCorrupt, p.File, fi.Size(), p.Size)
	}
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return err
	}
	if got := [32]byte(h.Sum(nil)); got != p.SHA256 {
		return fmt.Errorf("%w: %s: sha256 %x, the manifest says %x", archive.ErrCorrupt, p.File, got, p.SHA256)
	}
	return nil
}

package gitstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"

	"mailswarm/internal/durable"
)

// ErrNotTip is wrapped when a pack, sound in itself, does not continue the
// epoch's tip: it is for another range (stale or ahead), not corrupt.
var ErrNotTip = errors.New("gitstore: pack does not continue the tip")

// InstallPack makes the canonical pack file at path (a day pack or slice,
// as WriteCanonicalPack writes them) one of epoch's own git packs, without
// copying it: the file is verified as PackCommits does (strictly, one
// linear chain of whole commits, nothing else), its first commit's parent
// must be the epoch's tip (none for an empty epoch; epoch may be one past
// the newest, which creates it), then its idx and .keep are written and
// the file is hard-linked in as objects/pack/pack-<trailer>.pack (copied
// only when path is on another file system), and the ref moves last. The
// file must not change afterwards: it is the git pack. It returns the
// pack's commits as entries, their blobs located in the new pack. Bad
// packs wrap ErrCorrupt, packs for another range ErrNotTip; neither
// changes anything.
func (s *Store) InstallPack(epoch int, path string) ([]Entry, error) {
	return s.impl.installPack(epoch, path)
}

// InstallPacks is InstallPack for consecutive packs of one epoch (a
// month bundle's days): each continues the one before, all are verified
// before anything changes, and the ref moves once, after every pack is in
// place. One ref move and one directory fsync for them all: installed one
// by one, each day cost about six fsyncs.
//
// want, when not nil, is what each pack must hold, checked in the same
// pass before anything changes: a pack signed for one range and holding
// another is refused (ErrCorrupt) even when it continues the tip.
func (s *Store) InstallPacks(epoch int, paths []string, want []PackRange) ([]Entry, error) {
	return s.impl.installPacks(epoch, paths, want)
}

// PackRange is the commits a pack must hold: those after From (zero: an
// epoch's root) up to and including To, Commits of them.
type PackRange struct {
	From, To Hash
	Commits  int
}

func (s *store) installPack(n int, path string) ([]Entry, error) {
	return s.installPacks(n, []string{path}, nil)
}

// verified is a pack file checked for installing.
type verified struct {
	path    string
	f       *os.File
	objs    []scannedObj
	base    Hash
	chain   []packLink
	trailer Hash
}

// verifyInstall checks the pack at path as PackCommits does, streaming:
// only commits and trees are kept.
func verifyInstall(path string) (*verified, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gitstore: install pack: %w", err)
	}
	v := &verified{path: path, f: f}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("gitstore: install pack: %w", err)
	}
	size := fi.Size()
	if v.objs, err = verifyPackReader(f, size); err == nil {
		v.base, v.chain, err = packChain(v.objs, func(o PackObject) ([]byte, error) { return objectAtReader(f, size, o) })
	}
	if err == nil {
		_, err = f.ReadAt(v.trailer[:], size-20)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("gitstore: install %s: %w", path, err)
	}
	return v, nil
}

// VerifiedPacks are pack files checked for installing (VerifyPacks) and
// not installed yet; Close releases them.
type VerifiedPacks struct {
	vs []*verified
}

// Close closes the pack files.
func (p *VerifiedPacks) Close() {
	for _, v := range p.vs {
		if v != nil {
			v.f.Close()
		}
	}
}

// Entries returns the packs' commits as entries of epoch, their blobs
// located in the packs as InstallVerified will name them.
func (p *VerifiedPacks) Entries(epoch int) []Entry {
	var out []Entry
	for _, v := range p.vs {
		out = v.appendEntries(out, epoch, "pack-"+v.trailer.String())
	}
	return out
}

// ReadBlob returns the contents of the blob of e, an entry of Entries,
// from the verified pack file itself (nothing is installed yet).
func (p *VerifiedPacks) ReadBlob(e Entry) ([]byte, error) {
	for _, v := range p.vs {
		if "pack-"+v.trailer.String() != e.BlobLoc.Pack {
			continue
		}
		fi, err := v.f.Stat()
		if err != nil {
			return nil, err
		}
		return objectAtReader(v.f, fi.Size(), PackObject{Hash: e.Blob, Type: ObjBlob, Offset: e.BlobLoc.Offset, Size: e.BlobSize})
	}
	return nil, fmt.Errorf("gitstore: blob %s: pack %s is not one of these", e.Blob, e.BlobLoc.Pack)
}

// VerifyPacks checks consecutive canonical pack files of one epoch for
// InstallVerified, without any lock and without changing anything: each
// strictly, as PackCommits does; each continuing the one before; each
// holding the range want names (when want is not nil). Errors wrap
// ErrCorrupt (ErrNotTip for packs that do not chain).
func VerifyPacks(paths []string, want []PackRange) (*VerifiedPacks, error) {
	if len(paths) == 0 {
		return nil, errors.New("gitstore: install: no pack")
	}
	if want != nil && len(want) != len(paths) {
		return nil, fmt.Errorf("gitstore: install: %d ranges for %d packs", len(want), len(paths))
	}
	// Verify before taking the append lock: it reads every pack and
	// appends need not wait for it. The packs are verified on every core
	// (inflating and hashing every object is a third of an install), then
	// checked in order.
	vs := make([]*verified, len(paths))
	errs := make([]error, len(paths))
	ok := false
	defer func() {
		if !ok {
			(&VerifiedPacks{vs}).Close()
		}
	}()
	next := make(chan int, len(paths))
	for i := range paths {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(len(paths), runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range next {
				vs[i], errs[i] = verifyInstall(paths[i])
			}
		})
	}
	wg.Wait()
	for i, path := range paths {
		if errs[i] != nil {
			return nil, errs[i]
		}
		v := vs[i]
		if want != nil {
			w := want[i]
			last := v.objs[v.chain[len(v.chain)-1].commitI].Hash
			switch {
			case v.base != w.From:
				return nil, fmt.Errorf("gitstore: install %s: %w: it continues %s, not %s", path, ErrCorrupt, v.base, w.From)
			case last != w.To:
				return nil, fmt.Errorf("gitstore: install %s: %w: it ends at %s, not %s", path, ErrCorrupt, last, w.To)
			case len(v.chain) != w.Commits:
				return nil, fmt.Errorf("gitstore: install %s: %w: %d commits, not %d", path, ErrCorrupt, len(v.chain), w.Commits)
			}
		}
		if i > 0 {
			prev := vs[i-1]
			if last := prev.objs[prev.chain[len(prev.chain)-1].commitI].Hash; v.base != last {
				return nil, fmt.Errorf("gitstore: install %s: %w: pack continues %s, the pack before it ends at %s", path, ErrNotTip, v.base, last)
			}
		}
	}
	ok = true
	return &VerifiedPacks{vs}, nil
}

func (s *store) installPacks(n int, paths []string, want []PackRange) ([]Entry, error) {
	if n < 0 {
		return nil, fmt.Errorf("gitstore: bad epoch %d", n)
	}
	if len(paths) == 0 {
		return nil, nil
	}
	vp, err := VerifyPacks(paths, want)
	if err != nil {
		return nil, err
	}
	defer vp.Close()
	return s.installVerified(n, vp)
}

// InstallVerified installs packs VerifyPacks checked into epoch: their
// idx and .keep written, the files hard-linked in, one directory fsync,
// the ref moved last (see InstallPacks). The first pack must continue the
// epoch's tip (ErrNotTip).
func (s *Store) InstallVerified(epoch int, vp *VerifiedPacks) ([]Entry, error) {
	return s.impl.installVerified(epoch, vp)
}

func (s *store) installVerified(n int, vp *VerifiedPacks) ([]Entry, error) {
	if n < 0 {
		return nil, fmt.Errorf("gitstore: bad epoch %d", n)
	}
	vs := vp.vs
	release, err := s.beginAppend()
	if err != nil {
		return nil, err
	}
	defer release()
	eps := s.epochs()
	last := eps[len(eps)-1]
	tip := ZeroHash
	switch {
	case n <= last:
		if tip, err = readRef(s.gitDir(n), masterRef); err != nil {
			return nil, err
		}
	case n > last+1:
		return nil, fmt.Errorf("gitstore: epoch %d would leave a gap after %d", n, last)
	}
	if vs[0].base != tip {
		return nil, fmt.Errorf("gitstore: install %s: %w: pack continues %s, epoch %d is at %s", vs[0].path, ErrNotTip, vs[0].base, n, tip)
	}
	var db *odb
	if n <= last {
		db, err = s.epoch(n)
	} else {
		db, err = s.addEpoch(n)
	}
	if err != nil {
		return nil, err
	}

	// On disk in packBuilder.write's order: .keep, idx, pack for each,
	// one directory fsync; then the ref. A crash before the ref moves
	// leaves complete packs no ref reaches (installing the same files
	// again replaces them).
	packDir := db.packDir()
	names := make([]string, len(vs))
	for i, v := range vs {
		if names[i], err = s.placePack(packDir, v, []byte("mailswarm\n"), false); err != nil {
			return nil, err
		}
	}
	if !s.opts.NoSync {
		if err := syncDir(packDir); err != nil {
			return nil, err
		}
	}
	var out []Entry
	for i, v := range vs {
		if err := db.loadPack(names[i]); err != nil {
			return nil, err
		}
		out = v.appendEntries(out, n, names[i])
	}
	if err := writeRef(s.gitDir(n), masterRef, out[len(out)-1].Commit, s.opts.NoSync, s.log); err != nil {
		return nil, err
	}
	return out, nil
}

// linkPack hard-links the pack file at path under a temporary name in
// packDir (so an existing pack of the same name is replaced atomically by
// the rename), or copies f there when path is on another file system. The
// linked file is fsynced: its writer may not have.
func (s *store) linkPack(f *os.File, path, packDir string) (string, error) {
	tmp := tmpName(packDir, "pack")
	err := os.Link(path, tmp)
	if err == nil {
		// The link is by name: make sure it is the file verified, not one
		// renamed over path since.
		fi, err1 := f.Stat()
		li, err2 := os.Stat(tmp)
		if err := errors.Join(err1, err2); err != nil {
			os.Remove(tmp)
			return "", fmt.Errorf("gitstore: link pack: %w", err)
		}
		if !os.SameFile(fi, li) {
			os.Remove(tmp)
			return "", fmt.Errorf("gitstore: link pack: %s was replaced while being installed", path)
		}
		if !s.opts.NoSync {
			if err := f.Sync(); err != nil {
				os.Remove(tmp)
				return "", fmt.Errorf("gitstore: fsync %s: %w", path, err)
			}
		}
		return tmp, nil
	}
	if !errors.Is(err, syscall.EXDEV) {
		return "", fmt.Errorf("gitstore: link pack: %w", err)
	}
	s.log.Info("gitstore: pack on another file system: copying it", "path", path, "dir", packDir)
	w, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return "", fmt.Errorf("gitstore: create pack: %w", err)
	}
	_, err = io.Copy(w, io.NewSectionReader(f, 0, 1<<62))
	if err == nil && !s.opts.NoSync {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("gitstore: copy pack: %w", err)
	}
	return tmp, nil
}

// placePack puts the verified pack v in packDir under its trailer's name
// in packBuilder.write's order: its idx written and fsynced aside, the
// file linked aside (copied across file systems), the .keep holding
// keep (written whole and fsynced by a rename when durableKeep), then the idx and the pack renamed in.
// The caller fsyncs the directory. It returns the pack's name.
func (s *store) placePack(packDir string, v *verified, keep []byte, durableKeep bool) (string, error) {
	name := "pack-" + v.trailer.String()
	dst := filepath.Join(packDir, name)
	entries := make([]idxEntry, len(v.objs))
	for k, o := range v.objs {
		entries[k] = idxEntry{o.Hash, o.Offset, o.crc}
	}
	tmpIdx, err := writeFileSync(packDir, "idx", encodeIdx(entries, v.trailer), s.opts.NoSync)
	if err != nil {
		return "", err
	}
	defer os.Remove(tmpIdx) // gone after the rename
	tmpPack, err := s.linkPack(v.f, v.path, packDir)
	if err != nil {
		return "", err
	}
	defer os.Remove(tmpPack)
	writeKeep := func() error { return os.WriteFile(dst+".keep", keep, 0o644) }
	if durableKeep {
		writeKeep = func() error { return durable.WriteFile(dst+".keep", keep, 0o644, !s.opts.NoSync) }
	}
	if err := writeKeep(); err != nil {
		return "", fmt.Errorf("gitstore: write keep: %w", err)
	}
	if err := os.Rename(tmpIdx, dst+".idx"); err != nil {
		return "", fmt.Errorf("gitstore: install idx: %w", err)
	}
	if err := os.Rename(tmpPack, dst+".pack"); err != nil {
		return "", fmt.Errorf("gitstore: install pack: %w", err)
	}
	return name, nil
}

// appendEntries appends v's commits as entries of epoch n, their blobs
// located in the pack name.
func (v *verified) appendEntries(out []Entry, n int, name string) []Entry {
	for _, l := range v.chain {
		b := v.objs[l.blob]
		out = append(out, Entry{
			Epoch: n, Commit: v.objs[l.commitI].Hash, Parent: l.ci.Parent, Tree: v.objs[l.treeI].Hash,
			Blob: b.Hash, Remove: l.name == "d", BlobSize: b.Size,
			BlobLoc: Loc{Epoch: n, Pack: name, Offset: b.Offset},
			Author:  l.ci.Author, Committer: l.ci.Committer, Message: l.ci.Message,
		})
	}
	return out
}

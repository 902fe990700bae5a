package gitstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"mailswarm/internal/durable"
)

// One copy of every object at the origin (docs/ARCHITECTURE.md, "One copy:
// sealed day packs"). An epoch's objects are first written as batch packs,
// one per commit pass; once the swarm seals a day, its canonical day pack
// is linked in as a git pack too (InstallSealed), the index's rows are
// moved to it, and the batch packs whose every object a sealed pack holds
// are removed (DropCovered). The order of these steps is what keeps a
// crash harmless; each step is idempotent.

// sealedKeep is the .keep of a sealed day pack installed by InstallSealed:
// the mark DropCovered trusts as "this pack is the epoch's storage for its
// objects". Batch packs and a mirror's installed packs have "mailswarm\n".
const sealedKeep = "mailswarm sealed\n"

// swappedFile, in an epoch's git directory, says that no swap is
// unfinished there: InstallSealed removes it (durably) before it links a
// pack in, MarkSwapped writes it once the rows moved and the covered
// packs went. A process's first adoption over every epoch reads it
// instead of every row and every sealed idx (alsa-devel: 1.4 s and 160
// MiB for a publish with nothing new). Absent (a list swapped before the
// file existed, or a crash mid-swap) means "look".
const swappedFile = "mailswarm-swapped"

// Swapped reports whether no swap is unfinished in epoch (MarkSwapped ran
// after the last InstallSealed).
func (s *Store) Swapped(epoch int) bool {
	_, err := os.Stat(filepath.Join(s.impl.gitDir(epoch), swappedFile))
	return err == nil
}

// MarkSwapped records that epoch's swap is finished: every row moved,
// every covered pack dropped. The caller holds what keeps InstallSealed
// from running meanwhile (archive: the index lock).
func (s *Store) MarkSwapped(epoch int) error {
	path := filepath.Join(s.impl.gitDir(epoch), swappedFile)
	if err := durable.WriteFile(path, []byte("mailswarm: no swap unfinished\n"), 0o644, !s.impl.opts.NoSync); err != nil {
		return fmt.Errorf("gitstore: %w", err)
	}
	return nil
}

// unmarkSwapped removes epoch's swappedFile, durably, before a pack is
// linked in: a crash from here to MarkSwapped leaves it absent.
func (s *store) unmarkSwapped(n int) error {
	dir := s.gitDir(n)
	if err := os.Remove(filepath.Join(dir, swappedFile)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("gitstore: %w", err)
	}
	if s.opts.NoSync {
		return nil
	}
	return syncDir(dir)
}

// ErrNotInEpoch is wrapped when a sealed pack holds a commit the epoch does
// not have: it is for another epoch or history, and nothing is installed.
var ErrNotInEpoch = errors.New("gitstore: pack holds commits the epoch does not have")

// InstallSealed links the canonical pack file at path (a sealed day pack
// of this epoch's own history, as WriteCanonicalPack wrote it) in as one
// of the epoch's git packs: the file is verified strictly, each of its
// commits must already be in the epoch, then its idx and a .keep marking
// it sealed are written and the file is hard-linked in (copied only
// across file systems), one directory fsync. The ref does not move: the
// objects were there already, in batch packs, which DropCovered removes
// later. It returns the pack's commits as entries, their blobs located in
// the sealed pack. Installing the same file again is harmless.
func (s *Store) InstallSealed(epoch int, path string) ([]Entry, error) {
	return s.impl.installSealed(epoch, path)
}

func (s *store) installSealed(n int, path string) ([]Entry, error) {
	v, err := verifyInstall(path)
	if err != nil {
		return nil, err
	}
	defer v.f.Close()
	release, err := s.beginAppend()
	if err != nil {
		return nil, err
	}
	defer release()
	db, err := s.epoch(n)
	if err != nil {
		return nil, err
	}
	for _, l := range v.chain {
		h := v.objs[l.commitI].Hash
		if _, _, err := db.locate(h); err != nil {
			if errors.Is(err, errNotFound) {
				return nil, fmt.Errorf("gitstore: install sealed %s: %w: commit %s is not in epoch %d", path, ErrNotInEpoch, h, n)
			}
			return nil, err
		}
	}
	if err := s.unmarkSwapped(n); err != nil {
		return nil, err
	}
	packDir := db.packDir()
	// As installVerified, but the .keep is written whole (atomic and
	// fsynced): a torn one would make the pack look like a batch pack,
	// which is safe (nothing is dropped for it) but keeps the batch packs
	// it covers.
	name, err := s.placePack(packDir, v, []byte(sealedKeep), true)
	if err != nil {
		return nil, err
	}
	if !s.opts.NoSync {
		if err := syncDir(packDir); err != nil {
			return nil, err
		}
	}
	if err := db.loadPack(name); err != nil {
		return nil, err
	}
	out := v.appendEntries(make([]Entry, 0, len(v.chain)), n, name)
	return out, nil
}

// DropCovered removes the epoch's packs that are not sealed and whose
// every object a sealed pack (InstallSealed) holds, except those keep
// reports true for (the caller's readers still name them: archive passes
// the packs its index rows name). It holds the append lock, so no append
// or install runs meanwhile. A pack is removed .pack first, then .idx,
// then .keep, then the directory is fsynced: a crash in between leaves an
// idx without its pack, which no reader lists (git and this package both
// open packs by their idx and skip one whose pack is missing) and the
// next DropCovered removes. It returns the names removed.
//
// Readers: a pack file open in this process keeps reading until released
// (unlinked files live while open); a Loc read from the index before the
// rows moved reads by its Blob name (Loc.Blob); another process's name
// index forgets the pack at its next directory scan or read miss
// (odb.forgetGone). So no grace period is needed.
func (s *Store) DropCovered(epoch int, keep func(pack string) bool) ([]string, error) {
	return s.impl.dropCovered(epoch, keep)
}

func (s *store) dropCovered(n int, keep func(string) bool) ([]string, error) {
	release, err := s.beginAppend()
	if err != nil {
		return nil, err
	}
	defer release()
	db, err := s.epoch(n)
	if err != nil {
		return nil, err
	}
	packDir := db.packDir()
	sealed, others, lone, err := listPacks(packDir)
	if err != nil {
		return nil, err
	}
	removed := false
	for _, base := range lone {
		os.Remove(filepath.Join(packDir, base+".idx"))
		os.Remove(filepath.Join(packDir, base+".keep"))
		removed = true
	}
	others = slices.DeleteFunc(others, func(base string) bool { return keep != nil && keep(base) })
	var dropped []string
	if len(sealed) > 0 && len(others) > 0 {
		covered, err := readSealed(packDir, sealed)
		if err != nil {
			return nil, err
		}
		for _, base := range others {
			ix, err := readIdxFile(filepath.Join(packDir, base+".idx"))
			if err != nil {
				return dropped, err
			}
			all := true
			for i := 0; i < ix.n && all; i++ {
				all = covered.has(ix.name(i))
			}
			if !all {
				continue
			}
			for _, ext := range []string{".pack", ".idx", ".keep"} {
				if err := os.Remove(filepath.Join(packDir, base+ext)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return dropped, fmt.Errorf("gitstore: drop %s%s: %w", base, ext, err)
				}
			}
			dropped = append(dropped, base)
			removed = true
		}
	}
	if removed {
		if !s.opts.NoSync {
			if err := syncDir(packDir); err != nil {
				return dropped, err
			}
		}
		if err := db.scan(); err != nil { // forgets the packs removed
			return dropped, err
		}
	}
	if len(dropped) > 0 {
		s.log.Info("gitstore: batch packs dropped: sealed packs hold their objects", "dir", s.dir, "epoch", n, "packs", len(dropped))
	}
	return dropped, nil
}

// readIdxFile reads and parses an idx file.
func readIdxFile(path string) (*idxFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gitstore: read %s: %w", filepath.Base(path), err)
	}
	ix, err := parseIdx(data)
	if err != nil {
		return nil, fmt.Errorf("gitstore: %s: %w", filepath.Base(path), err)
	}
	return ix, nil
}

// sealedSet is the objects of the sealed packs, sorted by name: 32 bytes
// an object (alsa-devel's 270,000: 8.6 MB, read from the idx files for
// each adoption).
type sealedSet struct {
	packs []string
	ents  []sealedEnt
}

type sealedEnt struct {
	name Hash
	pack int32
	off  int64
}

func cmpSealed(a sealedEnt, h Hash) int { return bytes.Compare(a.name[:], h[:]) }

// find returns where a sealed pack holds h.
func (ss *sealedSet) find(h Hash) (sealedEnt, bool) {
	i, ok := slices.BinarySearchFunc(ss.ents, h, cmpSealed)
	if !ok {
		return sealedEnt{}, false
	}
	return ss.ents[i], true
}

func (ss *sealedSet) has(h Hash) bool { _, ok := ss.find(h); return ok }

// readSealed reads the idx files of the sealed packs.
func readSealed(packDir string, sealed []string) (*sealedSet, error) {
	ss := &sealedSet{packs: sealed}
	for k, base := range sealed {
		ix, err := readIdxFile(filepath.Join(packDir, base+".idx"))
		if err != nil {
			return nil, err
		}
		for i := 0; i < ix.n; i++ {
			off, err := ix.offset(i)
			if err != nil {
				return nil, fmt.Errorf("gitstore: %s.idx: %w", base, err)
			}
			ss.ents = append(ss.ents, sealedEnt{ix.name(i), int32(k), off})
		}
	}
	slices.SortFunc(ss.ents, func(a, b sealedEnt) int { return bytes.Compare(a.name[:], b.name[:]) })
	return ss, nil
}

// listPacks sorts the packs of packDir: sealed ones, the others, and idx
// files without their pack.
func listPacks(packDir string) (sealed, others, lone []string, err error) {
	ents, err := os.ReadDir(packDir)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("gitstore: list packs: %w", err)
	}
	have := map[string]bool{}
	for _, e := range ents {
		have[e.Name()] = true
	}
	for _, e := range ents {
		base, ok := strings.CutSuffix(e.Name(), ".idx")
		if !ok || !strings.HasPrefix(base, "pack-") {
			continue
		}
		if !have[base+".pack"] {
			lone = append(lone, base)
			continue
		}
		k, err := os.ReadFile(filepath.Join(packDir, base+".keep"))
		if err == nil && string(k) == sealedKeep {
			sealed = append(sealed, base)
		} else {
			others = append(others, base)
		}
	}
	return sealed, others, lone, nil
}

// SealedLocs returns where the epoch's sealed packs hold each of blobs
// (a blob no sealed pack holds is left out), and the sealed packs' names.
func (s *Store) SealedLocs(epoch int, blobs []Hash) (map[Hash]Loc, []string, error) {
	db, err := s.impl.epoch(epoch)
	if err != nil {
		return nil, nil, err
	}
	sealed, _, _, err := listPacks(db.packDir())
	if err != nil || len(sealed) == 0 {
		return nil, nil, err
	}
	ss, err := readSealed(db.packDir(), sealed)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[Hash]Loc, len(blobs))
	for _, h := range blobs {
		if e, ok := ss.find(h); ok {
			out[h] = Loc{Epoch: epoch, Pack: ss.packs[e.pack], Offset: e.off, Blob: h}
		}
	}
	return out, sealed, nil
}

// Sealed reports whether the pack whose trailer is given is installed in
// epoch as a sealed pack (InstallSealed finished with it).
func (s *Store) Sealed(epoch int, trailer Hash) bool {
	dst := filepath.Join(s.impl.gitDir(epoch), "objects", "pack", "pack-"+trailer.String())
	k, err := os.ReadFile(dst + ".keep")
	if err != nil || string(k) != sealedKeep {
		return false
	}
	_, err1 := os.Stat(dst + ".idx")
	_, err2 := os.Stat(dst + ".pack")
	return err1 == nil && err2 == nil
}

// Installed reports whether the pack whose trailer is given is one of
// epoch's git packs (its .pack and .idx present), sealed or not: a
// mirror's downloaded day pack is installed as itself, one copy already.
func (s *Store) Installed(epoch int, trailer Hash) bool {
	dst := filepath.Join(s.impl.gitDir(epoch), "objects", "pack", "pack-"+trailer.String())
	_, err1 := os.Stat(dst + ".idx")
	_, err2 := os.Stat(dst + ".pack")
	return err1 == nil && err2 == nil
}

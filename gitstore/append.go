package gitstore

import (
	"fmt"
	"path/filepath"
)

// pending is one commit of a batch waiting for its pack to be written.
type pending struct {
	entry   Entry
	blobIdx int // index of the blob in the batch, -1 when already stored
}

// beginAppend takes both append locks and reloads what other processes
// may have written; the returned function releases them.
func (s *store) beginAppend() (func(), error) {
	s.amu.Lock()
	lk, err := s.lockAppend()
	if err != nil {
		s.amu.Unlock()
		return nil, err
	}
	release := func() { lk.Unlock(); s.amu.Unlock() }
	if err := s.refresh(); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// addEpoch creates epoch n and lists it in all.git's alternates.
func (s *store) addEpoch(n int) (*odb, error) {
	if err := initRepo(s.gitDir(n), s.opts.NoSync); err != nil {
		return nil, err
	}
	if err := s.refresh(); err != nil {
		return nil, err
	}
	if err := writeAlternates(s.dir, s.epochs(), s.opts.NoSync); err != nil {
		return nil, err
	}
	s.log.Info("gitstore: new epoch", "dir", s.dir, "epoch", n)
	return s.epoch(n)
}

// commitBatch writes pb as one pack into epoch n (when it holds anything),
// moves the ref to tip, and appends the batch's entries, with their blob
// locations, to out. On error out is returned as it was: the entries of
// earlier epochs, which are committed.
func (s *store) commitBatch(n int, db *odb, pb *packBuilder, tip Hash, batch []pending, out []Entry) ([]Entry, error) {
	if len(batch) == 0 {
		return out, nil
	}
	name := ""
	if len(pb.objs) > 0 {
		var err error
		name, err = pb.write(filepath.Join(s.gitDir(n), "objects", "pack"), s.opts.NoSync)
		if err != nil {
			return out, err
		}
		if err := db.loadPack(name); err != nil {
			return out, err
		}
	}
	if err := writeRef(s.gitDir(n), masterRef, tip, s.opts.NoSync, s.log); err != nil {
		return out, err
	}
	for _, p := range batch {
		e := p.entry
		if p.blobIdx >= 0 {
			e.BlobLoc = Loc{Epoch: n, Pack: name, Offset: pb.objs[p.blobIdx].off}
		} else {
			pn, off, err := db.locate(e.Blob)
			if err != nil {
				return out, err
			}
			e.BlobLoc = Loc{Epoch: n, Pack: pn, Offset: off}
		}
		out = append(out, e)
	}
	return out, nil
}

// addObject adds an object to the batch unless the epoch already has it
// packed; it returns its batch index or -1.
func addObject(pb *packBuilder, db *odb, t ObjectType, h Hash, data []byte) (int, error) {
	if i, ok := pb.index[h]; ok {
		return i, nil
	}
	if _, ok, err := db.lookup(h); err != nil || ok {
		return -1, err
	}
	return pb.add(t, h, data), nil
}

// addObjects adds a commit's three objects to the batch and returns the
// blob's batch index (or -1).
func addObjects(pb *packBuilder, db *odb, commitH Hash, commit []byte, treeH Hash, tree []byte, blobH Hash, blob []byte) (int, error) {
	if _, err := addObject(pb, db, ObjCommit, commitH, commit); err != nil {
		return 0, err
	}
	if _, err := addObject(pb, db, ObjTree, treeH, tree); err != nil {
		return 0, err
	}
	return addObject(pb, db, ObjBlob, blobH, blob)
}

func (s *store) append(commits []Commit) ([]Entry, error) {
	if len(commits) == 0 {
		return nil, nil
	}
	release, err := s.beginAppend()
	if err != nil {
		return nil, err
	}
	defer release()
	eps := s.epochs()
	n := eps[len(eps)-1]
	db, err := s.epoch(n)
	if err != nil {
		return nil, err
	}
	tip, err := readRef(s.gitDir(n), masterRef)
	if err != nil {
		return nil, err
	}
	epochBytes, err := db.packBytes()
	if err != nil {
		return nil, err
	}
	pb := newPackBuilder()
	out := make([]Entry, 0, len(commits))
	batch := make([]pending, 0, len(commits))
	for _, c := range commits {
		if used := epochBytes + pb.size; used > 0 && used > s.opts.EpochSize {
			if out, err = s.commitBatch(n, db, pb, tip, batch, out); err != nil {
				return out, err
			}
			n++
			if db, err = s.addEpoch(n); err != nil {
				return out, err
			}
			tip, epochBytes, pb, batch = ZeroHash, 0, newPackBuilder(), batch[:0]
		}
		name := "m"
		if c.Remove {
			name = "d"
		}
		var blobH Hash
		if c.Prepared != nil {
			blobH = c.Prepared.hash
		} else {
			blobH = hashObject(ObjBlob, c.Blob)
		}
		tree := encodeTree(name, blobH)
		treeH := hashObject(ObjTree, tree)
		cdata := encodeCommit(treeH, tip, c.Author, c.Committer, c.Message)
		commitH := hashObject(ObjCommit, cdata)
		if _, err := addObject(pb, db, ObjCommit, commitH, cdata); err != nil {
			return out, err
		}
		if _, err := addObject(pb, db, ObjTree, treeH, tree); err != nil {
			return out, err
		}
		bi := -1
		if p := c.Prepared; p != nil {
			if i, ok := pb.index[blobH]; ok {
				bi = i
			} else if _, ok, err := db.lookup(blobH); err != nil {
				return out, err
			} else if !ok {
				bi = pb.addRecord(blobH, p.rec, p.crc)
			}
		} else if bi, err = addObject(pb, db, ObjBlob, blobH, c.Blob); err != nil {
			return out, err
		}
		ci, err := parseCommit(cdata) // normalised idents and message, as Walk returns them
		if err != nil {
			return out, err
		}
		batch = append(batch, pending{Entry{
			Epoch: n, Commit: commitH, Parent: tip, Tree: treeH, Blob: blobH,
			Remove: c.Remove, BlobSize: int64(len(c.Blob)),
			Author: ci.Author, Committer: ci.Committer, Message: ci.Message,
		}, bi})
		tip = commitH
	}
	return s.commitBatch(n, db, pb, tip, batch, out)
}

func (s *store) appendRaw(n int, commits []RawCommit) ([]Entry, error) {
	if len(commits) == 0 {
		return nil, nil
	}
	if n < 0 {
		return nil, fmt.Errorf("gitstore: bad epoch %d", n)
	}
	release, err := s.beginAppend()
	if err != nil {
		return nil, err
	}
	defer release()
	eps := s.epochs()
	last := eps[len(eps)-1]
	var db *odb
	switch {
	case n <= last:
		db, err = s.epoch(n)
	case n == last+1:
		db, err = s.addEpoch(n)
	default:
		err = fmt.Errorf("gitstore: epoch %d would leave a gap after %d", n, last)
	}
	if err != nil {
		return nil, err
	}
	tip, err := readRef(s.gitDir(n), masterRef)
	if err != nil {
		return nil, err
	}
	pb := newPackBuilder()
	batch := make([]pending, 0, len(commits))
	for i, rc := range commits {
		commitH := hashObject(ObjCommit, rc.Commit)
		ci, err := parseCommit(rc.Commit)
		if err != nil {
			return nil, fmt.Errorf("gitstore: adopt commit %d (%s): %w", i, commitH, err)
		}
		if ci.Parents > 1 || ci.Parent != tip {
			return nil, fmt.Errorf("gitstore: adopt commit %d (%s): %w: parent %s, want %s",
				i, commitH, ErrCorrupt, ci.Parent, tip)
		}
		treeH := hashObject(ObjTree, rc.Tree)
		if treeH != ci.Tree {
			return nil, fmt.Errorf("gitstore: adopt commit %d (%s): %w: tree is %s, commit names %s",
				i, commitH, ErrCorrupt, treeH, ci.Tree)
		}
		name, blobH, err := parseTree(rc.Tree)
		if err != nil {
			return nil, fmt.Errorf("gitstore: adopt commit %d (%s): %w", i, commitH, err)
		}
		if h := hashObject(ObjBlob, rc.Blob); h != blobH {
			return nil, fmt.Errorf("gitstore: adopt commit %d (%s): %w: blob is %s, tree names %s",
				i, commitH, ErrCorrupt, h, blobH)
		}
		bi, err := addObjects(pb, db, commitH, rc.Commit, treeH, rc.Tree, blobH, rc.Blob)
		if err != nil {
			return nil, err
		}
		batch = append(batch, pending{Entry{
			Epoch: n, Commit: commitH, Parent: ci.Parent, Tree: treeH, Blob: blobH,
			Remove: name == "d", BlobSize: int64(len(rc.Blob)),
			Author: ci.Author, Committer: ci.Committer, Message: ci.Message,
		}, bi})
		tip = commitH
	}
	return s.commitBatch(n, db, pb, tip, batch, nil)
}

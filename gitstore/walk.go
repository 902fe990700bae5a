package gitstore

import (
	"fmt"
)

// chainLink is one commit found walking back from a tip.
type chainLink struct {
	commit, parent, tree Hash
	data                 []byte // the commit's contents, kept while memory allows
}

// keepCommitBytes bounds the commit contents collectChain keeps for the
// second pass of a walk (beyond it, commits are read again).
const keepCommitBytes = 64 << 20

// collectChain follows first parents from tip back to from (exclusive; zero:
// the root) and returns the commits oldest first. Merges are rejected.
func collectChain(db *odb, tip, from Hash) ([]chainLink, error) {
	var links []chainLink
	kept := 0
	for h := tip; h != from; {
		if h.IsZero() {
			return nil, fmt.Errorf("gitstore: %s is not an ancestor of %s", from, tip)
		}
		t, data, err := db.read(h)
		if err != nil {
			return nil, fmt.Errorf("gitstore: commit %s: %w", h, err)
		}
		if t != ObjCommit {
			return nil, fmt.Errorf("gitstore: %w: %s is a %s, not a commit", ErrCorrupt, h, typeName(t))
		}
		c, err := parseCommit(data)
		if err != nil {
			return nil, fmt.Errorf("gitstore: commit %s: %w", h, err)
		}
		if c.Parents > 1 {
			return nil, fmt.Errorf("gitstore: %w: commit %s has %d parents", ErrCorrupt, h, c.Parents)
		}
		l := chainLink{commit: h, parent: c.Parent, tree: c.Tree}
		if kept += len(data); kept <= keepCommitBytes {
			l.data = data
		}
		links = append(links, l)
		h = c.Parent
	}
	for i, j := 0, len(links)-1; i < j; i, j = i+1, j-1 {
		links[i], links[j] = links[j], links[i]
	}
	return links, nil
}

// walkChain calls fn for the commits after from up to tip, oldest first.
// With raw set, fn also gets the objects' contents (blob included).
func walkChain(db *odb, epoch int, tip, from Hash, raw bool, fn func(Entry, RawCommit) error) error {
	links, err := collectChain(db, tip, from)
	if err != nil {
		return err
	}
	for _, l := range links {
		e, rc, err := readEntry(db, epoch, l.commit, l.data, raw)
		if err != nil {
			return err
		}
		if err := fn(e, rc); err != nil {
			return err
		}
	}
	return nil
}

// readEntry reads a commit (unless its contents cdata are given), its tree
// and the blob's location.
func readEntry(db *odb, epoch int, h Hash, cdata []byte, raw bool) (Entry, RawCommit, error) {
	var rc RawCommit
	e := Entry{Epoch: epoch, Commit: h}
	if cdata == nil {
		t, data, err := db.read(h)
		if err != nil {
			return e, rc, fmt.Errorf("gitstore: commit %s: %w", h, err)
		}
		if t != ObjCommit {
			return e, rc, fmt.Errorf("gitstore: %w: %s is not a commit", ErrCorrupt, h)
		}
		cdata = data
	}
	c, err := parseCommit(cdata)
	if err != nil {
		return e, rc, fmt.Errorf("gitstore: commit %s: %w", h, err)
	}
	if c.Parents > 1 {
		return e, rc, fmt.Errorf("gitstore: %w: commit %s has %d parents", ErrCorrupt, h, c.Parents)
	}
	e.Parent, e.Tree = c.Parent, c.Tree
	e.Author, e.Committer, e.Message = c.Author, c.Committer, c.Message
	t, tdata, err := db.read(c.Tree)
	if err != nil {
		return e, rc, fmt.Errorf("gitstore: tree %s of %s: %w", c.Tree, h, err)
	}
	if t != ObjTree {
		return e, rc, fmt.Errorf("gitstore: %w: tree %s of %s is a %s", ErrCorrupt, c.Tree, h, typeName(t))
	}
	name, blob, err := parseTree(tdata)
	if err != nil {
		return e, rc, fmt.Errorf("gitstore: tree %s of %s: %w", c.Tree, h, err)
	}
	e.Blob, e.Remove = blob, name == "d"
	packName, off, bt, size, err := db.stat(blob)
	if err != nil {
		return e, rc, fmt.Errorf("gitstore: blob %s of %s: %w", blob, h, err)
	}
	if bt != ObjBlob {
		return e, rc, fmt.Errorf("gitstore: %w: %s of %s is a %s, not a blob", ErrCorrupt, blob, h, typeName(bt))
	}
	e.BlobLoc = Loc{Epoch: epoch, Pack: packName, Offset: off}
	e.BlobSize = size
	if raw {
		_, bdata, err := db.read(blob)
		if err != nil {
			return e, rc, fmt.Errorf("gitstore: blob %s of %s: %w", blob, h, err)
		}
		rc = RawCommit{Commit: cdata, Tree: tdata, Blob: bdata}
	}
	return e, rc, nil
}

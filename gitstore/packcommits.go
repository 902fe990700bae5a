package gitstore

import (
	"bytes"
	"fmt"
	"io"
)

// PackCommits reads a pack of whole commits, as canonical packs are (a
// day pack, a slice), into the commits it carries in chain order, ready
// for AppendRaw: it verifies the pack strictly (VerifyPack), requires every
// object to be a commit of one linear chain, its tree ("m" or "d" only) or
// that tree's blob, each commit with its tree and blob present, and
// nothing else. base is the first commit's parent: the commit the pack
// continues (zero for an epoch's root). Errors wrap ErrCorrupt.
func PackCommits(pack []byte) (base Hash, commits []RawCommit, err error) {
	objs, err := verifyPackObjs(pack)
	if err != nil {
		return base, nil, err
	}
	at := func(o PackObject) ([]byte, error) { return objectAt(pack, o) }
	base, chain, err := packChain(objs, at)
	if err != nil {
		return base, nil, err
	}
	commits = make([]RawCommit, len(chain))
	for i, l := range chain {
		blob, err := at(objs[l.blob].PackObject)
		if err != nil {
			return base, nil, err
		}
		commits[i] = RawCommit{Commit: l.commit, Tree: l.tree, Blob: blob}
	}
	return base, commits, nil
}

// packLink is one commit of a pack's chain: its commit and tree bodies,
// parsed, and the index of each of its three objects in the pack's list.
type packLink struct {
	ci                   commitInfo
	commit, tree         []byte
	name                 string // the tree's entry: "m" or "d"
	commitI, treeI, blob int
}

// packChain applies PackCommits' rules to the objects of a verified pack,
// inflating (through at) only its commits and trees: the blobs were
// re-hashed by the verification and are only located, so a pack of tens
// of MiB of mail is checked without holding its messages.
func packChain(objs []scannedObj, at func(PackObject) ([]byte, error)) (base Hash, chain []packLink, err error) {
	byHash := make(map[Hash]int, len(objs))
	var order []int // commits as listed
	for i, o := range objs {
		byHash[o.Hash] = i
		if o.Type == ObjCommit {
			order = append(order, i)
		}
	}
	if len(order) == 0 {
		return base, nil, fmt.Errorf("%w: pack holds no commit", ErrCorrupt)
	}
	// Chain the commits: exactly one has a parent outside the pack, and
	// every other's parent is the commit before it.
	infos := make(map[Hash]commitInfo, len(order))
	bodies := make(map[Hash][]byte, len(order))
	child := make(map[Hash]Hash, len(order))
	for _, i := range order {
		h := objs[i].Hash
		b, err := at(objs[i].PackObject)
		if err != nil {
			return base, nil, err
		}
		c, err := parseCommit(b)
		if err != nil {
			return base, nil, fmt.Errorf("commit %s: %w", h, err)
		}
		if c.Parents > 1 {
			return base, nil, fmt.Errorf("%w: commit %s is a merge", ErrCorrupt, h)
		}
		infos[h], bodies[h] = c, b
		if _, dup := child[c.Parent]; dup {
			return base, nil, fmt.Errorf("%w: two commits have parent %s: not one chain", ErrCorrupt, c.Parent)
		}
		child[c.Parent] = h
	}
	var first Hash
	roots := 0
	for _, i := range order {
		h := objs[i].Hash
		p := infos[h].Parent
		if _, in := infos[p]; !in || p.IsZero() {
			first, base = h, p
			roots++
		}
	}
	if roots != 1 {
		return base, nil, fmt.Errorf("%w: the pack's commits are not one chain", ErrCorrupt)
	}
	typeOf := func(h Hash) (int, bool, ObjectType) {
		i, ok := byHash[h]
		if !ok {
			return 0, false, 0
		}
		return i, true, objs[i].Type
	}
	used := make(map[Hash]bool, len(objs))
	for h, n := first, 0; n < len(order); n++ {
		c := infos[h]
		ti, ok, t := typeOf(c.Tree)
		if !ok || t != ObjTree {
			return base, nil, fmt.Errorf("%w: commit %s: tree %s not in the pack", ErrCorrupt, h, c.Tree)
		}
		tree, err := at(objs[ti].PackObject)
		if err != nil {
			return base, nil, err
		}
		name, blob, err := parseTree(tree)
		if err != nil {
			return base, nil, fmt.Errorf("tree %s: %w", c.Tree, err)
		}
		bi, ok, t := typeOf(blob)
		if !ok || t != ObjBlob {
			return base, nil, fmt.Errorf("%w: tree %s: blob %s not in the pack", ErrCorrupt, c.Tree, blob)
		}
		used[h], used[c.Tree], used[blob] = true, true, true
		chain = append(chain, packLink{ci: c, commit: bodies[h], tree: tree, name: name,
			commitI: byHash[h], treeI: ti, blob: bi})
		next, ok := child[h]
		if !ok && n+1 < len(order) {
			return base, nil, fmt.Errorf("%w: the pack's commits are not one chain", ErrCorrupt)
		}
		h = next
	}
	if len(used) != len(objs) {
		return base, nil, fmt.Errorf("%w: pack holds %d objects no commit uses", ErrCorrupt, len(objs)-len(used))
	}
	return base, chain, nil
}

// objectAt inflates the (non-delta) object o of a verified pack.
func objectAt(pack []byte, o PackObject) ([]byte, error) {
	return objectAtReader(bytes.NewReader(pack), int64(len(pack)), o)
}

// objectAtReader inflates the (non-delta) object o of a verified pack of
// size bytes read through r.
func objectAtReader(r io.ReaderAt, size int64, o PackObject) ([]byte, error) {
	var hdr [10]byte
	n, _ := r.ReadAt(hdr[:], o.Offset)
	i := 0
	for i < n && hdr[i]&0x80 != 0 {
		i++
	}
	i++
	if i > n || o.Offset+int64(i) >= size {
		return nil, fmt.Errorf("%w: object header at %d runs off the pack", ErrCorrupt, o.Offset)
	}
	b, err := inflateFrom(io.NewSectionReader(r, o.Offset+int64(i), size-o.Offset-int64(i)), o.Size)
	if err != nil {
		return nil, fmt.Errorf("%w: object at %d: %v", ErrCorrupt, o.Offset, err)
	}
	return b, nil
}

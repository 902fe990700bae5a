package gitstore

import (
	"bytes"
	"fmt"
)

// PackCommits reads a pack of whole commits, as canonical packs are (a
// day pack, a slice), into the commits it carries in chain order, ready
// for AppendRaw: it verifies the pack strictly (VerifyPack), requires every
// object to be a commit of one linear chain, its tree ("m" or "d" only) or
// that tree's blob, each commit with its tree and blob present, and
// nothing else. base is the first commit's parent: the commit the pack
// continues (zero for an epoch's root). Errors wrap ErrCorrupt.
func PackCommits(pack []byte) (base Hash, commits []RawCommit, err error) {
	objs, err := verifyPack(pack)
	if err != nil {
		return base, nil, err
	}
	data := make(map[Hash][]byte, len(objs))
	types := make(map[Hash]ObjectType, len(objs))
	var order []Hash // commits as listed
	for _, o := range objs {
		b, err := objectAt(pack, o)
		if err != nil {
			return base, nil, err
		}
		data[o.Hash], types[o.Hash] = b, o.Type
		if o.Type == ObjCommit {
			order = append(order, o.Hash)
		}
	}
	if len(order) == 0 {
		return base, nil, fmt.Errorf("%w: pack holds no commit", ErrCorrupt)
	}
	// Chain the commits: exactly one has a parent outside the pack, and
	// every other's parent is the commit before it.
	parent := make(map[Hash]Hash, len(order))
	child := make(map[Hash]Hash, len(order))
	for _, h := range order {
		c, err := parseCommit(data[h])
		if err != nil {
			return base, nil, fmt.Errorf("commit %s: %w", h, err)
		}
		if c.Parents > 1 {
			return base, nil, fmt.Errorf("%w: commit %s is a merge", ErrCorrupt, h)
		}
		parent[h] = c.Parent
		if _, dup := child[c.Parent]; dup {
			return base, nil, fmt.Errorf("%w: two commits have parent %s: not one chain", ErrCorrupt, c.Parent)
		}
		child[c.Parent] = h
	}
	var first Hash
	roots := 0
	for _, h := range order {
		if _, in := parent[parent[h]]; !in || parent[h].IsZero() {
			first, base = h, parent[h]
			roots++
		}
	}
	if roots != 1 {
		return base, nil, fmt.Errorf("%w: the pack's commits are not one chain", ErrCorrupt)
	}
	used := make(map[Hash]bool, len(objs))
	for h, n := first, 0; n < len(order); n++ {
		c, _ := parseCommit(data[h])
		if types[c.Tree] != ObjTree {
			return base, nil, fmt.Errorf("%w: commit %s: tree %s not in the pack", ErrCorrupt, h, c.Tree)
		}
		_, blob, err := parseTree(data[c.Tree])
		if err != nil {
			return base, nil, fmt.Errorf("tree %s: %w", c.Tree, err)
		}
		if types[blob] != ObjBlob {
			return base, nil, fmt.Errorf("%w: tree %s: blob %s not in the pack", ErrCorrupt, c.Tree, blob)
		}
		used[h], used[c.Tree], used[blob] = true, true, true
		commits = append(commits, RawCommit{Commit: data[h], Tree: data[c.Tree], Blob: data[blob]})
		next, ok := child[h]
		if !ok && n+1 < len(order) {
			return base, nil, fmt.Errorf("%w: the pack's commits are not one chain", ErrCorrupt)
		}
		h = next
	}
	if len(used) != len(objs) {
		return base, nil, fmt.Errorf("%w: pack holds %d objects no commit uses", ErrCorrupt, len(objs)-len(used))
	}
	return base, commits, nil
}

// objectAt inflates the (non-delta) object o of a verified pack.
func objectAt(pack []byte, o PackObject) ([]byte, error) {
	i := o.Offset
	for i < int64(len(pack)) && pack[i]&0x80 != 0 {
		i++
	}
	i++
	if i >= int64(len(pack)) {
		return nil, fmt.Errorf("%w: object header at %d runs off the pack", ErrCorrupt, o.Offset)
	}
	b, err := inflateFrom(bytes.NewReader(pack[i:]), o.Size)
	if err != nil {
		return nil, fmt.Errorf("%w: object at %d: %v", ErrCorrupt, o.Offset, err)
	}
	return b, nil
}

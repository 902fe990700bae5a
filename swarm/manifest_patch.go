package swarm

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
)

// A manifest patch carries a follower from the full manifest it holds to a
// newer one without sending what both have: a new slice is about 600
// bytes of patch against a whole manifest of about 330 bytes a day of
// history (alsa-devel's 2,141 days: 698 KiB at every slice).
//
// A patch is not signed and not trusted. It says: from the manifest file
// whose sha256 is base (sequence baseseq), drop these pack files and
// bundle names, add these packs and bundles, set seq, prev, time and the
// epoch tips; and here is the new manifest's signature. The receiver
// applies it to the very manifest it holds (Apply), re-encodes the body
// canonically, and gives the file to ParseManifest: the signature covers
// the rebuilt body, so a patch that rebuilds anything but the signed
// manifest is refused like a forged manifest, and the chain checks
// (Follows, checkChain) run on the result as on any manifest. Anyone
// holding two full manifests can compute the patch between them
// (DiffManifest): a mirror serves patches to its own followers.
//
// The encoding is canonical bencode, one per patch, read by the manifest's
// own strict decoder:
//
//	base     sha256 of the base manifest file (32)
//	baseseq  the base manifest's sequence
//	bundles  bundles added, as in a manifest, in manifest order
//	drop     pack file and bundle names of the base not in the new manifest
//	         (or changed in it), sorted, unique
//	epochs   the new manifest's epoch tips, as in a manifest
//	packs    packs added, as in a manifest, in manifest order (sortPacks)
//	prev     the new manifest's prev (32)
//	seq      the new manifest's sequence
//	sig      the new manifest's signature (64)
//	time     the new manifest's time
//	v        patch format version, 1

const (
	patchVersion = 1
	// maxPatchSize bounds a patch. A node sends the full manifest
	// instead when the patch would be more than half of it, so a patch
	// is large only for a follower far behind on a large list.
	maxPatchSize = 1 << 20
	// patchContentType is the Content-Type of a patch answer.
	patchContentType = "application/x-mailswarm-manifest-patch"
	// patchBases is how many earlier manifests a node keeps to diff
	// from (the newest ones it served; a follower long-polls and is
	// rarely more than one behind). A 20-year list's manifest is about
	// 2.3 MiB: 4 of them, with their parsed entries, about 20 MiB.
	patchBases = 4
)

var patchKeys = []string{"base", "baseseq", "bundles", "drop", "epochs", "packs", "prev", "seq", "sig", "time", "v"}

// ManifestPatch is the difference between two manifests of one list.
type ManifestPatch struct {
	Base    [32]byte // sha256 of the base manifest file
	BaseSeq int64
	Drop    []string      // pack files and bundle names of the base removed, sorted, unique
	Packs   []PackEntry   // packs added, in manifest order
	Bundles []BundleEntry // bundles added, in manifest order
	Epochs  []EpochTip    // the new manifest's epoch tips
	Seq     int64
	Prev    [32]byte
	Time    int64
	Sig     [ed25519.SignatureSize]byte
}

// DiffManifest returns the patch from base to next, both parsed or signed
// manifests of one list.
func DiffManifest(base, next *Manifest) (*ManifestPatch, error) {
	if base.raw == nil || next.raw == nil {
		return nil, errors.New("swarm: diff manifests: not signed or parsed")
	}
	_, sig, err := decodeFile(next.raw)
	if err != nil {
		return nil, fmt.Errorf("swarm: diff manifests: %w", err)
	}
	p := &ManifestPatch{Base: base.Hash(), BaseSeq: base.Seq, Seq: next.Seq, Prev: next.Prev, Time: next.Time,
		Epochs: slices.Clone(next.Epochs)}
	copy(p.Sig[:], sig)
	old := make(map[string]*PackEntry, len(base.Packs))
	for i := range base.Packs {
		old[base.Packs[i].File] = &base.Packs[i]
	}
	kept := make(map[string]bool, len(base.Packs))
	for i := range next.Packs {
		q := &next.Packs[i]
		if o := old[q.File]; o != nil && *o == *q {
			kept[q.File] = true
			continue
		}
		p.Packs = append(p.Packs, *q)
	}
	for i := range base.Packs {
		if !kept[base.Packs[i].File] {
			p.Drop = append(p.Drop, base.Packs[i].File)
		}
	}
	oldB := make(map[string]*BundleEntry, len(base.Bundles))
	for i := range base.Bundles {
		oldB[base.Bundles[i].Name] = &base.Bundles[i]
	}
	for i := range next.Bundles {
		c := &next.Bundles[i]
		if o := oldB[c.Name]; o != nil && o.equal(c) {
			kept[c.Name] = true
			continue
		}
		p.Bundles = append(p.Bundles, *c)
	}
	for i := range base.Bundles {
		if !kept[base.Bundles[i].Name] {
			p.Drop = append(p.Drop, base.Bundles[i].Name)
		}
	}
	slices.Sort(p.Drop)
	return p, nil
}

// Apply rebuilds the new manifest's file from base, the manifest p was
// made from. The result is not verified: give it to ParseManifest. A
// patch of another base, or dropping what base does not hold, is refused
// (ErrManifest).
func (p *ManifestPatch) Apply(base *Manifest) ([]byte, error) {
	mg, err := p.merge(base)
	if err != nil {
		return nil, err
	}
	return encodeFile(encodeBody(mg.m), p.Sig[:]), nil
}

// merged is a patch applied to its base: the new manifest's entries
// (not its file), how many of its first packs and bundles are the base's
// unchanged, and the base's entries the patch dropped.
type merged struct {
	m                      *Manifest
	samePacks, sameBundles int
	dropPacks              []PackEntry
	dropBundles            []BundleEntry
}

func (p *ManifestPatch) merge(base *Manifest) (*merged, error) {
	if h := base.Hash(); h != p.Base || base.Seq != p.BaseSeq {
		return nil, refused(fmt.Errorf("patch from seq %d %x, but the manifest held is seq %d %x", p.BaseSeq, p.Base[:8], base.Seq, h[:8]))
	}
	drop := make(map[string]bool, len(p.Drop))
	for _, f := range p.Drop {
		drop[f] = true
	}
	m := &Manifest{List: base.List, Key: base.Key, Seq: p.Seq, Prev: p.Prev, Time: p.Time, Epochs: p.Epochs,
		Packs:   make([]PackEntry, 0, len(base.Packs)+len(p.Packs)),
		Bundles: make([]BundleEntry, 0, len(base.Bundles)+len(p.Bundles))}
	mg := &merged{m: m}
	for _, q := range base.Packs {
		if drop[q.File] {
			mg.dropPacks = append(mg.dropPacks, q)
			continue
		}
		m.Packs = append(m.Packs, q)
	}
	for _, b := range base.Bundles {
		if drop[b.Name] {
			mg.dropBundles = append(mg.dropBundles, b)
			continue
		}
		m.Bundles = append(m.Bundles, b)
	}
	if dropped := len(mg.dropPacks) + len(mg.dropBundles); dropped != len(p.Drop) {
		return nil, refused(fmt.Errorf("patch to seq %d drops %d names the base (seq %d) does not hold", p.Seq, len(p.Drop)-dropped, base.Seq))
	}
	m.Packs = append(m.Packs, p.Packs...)
	sortPacks(m.Packs)
	m.Bundles = append(m.Bundles, p.Bundles...)
	sortBundles(m.Bundles)
	mg.samePacks, mg.sameBundles = samePrefix(m, base)
	return mg, nil
}

// applyParsed is ParseManifest(p.Apply(base), key) without the work that
// grows with the history and proves nothing new. base was parsed or
// signed here, so its entries passed every rule; the body is encoded
// from the entries (the kept ones copied from base's body, which is
// their encoding: encodeBodyFrom), so it is canonical by construction
// and is not decoded again; the signature is verified over it (one SHA-512 pass);
// the rules run on what the patch added and where it joins what was
// kept. The Follows rules on packs and bundles are checked on what the
// patch dropped (what it kept is base's own), so Follows(base) checks
// no more than the sequence, chain and epochs. A 7,300-day list's slice
// took 143 ms the long way, 21 ms this one (BenchmarkFollowSliceCPU);
// FuzzApplyParsed holds it to the long way.
func (p *ManifestPatch) applyParsed(base *Manifest, key ed25519.PublicKey) (*Manifest, error) {
	if key != nil && len(key) != ed25519.PublicKeySize {
		return nil, refused(fmt.Errorf("expected key has %d bytes, want %d", len(key), ed25519.PublicKeySize))
	}
	mg, err := p.merge(base)
	if err != nil {
		return nil, err
	}
	m := mg.m
	body, idx := encodeBodyFrom(m, base.splice(mg.samePacks, mg.sameBundles))
	raw := encodeFile(body, p.Sig[:])
	if len(raw) > maxManifestSize {
		return nil, refused(fmt.Errorf("%d bytes, more than the %d allowed", len(raw), maxManifestSize))
	}
	if err := m.checkSigned(key, body, p.Sig[:]); err != nil {
		return nil, err
	}
	if err := m.checkFrom(mg.samePacks, mg.sameBundles); err != nil {
		return nil, refused(err)
	}
	if err := m.followsDropped(base, p, mg); err != nil {
		return nil, err
	}
	m.raw, m.idx = raw, idx
	m.hash = sha256.Sum256(raw)
	m.follows = base.Hash()
	return m, nil
}

// followsDropped checks the Follows rules on the entries of base that
// the patch p dropped: each is in m unchanged (dropped and added again),
// or a slice whose day m seals. Only the patch's additions can carry a
// dropped name (base's names are unique).
func (m *Manifest) followsDropped(base *Manifest, p *ManifestPatch, mg *merged) error {
	if len(mg.dropPacks)+len(mg.dropBundles) == 0 {
		return nil
	}
	// Packs and bundles have names of their own: a bundle added under a
	// dropped slice's name is not that slice added again (the long way,
	// Follows, compares packs with packs and bundles with bundles).
	addedPacks := make(map[string]int, len(p.Packs))
	for i := range p.Packs {
		addedPacks[p.Packs[i].File] = i
	}
	addedBundles := make(map[string]int, len(p.Bundles))
	for i := range p.Bundles {
		addedBundles[p.Bundles[i].Name] = i
	}
	for i := range mg.dropPacks {
		d := &mg.dropPacks[i]
		k, ok := addedPacks[d.File]
		switch {
		case ok && p.Packs[k] != *d:
			return refused(fmt.Errorf("list %s seq %d: %s pack %q changed since seq %d", m.List, m.Seq, d.Kind, d.File, base.Seq))
		case ok:
		case d.Kind == KindDay:
			return refused(fmt.Errorf("list %s seq %d: day pack %q of seq %d dropped", m.List, m.Seq, d.File, base.Seq))
		case !m.seals(d.Epoch, d.Day):
			return refused(fmt.Errorf("list %s seq %d: slice %q of seq %d dropped without a day pack for epoch %d day %s", m.List, m.Seq, d.File, base.Seq, d.Epoch, d.Day))
		}
	}
	for i := range mg.dropBundles {
		d := &mg.dropBundles[i]
		k, ok := addedBundles[d.Name]
		switch {
		case !ok:
			return refused(fmt.Errorf("list %s seq %d: bundle %q of seq %d dropped", m.List, m.Seq, d.Name, base.Seq))
		case !p.Bundles[k].equal(d):
			return refused(fmt.Errorf("list %s seq %d: bundle %q changed since seq %d", m.List, m.Seq, d.Name, base.Seq))
		}
	}
	return nil
}

// Encode returns the patch's canonical encoding.
func (p *ManifestPatch) Encode() []byte {
	var e encoder
	e.dict(patchKeys, func(k string) {
		switch k {
		case "base":
			e.bytes(p.Base[:])
		case "baseseq":
			e.int(p.BaseSeq)
		case "bundles":
			e.list(len(p.Bundles), func(i int) { p.Bundles[i].encode(&e) })
		case "drop":
			e.list(len(p.Drop), func(i int) { e.str(p.Drop[i]) })
		case "epochs":
			e.epochs(p.Epochs)
		case "packs":
			e.list(len(p.Packs), func(i int) { p.Packs[i].encode(&e) })
		case "prev":
			e.bytes(p.Prev[:])
		case "seq":
			e.int(p.Seq)
		case "sig":
			e.bytes(p.Sig[:])
		case "time":
			e.int(p.Time)
		case "v":
			e.int(patchVersion)
		}
	})
	return e.b
}

// DecodePatch decodes a patch strictly: at most 1 MiB, its one canonical
// encoding (drop sorted and unique, packs and bundles in manifest order),
// nothing after it. Errors wrap ErrManifest.
func DecodePatch(b []byte) (*ManifestPatch, error) {
	if len(b) > maxPatchSize {
		return nil, refused(fmt.Errorf("patch of %d bytes, more than the %d allowed", len(b), maxPatchSize))
	}
	d := decoder{b: b}
	p := new(ManifestPatch)
	err := d.dict(patchKeys, func(k string) error {
		var err error
		switch k {
		case "base":
			err = d.fixed(p.Base[:])
		case "baseseq":
			p.BaseSeq, err = d.int()
		case "bundles":
			err = d.list(0, func() error {
				var c BundleEntry
				err := c.decode(&d)
				p.Bundles = append(p.Bundles, c)
				return err
			})
		case "drop":
			err = d.list(0, func() error {
				f, err := d.str()
				p.Drop = append(p.Drop, f)
				return err
			})
		case "epochs":
			p.Epochs, err = d.epochs()
		case "packs":
			err = d.list(0, func() error {
				var q PackEntry
				err := q.decode(&d)
				p.Packs = append(p.Packs, q)
				return err
			})
		case "prev":
			err = d.fixed(p.Prev[:])
		case "seq":
			p.Seq, err = d.int()
		case "sig":
			err = d.fixed(p.Sig[:])
		case "time":
			p.Time, err = d.int()
		case "v":
			at := d.i
			var v int64
			if v, err = d.int(); err == nil && v != patchVersion {
				d.i = at
				err = d.errorf("patch version %d, want %d", v, patchVersion)
			}
		}
		return err
	})
	if err != nil {
		return nil, refused(fmt.Errorf("patch: %w", err))
	}
	if d.i != len(b) {
		return nil, refused(fmt.Errorf("patch: %w", d.errorf("trailing bytes after the patch")))
	}
	switch {
	case !slices.IsSorted(p.Drop) || len(slices.Compact(slices.Clone(p.Drop))) != len(p.Drop):
		return nil, refused(errors.New("patch: drop not sorted and unique"))
	case !slices.IsSortedFunc(p.Packs, comparePacks):
		return nil, refused(errors.New("patch: packs not in manifest order"))
	case !slices.IsSortedFunc(p.Bundles, compareBundles):
		return nil, refused(errors.New("patch: bundles not in manifest order"))
	case p.Seq <= p.BaseSeq:
		return nil, refused(fmt.Errorf("patch: seq %d does not follow base seq %d", p.Seq, p.BaseSeq))
	}
	if !bytes.Equal(p.Encode(), b) {
		return nil, refused(errors.New("patch: not canonical bencode"))
	}
	return p, nil
}

// makePatch returns the encoded patch from base to next when it is worth
// sending (at most half of next's file and maxPatchSize) and rebuilds
// next exactly; nil otherwise (the full manifest is sent). The check
// costs a merge and a copy of base's kept bytes; it keeps a manifest whose order this code does not
// rebuild (another implementation's) from ever reaching a follower as a
// patch it would refuse.
func makePatch(base, next *Manifest) []byte {
	p, err := DiffManifest(base, next)
	if err != nil {
		return nil
	}
	b := p.Encode()
	if len(b) > maxPatchSize || len(b) > len(next.raw)/2 {
		return nil
	}
	mg, err := p.merge(base)
	if err != nil {
		return nil
	}
	body, _ := encodeBodyFrom(mg.m, base.splice(mg.samePacks, mg.sameBundles))
	if !bytes.Equal(encodeFile(body, p.Sig[:]), next.raw) {
		return nil
	}
	return b
}

// patchCache is what a node keeps to send patches: the manifests it
// served before the current one (at most patchBases, oldest first) by
// file hash, and the patches from them to the current one (nil: the
// patch is not worth sending). It is guarded by Node.mu.
type patchCache struct {
	bases   []patchBase
	patches map[[32]byte][]byte
	to      *Manifest // the manifest patches lead to
}

// patchBase is a manifest a node served before, by its file hash.
type patchBase struct {
	hash [32]byte
	m    *Manifest
}

// served records that m replaces prev as the manifest served.
func (c *patchCache) served(prev, m *Manifest) {
	if prev != nil && prev != m && prev.Seq < m.Seq {
		c.bases = append(c.bases, patchBase{prev.Hash(), prev})
		if len(c.bases) > patchBases {
			c.bases = slices.Delete(c.bases, 0, len(c.bases)-patchBases)
		}
	}
	if c.to != m {
		c.patches, c.to = nil, m
	}
}

// patchFor returns the patch from the manifest whose file hash is have to
// m, nl's current manifest, or nil when nl does not hold that manifest or
// the patch is not worth sending.
func (n *Node) patchFor(nl *nodeList, m *Manifest, have [32]byte) []byte {
	n.mu.Lock()
	c := &nl.patches
	if b, ok := c.patches[have]; ok && c.to == m {
		n.mu.Unlock()
		return b
	}
	var base *Manifest
	for _, pb := range c.bases {
		if pb.hash == have {
			base = pb.m
		}
	}
	n.mu.Unlock()
	if base == nil || base.Seq >= m.Seq {
		return nil
	}
	b := makePatch(base, m)
	n.mu.Lock()
	if c.to == m {
		if c.patches == nil {
			c.patches = map[[32]byte][]byte{}
		}
		c.patches[have] = b
	}
	n.mu.Unlock()
	return b
}

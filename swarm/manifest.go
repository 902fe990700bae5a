package swarm

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"time"
)

// A manifest is a list's published state: every day pack, open-day slice
// and month bundle with what a mirror needs to fetch and check it, signed
// with the list's ed25519 key. Manifests form a chain: each names the hash
// of the one before it and only ever adds (slices give way to their day
// pack). The file is canonical bencode (BEP 3: dictionary keys sorted
// bytewise, integers without leading zeros or "-0", string lengths
// without leading zeros):
//
//	d 4:body <canonical bencode of the manifest dictionary> 3:sig <64 bytes> e
//
// and the signature covers the body bytes exactly. The body dictionary is
//
//	bundles  list of {epoch, files (list of file names), infohash (20), month, name, size};
//	         month is YYYY-MM for a month bundle, YYYY for a year bundle
//	epochs   list of {epoch, tip (20)}
//	key      the list's ed25519 public key (32)
//	list     the list's name
//	packs    list of {commits, day, epoch, file, first, from (20), infohash (20),
//	         kind, last, objects, sha256 (32), size, to (20), trailer (20)}
//	prev     sha256 of the previous manifest file (32; zeros for seq 1)
//	seq      sequence number
//	time     Unix seconds
//	v        format version: 1, or 2 when a bundle is a year bundle
//
// Every key is always present (an empty list is "le", a zero From is 20
// zero bytes) and no other key is allowed, so a manifest has exactly one
// encoding. Hashes are raw byte strings of exactly the length shown. The
// encoder and decoder below are this package's own, not anacrolix's: the
// decoder refuses anything but that one encoding, and ParseManifest also
// re-encodes what it decoded and requires the same bytes.
//
// The version follows from the content (2 exactly when there is a year
// bundle), so it adds no second encoding, and a manifest without year
// bundles is still read by nodes that know only version 1. Those refuse a
// version 2 manifest (its year bundle has more files than they allow, or
// its version is not 1) as they refuse any bad manifest: a WARN naming
// the source, nothing changed. This node refuses a version above 2 by its
// version before reading anything else.

// ErrManifest is wrapped by every error about a manifest that is refused.
var ErrManifest = errors.New("swarm: manifest refused")

// Pack kinds.
const (
	KindDay   = "day"
	KindSlice = "slice"
)

const (
	// manifestVersion is the version of a manifest with no year bundle,
	// yearsVersion of one with; maxVersion is the newest this node reads.
	manifestVersion = 1
	yearsVersion    = 2
	maxVersion      = yearsVersion
	// maxManifestSize bounds a manifest file. A list with a day pack
	// for every day of a century needs about 15 MiB.
	maxManifestSize = 64 << 20
	// maxBundleFiles is the most day packs a bundle can hold: a year's
	// (a month's hold at most 31, as their days are distinct).
	maxBundleFiles = 366
)

var (
	listNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	fileNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
)

// Dictionary keys, sorted bytewise: the encoder writes them in this order
// and the decoder accepts no other key.
var (
	fileKeys   = []string{"body", "sig"}
	bodyKeys   = []string{"bundles", "epochs", "key", "list", "packs", "prev", "seq", "time", "v"}
	epochKeys  = []string{"epoch", "tip"}
	packKeys   = []string{"commits", "day", "epoch", "file", "first", "from", "infohash", "kind", "last", "objects", "sha256", "size", "to", "trailer"}
	bundleKeys = []string{"epoch", "files", "infohash", "month", "name", "size"}
)

// Manifest is one signed state of a list. ParseManifest and Sign accept
// only a manifest that satisfies every rule written on its fields.
type Manifest struct {
	List    string            // ^[a-z0-9][a-z0-9._-]{0,63}$
	Key     ed25519.PublicKey // 32 bytes
	Seq     int64             // 1 for the first manifest, then +1 each time
	Prev    [32]byte          // sha256 of the previous manifest's file; zero for Seq 1 only
	Time    int64             // Unix seconds when it was published, >= 0
	Epochs  []EpochTip        // ascending by epoch, one per epoch
	Packs   []PackEntry       // by epoch, then day, then a day's slices in order
	Bundles []BundleEntry     // by epoch, then month, then name

	raw  []byte   // the signed file it was parsed from or signed into
	hash [32]byte // sha256 of raw, when raw is set
	// follows is the hash of the manifest this one was patched from
	// (applyParsed), whose packs and bundles it was checked to keep.
	follows [32]byte
	idx     bodyIndex // where raw's body holds each entry, when raw is set
}

// EpochTip is an epoch's newest commit covered by the manifest's packs.
type EpochTip struct {
	Epoch int // >= 0
	Tip   [20]byte
}

// PackEntry is one canonical pack: a sealed day or a slice of an open day.
// A day has either one day pack or any number of slices, never both: the
// day pack replaces the slices when the day is sealed. File names are
// unique across a manifest's packs and bundles.
type PackEntry struct {
	Kind    string   // KindDay or KindSlice
	File    string   // file name, also the torrent's name: ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$, no ".."
	Epoch   int      // >= 0
	Day     string   // UTC day, YYYY-MM-DD
	Size    int64    // > 0
	SHA256  [32]byte // of the pack file; not zero
	Trailer [20]byte // the pack's own SHA-1 trailer; not zero
	// From and To are the commit range: the commits after From (zero: the
	// epoch's root) up to and including To, along the epoch's chain. To
	// is not zero and not From.
	From, To [20]byte
	// FirstArticle and LastArticle are the article numbers of the first
	// and last message in the pack; both 0 when it holds only removals,
	// else 1 <= FirstArticle <= LastArticle.
	FirstArticle, LastArticle int64
	Commits, Objects          int      // 1 <= Commits <= Objects
	InfoHash                  [20]byte // not zero
}

// BundleEntry is a multi-file torrent over a month's or a year's day packs
// of one epoch: the same files as the day torrents, so seeding it costs no
// disk. A closed year has a year bundle beside its month bundles (a late
// joiner opens one torrent for the year, a mirror that holds part of it
// the month bundles of the rest).
type BundleEntry struct {
	Name     string // torrent name: the directory the files sit in; same rule as PackEntry.File
	Epoch    int
	Month    string   // the period: YYYY-MM for a month bundle, YYYY for a year bundle
	Files    []string // day pack file names of this epoch and period, in day order, at least one
	Size     int64    // sum of the files' sizes
	InfoHash [20]byte // not zero
}

// Sign checks m by the rules of ParseManifest, encodes it canonically,
// signs it with priv (whose public key must be m.Key) and returns the
// manifest file, which Bytes returns from then on. A manifest the rules
// refuse gives an error wrapping ErrManifest. Signing the same manifest
// again gives the same bytes (ed25519 signatures are deterministic).
func (m *Manifest) Sign(priv ed25519.PrivateKey) ([]byte, error) { return m.signAfter(nil, priv) }

// samePrefix returns how many leading packs and bundles m has the same
// as base: the entries whose encoding m can copy from base's body.
func samePrefix(m, base *Manifest) (packs, bundles int) {
	for packs < min(len(m.Packs), len(base.Packs)) && m.Packs[packs] == base.Packs[packs] {
		packs++
	}
	for bundles < min(len(m.Bundles), len(base.Bundles)) && m.Bundles[bundles].equal(&base.Bundles[bundles]) {
		bundles++
	}
	return packs, bundles
}

// signAfter is Sign for a manifest whose first entries may be those of
// prev, a manifest parsed or signed here (the origin's next manifest):
// their own rules are not checked again and their bytes are copied from
// prev's body (signing a 7,300-day list's next manifest took 61 ms,
// this way 21 ms: BenchmarkFollowSliceCPU "origin/sign"). prev nil is
// Sign.
func (m *Manifest) signAfter(prev *Manifest, priv ed25519.PrivateKey) ([]byte, error) {
	var samePacks, sameBundles int
	var from *splice
	if prev != nil && prev.raw != nil {
		samePacks, sameBundles = samePrefix(m, prev)
		// A kept bundle's files are checked again unless every day pack
		// of prev is kept (checkFrom).
		for i := samePacks; i < len(prev.Packs); i++ {
			if prev.Packs[i].Kind == KindDay {
				sameBundles = 0
				break
			}
		}
		from = prev.splice(samePacks, sameBundles)
	}
	if err := m.checkFrom(samePacks, sameBundles); err != nil {
		return nil, refused(err)
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("swarm: sign manifest of %s: private key has %d bytes, want %d", m.List, len(priv), ed25519.PrivateKeySize)
	}
	// The key is checked from its seed, which also catches a private key
	// whose public half is m.Key but whose seed is another key's: what
	// verifying the signature caught, at the cost of another SHA-512 pass
	// over the body (5 ms of a 7,300-day list's).
	if pub := ed25519.NewKeyFromSeed(priv.Seed()).Public().(ed25519.PublicKey); !bytes.Equal(pub, m.Key) || !bytes.Equal(priv[ed25519.SeedSize:], m.Key) {
		return nil, fmt.Errorf("swarm: sign manifest of %s: private key is not the key %x", m.List, []byte(m.Key))
	}
	body, idx := encodeBodyFrom(m, from)
	sig := ed25519.Sign(priv, body)
	m.raw, m.idx = encodeFile(body, sig), idx
	m.hash = sha256.Sum256(m.raw)
	return m.raw, nil
}

// splice returns what encodeBodyFrom copies from m's body for a manifest
// whose first packs and bundles are m's; nil when m has no body index.
func (m *Manifest) splice(packs, bundles int) *splice {
	if m.raw == nil || len(m.idx.packs) != len(m.Packs)+1 || len(m.idx.bundles) != len(m.Bundles)+1 {
		return nil
	}
	return &splice{body: fileBody(m.raw), idx: &m.idx, packs: packs, bundles: bundles}
}

// Bytes returns the signed file m was parsed from or signed into.
func (m *Manifest) Bytes() []byte { return m.raw }

// Hash returns the sha256 of the signed file: what the next manifest's
// Prev names. It is the zero hash while m has not been signed or parsed.
// It is computed once (a 2,000-day manifest took 0.5 ms each time, and
// a follower asks several times per manifest).
func (m *Manifest) Hash() [32]byte {
	if m.raw == nil {
		return [32]byte{}
	}
	return m.hash
}

// ParseManifest decodes a manifest file strictly and checks its signature
// against the key it names; key, when not nil, must be that key. It
// refuses, with an error wrapping ErrManifest, a file over 64 MiB, any
// encoding but the canonical one (see above), a bad signature and a
// manifest that breaks a rule written on Manifest's fields.
func ParseManifest(b []byte, key ed25519.PublicKey) (*Manifest, error) {
	if len(b) > maxManifestSize {
		return nil, refused(fmt.Errorf("%d bytes, more than the %d allowed", len(b), maxManifestSize))
	}
	if key != nil && len(key) != ed25519.PublicKeySize {
		return nil, refused(fmt.Errorf("expected key has %d bytes, want %d", len(key), ed25519.PublicKeySize))
	}
	body, sig, err := decodeFile(b)
	if err != nil {
		return nil, refused(err)
	}
	m, err := decodeBody(body)
	if err != nil {
		return nil, refused(fmt.Errorf("body: %w", err))
	}
	if err := m.checkSigned(key, body, sig); err != nil {
		return nil, err
	}
	if err := m.check(); err != nil {
		return nil, refused(err)
	}
	m.raw = bytes.Clone(b)
	m.hash = sha256.Sum256(m.raw)
	return m, nil
}

// checkSigned checks that m's key is key (when given) and that sig is
// its signature of body, m's encoding.
func (m *Manifest) checkSigned(key ed25519.PublicKey, body, sig []byte) error {
	if key != nil && !bytes.Equal(m.Key, key) {
		return refused(fmt.Errorf("signed with key %x, not the expected key %x", []byte(m.Key), []byte(key)))
	}
	if !ed25519.Verify(m.Key, body, sig) {
		return refused(fmt.Errorf("bad signature for key %x", []byte(m.Key)))
	}
	return nil
}

// Follows checks that m may replace prev: same list and key, a higher
// sequence, Prev = prev.Hash() when the sequence is the next one, and
// nothing of prev dropped or changed: every day pack and bundle of prev is
// in m with the same entry, every slice of prev is in m with the same
// entry or its day has a day pack in m, and every epoch of prev is in m
// (its tip may move). Both are expected to come from ParseManifest or
// Sign (prev's hash is that of its file). Errors wrap ErrManifest.
func (m *Manifest) Follows(prev *Manifest) error {
	if m.List != prev.List {
		return refused(fmt.Errorf("list %q does not follow list %q", m.List, prev.List))
	}
	if !bytes.Equal(m.Key, prev.Key) {
		return refused(fmt.Errorf("list %s: key %x does not follow key %x", m.List, []byte(m.Key), []byte(prev.Key)))
	}
	if m.Seq <= prev.Seq {
		return refused(fmt.Errorf("list %s: older or same sequence: seq %d does not follow seq %d", m.List, m.Seq, prev.Seq))
	}
	if h := prev.Hash(); m.Seq == prev.Seq+1 && m.Prev != h {
		return refused(fmt.Errorf("list %s: broken chain: seq %d names prev %x, but seq %d hashes to %x", m.List, m.Seq, m.Prev, prev.Seq, h))
	}
	if m.follows != [32]byte{} && m.follows == prev.Hash() {
		return m.followsEpochs(prev) // packs and bundles checked by applyParsed
	}
	packs := make(map[string]*PackEntry, len(m.Packs))
	sealed := make(map[epochDay]string)
	for i := range m.Packs {
		p := &m.Packs[i]
		packs[p.File] = p
		if p.Kind == KindDay {
			sealed[epochDay{p.Epoch, p.Day}] = p.File
		}
	}
	for i := range prev.Packs {
		p := &prev.Packs[i]
		q := packs[p.File]
		switch {
		case q != nil && *q != *p:
			return refused(fmt.Errorf("list %s seq %d: %s pack %q changed since seq %d", m.List, m.Seq, p.Kind, p.File, prev.Seq))
		case q != nil:
		case p.Kind == KindDay:
			return refused(fmt.Errorf("list %s seq %d: day pack %q of seq %d dropped", m.List, m.Seq, p.File, prev.Seq))
		case sealed[epochDay{p.Epoch, p.Day}] == "":
			return refused(fmt.Errorf("list %s seq %d: slice %q of seq %d dropped without a day pack for epoch %d day %s", m.List, m.Seq, p.File, prev.Seq, p.Epoch, p.Day))
		}
	}
	bundles := make(map[string]*BundleEntry, len(m.Bundles))
	for i := range m.Bundles {
		bundles[m.Bundles[i].Name] = &m.Bundles[i]
	}
	for i := range prev.Bundles {
		b := &prev.Bundles[i]
		c := bundles[b.Name]
		if c == nil {
			return refused(fmt.Errorf("list %s seq %d: bundle %q of seq %d dropped", m.List, m.Seq, b.Name, prev.Seq))
		}
		if !c.equal(b) {
			return refused(fmt.Errorf("list %s seq %d: bundle %q changed since seq %d", m.List, m.Seq, b.Name, prev.Seq))
		}
	}
	return m.followsEpochs(prev)
}

// followsEpochs checks that every epoch of prev is in m.
func (m *Manifest) followsEpochs(prev *Manifest) error {
	for _, e := range prev.Epochs {
		if _, ok := slices.BinarySearchFunc(m.Epochs, e.Epoch, func(t EpochTip, n int) int { return cmpInt(t.Epoch, n) }); !ok {
			return refused(fmt.Errorf("list %s seq %d: epoch %d of seq %d dropped", m.List, m.Seq, e.Epoch, prev.Seq))
		}
	}
	return nil
}

// dayPacks returns m's packs of epoch and day: packs are in (epoch, day)
// order, so a binary search finds them.
func (m *Manifest) dayPacks(epoch int, day string) []PackEntry {
	i, _ := slices.BinarySearchFunc(m.Packs, epochDay{epoch, day}, func(q PackEntry, t epochDay) int {
		return cmp.Or(cmpInt(q.Epoch, t.epoch), cmpStr(q.Day, t.day))
	})
	j := i
	for j < len(m.Packs) && m.Packs[j].Epoch == epoch && m.Packs[j].Day == day {
		j++
	}
	return m.Packs[i:j]
}

// hasPack reports whether m has a pack of p's file name, epoch and day.
func (m *Manifest) hasPack(p *PackEntry) bool {
	for _, q := range m.dayPacks(p.Epoch, p.Day) {
		if q.File == p.File {
			return true
		}
	}
	return false
}

// seals reports whether m has a day pack for epoch and day.
func (m *Manifest) seals(epoch int, day string) bool {
	for _, q := range m.dayPacks(epoch, day) {
		if q.Kind == KindDay {
			return true
		}
	}
	return false
}

func refused(err error) error { return fmt.Errorf("%w: %v", ErrManifest, err) }

func (b *BundleEntry) equal(c *BundleEntry) bool {
	return b.Name == c.Name && b.Epoch == c.Epoch && b.Month == c.Month &&
		slices.Equal(b.Files, c.Files) && b.Size == c.Size && b.InfoHash == c.InfoHash
}

type epochDay struct {
	epoch int
	day   string
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// check applies the rules written on Manifest's fields.
func (m *Manifest) check() error { return m.checkFrom(0, 0) }

// checkFrom is check for a manifest whose first samePacks packs and
// sameBundles bundles are those, in that order, of a manifest that
// passed it (applyParsed): their own rules are not checked again (file
// names, days, hashes: 25 ms of a 7,300-day list), only the rules that
// bind them to the rest (unique names, order, a bundle's files).
func (m *Manifest) checkFrom(samePacks, sameBundles int) error {
	if !listNameRE.MatchString(m.List) {
		return fmt.Errorf("list name %q is not valid", m.List)
	}
	if len(m.Key) != ed25519.PublicKeySize {
		return fmt.Errorf("list %s: key has %d bytes, want %d", m.List, len(m.Key), ed25519.PublicKeySize)
	}
	if m.Seq < 1 {
		return fmt.Errorf("list %s: seq %d is not >= 1", m.List, m.Seq)
	}
	if zero := m.Prev == [32]byte{}; m.Seq == 1 && !zero {
		return fmt.Errorf("list %s: seq 1 names a prev hash", m.List)
	} else if m.Seq > 1 && zero {
		return fmt.Errorf("list %s: seq %d names no prev hash", m.List, m.Seq)
	}
	if m.Time < 0 {
		return fmt.Errorf("list %s: time %d is before 1970", m.List, m.Time)
	}
	for i, e := range m.Epochs {
		if e.Epoch < 0 {
			return fmt.Errorf("list %s: epoch %d is negative", m.List, e.Epoch)
		}
		if i > 0 && e.Epoch <= m.Epochs[i-1].Epoch {
			return fmt.Errorf("list %s: epoch tips not unique and ascending: epoch %d after epoch %d", m.List, e.Epoch, m.Epochs[i-1].Epoch)
		}
	}
	names := make(map[string]*PackEntry, len(m.Packs)) // nil for a bundle
	for i := range m.Packs {
		p := &m.Packs[i]
		if i < samePacks {
			// Checked before; only its name is needed below.
		} else if err := p.check(); err != nil {
			return fmt.Errorf("list %s: pack %q: %w", m.List, p.File, err)
		}
		if _, dup := names[p.File]; dup {
			return fmt.Errorf("list %s: duplicate file name %q", m.List, p.File)
		}
		names[p.File] = p
		if i == 0 || i < samePacks {
			continue
		}
		// Packs are ordered by (epoch, day); a day's entries are one
		// day pack or slices in the order listed.
		q := &m.Packs[i-1]
		c := cmpInt(q.Epoch, p.Epoch)
		if c == 0 {
			c = cmpStr(q.Day, p.Day)
		}
		switch {
		case c > 0:
			return fmt.Errorf("list %s: packs not in (epoch, day) order: %q (epoch %d day %s) after %q (epoch %d day %s)",
				m.List, p.File, p.Epoch, p.Day, q.File, q.Epoch, q.Day)
		case c == 0 && q.Kind == KindDay && p.Kind == KindDay:
			return fmt.Errorf("list %s: two day packs for epoch %d day %s: %q and %q", m.List, p.Epoch, p.Day, q.File, p.File)
		case c == 0 && q.Kind == KindDay:
			return fmt.Errorf("list %s: slice %q of sealed day epoch %d day %s (day pack %q)", m.List, p.File, p.Epoch, p.Day, q.File)
		case c == 0 && p.Kind == KindDay:
			return fmt.Errorf("list %s: slice %q of sealed day epoch %d day %s (day pack %q)", m.List, q.File, p.Epoch, p.Day, p.File)
		}
	}
	for i := range m.Bundles {
		b := &m.Bundles[i]
		if i < sameBundles {
			// Its files are packs kept unchanged (applyParsed refuses a
			// dropped or changed day pack).
		} else if err := b.check(names); err != nil {
			return fmt.Errorf("list %s: bundle %q: %w", m.List, b.Name, err)
		}
		if _, dup := names[b.Name]; dup {
			return fmt.Errorf("list %s: duplicate file name %q", m.List, b.Name)
		}
		names[b.Name] = nil
		if i == 0 || i < sameBundles {
			continue
		}
		a := &m.Bundles[i-1]
		c := cmpInt(a.Epoch, b.Epoch)
		if c == 0 {
			c = cmpStr(a.Month, b.Month)
		}
		if c == 0 {
			c = cmpStr(a.Name, b.Name)
		}
		if c > 0 {
			return fmt.Errorf("list %s: bundles not in (epoch, month, name) order: %q after %q", m.List, b.Name, a.Name)
		}
	}
	return nil
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (p *PackEntry) check() error {
	switch {
	case !validName(p.File):
		return fmt.Errorf("file name %q is not valid", p.File)
	case p.Kind != KindDay && p.Kind != KindSlice:
		return fmt.Errorf("kind %q is neither %q nor %q", p.Kind, KindDay, KindSlice)
	case p.Epoch < 0:
		return fmt.Errorf("epoch %d is negative", p.Epoch)
	case !validTime("2006-01-02", p.Day):
		return fmt.Errorf("day %q is not a YYYY-MM-DD date", p.Day)
	case p.Size <= 0:
		return fmt.Errorf("size %d is not > 0", p.Size)
	case p.SHA256 == [32]byte{}:
		return errors.New("sha256 is zero")
	case p.Trailer == [20]byte{}:
		return errors.New("trailer is zero")
	case p.InfoHash == [20]byte{}:
		return errors.New("infohash is zero")
	case p.To == [20]byte{}:
		return errors.New("to is zero")
	case p.From == p.To:
		return errors.New("from is to: an empty range")
	case p.Commits < 1:
		return fmt.Errorf("commits %d is not >= 1", p.Commits)
	case p.Objects < p.Commits:
		return fmt.Errorf("objects %d is fewer than commits %d", p.Objects, p.Commits)
	case p.FirstArticle < 0 || p.LastArticle < 0 || (p.FirstArticle == 0) != (p.LastArticle == 0):
		return fmt.Errorf("articles %d-%d: both must be 0 or both >= 1", p.FirstArticle, p.LastArticle)
	case p.FirstArticle > p.LastArticle:
		return fmt.Errorf("articles %d-%d: first after last", p.FirstArticle, p.LastArticle)
	}
	return nil
}

// check checks b against the packs by file name (nil for a bundle's name).
func (b *BundleEntry) check(packs map[string]*PackEntry) error {
	switch {
	case !validName(b.Name):
		return fmt.Errorf("name %q is not valid", b.Name)
	case b.Epoch < 0:
		return fmt.Errorf("epoch %d is negative", b.Epoch)
	case !validTime("2006-01", b.Month) && !validTime("2006", b.Month):
		return fmt.Errorf("month %q is not a YYYY-MM month or a YYYY year", b.Month)
	case len(b.Files) == 0:
		return errors.New("no files")
	case b.InfoHash == [20]byte{}:
		return errors.New("infohash is zero")
	}
	var sum int64
	for i, f := range b.Files {
		p := packs[f]
		switch {
		case p == nil:
			return fmt.Errorf("file %q is not a pack of the manifest", f)
		case p.Kind != KindDay:
			return fmt.Errorf("file %q is a %s, not a day pack", f, p.Kind)
		case p.Epoch != b.Epoch:
			return fmt.Errorf("file %q is of epoch %d, not %d", f, p.Epoch, b.Epoch)
		case p.Day[:len(b.Month)] != b.Month:
			return fmt.Errorf("file %q is of day %s, not in %s", f, p.Day, b.Month)
		case i > 0 && f == b.Files[i-1]:
			return fmt.Errorf("file %q listed twice", f)
		case i > 0 && p.Day <= packs[b.Files[i-1]].Day:
			return fmt.Errorf("files not in day order: %q after %q", f, b.Files[i-1])
		case sum > math.MaxInt64-p.Size:
			return errors.New("sizes overflow")
		}
		sum += p.Size
	}
	if b.Size != sum {
		return fmt.Errorf("size %d, but its files sum to %d", b.Size, sum)
	}
	return nil
}

// Year reports whether b is a year bundle.
func (b *BundleEntry) Year() bool { return len(b.Month) == len("2006") }

// version is the format version m is written in: 2 when a bundle is a
// year bundle, else 1.
func (m *Manifest) version() int64 {
	for i := range m.Bundles {
		if m.Bundles[i].Year() {
			return yearsVersion
		}
	}
	return manifestVersion
}

func validName(s string) bool {
	return fileNameRE.MatchString(s) && !bytes.Contains([]byte(s), []byte(".."))
}

// validTime reports whether s is layout's canonical form of a time.
func validTime(layout, s string) bool {
	t, err := time.Parse(layout, s)
	return err == nil && t.Format(layout) == s
}

// Encoding.

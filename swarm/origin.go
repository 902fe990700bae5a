package swarm

import (
	"bufio"
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"mailswarm/archive"
	"mailswarm/internal/durable"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// The names of a list's swarm directory, DATA/lists/NAME/swarm; the layout
// and the order files are written in are in doc.go.
const (
	swarmDir     = "swarm"
	manifestFile = "manifest"
	packsDir     = "packs"
	torrentsDir  = "torrents"
	lockFile     = "swarm.lock"
	dayLayout    = "2006-01-02"
	monthLayout  = "2006-01"
	yearLayout   = "2006"
)

// Origin publishes one list: it cuts slices of the open day, seals closed
// days into day packs, bundles closed months and signs each new manifest.
type Origin struct {
	list *archive.List
	dir  string
	priv ed25519.PrivateKey
	log  *slog.Logger
	sync bool

	// stepPacks, when positive, replaces the constant (tests).
	stepPacks int

	mu      sync.Mutex
	walked  walk              // the last chain walked (under mu)
	cur     *Manifest         // as last read or written
	curStat fileStamp         // of the manifest file when cur was read or written
	sealed  map[[20]byte]bool // day packs known adopted as git storage (under mu)
	// staleFrom is the manifest removeStale last ran for (under mu);
	// nil after a failed publish or one by another process.
	staleFrom *Manifest
}

// fileStamp tells whether a file changed: size, modification time, inode.
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	st.ino, _ = durable.Inode(fi)
	return st
}

// OriginOptions configures an Origin.
type OriginOptions struct {
	Logger *slog.Logger
	// NoSync skips fsync (benchmarks and tests only).
	NoSync bool
}

// NewOrigin returns the publisher of list, which must hold its private key.
func NewOrigin(list *archive.List, opts *OriginOptions) (*Origin, error) {
	if opts == nil {
		opts = &OriginOptions{}
	}
	priv, err := archive.ReadPrivateKey(list.Dir())
	if err != nil {
		return nil, fmt.Errorf("swarm: %s: only the list's origin (holding list.key) publishes: %w", list.Name(), err)
	}
	if !priv.Public().(ed25519.PublicKey).Equal(list.PublicKey()) {
		return nil, fmt.Errorf("swarm: %s: list.key does not match list.pub", list.Name())
	}
	o := &Origin{list: list, dir: filepath.Join(list.Dir(), swarmDir), priv: priv, log: opts.Logger, sync: !opts.NoSync}
	if o.log == nil {
		o.log = slog.Default()
	}
	for _, d := range []string{o.dir, filepath.Join(o.dir, packsDir), filepath.Join(o.dir, torrentsDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("swarm: %w", err)
		}
	}
	o.curStat = stampOf(filepath.Join(o.dir, manifestFile))
	m, err := readManifest(o.dir, list.PublicKey())
	if err != nil {
		return nil, err
	}
	o.cur = m
	return o, nil
}

// stamp returns the stamp of the manifest file as last read or written.
func (o *Origin) stamp() fileStamp {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.curStat
}

// Dir returns the list's swarm directory.
func (o *Origin) Dir() string { return o.dir }

// Manifest returns the newest manifest (nil before the first publish).
func (o *Origin) Manifest() *Manifest {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cur
}

// readManifest reads dir's manifest; nil when there is none yet.
func readManifest(dir string, key ed25519.PublicKey) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("swarm: %w", err)
	}
	m, err := ParseManifest(b, key)
	if err != nil {
		return nil, fmt.Errorf("swarm: %s: %w", filepath.Join(dir, manifestFile), err)
	}
	return m, nil
}

// PublishResult says what one Publish did.
type PublishResult struct {
	Manifest *Manifest // the newest manifest (nil when nothing was ever published)
	Changed  bool      // a new manifest was signed
	Slices   []string  // files of the slices cut
	Days     []string  // files of the day packs sealed
	Bundles  []string  // names of the bundles made
	Retired  []string  // slice files retired
}

// Add merges a later step's result into r: its manifest, its changes.
func (r *PublishResult) Add(step PublishResult) {
	r.Manifest = step.Manifest
	r.Changed = r.Changed || step.Changed
	r.Slices = append(r.Slices, step.Slices...)
	r.Days = append(r.Days, step.Days...)
	r.Bundles = append(r.Bundles, step.Bundles...)
	r.Retired = append(r.Retired, step.Retired...)
}

// dayOf is the UTC day of t.
func dayOf(t time.Time) string { return t.UTC().Format(dayLayout) }

// nextDay returns the day after d (YYYY-MM-DD).
func nextDay(d string) string {
	t, err := time.Parse(dayLayout, d)
	if err != nil {
		return d
	}
	return t.AddDate(0, 0, 1).Format(dayLayout)
}

// firstDayAfterMonth returns the first day after a bundle's period: the
// month after m (YYYY-MM), the year after it (YYYY).
func firstDayAfterMonth(m string) string {
	if t, err := time.Parse(yearLayout, m); err == nil {
		return t.AddDate(1, 0, 0).Format(dayLayout)
	}
	t, err := time.Parse(monthLayout, m)
	if err != nil {
		return ""
	}
	return t.AddDate(0, 1, 0).Format(dayLayout)
}

// Publish cuts and seals everything due at now: a slice of the new
// commits of the open day, a day pack for every closed day (from the
// objects of its slices, or straight from history for imported days), a
// bundle for every closed month, and signs a new manifest when anything
// changed. Days follow the UTC day of each commit's committer date along
// the chain, never going back: a commit dated before its predecessor's
// day, or before a day already sealed, lands in the first open day.
//
// A long history is published in steps of at most stepPacks packs, each
// ending in a signed manifest (see PublishStep); Publish runs them all.
func (o *Origin) Publish(now time.Time) (PublishResult, error) {
	return o.PublishContext(context.Background(), now, nil)
}

// PublishContext is Publish that stops, after the step under way (its
// manifest signed), when ctx ends. each, when not nil, is called after
// every step with what it did and whether more is due; its error ends
// the publish.
func (o *Origin) PublishContext(ctx context.Context, now time.Time, each func(step PublishResult, more bool) error) (PublishResult, error) {
	var all PublishResult
	for {
		res, more, err := o.PublishStep(ctx, now)
		all.Add(res)
		if each != nil {
			err = errors.Join(err, each(res, more))
		}
		if err != nil || !more {
			return all, err
		}
		if err := ctx.Err(); err != nil {
			return all, err
		}
	}
}

// stepPacks bounds the packs one publish step writes before it signs a
// manifest: an imported 20-year history becomes available, and survives
// a crash or a shutdown, a few hundred days at a time.
const stepPacks = 256

// PublishStep does one step of Publish: it writes at most stepPacks
// packs (fewer when ctx ends), signs a manifest for what it wrote, and
// reports whether more is due.
func (o *Origin) PublishStep(ctx context.Context, now time.Time) (res PublishResult, more bool, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	lk, err := durable.LockFile(filepath.Join(o.dir, lockFile))
	if err != nil {
		return PublishResult{}, false, fmt.Errorf("swarm: %s: %w", o.list.Name(), err)
	}
	defer lk.Unlock()
	// Another process (swarm publish beside serve) may have published:
	// the manifest file is replaced (a new inode) each time.
	if st := stampOf(filepath.Join(o.dir, manifestFile)); st != o.curStat {
		m, err := readManifest(o.dir, o.list.PublicKey())
		if err != nil {
			return PublishResult{}, false, err
		}
		if m != nil {
			if o.cur != nil && m.Seq < o.cur.Seq {
				return PublishResult{}, false, fmt.Errorf("swarm: %s: the manifest on disk (seq %d) is older than the one published (seq %d)", o.list.Name(), m.Seq, o.cur.Seq)
			}
			o.cur = m
		}
		o.curStat = st
		o.staleFrom = nil // what the other process left, a listing finds
	}
	b := &budget{ctx: ctx, left: o.stepPacks}
	if b.left <= 0 {
		b.left = stepPacks
	}
	res, err = o.publish(now.UTC(), b)
	if !b.stopped {
		o.walked = walk{} // kept only between the steps of one publish
	}
	res.Manifest = o.cur
	if err != nil {
		o.staleFrom = nil // what it wrote, the next listing finds
		return res, false, fmt.Errorf("swarm: publish %s: %w", o.list.Name(), err)
	}
	return res, b.stopped, nil
}

// budget bounds one publish step.
type budget struct {
	ctx       context.Context
	left      int
	stopped   bool   // packs were due when the step ended
	stopEpoch int    // where it ended: the epoch and the first day not written
	stopDay   string //
}

// spend reports whether another pack may be written, and counts it.
func (b *budget) spend(epoch int, day string) bool {
	if b.left <= 0 || b.ctx.Err() != nil {
		b.stopped, b.stopEpoch, b.stopDay = true, epoch, day
		return false
	}
	b.left--
	return true
}

// pendingCommit is one commit not yet in any pack, with its day.
type pendingCommit struct {
	ref archive.CommitRef
	day string
}

func (o *Origin) publish(now time.Time, b *budget) (PublishResult, error) {
	var res PublishResult
	next := &Manifest{List: o.list.Name(), Key: o.list.PublicKey(), Seq: 1}
	if o.cur != nil {
		next.Packs = slices.Clone(o.cur.Packs)
		next.Bundles = slices.Clone(o.cur.Bundles)
		next.Epochs = slices.Clone(o.cur.Epochs)
	}
	today := dayOf(now)
	prevEpochDay := ""
	for _, epoch := range o.list.Epochs() {
		tip, err := o.list.Tip(epoch)
		if err != nil {
			return res, err
		}
		if tip.IsZero() {
			continue
		}
		var last *PackEntry // the epoch's newest pack
		for i := range next.Packs {
			if p := &next.Packs[i]; p.Epoch == epoch {
				last = p
			}
		}
		// floor: the first day a new commit of this epoch may land in.
		floor := prevEpochDay
		var from archive.Hash
		if last != nil {
			from = last.To
			floor = max(floor, last.Day)
			if last.Kind == KindDay {
				floor = nextDay(last.Day)
			}
		}
		for _, b := range next.Bundles {
			if b.Epoch == epoch {
				floor = max(floor, firstDayAfterMonth(b.Month))
			}
		}
		var pend []pendingCommit
		if tip != from {
			refs, err := o.unpacked(epoch, from, tip)
			if err != nil {
				return res, err
			}
			day := floor
			pend = make([]pendingCommit, len(refs))
			for i, c := range refs {
				day = max(day, dayOf(c.Committed))
				pend[i] = pendingCommit{c, day}
			}
		}
		if err := o.cut(next, epoch, pend, today, &res, b); err != nil {
			return res, err
		}
		// The epoch's tip as far as the packs go.
		for _, p := range next.Packs {
			if p.Epoch == epoch {
				prevEpochDay = max(prevEpochDay, p.Day)
				setTip(next, epoch, p.To)
			}
		}
		if b.stopped {
			break
		}
	}
	if err := o.bundle(next, now, &res, b); err != nil {
		return res, err
	}
	if len(res.Slices)+len(res.Days)+len(res.Bundles) == 0 && o.cur != nil {
		o.removeStale(o.cur)
		o.adoptSealed(o.cur)
		return res, nil
	}
	if len(next.Packs) == 0 {
		return res, nil // an empty list: nothing to publish yet
	}
	if o.cur != nil {
		next.Seq = o.cur.Seq + 1
		next.Prev = o.cur.Hash()
	}
	next.Time = now.Unix()
	if o.sync {
		// The renames of the new packs and torrents must be durable before
		// a manifest names them.
		for _, d := range []string{packsDir, torrentsDir} {
			if err := durable.SyncDir(filepath.Join(o.dir, d)); err != nil {
				return res, err
			}
		}
	}
	signed, err := next.signAfter(o.cur, o.priv)
	if err != nil {
		return res, err
	}
	if err := durable.WriteFile(filepath.Join(o.dir, manifestFile), signed, 0o644, o.sync); err != nil {
		return res, err
	}
	o.curStat = stampOf(filepath.Join(o.dir, manifestFile))
	o.cur = next
	res.Changed = true
	o.removeStale(next)
	o.adoptSealed(next)
	return res, nil
}

// adoptSealed makes the day packs m names the epochs' storage for their
// objects where they are not yet (archive.List.AdoptSealed: one copy of
// every object), once m is signed and on disk: a day pack is adopted only
// when it is final. A failure is logged and retried at the next publish
// (a crash in between too: the packs not yet sealed in git are found
// again here).
func (o *Origin) adoptSealed(m *Manifest) {
	byEpoch := map[int][]string{}
	var epochs []int
	if o.sealed == nil {
		// The first time in this process: every epoch, so that a swap a
		// crash cut short (packs linked in, rows or drops not done) ends.
		o.sealed = map[[20]byte]bool{}
		for _, p := range m.Packs {
			if p.Kind == KindDay && byEpoch[p.Epoch] == nil {
				byEpoch[p.Epoch] = []string{}
				epochs = append(epochs, p.Epoch)
			}
		}
	}
	for _, p := range m.Packs {
		if p.Kind != KindDay || o.sealed[p.Trailer] {
			continue
		}
		if o.list.Sealed(p.Epoch, p.Trailer) {
			o.sealed[p.Trailer] = true
			continue
		}
		if byEpoch[p.Epoch] == nil {
			epochs = append(epochs, p.Epoch)
		}
		byEpoch[p.Epoch] = append(byEpoch[p.Epoch], filepath.Join(o.dir, packsDir, p.File))
	}
	for _, epoch := range epochs {
		start := time.Now()
		dropped, err := o.list.AdoptSealed(context.Background(), epoch, byEpoch[epoch])
		if err != nil {
			o.log.Warn("swarm: day packs not adopted as the epoch's storage", "list", o.list.Name(), "epoch", epoch, "err", err)
			o.sealed = nil // every epoch again at the next publish
			continue
		}
		o.log.Debug("swarm: day packs adopted", "list", o.list.Name(), "epoch", epoch,
			"days", len(byEpoch[epoch]), "batch_packs_dropped", len(dropped), "seconds", time.Since(start).Seconds())
	}
}

// unpacked returns epoch's commits after from up to tip, oldest first.
// The steps of one long publish ask for suffixes of the same walk: the
// chain is walked once and kept until the tip moves.
func (o *Origin) unpacked(epoch int, from, tip archive.Hash) ([]archive.CommitRef, error) {
	if w := &o.walked; w.epoch == epoch && w.tip == tip && len(w.refs) > 0 {
		if w.refs[0].Parent == from {
			return w.refs, nil
		}
		for i, c := range w.refs {
			if c.Commit == from {
				return w.refs[i+1:], nil
			}
		}
	}
	var refs []archive.CommitRef
	err := o.list.WalkCommits(epoch, from, func(c archive.CommitRef) error {
		refs = append(refs, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	o.walked = walk{epoch: epoch, tip: tip, refs: refs}
	return refs, nil
}

// walk is the last chain walked by unpacked.
type walk struct {
	epoch int
	tip   archive.Hash
	refs  []archive.CommitRef
}

// setTip records epoch's tip in m.
func setTip(m *Manifest, epoch int, tip archive.Hash) {
	for i := range m.Epochs {
		if m.Epochs[i].Epoch == epoch {
			m.Epochs[i].Tip = tip
			return
		}
	}
	m.Epochs = append(m.Epochs, EpochTip{Epoch: epoch, Tip: tip})
	slices.SortFunc(m.Epochs, func(a, b EpochTip) int { return cmp.Compare(a.Epoch, b.Epoch) })
}

// cut turns epoch's pending commits into packs: day packs for closed
// days (taking in the day's slices), one slice for the open day's new
// commits.
func (o *Origin) cut(m *Manifest, epoch int, pend []pendingCommit, today string, res *PublishResult, b *budget) error {
	// Days with slices that have closed seal even without new commits.
	days := map[string]bool{}
	for _, p := range m.Packs {
		if p.Epoch == epoch && p.Kind == KindSlice && p.Day < today {
			days[p.Day] = true
		}
	}
	for _, c := range pend {
		days[c.day] = true
	}
	order := make([]string, 0, len(days))
	for d := range days {
		order = append(order, d)
	}
	slices.Sort(order)
	for _, day := range order {
		var run []pendingCommit
		for _, c := range pend {
			if c.day == day {
				run = append(run, c)
			}
		}
		arts, err := o.articlesOf(run)
		if err != nil {
			return err
		}
		var daySlices []PackEntry
		var sliceArts span
		for _, p := range m.Packs {
			if p.Epoch == epoch && p.Day == day && p.Kind == KindSlice {
				daySlices = append(daySlices, p)
				sliceArts = sliceArts.add(span{p.FirstArticle, p.LastArticle})
			}
		}
		if (day < today || len(run) > 0) && !b.spend(epoch, day) {
			break
		}
		if day < today {
			// Seal: the day pack spans the day's slices and its new commits.
			var from, to archive.Hash
			switch {
			case len(daySlices) > 0:
				from, to = daySlices[0].From, daySlices[len(daySlices)-1].To
			default:
				from = run[0].ref.Parent
			}
			if len(run) > 0 {
				to = run[len(run)-1].ref.Commit
			}
			// The slices' compressed records are copied, not deflated again.
			var srcs []string
			for _, p := range daySlices {
				srcs = append(srcs, filepath.Join(o.dir, packsDir, p.File))
			}
			e, err := o.writePack(KindDay, epoch, day, fmt.Sprintf("%s-e%d-%s.pack", o.list.Name(), epoch, day), from, to, sliceArts.add(arts), srcs)
			if err != nil {
				return err
			}
			m.Packs = slices.DeleteFunc(m.Packs, func(p PackEntry) bool {
				if p.Epoch == epoch && p.Day == day && p.Kind == KindSlice {
					res.Retired = append(res.Retired, p.File)
					return true
				}
				return false
			})
			m.Packs = append(m.Packs, e)
			res.Days = append(res.Days, e.File)
			continue
		}
		if len(run) == 0 {
			continue
		}
		e, err := o.writePack(KindSlice, epoch, day,
			fmt.Sprintf("%s-e%d-%s-s%05d.pack", o.list.Name(), epoch, day, len(daySlices)+1),
			run[0].ref.Parent, run[len(run)-1].ref.Commit, arts, nil)
		if err != nil {
			return err
		}
		m.Packs = append(m.Packs, e)
		res.Slices = append(res.Slices, e.File)
	}
	sortPacks(m.Packs)
	return nil
}

// sortPacks orders packs as manifests list them: by epoch, then day, a
// day pack before slices, slices in the order they were cut.
func sortPacks(ps []PackEntry) { slices.SortStableFunc(ps, comparePacks) }

// comparePacks is the order of sortPacks. It is total (file names are
// unique), so a patch's receiver rebuilds the same order (manifest_patch.go).
func comparePacks(a, b PackEntry) int {
	return cmp.Or(cmp.Compare(a.Epoch, b.Epoch), strings.Compare(a.Day, b.Day),
		cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)), strings.Compare(a.File, b.File))
}

// sortBundles orders bundles as manifests list them: by epoch, month, name.
func sortBundles(bs []BundleEntry) { slices.SortStableFunc(bs, compareBundles) }

func compareBundles(a, b BundleEntry) int {
	return cmp.Or(cmp.Compare(a.Epoch, b.Epoch), strings.Compare(a.Month, b.Month), strings.Compare(a.Name, b.Name))
}

func kindRank(k string) int {
	if k == KindDay {
		return 0
	}
	return 1
}

// writePack writes the canonical pack of epoch's commits after from up to
// to as packs/file, its torrent, and returns its manifest entry. The
// records the canonical packs at srcs hold (a day's slices) are copied.
func (o *Origin) writePack(kind string, epoch int, day, file string, from, to archive.Hash, articles span, srcs []string) (PackEntry, error) {
	e := PackEntry{Kind: kind, File: file, Epoch: epoch, Day: day, From: from, To: to}
	path := filepath.Join(o.dir, packsDir, file)
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+file+"-*")
	if err != nil {
		return e, fmt.Errorf("pack %s: %w", file, err)
	}
	defer os.Remove(f.Name())
	bw := bufio.NewWriterSize(f, 256<<10)
	var info archive.PackInfo
	done := false
	if len(srcs) > 0 {
		if info, err = o.list.WriteCanonicalPackFrom(bw, epoch, from, to, srcs); err == nil {
			done = true
		} else {
			// A slice file unreadable or damaged: write it all from git.
			o.log.Warn("swarm: sealing from the slices failed: writing the day pack from git", "list", o.list.Name(), "file", file, "err", err)
			bw.Reset(f)
			if _, err = f.Seek(0, io.SeekStart); err == nil {
				err = f.Truncate(0)
			}
		}
	}
	if !done && err == nil {
		info, err = o.list.WriteCanonicalPack(bw, epoch, from, to)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && o.sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return e, fmt.Errorf("pack %s: %w", file, err)
	}
	e.Size, e.SHA256, e.Trailer, e.Commits, e.Objects = info.Size, info.SHA256, info.Trailer, info.Commits, info.Objects
	e.FirstArticle, e.LastArticle = articles.first, articles.last
	mi, err := TorrentFor(path)
	if err != nil {
		return e, err
	}
	e.InfoHash = mi.HashInfoBytes()
	if err := o.writeTorrent(file, mi); err != nil {
		return e, err
	}
	return e, nil
}

// span is a range of article numbers; zero when empty.
type span struct{ first, last int64 }

// add widens s by t.
func (s span) add(t span) span {
	if s.first == 0 {
		return t
	}
	if t.first == 0 {
		return s
	}
	return span{min(s.first, t.first), max(s.last, t.last)}
}

// articlesOf returns the article range of the message commits of run.
func (o *Origin) articlesOf(run []pendingCommit) (span, error) {
	var s span
	for i := range run {
		n, err := o.list.ArticleOf(run[i].ref)
		if err != nil || n > 0 {
			s.first = n
			if err != nil {
				return s, err
			}
			break
		}
	}
	for i := len(run) - 1; i >= 0 && s.first > 0; i-- {
		n, err := o.list.ArticleOf(run[i].ref)
		if err != nil {
			return s, err
		}
		if n > 0 {
			s.last = n
			break
		}
	}
	return s, nil
}

// writeTorrent stores mi as torrents/name.torrent (without web seeds: the
// HTTP server adds the current ones when it serves the file).
func (o *Origin) writeTorrent(name string, mi *metainfo.MetaInfo) error {
	b, err := bencode.Marshal(metainfo.MetaInfo{InfoBytes: mi.InfoBytes})
	if err != nil {
		return err
	}
	return durable.WriteFile(filepath.Join(o.dir, torrentsDir, name+".torrent"), b, 0o644, o.sync)
}

// bundle makes a bundle for every closed month, then for every closed
// year, of every epoch that has sealed day packs and no bundle for it yet.
// A year bundle is over the same files as its month bundles: a late
// joiner of a 20-year list opens 20 torrents for the closed years instead
// of 240.
func (o *Origin) bundle(m *Manifest, now time.Time, res *PublishResult, b *budget) error {
	for _, layout := range []string{monthLayout, yearLayout} {
		if err := o.bundlePeriods(m, now, layout, res, b); err != nil {
			return err
		}
	}
	sortBundles(m.Bundles)
	return nil
}

// bundlePeriods makes the bundles of closed periods of layout (a month or
// a year) that have none.
func (o *Origin) bundlePeriods(m *Manifest, now time.Time, layout string, res *PublishResult, b *budget) error {
	month := now.Format(layout)
	type key struct {
		epoch int
		month string
	}
	have := map[key]bool{}
	for _, b := range m.Bundles {
		have[key{b.Epoch, b.Month}] = true
	}
	groups := map[key][]PackEntry{}
	var keys []key
	for _, p := range m.Packs {
		k := key{p.Epoch, p.Day[:len(layout)]}
		if p.Kind != KindDay || k.month >= month || have[k] {
			continue
		}
		// A step that ended early has not written the rest of its period.
		if b.stopped && (k.epoch > b.stopEpoch || k.epoch == b.stopEpoch && k.month >= b.stopDay[:len(layout)]) {
			continue
		}
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], p)
	}
	for _, k := range keys {
		name := fmt.Sprintf("%s-e%d-%s", o.list.Name(), k.epoch, k.month)
		b := BundleEntry{Name: name, Epoch: k.epoch, Month: k.month}
		var paths []string
		for _, p := range groups[k] {
			b.Files = append(b.Files, p.File)
			b.Size += p.Size
			paths = append(paths, filepath.Join(o.dir, packsDir, p.File))
		}
		mi, err := BundleTorrentFor(name, paths)
		if err != nil {
			return err
		}
		b.InfoHash = mi.HashInfoBytes()
		if err := o.writeTorrent(name, mi); err != nil {
			return err
		}
		m.Bundles = append(m.Bundles, b)
		res.Bundles = append(res.Bundles, name)
	}
	return nil
}

// removeStale deletes pack and torrent files that m does not name:
// retired slices and leftovers of an interrupted publish.
func (o *Origin) removeStale(m *Manifest) {
	removeStaleSince(o.dir, o.staleFrom, m, o.log.With("list", o.list.Name()))
	o.staleFrom = m
}

// removeStale deletes the pack and torrent files of the swarm directory
// dir that m does not name.
func removeStale(dir string, m *Manifest, log *slog.Logger) {
	keep := map[string]bool{}
	for _, p := range m.Packs {
		keep[p.File] = true
		keep[p.File+".torrent"] = true
	}
	for _, b := range m.Bundles {
		keep[b.Name+".torrent"] = true
	}
	for _, d := range []string{packsDir, torrentsDir} {
		ents, err := os.ReadDir(filepath.Join(dir, d))
		if err != nil {
			continue
		}
		for _, ent := range ents {
			if !keep[ent.Name()] && ent.Type().IsRegular() {
				if err := os.Remove(filepath.Join(dir, d, ent.Name())); err == nil {
					log.Debug("swarm: removed", "file", ent.Name())
				}
			}
		}
	}
}

// removeStaleSince is removeStale for m, which follows prev, the
// manifest removeStale last ran for in this process (nil: none, or a
// failure since may have left files): only what prev named and m does
// not goes, the slices of a day m seals (a day pack or bundle is never
// dropped: Follows). Listing packs/ and torrents/
// was 23–41 ms of each slice of a 7,300-day list (BenchmarkFollowSliceCPU);
// this is a pass over prev's entries.
func removeStaleSince(dir string, prev, m *Manifest, log *slog.Logger) {
	switch {
	case prev != nil && prev.raw != nil && prev.Hash() == m.Hash():
		return // nothing new since
	case prev == nil || prev.List != m.List || prev.Seq >= m.Seq:
		removeStale(dir, m, log)
		return
	}
	for i := range prev.Packs {
		p := &prev.Packs[i]
		if p.Kind != KindSlice || m.hasPack(p) {
			continue
		}
		for _, name := range []string{filepath.Join(packsDir, p.File), filepath.Join(torrentsDir, p.File+".torrent")} {
			if err := os.Remove(filepath.Join(dir, name)); err == nil {
				log.Debug("swarm: removed", "file", filepath.Base(name))
			}
		}
	}
}

// readTorrent reads torrents/name.torrent.
func (o *Origin) readTorrent(name string) (*metainfo.MetaInfo, error) {
	return readTorrent(o.dir, name)
}

// readTorrent reads torrents/name.torrent of the swarm directory dir.
func readTorrent(dir, name string) (*metainfo.MetaInfo, error) {
	mi, err := metainfo.LoadFromFile(filepath.Join(dir, torrentsDir, name+".torrent"))
	if err != nil {
		return nil, fmt.Errorf("swarm: torrent %s: %w", name, err)
	}
	return mi, nil
}

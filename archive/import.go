package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"mailswarm/gitstore"
	"mailswarm/message"
)

// ImportOptions configures Import. The zero value is usable.
type ImportOptions struct {
	// Format is how mbox files were quoted; the zero value is mboxrd.
	Format message.MboxFormat
	// BatchSize is how many messages go into one git pack and index
	// transaction; zero means 1000.
	BatchSize int
	// Progress, when set, is called after each batch with the totals so far
	// and the number of input bytes read.
	Progress func(r ImportResult, bytesRead int64)
}

// ImportResult counts what Import did.
type ImportResult struct {
	Read       int // messages read from the sources
	Added      int // archived as new commits
	Adopted    int // commits adopted byte for byte from a public-inbox inbox
	Duplicates int // dropped as duplicates (same Message-ID, same content)
	Malformed  int // archived although parsing found problems
}

const batchBytes = 12 << 20

// Import archives every message of the sources in paths, in order: mbox
// files (gzip allowed), Maildirs, directories of .eml files, single .eml
// files, public-inbox v2 inboxes and single epochs (N.git). A public-inbox
// inbox imported into an empty list is adopted as history, commit for
// commit; otherwise its messages are archived like any others. Import is
// safe to run again after it was interrupted: archived messages are
// recognised as duplicates.
func (l *List) Import(ctx context.Context, paths []string, opts *ImportOptions) (ImportResult, error) {
	var o ImportOptions
	if opts != nil {
		o = *opts
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if err := l.refuseMirror(); err != nil { // before any source is read
		return ImportResult{}, err
	}
	// Every source is sniffed before any is read: one that holds no mail
	// refuses the whole import and changes nothing.
	kinds := make([]string, len(paths))
	for i, p := range paths {
		k, err := DetectFormat(p)
		if err != nil {
			return ImportResult{}, fmt.Errorf("archive: import %s: %w", p, err)
		}
		kinds[i] = k
	}
	im := &importer{l: l, opts: o}
	for i, p := range paths {
		if err := im.importPath(ctx, p, kinds[i]); err != nil {
			im.flush(ctx)
			return im.res, fmt.Errorf("archive: import %s: %w", p, err)
		}
	}
	if err := im.flush(ctx); err != nil {
		return im.res, fmt.Errorf("archive: import: %w", err)
	}
	return im.res, nil
}

type importer struct {
	l         *List
	opts      ImportOptions
	res       ImportResult
	bytesRead int64

	pending      []pendingMsg
	pendingBytes int
	// The previous batch is written while the next one is read and parsed.
	inflight chan addOutcome
}

type addOutcome struct {
	r   AddResult
	err error
}

type pendingMsg struct {
	raw     []byte
	arrived time.Time
}

// importPath archives the source path, of the format DetectFormat named.
func (im *importer) importPath(ctx context.Context, path, kind string) error {
	switch kind {
	case "mbox":
		f, err := OpenMaybeGzip(path)
		if err != nil {
			return err
		}
		defer f.Close()
		return message.ReadMbox(f, im.opts.Format, func(msg []byte) error {
			return im.add(ctx, append([]byte(nil), msg...), time.Time{})
		})
	case "maildir", "eml":
		return message.WalkMaildir(path, func(_ string, msg []byte) error {
			return im.add(ctx, msg, time.Time{})
		})
	case "public-inbox":
		epochs, err := inboxEpochs(path)
		if err != nil {
			return err
		}
		for _, e := range epochs {
			if err := im.importEpoch(ctx, e.dir, e.n); err != nil {
				return err
			}
		}
		return nil
	case "epoch":
		// N.git says which epoch it is; a bare repository of another name
		// (a clone of one epoch) is taken as epoch 0.
		n := 0
		if m := epochRE.FindStringSubmatch(filepath.Base(filepath.Clean(path))); m != nil {
			n, _ = strconv.Atoi(m[1])
		}
		return im.importEpoch(ctx, path, n)
	}
	return fmt.Errorf("unsupported source kind %q", kind)
}

var epochRE = regexp.MustCompile(`^([0-9]+)\.git$`)

type epochDir struct {
	n   int
	dir string
}

func inboxEpochs(inbox string) ([]epochDir, error) {
	ents, err := os.ReadDir(filepath.Join(inbox, "git"))
	if err != nil {
		return nil, err
	}
	var out []epochDir
	for _, e := range ents {
		if m := epochRE.FindStringSubmatch(e.Name()); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, epochDir{n, filepath.Join(inbox, "git", e.Name())})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n < out[j].n })
	if len(out) == 0 {
		return nil, errors.New("no epochs under git/")
	}
	return out, nil
}

// importEpoch adopts a foreign epoch byte for byte when the list has
// nothing in that epoch yet and every earlier epoch is already adopted
// (so article numbers stay public-inbox's positions), else archives its
// messages as new mail.
func (im *importer) importEpoch(ctx context.Context, dir string, n int) error {
	f, err := gitstore.OpenForeign(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if n >= 0 && im.canAdopt(n) {
		if err := im.flush(ctx); err != nil {
			return err
		}
		return im.adopt(ctx, f, n)
	}
	return f.Walk(gitstore.ZeroHash, func(e gitstore.Entry, raw gitstore.RawCommit) error {
		if e.Remove {
			return nil
		}
		return im.add(ctx, raw.Blob, e.Committer.When)
	})
}

// canAdopt reports whether epoch n of a foreign inbox can be taken as is:
// our epoch n is empty and so is everything after it, and our epochs before
// it exist.
func (im *importer) canAdopt(n int) bool {
	if len(im.pending) > 0 || im.inflight != nil {
		if im.flush(context.Background()) != nil {
			return false
		}
	}
	eps := im.l.git.Epochs()
	for _, e := range eps {
		tip, err := im.l.git.Tip(e)
		if err != nil {
			return false
		}
		if e >= n && !tip.IsZero() {
			return false
		}
		if e < n && tip.IsZero() {
			return false
		}
	}
	return n == 0 || len(eps) >= n
}

func (im *importer) adopt(ctx context.Context, f *gitstore.Foreign, n int) error {
	l := im.l
	l.wmu.Lock()
	defer l.wmu.Unlock()
	var (
		raws  []gitstore.RawCommit
		msgs  []pendingMsg    // the messages of raws ("m" commits)
		blobs []gitstore.Hash // their blob ids
		size  int
	)
	write := func() error {
		if len(raws) == 0 {
			return nil
		}
		prepared := prepareAll(msgs) // on every core
		b := newBatch(prepared, true)
		b.byBlob = make(map[gitstore.Hash]*Prepared, len(prepared))
		for i, p := range prepared {
			b.byBlob[blobs[i]] = p
			if len(p.Parsed.Problems) > 0 {
				im.res.Malformed++
			}
		}
		// The index lock per batch, not for the whole adoption: a serve's
		// committer waits one batch, not the whole import.
		lk, err := l.lockIndex(false)
		if err != nil {
			return err
		}
		defer lk.Unlock()
		if _, err := l.git.AppendRaw(n, raws); err != nil {
			return err
		}
		if _, _, err := l.catchUp(ctx, b); err != nil {
			return err
		}
		im.res.Adopted += len(msgs)
		raws, msgs, blobs, size = raws[:0], msgs[:0], blobs[:0], 0
		im.progress()
		return nil
	}
	err := f.Walk(gitstore.ZeroHash, func(e gitstore.Entry, raw gitstore.RawCommit) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		raws = append(raws, raw)
		im.res.Read++
		im.bytesRead += int64(len(raw.Blob))
		if !e.Remove {
			msgs = append(msgs, pendingMsg{raw.Blob, e.Committer.When})
			blobs = append(blobs, e.Blob)
		}
		size += len(raw.Blob)
		if len(raws) >= im.opts.BatchSize || size >= batchBytes {
			return write()
		}
		return nil
	})
	if err != nil {
		if werr := write(); werr != nil { // keep what was read before the fault
			return errors.Join(err, werr)
		}
		return fmt.Errorf("adopt epoch %d (%d commits adopted): %w", n, im.res.Adopted, err)
	}
	return write()
}

func (im *importer) add(ctx context.Context, raw []byte, arrived time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	im.res.Read++
	im.bytesRead += int64(len(raw))
	im.pending = append(im.pending, pendingMsg{raw, arrived})
	im.pendingBytes += len(raw)
	if len(im.pending) >= im.opts.BatchSize || im.pendingBytes >= batchBytes {
		return im.cut(ctx)
	}
	return nil
}

// cut parses the pending batch on every core, waits for the previous batch
// to be written, then starts writing this one in the background.
func (im *importer) cut(ctx context.Context) error {
	b := newBatch(prepareAll(im.pending), true)
	im.pending, im.pendingBytes = nil, 0
	if err := im.wait(); err != nil {
		return err
	}
	ch := make(chan addOutcome, 1)
	im.inflight = ch
	go func() {
		r, err := im.l.addBatch(ctx, b)
		ch <- addOutcome{r, err}
	}()
	return nil
}

func (im *importer) wait() error {
	if im.inflight == nil {
		return nil
	}
	o := <-im.inflight
	im.inflight = nil
	im.res.Added += o.r.Added
	im.res.Duplicates += o.r.Duplicates
	im.res.Malformed += o.r.Malformed
	if o.err == nil {
		im.progress()
	}
	return o.err
}

func (im *importer) flush(ctx context.Context) error {
	if len(im.pending) > 0 {
		if err := im.cut(ctx); err != nil {
			return err
		}
	}
	return im.wait()
}

func (im *importer) progress() {
	if im.opts.Progress != nil {
		im.opts.Progress(im.res, im.bytesRead)
	}
}

// prepareAll parses msgs on every core, keeping their order.
func prepareAll(msgs []pendingMsg) []*Prepared {
	return prepareOn(msgs, runtime.GOMAXPROCS(0))
}

// prepareAllIndex is prepareAll with prepareIndex: messages git holds.
func prepareAllIndex(msgs []pendingMsg) []*Prepared {
	return prepareWith(msgs, runtime.GOMAXPROCS(0), prepareIndex)
}

// prepareOn parses msgs on the given number of goroutines, keeping their
// order.
func prepareOn(msgs []pendingMsg, workers int) []*Prepared {
	return prepareWith(msgs, workers, Prepare)
}

func prepareWith(msgs []pendingMsg, workers int, prepare func([]byte, time.Time) *Prepared) []*Prepared {
	out := make([]*Prepared, len(msgs))
	var wg sync.WaitGroup
	next := make(chan int, len(msgs))
	for i := range msgs {
		next <- i
	}
	close(next)
	for range workers {
		wg.Go(func() {
			for i := range next {
				out[i] = prepare(msgs[i].raw, msgs[i].arrived)
			}
		})
	}
	wg.Wait()
	return out
}

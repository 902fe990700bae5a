package archive

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"mailswarm/gitstore"
)

// A mirror list is a copy of another node's list (its origin), followed
// through the swarm: it holds the origin's public key (list.pub, given by
// the user) and no private key, its list.json says "mirror": true, and it
// grows only by the origin's packs (InstallPack). Posting to it is refused.

// ErrMirror is wrapped (with ErrRejected, so SMTP answers 554 and deliver
// exits 65) when a message is posted to, or imported into, a mirror list.
var ErrMirror = errors.New("archive: read-only mirror")

// ErrNotTip is wrapped when a pack, sound in itself, does not continue the
// epoch's tip (another range: stale or ahead of us).
var ErrNotTip = gitstore.ErrNotTip

// mirrorError is the refusal of a write to a mirror list.
type mirrorError struct{ list string }

func (e *mirrorError) Error() string {
	return fmt.Sprintf("archive: list %s is a read-only mirror: post to its origin", e.list)
}

func (e *mirrorError) Unwrap() []error { return []error{ErrMirror, ErrRejected} }

// Mirror reports whether the list is a read-only mirror of another node's.
func (l *List) Mirror() bool { return l.meta.Mirror }

// refuseMirror returns the error for a write to a mirror list, nil for an
// origin list.
func (l *List) refuseMirror() error {
	if l.meta.Mirror {
		return &mirrorError{l.name}
	}
	return nil
}

// CreateMirror makes a new mirror list of the origin whose public key is
// pub (its identity: the packs and manifests followed are checked against
// it, and IMAP UIDVALIDITY derives from it as on the origin) and opens it.
// address is the list's posting address, if known (mail to it here is
// refused).
func (a *Archive) CreateMirror(name string, pub ed25519.PublicKey, address string) (*List, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("archive: create mirror %s: public key of %d bytes", name, len(pub))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	dir := filepath.Join(a.opts.Dir, "lists", name)
	if _, err := os.Stat(filepath.Join(dir, metaFile)); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrListExists, name)
	}
	// A directory left by a create that died before list.json: keep it
	// only when it is this mirror's beginning.
	if err := checkMirrorKeys(dir, name, pub); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	sync := !a.opts.NoSync
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("archive: create mirror %s: %w", name, err)
	}
	if err := WriteKeyPair(dir, pub, nil, sync); err != nil {
		return nil, fmt.Errorf("archive: create mirror %s: %w", name, err)
	}
	m := meta{Name: name, Address: address, Created: time.Now().UTC(), Mirror: true}
	if err := writeMeta(dir, m, sync); err != nil {
		return nil, fmt.Errorf("archive: create mirror %s: %w", name, err)
	}
	l, err := openList(a, name, dir)
	if err != nil {
		return nil, err
	}
	a.added(name, l)
	return l, nil
}

// checkMirrorKeys refuses a list directory that has a private key (an
// origin's) or a public key other than pub. It returns an error wrapping
// fs.ErrNotExist when dir holds no key at all.
func checkMirrorKeys(dir, name string, pub ed25519.PublicKey) error {
	if _, err := os.Stat(filepath.Join(dir, privKeyFile)); err == nil {
		return fmt.Errorf("%w: %s is an origin list (it has %s), not a mirror", ErrListExists, name, privKeyFile)
	}
	have, err := readPublicKey(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return fmt.Errorf("archive: list %s: %w", name, err)
	}
	if !have.Equal(pub) {
		return fmt.Errorf("%w: %s follows key %x, not %x", ErrListExists, name, []byte(have), []byte(pub))
	}
	return nil
}

// OpenOrCreateMirror opens the mirror list name of the origin whose key is
// pub, creating it when it does not exist yet. An existing list that is an
// origin, or a mirror of another key, is refused (wrapping ErrListExists).
func (a *Archive) OpenOrCreateMirror(name string, pub ed25519.PublicKey, address string) (*List, error) {
	l, err := a.List(name)
	if errors.Is(err, ErrUnknownList) {
		l, err = a.CreateMirror(name, pub, address)
		if errors.Is(err, ErrListExists) { // lost a race, or refused
			l, err = a.List(name)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := checkMirrorKeys(l.dir, name, pub); err != nil {
		return nil, err
	}
	if !l.Mirror() {
		return nil, fmt.Errorf("%w: %s is not a mirror list", ErrListExists, name)
	}
	return l, nil
}

// InstallPack makes the verified canonical pack file at path (a day pack
// or slice from the origin's history) one of epoch's git packs, linked,
// not copied (gitstore.Store.InstallPack), then indexes its commits and
// tells subscribers (IMAP IDLE) of the new articles. The pack must
// continue the epoch's tip exactly (else the error wraps ErrNotTip); bad
// packs wrap ErrCorrupt; neither changes anything. It returns the number of
// commits added. The file must not change afterwards: it is the git pack.
func (l *List) InstallPack(ctx context.Context, epoch int, path string) (int, error) {
	return l.InstallPacks(ctx, epoch, []string{path}, nil)
}

// PackRange is the commits a pack must hold (gitstore.PackRange).
type PackRange = gitstore.PackRange

// InstallPacks is InstallPack for consecutive packs of one epoch (a
// month bundle's days), installed in git with one ref move and indexed
// as one batch (gitstore.Store.InstallPacks); want, when not nil, is
// the range each pack must hold.
func (l *List) InstallPacks(ctx context.Context, epoch int, paths []string, want []PackRange) (int, error) {
	p, err := l.PrepareInstall(epoch, paths, want)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	return l.CommitInstall(ctx, p)
}

// InstallPrep is packs verified and their messages parsed for an install
// (PrepareInstall), not installed yet. Close releases it.
type InstallPrep struct {
	epoch int
	vp    *gitstore.VerifiedPacks
	batch *batch
}

// Close releases the pack files.
func (p *InstallPrep) Close() { p.vp.Close() }

// PrepareInstall is the first half of InstallPacks, the CPU-heavy one:
// the packs verified (gitstore.VerifyPacks) and their messages parsed for
// the index, without any lock and changing nothing, so that a mirror
// prepares a torrent's packs while the one before is committed.
func (l *List) PrepareInstall(epoch int, paths []string, want []PackRange) (*InstallPrep, error) {
	vp, err := gitstore.VerifyPacks(paths, want)
	if err != nil {
		return nil, fmt.Errorf("archive: %s: %w", l.name, err)
	}
	return &InstallPrep{epoch: epoch, vp: vp, batch: installBatch(vp.Entries(epoch), vp.ReadBlob)}, nil
}

// CommitInstall is the second half of InstallPacks: the prepared packs
// installed in git (gitstore.Store.InstallVerified: their first commit
// must continue the epoch's tip) and indexed.
func (l *List) CommitInstall(ctx context.Context, p *InstallPrep) (int, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	lk, err := l.lockIndex(false)
	if err != nil {
		return 0, fmt.Errorf("archive: %s: %w", l.name, err)
	}
	defer lk.Unlock()
	entries, err := l.git.InstallVerified(p.epoch, p.vp)
	if err != nil {
		return 0, fmt.Errorf("archive: %s: %w", l.name, err)
	}
	if _, _, err := l.catchUp(ctx, p.batch); err != nil {
		return len(entries), fmt.Errorf("archive: %s: index: %w", l.name, err)
	}
	return len(entries), nil
}

// installBatchMax bounds the message bytes an install parses ahead of
// indexing (a day pack of a busy list is a few MiB).
const installBatchMax = 256 << 20

// installBatch reads and parses the messages of an installed pack on
// every core, as an import does, so that indexing them is the import
// path's (one batch, trigram postings merged): indexing message by
// message ran at about 500 msg/s against import's 3,600
// (BenchmarkInstallPack). nil (index message by message) when the pack
// holds more than installBatchMax bytes of mail or a blob cannot be read
// (catch-up reads it again and reports it).
func installBatch(entries []gitstore.Entry, read func(gitstore.Entry) ([]byte, error)) *batch {
	var msgs []pendingMsg
	var size int64
	for _, e := range entries {
		if e.Remove {
			continue
		}
		if size += e.BlobSize; size > installBatchMax {
			return nil
		}
		raw, err := read(e)
		if err != nil {
			return nil
		}
		msgs = append(msgs, pendingMsg{raw: raw, arrived: e.Committer.When})
	}
	if len(msgs) == 0 {
		return nil
	}
	b := newBatch(prepareAllIndex(msgs), true)
	b.byBlob = make(map[gitstore.Hash]*Prepared, len(b.msgs))
	i := 0
	for _, e := range entries {
		if !e.Remove {
			b.byBlob[e.Blob] = b.msgs[i]
			i++
		}
	}
	return b
}

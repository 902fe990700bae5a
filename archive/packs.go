package archive

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"mailswarm/gitstore"
)

// This file is what the swarm sees of a list's git history: commits along
// each epoch's chain and canonical packs of ranges of them. The swarm
// imports archive only; these names keep gitstore's types behind it.

// Hash is a git object name.
type Hash = gitstore.Hash

// PackInfo describes a canonical pack written by WriteCanonicalPack.
type PackInfo = gitstore.PackInfo

// ErrCorrupt is wrapped by every error about stored or received bytes that
// are not what they should be.
var ErrCorrupt = gitstore.ErrCorrupt

// ParseHash parses a 40-digit hex object name.
func ParseHash(s string) (Hash, error) { return gitstore.ParseHash(s) }

// CommitRef is one commit of a list's history as the swarm needs it.
type CommitRef struct {
	Epoch          int
	Commit, Parent Hash
	Blob           Hash
	Remove         bool      // a removal ("d") commit
	Committed      time.Time // the committer date: arrival for live mail
}

// Epochs returns the list's epoch numbers, ascending.
func (l *List) Epochs() []int { return l.git.Epochs() }

// Tip returns an epoch's newest commit; zero when the epoch is empty.
func (l *List) Tip(epoch int) (Hash, error) { return l.git.Tip(epoch) }

// WalkCommits calls fn for every commit of epoch after from (zero: from
// the root) up to the tip, oldest first, following parent links back from
// the tip only as far as from.
func (l *List) WalkCommits(epoch int, from Hash, fn func(CommitRef) error) error {
	return l.git.Walk(epoch, from, func(e gitstore.Entry) error {
		return fn(CommitRef{Epoch: e.Epoch, Commit: e.Commit, Parent: e.Parent, Blob: e.Blob,
			Remove: e.Remove, Committed: e.Committer.When})
	})
}

// WriteCanonicalPack writes the canonical pack of epoch's commits after
// from (zero: the root) up to and including to: anyone holding the same
// objects writes the same bytes.
func (l *List) WriteCanonicalPack(w io.Writer, epoch int, from, to Hash) (PackInfo, error) {
	return l.git.WriteCanonicalPack(w, epoch, from, to)
}

// WriteCanonicalPackFrom is WriteCanonicalPack copying the compressed
// records the canonical packs at srcs (a day's slices) hold instead of
// deflating them again: the same bytes (gitstore.WriteCanonicalPackFrom).
func (l *List) WriteCanonicalPackFrom(w io.Writer, epoch int, from, to Hash, srcs []string) (PackInfo, error) {
	return l.git.WriteCanonicalPackFrom(w, epoch, from, to, srcs)
}

// VerifyPack checks pack bytes strictly (header, object count, every
// object inflated and re-hashed, no deltas, trailer, nothing after it) and
// returns the number of objects. Errors wrap ErrCorrupt.
func VerifyPack(pack []byte) (objects int, err error) {
	objs, err := gitstore.VerifyPack(pack)
	return len(objs), err
}

// ArticleOf returns the article number of the message commit c; 0 for a
// removal commit or a commit the index does not know (yet).
func (l *List) ArticleOf(c CommitRef) (int64, error) {
	if c.Remove {
		return 0, nil
	}
	var num int64
	err := l.rdb.QueryRow(`SELECT num FROM msg WHERE blob_id = ? AND epoch = ? AND commit_id = ?`,
		c.Blob[:], c.Epoch, c.Commit[:]).Scan(&num)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("archive: article of %s: %w", c.Commit, err)
	}
	return num, nil
}

// AppendPack adopts the commits of a verified canonical pack (a slice or
// day pack from another list's history) onto epoch, byte for byte, and
// indexes them: the pack must continue the epoch's tip exactly. It returns
// the number of commits added. Bad packs wrap ErrCorrupt and change
// nothing.
func (l *List) AppendPack(ctx context.Context, epoch int, pack []byte) (int, error) {
	base, commits, err := gitstore.PackCommits(pack)
	if err != nil {
		return 0, fmt.Errorf("archive: %s: pack: %w", l.name, err)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	lk, err := l.lockIndex(false)
	if err != nil {
		return 0, fmt.Errorf("archive: %s: %w", l.name, err)
	}
	defer lk.Unlock()
	tip, err := l.git.Tip(epoch)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("archive: %s: %w", l.name, err)
	}
	if base != tip {
		return 0, fmt.Errorf("archive: %s: pack continues %s, epoch %d is at %s", l.name, base, epoch, tip)
	}
	if _, err := l.git.AppendRaw(epoch, commits); err != nil {
		return 0, fmt.Errorf("archive: %s: %w", l.name, err)
	}
	if _, _, err := l.catchUp(ctx, nil); err != nil {
		return len(commits), fmt.Errorf("archive: %s: index: %w", l.name, err)
	}
	return len(commits), nil
}

package archive

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io/fs"
	"strconv"

	"mailswarm/gitstore"
)

// AppendPackAfter adopts the commits of a verified canonical pack that
// come after tip, the epoch's tip, which must be one of the pack's
// commits or the commit it continues: a mirror that holds the first
// slices of a day receives the sealed day pack and takes its rest. The
// commits up to tip are the mirror's own by their names (a commit names
// its parent, so the chain up to tip is the same history). It returns the
// number of commits added; bad packs, and packs that do not hold exactly
// the range want, wrap ErrCorrupt and change nothing.
func (l *List) AppendPackAfter(ctx context.Context, epoch int, pack []byte, tip Hash, want PackRange) (int, error) {
	base, commits, err := gitstore.PackCommits(pack)
	if err != nil {
		return 0, fmt.Errorf("archive: %s: pack: %w", l.name, err)
	}
	if last := commitName(commits[len(commits)-1].Commit); base != want.From || last != want.To || len(commits) != want.Commits {
		return 0, fmt.Errorf("archive: %s: %w: the pack holds %d commits after %s up to %s, not %d after %s up to %s",
			l.name, ErrCorrupt, len(commits), base, last, want.Commits, want.From, want.To)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	lk, err := l.lockIndex(false)
	if err != nil {
		return 0, fmt.Errorf("archive: %s: %w", l.name, err)
	}
	defer lk.Unlock()
	cur, err := l.git.Tip(epoch)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("archive: %s: %w", l.name, err)
	}
	if cur != tip {
		return 0, fmt.Errorf("archive: %s: epoch %d is at %s, not %s", l.name, epoch, cur, tip)
	}
	rest := commits
	if base != tip {
		rest = nil
		for i, c := range commits {
			if commitName(c.Commit) == tip {
				rest = commits[i+1:]
				break
			}
		}
		if rest == nil {
			return 0, fmt.Errorf("archive: %s: %w: pack (after %s) does not pass through epoch %d's tip %s", l.name, ErrCorrupt, base, epoch, tip)
		}
	}
	if len(rest) == 0 {
		return 0, nil
	}
	if _, err := l.git.AppendRaw(epoch, rest); err != nil {
		return 0, fmt.Errorf("archive: %s: %w", l.name, err)
	}
	if _, _, err := l.catchUp(ctx, nil); err != nil {
		return len(rest), fmt.Errorf("archive: %s: index: %w", l.name, err)
	}
	return len(rest), nil
}

// commitName is the git object name of a commit's bytes.
func commitName(data []byte) Hash {
	h := sha1.New()
	h.Write([]byte("commit " + strconv.Itoa(len(data)) + "\x00"))
	h.Write(data)
	return Hash(h.Sum(nil))
}

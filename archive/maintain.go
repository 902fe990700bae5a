package archive

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"mailswarm/gitstore"
	"mailswarm/internal/durable"
	"mailswarm/message"
)

// ErrInconsistent is wrapped by Verify's errors.
var ErrInconsistent = errors.New("archive: list is inconsistent")

// Reindex rebuilds the index from git alone, into a new file that replaces
// the old one only when complete. Article numbers come out the same, since
// they are positions in the git history. Per-user state is not touched.
// progress, when set, is told the number of commits indexed so far.
//
// It swaps the list's index handles: Run's watcher and writers wait for it
// (wmu), but the caller must not read the list (Articles, Search, IMAP)
// meanwhile; `mailswarm reindex` runs with serve stopped.
func (l *List) Reindex(ctx context.Context, progress func(commits int64)) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	old := l.db
	if err := l.rebuildIndex(ctx, progress); err != nil {
		return fmt.Errorf("archive: reindex %s: %w", l.name, err)
	}
	old.Close()
	return nil
}

// rebuildIndex indexes git into DIR/index.sqlite3.new and renames it over
// the index, leaving l.db open on the new index. It holds the index lock
// throughout: no writer indexes into the file being replaced.
func (l *List) rebuildIndex(ctx context.Context, progress func(int64)) error {
	lk, err := l.lockIndex(false)
	if err != nil {
		return err
	}
	defer lk.Unlock()
	path := filepath.Join(l.dir, indexFile)
	tmp := path + ".new"
	for _, s := range []string{"", "-wal", "-shm"} {
		os.Remove(tmp + s)
	}
	db, err := openIndex(tmp, l.a.opts.NoSync)
	if err != nil {
		return err
	}
	prevDB, prevProgress := l.db, l.progress
	l.db, l.progress = db, nil
	if progress != nil {
		var total int64
		l.progress = func(n int64) { total += n; progress(total) }
	}
	_, _, err = l.catchUp(ctx, nil)
	l.progress = prevProgress
	if err != nil {
		db.Close()
		l.db = prevDB
		return err
	}
	if err := db.Close(); err != nil { // checkpoints the WAL into the file
		l.db = prevDB
		return err
	}
	if prevDB != nil {
		prevDB.Close()
	}
	if l.rdb != nil {
		l.rdb.Close()
	}
	for _, s := range []string{"-wal", "-shm"} {
		os.Remove(path + s)
	}
	if err := durable.Rename(tmp, path, !l.a.opts.NoSync); err != nil {
		return err
	}
	if l.db, err = openIndex(path, l.a.opts.NoSync); err != nil {
		return err
	}
	l.rdb, err = openReader(path)
	return err
}

// Verify checks that git, the packs and the index agree: every pack and
// idx is sound, every commit of every epoch is indexed in history order
// under the right article number, each indexed location holds the blob it
// names, and the full-text index has a row for every message. It returns nil
// only then.
func (l *List) Verify(ctx context.Context) error {
	if err := l.git.Check(); err != nil {
		return fmt.Errorf("%w: %s: git: %w", ErrInconsistent, l.name, err)
	}
	bad := func(f string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInconsistent, l.name, fmt.Sprintf(f, args...))
	}
	tips, err := indexTips(ctx, l.db)
	if err != nil {
		return bad("index: %v", err)
	}
	// Expected rows, in order, from git.
	type want struct {
		e       gitstore.Entry
		removed bool
	}
	var wants []want
	byBlob := map[gitstore.Hash][]int{}
	for _, epoch := range l.git.Epochs() {
		gtip, err := l.git.Tip(epoch)
		if err != nil {
			return bad("epoch %d tip: %v", epoch, err)
		}
		if tips[epoch] != gtip {
			return bad("epoch %d: index tip %s, git tip %s", epoch, tips[epoch], gtip)
		}
		err = l.git.Walk(epoch, gitstore.ZeroHash, func(e gitstore.Entry) error {
			if e.Remove {
				if idx := byBlob[e.Blob]; len(idx) > 0 {
					wants[idx[len(idx)-1]].removed = true
					byBlob[e.Blob] = idx[:len(idx)-1]
				}
				return nil
			}
			byBlob[e.Blob] = append(byBlob[e.Blob], len(wants))
			wants = append(wants, want{e: e})
			return nil
		})
		if err != nil {
			return bad("epoch %d: %v", epoch, err)
		}
	}
	i := 0
	err = l.Articles(ctx, 0, 0, true, func(a *Article) error {
		if i >= len(wants) {
			return bad("article %d is not in git", a.Num)
		}
		w := wants[i]
		i++
		switch {
		case a.Num != int64(i):
			return bad("article %d where %d was expected", a.Num, i)
		case a.Commit != w.e.Commit || a.Blob != w.e.Blob || a.Epoch != w.e.Epoch:
			return bad("article %d: index says commit %s blob %s, git says %s %s", a.Num, a.Commit, a.Blob, w.e.Commit, w.e.Blob)
		case a.Removed != w.removed:
			return bad("article %d: removed=%v in index, %v in git", a.Num, a.Removed, w.removed)
		case a.Size != w.e.BlobSize:
			return bad("article %d: size %d in index, %d in git", a.Num, a.Size, w.e.BlobSize)
		}
		// The row's own location, without the fallback by name: a row
		// naming a pack that was dropped is an inconsistency here.
		loc := a.Loc
		loc.Blob = gitstore.ZeroHash
		raw, err := l.git.ReadBlob(loc)
		if err != nil {
			return bad("article %d: %v", a.Num, err)
		}
		if blobHash(raw) != a.Blob {
			return bad("article %d: bytes at %s+%d do not hash to blob %s", a.Num, a.Loc.Pack, a.Loc.Offset, a.Blob)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrInconsistent) {
			return err
		}
		return bad("%v", err)
	}
	if i != len(wants) {
		return bad("index has %d articles, git %d", i, len(wants))
	}
	if err := l.checkTrigramBatches(ctx, int64(len(wants))); err != nil {
		return bad("%v", err)
	}
	return nil
}

// checkTrigramBatches checks that the full-text batches cover articles
// 1..n exactly once.
func (l *List) checkTrigramBatches(ctx context.Context, n int64) error {
	rows, err := l.db.QueryContext(ctx, `SELECT first, last FROM tri_batch ORDER BY first`)
	if err != nil {
		return err
	}
	defer rows.Close()
	next := int64(1)
	for rows.Next() {
		var first, last int64
		if err := rows.Scan(&first, &last); err != nil {
			return err
		}
		if first != next || last < first {
			return fmt.Errorf("full-text index covers articles %d-%d where %d was next", first, last, next)
		}
		next = last + 1
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if next != n+1 {
		return fmt.Errorf("full-text index covers articles up to %d of %d", next-1, n)
	}
	return nil
}

func blobHash(b []byte) gitstore.Hash {
	h := sha1.New()
	h.Write([]byte("blob " + strconv.Itoa(len(b)) + "\x00"))
	h.Write(b)
	var out gitstore.Hash
	h.Sum(out[:0])
	return out
}

// ExportOptions selects what Export writes. The zero value exports all.
type ExportOptions struct {
	// Since and Until bound the messages' Date (UTC days, inclusive);
	// zero means no bound.
	Since, Until time.Time
}

// Export writes the list's messages (not removed ones) in article order to
// w as mboxrd, byte for byte as archived.
func (l *List) Export(ctx context.Context, w io.Writer, opts *ExportOptions) (int, error) {
	var o ExportOptions
	if opts != nil {
		o = *opts
	}
	mw := message.NewMboxWriter(w)
	n := 0
	err := l.Articles(ctx, 0, 0, false, func(a *Article) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !o.Since.IsZero() && a.Date < o.Since.Unix() {
			return nil
		}
		if !o.Until.IsZero() && a.Date >= o.Until.AddDate(0, 0, 1).Unix() {
			return nil
		}
		raw, err := l.Read(a)
		if err != nil {
			return err
		}
		n++
		return mw.Write(raw, "")
	})
	if err != nil {
		return n, fmt.Errorf("archive: export %s: %w", l.name, err)
	}
	return n, nil
}

package archive

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"mailswarm/gitstore"
)

// Commits by other processes. `mailswarm deliver` and `mailswarm import`
// archive into a list that a running serve has open; serve's subscribers
// (IMAP views and IDLE, the swarm publisher) hear of those articles from
// the list's watcher, which Run starts beside each committer. A look costs
// one read of the newest epoch's ref and one stat; only when the ref moved
// does it read the index. Each article is announced once, in order,
// whoever committed it: announce keeps the last one told.

// watchInterval is how often a list's watcher looks for commits made by
// other processes: another process's commit reaches subscribers within
// about two looks (one to see git move, one to see the index follow),
// well inside the second that is promised.
const watchInterval = 200 * time.Millisecond

// announce tells subscribers of the articles up to last that they have not
// heard of, as one Event. Articles are announced in order and once: a
// last at or below what was told is nothing new.
func (l *List) announce(last int64) {
	l.evMu.Lock()
	defer l.evMu.Unlock()
	if last <= l.announced {
		return
	}
	l.a.events.publish(Event{List: l.name, First: l.announced + 1, Last: last})
	l.announced = last
}

// lastArticle returns the highest article number in the index.
func lastArticle(ctx context.Context, q querier) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT coalesce(max(num), 0) FROM msg`).Scan(&n)
	return n, err
}

// watch is a watcher's memory between looks.
type watch struct {
	epoch int
	tip   gitstore.Hash // the newest epoch's tip at the last look
	// settled: at the last look the index held every commit of git.
	settled bool
}

// watchLoop looks for other processes' commits every watchInterval until
// ctx ends.
func (l *List) watchLoop(ctx context.Context) {
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	var w watch
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := l.look(ctx, &w)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			l.a.log.Error("watch: look for other writers failed; will retry", "list", l.name, "err", err)
			failing = true
		case err == nil && failing:
			l.a.log.Info("watch: recovered", "list", l.name)
			failing = false
		}
	}
}

// look announces the articles the index gained since the last look, by
// this process or another. When git holds commits the index lacks and no
// writer holds the index lock (lockIndex: writers hold it from their git
// append to their index commit), the writer that made them died in
// between, and the watcher indexes them itself; a live writer, however
// slow, is left to finish.
func (l *List) look(ctx context.Context, w *watch) error {
	eps := l.git.Epochs()
	epoch := eps[len(eps)-1]
	if _, err := os.Stat(filepath.Join(l.dir, "git", strconv.Itoa(epoch+1)+".git")); err == nil {
		// Another process began an epoch, perhaps more than one since the
		// last look: Tip makes the store open every epoch on disk
		// (gitstore's refresh), so one look sees them all (TestWatchEpochs).
		if _, err := l.git.Tip(epoch + 1); err != nil {
			return err
		}
		eps = l.git.Epochs()
		epoch = eps[len(eps)-1]
	}
	tip, err := l.git.Tip(epoch)
	if err != nil {
		return err
	}
	if w.settled && epoch == w.epoch && tip == w.tip {
		return nil
	}
	w.epoch, w.tip = epoch, tip

	gtips := map[int]gitstore.Hash{}
	for _, e := range eps {
		h, err := l.git.Tip(e)
		if err != nil {
			return err
		}
		if !h.IsZero() {
			gtips[e] = h
		}
	}
	// Under wmu: Reindex swaps l.db. A writer of this process holds wmu
	// for a commit pass at most; the look waits for it.
	l.wmu.Lock()
	defer l.wmu.Unlock()
	itips, err := indexTips(ctx, l.db)
	if err != nil {
		return err
	}
	last, err := lastArticle(ctx, l.db)
	if err != nil {
		return err
	}
	// The rows 1..last are committed whatever the tips say: tell them now.
	l.announce(last)
	if w.settled = maps.Equal(gtips, itips); w.settled {
		return nil
	}
	lk, err := l.lockIndex(true)
	if err != nil || lk == nil {
		return err // a live writer holds it: it indexes its commits
	}
	defer lk.Unlock()
	// The writer may have committed between our reads and the lock:
	// then there is nothing to index.
	first, last, err := l.catchUp(ctx, nil)
	if err == nil && last >= first {
		l.a.log.Info("watch: indexed commits another process left unindexed", "list", l.name, "first", first, "last", last)
	}
	return err
}

package archive

import (
	"modernc.org/sqlite"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mailswarm/internal/durable"
)

// drainBatch is the most records one committer batch archives.
const drainBatch = 1000

// spoolTrailer precedes the spool sequence number in the commit message of
// a message archived from the spool: "Subject\n\nMailswarm-Spool: N".
const spoolTrailer = "\n\nMailswarm-Spool: "

// testHookAfterCommit, when set, runs after a batch is in git and the index
// and before the checkpoint; an error ends the pass as a crash would.
var testHookAfterCommit func() error

// storageTrouble wraps err with ErrTempFail when it is the storage's
// fault (full, read-only, failing disk), which may pass.
func storageTrouble(err error) error {
	if err == nil || errors.Is(err, ErrTempFail) {
		return err
	}
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO, syscall.EACCES, syscall.EPERM} {
		if errors.Is(err, e) {
			return fmt.Errorf("%w: %w", ErrTempFail, err)
		}
	}
	// SQLite reports the same trouble with its own codes (primary code in
	// the low byte): SQLITE_READONLY 8, SQLITE_IOERR 10, SQLITE_FULL 13,
	// SQLITE_CANTOPEN 14.
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 8, 10, 13, 14:
			return fmt.Errorf("%w: %w", ErrTempFail, err)
		}
	}
	return err
}

// spoolSeqOf returns the spool sequence number recorded in a commit
// message (0: none).
func spoolSeqOf(msg string) uint64 {
	i := strings.LastIndex(msg, spoolTrailer)
	if i < 0 {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(msg[i+len(spoolTrailer):]), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// indexSpoolSeq returns the highest spool sequence number the index has
// seen in commit messages.
func indexSpoolSeq(ctx context.Context, q querier) (uint64, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'spool_seq'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(v, 10, 64)
}

// Drain runs one committer pass now: it archives every record of the
// list's spool past the checkpoint, in batches of up to 1,000 (one git pack
// and one index transaction each), then checkpoints the spool and removes
// segments wholly archived. When another process is draining the list it
// returns at once with nothing done. Replay after a crash at any point is
// idempotent: the spool sequence number is recorded in each commit.
//
// Errors caused by the storage wrap ErrTempFail; the records stay in the
// spool and the next pass retries.
func (l *List) Drain(ctx context.Context) (AddResult, error) {
	res, err := l.drain(ctx)
	return res, storageTrouble(err)
}

func (l *List) drain(ctx context.Context) (AddResult, error) {
	res := AddResult{First: 1, Last: 0}
	l.drainMu.Lock()
	defer l.drainMu.Unlock()
	s := l.spool
	if _, err := os.Stat(s.dir); errors.Is(err, os.ErrNotExist) {
		return res, nil
	}
	lk, err := durable.TryLockFile(filepath.Join(s.dir, spoolCommitLock))
	if err != nil {
		return res, fmt.Errorf("archive: drain %s: %w: %w", l.name, ErrTempFail, err)
	}
	if lk == nil {
		return res, nil
	}
	defer lk.Unlock()
	s.pending.Store(0)

	// The index may lag git (an earlier pass failed after the commit).
	l.wmu.Lock()
	ilk, err := l.lockIndex(false)
	if err == nil {
		_, _, err = l.catchUp(ctx, nil)
		ilk.Unlock()
	}
	var idxSeq uint64
	if err == nil {
		idxSeq, err = indexSpoolSeq(ctx, l.db)
	}
	l.wmu.Unlock()
	if err != nil {
		return res, fmt.Errorf("archive: drain %s: %w", l.name, err)
	}
	cp, err := readCheckpoint(s.dir)
	if err != nil {
		return res, fmt.Errorf("archive: drain %s: %w", l.name, err)
	}
	committed := max(cp, idxSeq)

	// Only durable records: under the append lock no write is under way.
	alk, err := durable.LockFile(filepath.Join(s.dir, spoolAppendLock))
	if err != nil {
		return res, fmt.Errorf("archive: drain %s: %w: %w", l.name, ErrTempFail, err)
	}
	segs, err := s.segments()
	var limit int64
	if err == nil && len(segs) > 0 {
		var fi os.FileInfo
		if fi, err = os.Stat(filepath.Join(s.dir, segmentName(segs[len(segs)-1]))); err == nil {
			limit = fi.Size()
		}
	}
	alk.Unlock()
	if err != nil {
		return res, fmt.Errorf("archive: drain %s: %w", l.name, err)
	}

	var pending []pendingMsg
	var seqs []uint64
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		last := seqs[len(seqs)-1]
		// One goroutine: the committer runs beside live SMTP sessions, whose
		// 250s must not wait behind a burst of parsing on every core.
		msgs := prepareOn(pending, 1)
		for i, m := range msgs {
			m.spoolSeq = seqs[i]
		}
		pending, seqs = nil, nil
		r, err := l.addBatch(ctx, newBatch(msgs, true))
		if err != nil {
			return err
		}
		res.Added += r.Added
		res.Duplicates += r.Duplicates
		res.Malformed += r.Malformed
		if r.Last >= r.First {
			if res.Last < res.First {
				res.First = r.First
			}
			res.Last = r.Last
		}
		if testHookAfterCommit != nil {
			if err := testHookAfterCommit(); err != nil {
				return err
			}
		}
		if err := durable.WriteFile(filepath.Join(s.dir, spoolCheckpoint),
			[]byte(strconv.FormatUint(last, 10)+"\n"), 0o644, !l.a.opts.NoSync); err != nil {
			return fmt.Errorf("%w: checkpoint: %w", ErrTempFail, err)
		}
		committed = last
		return nil
	}
	for i, seg := range segs {
		if i+1 < len(segs) && segs[i+1]-1 <= committed {
			continue // wholly archived
		}
		// Skip what an earlier pass read of this segment, when all of it
		// is archived.
		var from int64
		if s.readSeg == seg && s.readSeq <= committed {
			from = s.readOff
		}
		b, err := l.readSegment(seg, from, i == len(segs)-1, limit)
		if err != nil {
			return res, fmt.Errorf("archive: drain %s: %w", l.name, err)
		}
		recs, valid, err := parseSegment(b)
		if err != nil {
			return res, fmt.Errorf("archive: drain %s: segment %s: %w", l.name, segmentName(seg), err)
		}
		s.readSeg, s.readOff = seg, from+int64(valid)
		if len(recs) > 0 {
			s.readSeq = recs[len(recs)-1].seq
		} else if from == 0 {
			s.readSeq = 0
		}
		for _, r := range recs {
			if r.seq <= committed || (len(seqs) > 0 && r.seq <= seqs[len(seqs)-1]) {
				continue
			}
			pending = append(pending, pendingMsg{raw: r.data, arrived: time.Unix(0, r.arrived)})
			seqs = append(seqs, r.seq)
			if len(pending) >= drainBatch {
				if err := flush(); err != nil {
					return res, fmt.Errorf("archive: drain %s: %w", l.name, err)
				}
			}
		}
	}
	if err := flush(); err != nil {
		return res, fmt.Errorf("archive: drain %s: %w", l.name, err)
	}
	// Remove segments wholly archived; never the last (appends go there).
	for i := 0; i+1 < len(segs); i++ {
		if segs[i+1]-1 <= committed {
			if err := os.Remove(filepath.Join(s.dir, segmentName(segs[i]))); err != nil && !errors.Is(err, os.ErrNotExist) {
				l.a.log.Warn("spool: remove segment", "list", l.name, "err", err)
			}
		}
	}
	return res, nil
}

// readSegment reads segment first from offset from, up to offset limit
// when last is set.
func (l *List) readSegment(first uint64, from int64, last bool, limit int64) ([]byte, error) {
	f, err := os.Open(filepath.Join(l.spool.dir, segmentName(first)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if last && limit <= from {
		return nil, nil
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return nil, err
	}
	var r io.Reader = f
	if last {
		r = io.LimitReader(f, limit-from)
	}
	return io.ReadAll(r)
}

// Run runs the committers of every list opened so far and of those opened
// later, until ctx ends: each drains its list's spool once new mail has
// waited as long as the last pass took (at least 10 ms), and every
// Options.CommitInterval for records other processes left. On ctx's
// end each makes a final pass; Run returns nil once all have ended. Call
// Close only after Run has returned.
//
// Beside each committer a watcher looks for commits other processes made
// to the list (deliver, import) a few times a second and announces them
// to subscribers as it does its own (watch.go).
func (a *Archive) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.run != nil {
		a.mu.Unlock()
		return errors.New("archive: already running")
	}
	rs := &runState{ctx: ctx}
	a.run = rs
	for _, l := range a.lists {
		a.startCommitter(rs, l)
	}
	a.mu.Unlock()
	<-ctx.Done()
	a.mu.Lock()
	a.run = nil
	a.mu.Unlock()
	rs.wg.Wait()
	return nil
}

// runState is a running Archive.Run.
type runState struct {
	ctx context.Context
	wg  sync.WaitGroup
}

// startCommitter starts l's committer loop and its watcher (watch.go)
// under rs; a.mu must be held.
func (a *Archive) startCommitter(rs *runState, l *List) {
	rs.wg.Add(2)
	go func() {
		defer rs.wg.Done()
		l.commitLoop(rs.ctx)
	}()
	go func() {
		defer rs.wg.Done()
		l.watchLoop(rs.ctx)
	}()
}

func (l *List) commitLoop(ctx context.Context) {
	iv := l.a.opts.CommitInterval
	if iv <= 0 {
		iv = time.Second
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	failing := false
	var took time.Duration // the last pass's Drain
	pass := func(ctx context.Context) {
		start := time.Now()
		res, err := l.Drain(ctx)
		took = time.Since(start)
		if res.Added > 0 && err == nil {
			// small commits make small trigram segments: merge them
			if _, merr := l.mergeSegments(ctx); merr != nil && ctx.Err() == nil {
				l.a.log.Error("trigram segment merge failed", "list", l.name, "err", merr)
			}
		}
		if err != nil && ctx.Err() != nil {
			return // cut short by the end of Run; the final pass follows
		}
		switch {
		case err != nil && !failing:
			l.a.log.Error("spool: commit failed; will retry", "list", l.name, "err", err)
			failing = true
		case err == nil && failing:
			l.a.log.Info("spool: commit recovered", "list", l.name)
			failing = false
		}
	}
	// New mail is committed after a linger (others arriving within it
	// share the commit) as long as the last pass took, at least
	// commitLinger: batches grow with the load (a pass takes longer the
	// more it holds) instead of with a timer, and the committer holds a
	// core at most half the time (with passes back to back, 2,000 mails
	// as fast as 16 SMTP sessions go got their 250s 15–25% slower than
	// with the 1 s committer on 2 shared cores). Before, a list that had committed within the last interval
	// waited for the ticker, and IDLE saw mail arriving every 0.3 s about
	// 0.7 s late; now 250 → EXISTS stays under 100 ms at 10 msg/s
	// (docs/BENCHMARKS.md, "go run ./bench idle"). The ticker only picks
	// up records appended by another process that left them undrained;
	// a full batch (wake) cuts the linger short. The linger never exceeds
	// the interval: a pass slowed by something other than its own batch
	// (another process holding the index's write lock for SQLite's 30 s
	// busy timeout, a catch-up of an import) must not hold the next
	// message back longer than the 1 s committer did. The segment merge
	// after a pass is not counted: it does not grow with the batch.
	for {
		select {
		case <-ctx.Done():
			pass(context.WithoutCancel(ctx))
			return
		case <-t.C:
		case <-l.spool.wake:
		case <-l.spool.arrived:
			linger := time.NewTimer(lingerAfter(took, iv))
			select {
			case <-ctx.Done():
				linger.Stop()
				pass(context.WithoutCancel(ctx))
				return
			case <-linger.C:
			case <-l.spool.wake:
				linger.Stop()
			}
		}
		pass(ctx)
	}
}

// lingerAfter is how long new mail waits for company after a pass that took
// took, with commit interval iv (see commitLoop).
func lingerAfter(took, iv time.Duration) time.Duration {
	return min(max(commitLinger, took), iv)
}

// commitLinger is how long the committer waits after the first new
// message for others to share its commit. Under load the passes
// themselves batch what arrives meanwhile; 10 ms rather than 20 took the
// delay from Accept to the event at one message per 50 ms from p50 45–53
// / p95 123–146 ms to 35–36 / 58–62 ms (2 busy cores, load ~12).
const commitLinger = 10 * time.Millisecond

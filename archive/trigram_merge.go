package archive

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Live mail is committed in small batches (one message, on a quiet list),
// and each batch is a trigram segment: a search probes every segment, so
// thousands of tiny ones would make SEARCH slow. mergeSegments merges them
// the way log-structured indexes do: mergeFanout consecutive segments of
// the same size class (log4 of their article count) become one, until a
// merged segment would pass maxMergedSegment articles. Import batches
// (1,000 articles) are merged too when four sit together, never beyond
// 4,096: a 1M-message list keeps a few hundred segments.
const (
	mergeFanout      = 4
	maxMergedSegment = 4096
)

type segment struct{ first, last int64 }

func (s segment) size() int64 { return s.last - s.first + 1 }

func sizeClass(n int64) int { return (bits.Len64(uint64(n)) - 1) / 2 }

// mergeSegments merges segments while some run qualifies; it returns how
// many merges it made.
func (l *List) mergeSegments(ctx context.Context) (int, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	merges := 0
	for {
		run, err := l.mergeableRun(ctx)
		if err != nil || run == nil {
			return merges, err
		}
		if err := l.mergeRun(ctx, run); err != nil {
			return merges, fmt.Errorf("archive: merge trigram segments %s: %w", l.name, err)
		}
		merges++
	}
}

// mergeableRun finds mergeFanout consecutive segments of one size class
// whose union stays within maxMergedSegment, or nil.
func (l *List) mergeableRun(ctx context.Context) ([]segment, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT first, last FROM tri_batch ORDER BY first`)
	if err != nil {
		return nil, err
	}
	var segs []segment
	for rows.Next() {
		var s segment
		if err := rows.Scan(&s.first, &s.last); err != nil {
			rows.Close()
			return nil, err
		}
		segs = append(segs, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := 0; i+mergeFanout <= len(segs); i++ {
		run := segs[i : i+mergeFanout]
		class := sizeClass(run[0].size())
		ok := run[len(run)-1].last-run[0].first+1 <= maxMergedSegment
		for _, s := range run[1:] {
			ok = ok && sizeClass(s.size()) == class
		}
		if ok {
			return run, nil
		}
	}
	return nil, nil
}

// mergeRun replaces the segments of run by one, in one transaction.
func (l *List) mergeRun(ctx context.Context, run []segment) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	lists := map[uint64][]byte{}
	lastOf := map[uint64]int64{} // last article appended to each key's list
	for _, s := range run {
		rows, err := tx.QueryContext(ctx, `SELECT key, nums FROM tri WHERE seg = ?`, s.first)
		if err != nil {
			return err
		}
		for rows.Next() {
			var key int64
			var b []byte
			if err := rows.Scan(&key, &b); err != nil {
				rows.Close()
				return err
			}
			nums, err := decodeNums(b)
			if err != nil {
				rows.Close()
				return err
			}
			k := uint64(key)
			buf, prev := lists[k], lastOf[k]
			for _, n := range nums {
				buf = binary.AppendUvarint(buf, uint64(n-prev))
				prev = n
			}
			lists[k], lastOf[k] = buf, prev
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	first, last := run[0].first, run[len(run)-1].last
	if _, err := tx.ExecContext(ctx, `DELETE FROM tri WHERE seg BETWEEN ? AND ?`, first, run[len(run)-1].first); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tri_batch WHERE first BETWEEN ? AND ?`, first, run[len(run)-1].first); err != nil {
		return err
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO tri (seg, key, nums) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	for k, b := range lists {
		if _, err := ins.ExecContext(ctx, first, int64(k), b); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tri_batch (first, last) VALUES (?, ?)`, first, last); err != nil {
		return err
	}
	return tx.Commit()
}

package archive

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"

	"mailswarm/gitstore"
	"mailswarm/message"
)

// What the IMAP server reads from the index, without building anything
// per message: the timeline (article, arrival) for mailbox views, the
// FETCH rows, numeric ranges for SEARCH, and text matching that confirms
// the trigram candidates.

// Timeline calls fn for every article after the given one, in article
// order: its number, its arrival (committer) time in unix seconds and
// whether it was removed.
func (l *List) Timeline(ctx context.Context, after int64, fn func(num, arrived int64, removed bool) error) error {
	rows, err := l.rdb.QueryContext(ctx, `SELECT num, arrived, removed FROM msg WHERE num > ? ORDER BY num`, after)
	if err != nil {
		return fmt.Errorf("archive: timeline %s: %w", l.name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var num, arrived int64
		var removed bool
		if err := rows.Scan(&num, &arrived, &removed); err != nil {
			return fmt.Errorf("archive: timeline %s: %w", l.name, err)
		}
		if err := fn(num, arrived, removed); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Row is an article's index row as IMAP FETCH uses it. Envelope and
// Body are the encoded forms (DecodeEnvelope, DecodeBodyStructure),
// Headers the cached header fields (CachedHeader) as a header block; all
// three are only valid during the callback and only filled when asked
// for (RowFields).
type Row struct {
	Num      int64
	Arrived  int64 // unix seconds: INTERNALDATE
	VSize    int64 // RFC822.SIZE
	Loc      gitstore.Loc
	Envelope []byte
	Body     []byte
	Headers  []byte
}

// RowFields says which of Row's optional fields to read.
type RowFields struct{ Envelope, Body, Headers bool }

// Rows calls fn for each article with from <= num <= to that is not
// removed, in article order.
func (l *List) Rows(ctx context.Context, from, to int64, want RowFields, fn func(*Row) error) error {
	envelope, body := want.Envelope, want.Body
	cols := "num, arrived, vsize, epoch, pack, off, blob_id"
	if envelope {
		cols += ", env"
	}
	if body {
		cols += ", bs"
	}
	if want.Headers {
		cols += ", hdrs"
	}
	rows, err := l.rdb.QueryContext(ctx, `SELECT `+cols+` FROM msg WHERE num BETWEEN ? AND ? AND removed = 0 ORDER BY num`, from, to)
	if err != nil {
		return fmt.Errorf("archive: rows %s: %w", l.name, err)
	}
	defer rows.Close()
	var r Row
	var blob []byte
	dest := []any{&r.Num, &r.Arrived, &r.VSize, &r.Loc.Epoch, &r.Loc.Pack, &r.Loc.Offset, &blob}
	if envelope {
		dest = append(dest, &r.Envelope)
	}
	if body {
		dest = append(dest, &r.Body)
	}
	if want.Headers {
		dest = append(dest, &r.Headers)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("archive: rows %s: %w", l.name, err)
		}
		copy(r.Loc.Blob[:], blob) // read by name if the pack was dropped meanwhile
		if err := fn(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ReadAt returns the raw bytes of the blob at loc (a Row's Loc).
func (l *List) ReadAt(loc gitstore.Loc) ([]byte, error) {
	b, err := l.git.ReadBlob(loc)
	if err != nil {
		return nil, fmt.Errorf("archive: read %s: %w", l.name, err)
	}
	return b, nil
}

// Columns SEARCH can compare numerically.
const (
	ColSentDay = "sentday" // Date header's day in its own zone, days since 1970 (SENT*)
	ColArrived = "arrived" // arrival (BEFORE/ON/SINCE), unix seconds
	ColVSize   = "vsize"   // RFC822.SIZE (LARGER/SMALLER)
)

// NumsIn returns, ascending, the articles from..to (not removed) whose
// column col lies in [min, max].
func (l *List) NumsIn(ctx context.Context, col string, min, max, from, to int64) ([]int64, error) {
	switch col {
	case ColSentDay, ColArrived, ColVSize:
	default:
		return nil, fmt.Errorf("archive: no searchable column %q", col)
	}
	rows, err := l.rdb.QueryContext(ctx, `SELECT num FROM msg WHERE num BETWEEN ? AND ? AND removed = 0 AND `+
		col+` BETWEEN ? AND ? ORDER BY num`, from, to, min, max)
	if err != nil {
		return nil, fmt.Errorf("archive: search %s: %w", l.name, err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// Subjects calls fn with the decoded subject of each article in nums.
func (l *List) Subjects(ctx context.Context, nums []int64, fn func(num int64, subject string) error) error {
	st, err := l.rdb.PrepareContext(ctx, `SELECT subject FROM msg WHERE num = ?`)
	if err != nil {
		return fmt.Errorf("archive: subjects %s: %w", l.name, err)
	}
	defer st.Close()
	for _, n := range nums {
		var s string
		if err := st.QueryRowContext(ctx, n).Scan(&s); err != nil {
			return fmt.Errorf("archive: subjects %s article %d: %w", l.name, n, err)
		}
		if err := fn(n, s); err != nil {
			return err
		}
	}
	return nil
}

// matchText reports whether the message raw contains folded (a message.Fold()ed
// needle) in field: FieldSubject (the decoded subject), FieldBody (the
// decoded text parts) or FieldHeader (the decoded value of the header
// fields called name, or any field as a "Name: value" line when name is
// ""). An empty needle matches a message that has the field.
func matchText(raw []byte, field int, name, folded string) bool {
	switch field {
	case FieldSubject:
		return message.MatchHeader(raw, "Subject", folded)
	case FieldHeader:
		return message.MatchHeader(raw, name, folded)
	case FieldBody:
		return message.MatchBody(raw, folded)
	}
	return false
}

// ReadNums calls fn with the raw bytes of each article in nums that is
// not removed, in the order given. Locations are looked up a few hundred
// at a time.
func (l *List) ReadNums(ctx context.Context, nums []int64, fn func(num int64, raw []byte) error) error {
	const chunk = 256
	for len(nums) > 0 {
		part := nums[:min(chunk, len(nums))]
		nums = nums[len(part):]
		locs, err := l.locations(ctx, part)
		if err != nil {
			return err
		}
		for _, n := range part {
			loc, ok := locs[n]
			if !ok {
				continue
			}
			raw, err := l.git.ReadBlob(loc)
			if err != nil {
				return fmt.Errorf("archive: read %s article %d: %w", l.name, n, err)
			}
			if err := fn(n, raw); err != nil {
				return err
			}
		}
	}
	return nil
}

// locations returns the blob locations of the articles of nums that are
// not removed, in one query.
func (l *List) locations(ctx context.Context, nums []int64) (map[int64]gitstore.Loc, error) {
	q := make([]byte, 0, 64+2*len(nums))
	q = append(q, "SELECT num, epoch, pack, off, blob_id FROM msg WHERE removed = 0 AND num IN ("...)
	args := make([]any, len(nums))
	for i, n := range nums {
		if i > 0 {
			q = append(q, ',')
		}
		q = append(q, '?')
		args[i] = n
	}
	q = append(q, ')')
	rows, err := l.rdb.QueryContext(ctx, string(q), args...)
	if err != nil {
		return nil, fmt.Errorf("archive: read %s: %w", l.name, err)
	}
	defer rows.Close()
	locs := make(map[int64]gitstore.Loc, len(nums))
	for rows.Next() {
		var n int64
		var loc gitstore.Loc
		var blob []byte
		if err := rows.Scan(&n, &loc.Epoch, &loc.Pack, &loc.Offset, &blob); err != nil {
			return nil, fmt.Errorf("archive: read %s: %w", l.name, err)
		}
		copy(loc.Blob[:], blob)
		locs[n] = loc
	}
	return locs, rows.Err()
}

// ReadHeaderAt returns a prefix of the message at loc that holds its
// whole header block (the empty line that ends it included), without
// inflating the rest where the pack allows; a message without a body
// comes back whole.
func (l *List) ReadHeaderAt(loc gitstore.Loc) ([]byte, error) {
	scanned := 0
	b, err := l.git.ReadBlobHead(loc, func(b []byte) bool {
		from := max(scanned-2, 0)
		scanned = len(b)
		if from == 0 && (bytes.HasPrefix(b, []byte("\n")) || bytes.HasPrefix(b, []byte("\r\n"))) {
			return true
		}
		return bytes.Contains(b[from:], []byte("\n\n")) || bytes.Contains(b[from:], []byte("\n\r\n"))
	})
	if err != nil {
		return nil, fmt.Errorf("archive: read %s: %w", l.name, err)
	}
	return b, nil
}

// MatchNums returns, ascending, the articles of nums (ascending, not
// removed) whose text matches as matchText(raw, field, name, folded)
// says: the confirmation of trigram candidates, read and matched on every
// core.
func (l *List) MatchNums(ctx context.Context, nums []int64, field int, name, folded string) ([]int64, error) {
	workers := min(runtime.GOMAXPROCS(0), (len(nums)+15)/16)
	if workers <= 1 {
		var out []int64
		err := l.ReadNums(ctx, nums, func(num int64, raw []byte) error {
			if matchText(raw, field, name, folded) {
				out = append(out, num)
			}
			return nil
		})
		return out, err
	}
	parts := make([][]int64, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		chunk := nums[w*len(nums)/workers : (w+1)*len(nums)/workers]
		wg.Go(func() {
			errs[w] = l.ReadNums(ctx, chunk, func(num int64, raw []byte) error {
				if matchText(raw, field, name, folded) {
					parts[w] = append(parts[w], num)
				}
				return nil
			})
		})
	}
	wg.Wait()
	var out []int64
	for w := range workers {
		if errs[w] != nil {
			return nil, errs[w]
		}
		out = append(out, parts[w]...)
	}
	return out, nil
}

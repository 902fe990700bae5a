package archive

import (
	"context"
	"fmt"

	"mailswarm/gitstore"
)

// AdoptSealed makes sealed day packs the epoch's storage for their objects
// (one copy at the origin; docs/ARCHITECTURE.md, "One copy: sealed day
// packs"), in this order, each step durable before the next:
//
//  1. each file (a day pack the caller sealed and a signed manifest names)
//     is linked into the epoch's git packs with its idx and a sealed .keep
//     (gitstore.InstallSealed); the ref does not move;
//  2. every index row of the epoch naming a pack that is not sealed, whose
//     blob a sealed pack holds, is moved there, in one transaction fsynced
//     at its commit (synchronous=FULL) even where the index runs NORMAL;
//  3. the batch packs whose every object sealed packs hold, and that no
//     index row names, are removed (gitstore.DropCovered).
//
// The whole runs under the index lock, so no writer of any process
// indexes a location in between. A crash before 2 leaves rows naming
// batch packs that are still there; before 3, batch packs nothing names.
// Steps 2 and 3 look at every sealed pack, not only those of paths, so a
// call with no paths finishes a swap a crash cut short. Once all three
// are done the epoch is marked swapped (gitstore.MarkSwapped, removed by
// step 1's next install), and a call with no paths returns at once while
// the mark is there: a process's first publish pays one stat an epoch,
// not a read of every row and every sealed idx (BenchmarkAdoptSealedNothingNew).
// It returns the batch packs removed.
func (l *List) AdoptSealed(ctx context.Context, epoch int, paths []string) ([]string, error) {
	// Read without the lock: a process swapping meanwhile removed the
	// mark before its first install, or has finished.
	if len(paths) == 0 && l.git.Swapped(epoch) {
		return nil, nil
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	lk, err := l.lockIndex(false)
	if err != nil {
		return nil, fmt.Errorf("archive: %s: %w", l.name, err)
	}
	defer lk.Unlock()
	// Rows for every commit: a writer killed between its ref move and its
	// index commit leaves commits the rows below would miss.
	if _, _, err := l.catchUp(ctx, nil); err != nil {
		return nil, fmt.Errorf("archive: %s: index: %w", l.name, err)
	}
	for _, p := range paths {
		if _, err := l.git.InstallSealed(epoch, p); err != nil {
			return nil, fmt.Errorf("archive: %s: %w", l.name, err)
		}
	}
	if err := l.moveRows(ctx, epoch); err != nil {
		return nil, fmt.Errorf("archive: %s: move rows: %w", l.name, err)
	}
	named, err := l.packsNamed(ctx, epoch)
	if err != nil {
		return nil, fmt.Errorf("archive: %s: %w", l.name, err)
	}
	dropped, err := l.git.DropCovered(epoch, func(p string) bool { return named[p] })
	if err != nil {
		return dropped, fmt.Errorf("archive: %s: %w", l.name, err)
	}
	if err := l.git.MarkSwapped(epoch); err != nil {
		return dropped, fmt.Errorf("archive: %s: %w", l.name, err)
	}
	return dropped, nil
}

// moveRows points the epoch's rows that name a pack other than a sealed
// one at the sealed pack holding their blob, in one transaction made
// durable at its commit.
func (l *List) moveRows(ctx context.Context, epoch int) error {
	type row struct {
		num  int64
		blob gitstore.Hash
		pack string
	}
	var all []row
	rows, err := l.db.QueryContext(ctx, `SELECT num, blob_id, pack FROM msg WHERE epoch = ?`, epoch)
	if err != nil {
		return err
	}
	for rows.Next() {
		var r row
		var b []byte
		if err := rows.Scan(&r.num, &b, &r.pack); err != nil {
			rows.Close()
			return err
		}
		copy(r.blob[:], b)
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	blobs := make([]gitstore.Hash, len(all))
	for i, r := range all {
		blobs[i] = r.blob
	}
	locs, sealed, err := l.git.SealedLocs(epoch, blobs)
	if err != nil {
		return err
	}
	isSealed := make(map[string]bool, len(sealed))
	for _, p := range sealed {
		isSealed[p] = true
	}
	var todo []row
	for _, r := range all {
		if _, ok := locs[r.blob]; ok && !isSealed[r.pack] {
			todo = append(todo, r)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if !l.a.opts.NoSync {
		// WAL with synchronous=NORMAL may lose the last transactions at a
		// power cut: these rows must not, since the packs they leave are
		// removed next.
		if _, err := conn.ExecContext(ctx, `PRAGMA synchronous=FULL`); err != nil {
			return err
		}
		defer conn.ExecContext(context.Background(), `PRAGMA synchronous=NORMAL`)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `UPDATE msg SET pack = ?, off = ? WHERE num = ?`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, r := range todo {
		loc := locs[r.blob]
		if _, err := st.ExecContext(ctx, loc.Pack, loc.Offset, r.num); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// packsNamed returns the packs the index rows of epoch name.
func (l *List) packsNamed(ctx context.Context, epoch int) (map[string]bool, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT DISTINCT pack FROM msg WHERE epoch = ?`, epoch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out[p] = true
	}
	return out, rows.Err()
}

// Sealed reports whether the day pack with this trailer is already the
// epoch's storage (AdoptSealed installed it).
func (l *List) Sealed(epoch int, trailer Hash) bool { return l.git.Sealed(epoch, trailer) }

// Installed reports whether the pack with this trailer is one of the
// epoch's git packs, sealed or not.
func (l *List) Installed(epoch int, trailer Hash) bool { return l.git.Installed(epoch, trailer) }

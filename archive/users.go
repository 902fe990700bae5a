package archive

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// usersFile holds per-user IMAP flags: the only list state that is not in
// git and cannot be rebuilt, so it lives apart from the derived index and
// Reindex never touches it. Rows are keyed by (user, article number) and
// exist only for articles with some flag set.
const usersFile = "users.sqlite3"

// Flag bits of Flags.Bits (the IMAP system flags a reader may keep).
const (
	FlagSeen = 1 << iota
	FlagAnswered
	FlagFlagged
	FlagDraft
)

// Flags are one user's flags on one article.
type Flags struct {
	Bits     uint8
	Keywords []string // as first stored; compared case-insensitively
}

// Has reports whether f has keyword kw.
func (f Flags) Has(kw string) bool {
	return slices.ContainsFunc(f.Keywords, func(k string) bool { return strings.EqualFold(k, kw) })
}

// Flag update operations for UserState.Update.
const (
	FlagsSet = iota
	FlagsAdd
	FlagsRemove
)

// UserState is a list's per-user flag store.
type UserState struct {
	db *sql.DB
}

type usersOnce struct {
	once sync.Once
	u    *UserState
	err  error
}

// Users opens (once, creating it when missing) the list's user state.
func (l *List) Users() (*UserState, error) {
	l.users.once.Do(func() {
		q := url.Values{}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "busy_timeout(30000)")
		q.Add("_txlock", "immediate")
		path := filepath.Join(l.dir, usersFile)
		db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
		if err == nil {
			_, err = db.Exec(`CREATE TABLE IF NOT EXISTS flags (
				user TEXT NOT NULL, num INTEGER NOT NULL, bits INTEGER NOT NULL, keywords TEXT NOT NULL,
				PRIMARY KEY (user, num)) WITHOUT ROWID`)
			if err != nil {
				db.Close()
			}
		}
		if err != nil {
			l.users.err = fmt.Errorf("archive: %s: %w", path, err)
			return
		}
		l.users.u = &UserState{db: db}
	})
	return l.users.u, l.users.err
}

func (l *List) closeUsers() error {
	if l.users.u != nil {
		return l.users.u.db.Close()
	}
	return nil
}

// Get calls fn, in article order, for each article lo..hi on which user
// has any flag.
func (u *UserState) Get(ctx context.Context, user string, lo, hi int64, fn func(num int64, f Flags)) error {
	return u.Scan(ctx, user, lo, hi, func(num int64, f Flags) bool { fn(num, f); return true })
}

// Scan is Get stopping when fn returns false.
func (u *UserState) Scan(ctx context.Context, user string, lo, hi int64, fn func(num int64, f Flags) bool) error {
	rows, err := u.db.QueryContext(ctx, `SELECT num, bits, keywords FROM flags WHERE user = ? AND num BETWEEN ? AND ? ORDER BY num`,
		user, lo, hi)
	if err != nil {
		return fmt.Errorf("archive: flags: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var num int64
		var f Flags
		var kw string
		if err := rows.Scan(&num, &f.Bits, &kw); err != nil {
			return fmt.Errorf("archive: flags: %w", err)
		}
		if kw != "" {
			f.Keywords = strings.Fields(kw)
		}
		if !fn(num, f) {
			break
		}
	}
	return rows.Err()
}

// Update applies op with f to user's flags on nums (ascending) in one
// transaction and calls fn with each article's new flags.
func (u *UserState) Update(ctx context.Context, user string, nums []int64, op int, f Flags, fn func(num int64, f Flags)) error {
	tx, err := u.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("archive: flags: %w", err)
	}
	defer tx.Rollback()
	get, err := tx.PrepareContext(ctx, `SELECT bits, keywords FROM flags WHERE user = ? AND num = ?`)
	if err != nil {
		return fmt.Errorf("archive: flags: %w", err)
	}
	put, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO flags (user, num, bits, keywords) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("archive: flags: %w", err)
	}
	del, err := tx.PrepareContext(ctx, `DELETE FROM flags WHERE user = ? AND num = ?`)
	if err != nil {
		return fmt.Errorf("archive: flags: %w", err)
	}
	results := make([]Flags, len(nums))
	for i, num := range nums {
		var cur Flags
		var kw string
		err := get.QueryRowContext(ctx, user, num).Scan(&cur.Bits, &kw)
		if err != nil && err != sql.ErrNoRows {
			return fmt.Errorf("archive: flags: %w", err)
		}
		if kw != "" {
			cur.Keywords = strings.Fields(kw)
		}
		next := applyFlags(cur, op, f)
		if next.Bits == 0 && len(next.Keywords) == 0 {
			_, err = del.ExecContext(ctx, user, num)
		} else {
			_, err = put.ExecContext(ctx, user, num, next.Bits, strings.Join(next.Keywords, " "))
		}
		if err != nil {
			return fmt.Errorf("archive: flags: %w", err)
		}
		results[i] = next
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("archive: flags: %w", err)
	}
	for i, num := range nums {
		fn(num, results[i])
	}
	return nil
}

func applyFlags(cur Flags, op int, f Flags) Flags {
	switch op {
	case FlagsSet:
		return Flags{Bits: f.Bits, Keywords: uniqFold(f.Keywords)}
	case FlagsAdd:
		kw := slices.Clone(cur.Keywords)
		for _, k := range f.Keywords {
			if !cur.Has(k) {
				kw = append(kw, k)
			}
		}
		return Flags{Bits: cur.Bits | f.Bits, Keywords: uniqFold(kw)}
	default:
		kw := slices.DeleteFunc(slices.Clone(cur.Keywords), f.Has)
		return Flags{Bits: cur.Bits &^ f.Bits, Keywords: kw}
	}
}

func uniqFold(kws []string) []string {
	var out []string
	for _, k := range kws {
		if !(Flags{Keywords: out}).Has(k) {
			out = append(out, k)
		}
	}
	return out
}

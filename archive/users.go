package archive

import (
	"context"
	"database/sql"
	"errors"
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

// FlagLimits bound what UserState.Update lets one user keep on a list;
// a zero field is no limit. A change that would pass a limit is refused
// whole; one that only shrinks what a user keeps is always allowed.
type FlagLimits struct {
	// MaxKeywords bounds the distinct keywords (compared
	// case-insensitively) the user has on the list's articles.
	MaxKeywords int
	// MaxKeywordBytes bounds the keyword text the user keeps, summed over
	// the articles (each article's keywords, space-separated).
	MaxKeywordBytes int64
}

// Errors of UserState.Update when a FlagLimits would be passed; nothing
// was changed.
var (
	ErrTooManyKeywords = errors.New("archive: too many distinct keywords")
	ErrKeywordBytes    = errors.New("archive: too much keyword text")
)

// UserState is a list's per-user flag store. Beside the flags, table
// flagusers keeps for each user the keywords they have used (a superset
// of those on some article: a keyword removed everywhere stays until the
// set fills up and Update counts again) and the bytes of keyword text
// they keep, so that the limits cost no scan of the user's rows. It is
// filled from the flags when first needed (a file from before it has
// none).
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
				PRIMARY KEY (user, num)) WITHOUT ROWID;
				CREATE TABLE IF NOT EXISTS flagusers (
				user TEXT NOT NULL PRIMARY KEY, keywords TEXT NOT NULL, keyword_bytes INTEGER NOT NULL) WITHOUT ROWID`)
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

// Keywords returns the keywords user has used on the list, from the
// summary: it may hold keywords since removed from every article, and
// is empty until the user's first Update with this code. exact counts
// them from the flags instead (a scan of the user's rows).
func (u *UserState) Keywords(ctx context.Context, user string, exact bool) ([]string, error) {
	if !exact {
		var kw string
		err := u.db.QueryRowContext(ctx, `SELECT keywords FROM flagusers WHERE user = ?`, user).Scan(&kw)
		if err == sql.ErrNoRows {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("archive: flags: %w", err)
		}
		return strings.Fields(kw), nil
	}
	kws, _, err := userKeywords(ctx, u.db, user)
	return kws, err
}

// userKeywords counts user's distinct keywords and keyword bytes from the
// flags.
func userKeywords(ctx context.Context, q querier, user string) ([]string, int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT keywords FROM flags WHERE user = ? AND keywords != ''`, user)
	if err != nil {
		return nil, 0, fmt.Errorf("archive: flags: %w", err)
	}
	defer rows.Close()
	var kws []string
	seen := map[string]bool{}
	var n int64
	for rows.Next() {
		var kw string
		if err := rows.Scan(&kw); err != nil {
			return nil, 0, fmt.Errorf("archive: flags: %w", err)
		}
		n += int64(len(kw))
		for _, k := range strings.Fields(kw) {
			if l := strings.ToLower(k); !seen[l] {
				seen[l] = true
				kws = append(kws, k)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("archive: flags: %w", err)
	}
	return kws, n, nil
}

// Update applies op with f to user's flags on nums (ascending) in one
// transaction and calls fn with each article's new flags. A change that
// would pass lim returns ErrTooManyKeywords or ErrKeywordBytes (wrapped)
// and changes nothing.
func (u *UserState) Update(ctx context.Context, user string, nums []int64, op int, f Flags, lim FlagLimits, fn func(num int64, f Flags)) error {
	// The keywords of one command alone may be too many: refuse them
	// before touching a row.
	// (A map, not uniqFold: a 50 KiB command holds 25,000 keywords.)
	if op != FlagsRemove && lim.MaxKeywords > 0 && len(f.Keywords) > lim.MaxKeywords {
		distinct := map[string]bool{}
		for _, k := range f.Keywords {
			distinct[strings.ToLower(k)] = true
		}
		if len(distinct) > lim.MaxKeywords {
			return fmt.Errorf("%w: %d in one command, at most %d", ErrTooManyKeywords, len(distinct), lim.MaxKeywords)
		}
	}
	tx, err := u.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("archive: flags: %w", err)
	}
	defer tx.Rollback()
	// The user's summary: keywords used and keyword bytes kept.
	var regText string
	var kwBytes int64
	err = tx.QueryRowContext(ctx, `SELECT keywords, keyword_bytes FROM flagusers WHERE user = ?`, user).Scan(&regText, &kwBytes)
	var reg []string
	switch {
	case err == sql.ErrNoRows:
		if reg, kwBytes, err = userKeywords(ctx, tx, user); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("archive: flags: %w", err)
	default:
		reg = strings.Fields(regText)
	}
	regSet := make(map[string]bool, len(reg))
	for _, k := range reg {
		regSet[strings.ToLower(k)] = true
	}
	added, recount := false, false
	for _, k := range f.Keywords {
		if l := strings.ToLower(k); op != FlagsRemove && !regSet[l] {
			regSet[l] = true
			reg = append(reg, k)
			added = true
		}
	}
	if added && lim.MaxKeywords > 0 && len(reg) > lim.MaxKeywords {
		// Count again from the flags (the summary keeps keywords
		// removed since): if the new ones still do not fit, refuse.
		inUse, _, err := userKeywords(ctx, tx, user)
		if err != nil {
			return err
		}
		reg = uniqFold(append(inUse, f.Keywords...))
		// FlagsSet may drop keywords from these rows: then only the
		// count after the writes tells.
		if len(reg) > lim.MaxKeywords && op != FlagsSet {
			return fmt.Errorf("%w: at most %d", ErrTooManyKeywords, lim.MaxKeywords)
		}
		recount = len(reg) > lim.MaxKeywords
	}
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
	startBytes := kwBytes
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
		text := strings.Join(next.Keywords, " ")
		kwBytes += int64(len(text) - len(kw))
		// With FlagsAdd the total only grows: stop at the first row
		// past the limit rather than writing the rest of a huge STORE.
		if op == FlagsAdd && lim.MaxKeywordBytes > 0 && kwBytes > lim.MaxKeywordBytes && len(text) > len(kw) {
			return fmt.Errorf("%w: at most %d bytes", ErrKeywordBytes, lim.MaxKeywordBytes)
		}
		if next.Bits == 0 && len(next.Keywords) == 0 {
			_, err = del.ExecContext(ctx, user, num)
		} else {
			_, err = put.ExecContext(ctx, user, num, next.Bits, text)
		}
		if err != nil {
			return fmt.Errorf("archive: flags: %w", err)
		}
		results[i] = next
	}
	if recount {
		if reg, _, err = userKeywords(ctx, tx, user); err != nil {
			return err
		}
		if len(reg) > lim.MaxKeywords {
			return fmt.Errorf("%w: at most %d", ErrTooManyKeywords, lim.MaxKeywords)
		}
	}
	if grew := kwBytes > startBytes; grew && lim.MaxKeywordBytes > 0 && kwBytes > lim.MaxKeywordBytes {
		return fmt.Errorf("%w: at most %d bytes", ErrKeywordBytes, lim.MaxKeywordBytes)
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO flagusers (user, keywords, keyword_bytes) VALUES (?, ?, ?)`,
		user, strings.Join(reg, " "), kwBytes); err != nil {
		return fmt.Errorf("archive: flags: %w", err)
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

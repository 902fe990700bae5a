package archive

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
)

// TestUserStateLimits: Update refuses what would pass FlagLimits and
// changes nothing; FlagsSet may replace keywords at the limit (counted
// after the writes); the summary is rebuilt from the flags when missing,
// as in a users.sqlite3 written before it existed.
func TestUserStateLimits(t *testing.T) {
	ctx := context.Background()
	a := newTestArchive(t)
	l, err := a.Create("test", "test@example.org")
	if err != nil {
		t.Fatal(err)
	}
	u, err := l.Users()
	if err != nil {
		t.Fatal(err)
	}
	lim := FlagLimits{MaxKeywords: 4, MaxKeywordBytes: 30}
	nop := func(int64, Flags) {}
	kws := func(ks ...string) Flags { return Flags{Keywords: ks} }
	flagsOf := func(num int64) Flags {
		var f Flags
		if err := u.Get(ctx, "alice", num, num, func(_ int64, g Flags) { f = g }); err != nil {
			t.Fatal(err)
		}
		return f
	}

	if err := u.Update(ctx, "alice", []int64{1}, FlagsAdd, kws("a", "b", "c", "d", "e"), lim, nop); !errors.Is(err, ErrTooManyKeywords) {
		t.Errorf("5 keywords in one update: %v, want ErrTooManyKeywords", err)
	}
	if err := u.Update(ctx, "alice", []int64{1}, FlagsAdd, kws("a", "b", "c", "d"), lim, nop); err != nil {
		t.Fatal(err)
	}
	if err := u.Update(ctx, "alice", []int64{2}, FlagsAdd, kws("A", "e"), lim, nop); !errors.Is(err, ErrTooManyKeywords) {
		t.Errorf("a 5th keyword: %v, want ErrTooManyKeywords", err)
	}
	if f := flagsOf(2); len(f.Keywords) != 0 {
		t.Errorf("article 2 after a refused update: %v", f)
	}
	// Replacing article 1's keywords leaves 2 in use: allowed.
	if err := u.Update(ctx, "alice", []int64{1}, FlagsSet, kws("e", "f"), lim, nop); err != nil {
		t.Errorf("FlagsSet at the limit: %v", err)
	}
	// Bytes: "e f" is 3; 5 articles of "e f g h" (7 each) would make 38.
	if err := u.Update(ctx, "alice", []int64{2, 3, 4, 5, 6}, FlagsAdd, kws("e", "f", "g", "h"), lim, nop); !errors.Is(err, ErrKeywordBytes) {
		t.Errorf("over the bytes: %v, want ErrKeywordBytes", err)
	}
	if f := flagsOf(2); len(f.Keywords) != 0 {
		t.Errorf("article 2 after a refused update: %v", f)
	}
	if err := u.Update(ctx, "alice", []int64{2, 3, 4}, FlagsAdd, kws("e", "f", "g", "h"), lim, nop); err != nil {
		t.Errorf("within the bytes: %v", err)
	}

	// Without its summary (an older file), the same limits hold.
	if _, err := u.db.Exec(`DELETE FROM flagusers`); err != nil {
		t.Fatal(err)
	}
	if err := u.Update(ctx, "alice", []int64{5, 6}, FlagsAdd, kws("e", "f", "g", "h"), lim, nop); !errors.Is(err, ErrKeywordBytes) {
		t.Errorf("over the bytes, summary rebuilt: %v, want ErrKeywordBytes", err)
	}
	got, err := u.Keywords(ctx, "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	exact, err := u.Keywords(ctx, "alice", true)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(exact) != "[e f g h]" || len(got) != 0 {
		t.Errorf("Keywords = %v (summary), %v (exact), want [] and [e f g h]", got, exact)
	}
	var n int
	if err := u.db.QueryRow(`SELECT count(*) FROM flagusers`).Scan(&n); err != nil && err != sql.ErrNoRows {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("a refused update wrote the summary")
	}
}

package swarm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gitPacks returns the origin's epoch 0 git packs: sealed (by trailer) and
// the others.
func gitPacks(t *testing.T, o *Origin) (sealed map[string]os.FileInfo, others []string) {
	t.Helper()
	dir := filepath.Join(o.list.Dir(), "git", "0.git", "objects", "pack")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	sealed = map[string]os.FileInfo{}
	for _, e := range ents {
		base, ok := strings.CutSuffix(e.Name(), ".pack")
		if !ok {
			continue
		}
		if k, _ := os.ReadFile(filepath.Join(dir, base+".keep")); string(k) == "mailswarm sealed\n" {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			sealed[strings.TrimPrefix(base, "pack-")] = fi
		} else {
			others = append(others, base)
		}
	}
	return sealed, others
}

// A day sealed from its slices (and a commit cut after the last slice) is
// the pack WriteCanonicalPack writes for its range, and becomes the
// epoch's storage: the same file as the published one; the batch packs
// of the day go, a batch holding the next (open) day's commit too stays
// until that day is sealed as well; the export and verify are unchanged.
func TestSealedDayIsTheEpochStorage(t *testing.T) {
	_, l := testList(t)
	o, err := NewOrigin(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 1
	for hour := range 3 {
		addAt(t, l, n, day("2026-11-23", hour), day("2026-11-23", hour).Add(time.Minute))
		n += 2
		if _, err := o.Publish(day("2026-11-23", hour).Add(2 * time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	// One batch across midnight: a commit no slice holds, and one of the next day.
	addAt(t, l, n, day("2026-11-23", 23).Add(50*time.Minute), day("2026-11-24", 0).Add(10*time.Second))
	var want bytes.Buffer
	if _, err := l.Export(context.Background(), &want, nil); err != nil {
		t.Fatal(err)
	}
	res, err := o.Publish(day("2026-11-24", 0).Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Days) != 1 || len(res.Slices) != 1 {
		t.Fatalf("publish at midnight: days %v slices %v", res.Days, res.Slices)
	}
	d := res.Manifest.Packs[0]
	var canon bytes.Buffer
	if _, err := l.WriteCanonicalPack(&canon, 0, d.From, d.To); err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(canon.Bytes()) != d.SHA256 || d.Commits != 7 {
		t.Fatalf("day pack sealed from slices: %d commits, sha256 %x; written from git: %x", d.Commits, d.SHA256, sha256.Sum256(canon.Bytes()))
	}
	checkPackFiles(t, o, res.Manifest)

	sealed, others := gitPacks(t, o)
	fi, ok := sealed[hex.EncodeToString(d.Trailer[:])]
	if len(sealed) != 1 || !ok {
		t.Fatalf("sealed git packs %v, want the day pack %x", sealed, d.Trailer)
	}
	pub, err := os.Stat(filepath.Join(o.Dir(), packsDir, d.File))
	if err != nil || !os.SameFile(fi, pub) {
		t.Fatalf("the sealed git pack is not the published file (%v)", err)
	}
	if len(others) != 1 {
		t.Fatalf("batch packs left %v: want only the one across midnight", others)
	}
	check := func(when string) {
		t.Helper()
		if err := l.Verify(context.Background()); err != nil {
			t.Fatalf("%s: verify: %v", when, err)
		}
		var got bytes.Buffer
		if _, err := l.Export(context.Background(), &got, nil); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("%s: export changed", when)
		}
	}
	check("day 1 sealed")

	if _, err := o.Publish(day("2026-11-25", 0).Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	sealed, others = gitPacks(t, o)
	if len(sealed) != 2 || len(others) != 0 {
		t.Fatalf("day 2 sealed: %d sealed and %v other packs, want 2 sealed only", len(sealed), others)
	}
	check("day 2 sealed")
}

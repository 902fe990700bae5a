package swarm

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mailswarm/archive"
)

// checkOneCopy fails unless the mirror list's epoch 0 git packs are
// exactly the packs m names that are installed as themselves: a day pack
// for each sealed day (no slice pack of a sealed day left beside it) and
// the open day's slices; verify passes.
func checkOneCopy(t *testing.T, a *archive.Archive, m *Manifest) {
	t.Helper()
	dir := filepath.Join(a.Dir(), "lists", "demo", "git", "0.git", "objects", "pack")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var have, want []string
	for _, e := range ents {
		if b, ok := strings.CutSuffix(e.Name(), ".pack"); ok {
			have = append(have, strings.TrimPrefix(b, "pack-"))
		}
	}
	sealed := map[string]bool{}
	for _, p := range m.Packs {
		if p.Epoch == 0 && p.Kind == KindDay {
			sealed[p.Day] = true
		}
	}
	for _, p := range m.Packs {
		if p.Epoch == 0 && (p.Kind == KindDay || !sealed[p.Day]) {
			want = append(want, hex.EncodeToString(p.Trailer[:]))
		}
	}
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		t.Errorf("mirror git packs %v, want the manifest's day packs and open slices %v", have, want)
	}
	l, err := a.List("demo")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(context.Background()); err != nil {
		t.Errorf("mirror verify: %v", err)
	}
}

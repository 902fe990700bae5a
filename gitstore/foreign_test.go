package gitstore

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// makeForeign builds a repository the way public-inbox does (git
// fast-import), then adds loose commits with plumbing, and returns its git
// dir and the blobs in order.
func makeForeign(t *testing.T, nImport, nLoose int) (string, [][]byte) {
	t.Helper()
	root := t.TempDir()
	gd := filepath.Join(root, "0.git")
	git(t, root, "init", "-q", "--bare", gd)
	var fi strings.Builder
	var blobs [][]byte
	for i := 0; i < nImport; i++ {
		c := testCommits(i, 1)[0]
		name := "m"
		if c.Remove {
			name = "d"
		}
		fmt.Fprintf(&fi, "commit refs/heads/master\nmark :%d\n", i+1)
		fmt.Fprintf(&fi, "author %s <%s> %d +0100\n", sanitizeName(c.Author.Name), sanitizeEmail(c.Author.Email), c.Author.When.Unix())
		fmt.Fprintf(&fi, "committer %s <%s> %d +0000\n", c.Committer.Name, c.Committer.Email, c.Committer.When.Unix())
		fmt.Fprintf(&fi, "data %d\n%s\n", len(c.Message)+1, c.Message)
		if i > 0 {
			fmt.Fprintf(&fi, "from :%d\n", i)
		}
		fmt.Fprintf(&fi, "deleteall\nM 100644 inline %s\ndata %d\n%s\n", name, len(c.Blob), c.Blob)
		blobs = append(blobs, c.Blob)
	}
	gitEnv(t, root, nil, fi.String(), "--git-dir="+gd, "fast-import", "--quiet")
	env := []string{"GIT_AUTHOR_NAME=Loose Author", "GIT_AUTHOR_EMAIL=loose@example.org",
		"GIT_COMMITTER_NAME=c", "GIT_COMMITTER_EMAIL=c@example.org",
		"GIT_AUTHOR_DATE=1136210640 -0700", "GIT_COMMITTER_DATE=1136210640 +0000"}
	for i := nImport; i < nImport+nLoose; i++ {
		blob := testMessage(i, 3000)
		f := filepath.Join(root, "msg")
		os.WriteFile(f, blob, 0o644)
		bh := strings.TrimSpace(git(t, root, "--git-dir="+gd, "hash-object", "-w", f))
		th := strings.TrimSpace(gitEnv(t, root, nil, "100644 blob "+bh+"\tm\n", "--git-dir="+gd, "mktree"))
		args := []string{"--git-dir=" + gd, "commit-tree", th, "-m", fmt.Sprintf("loose %d", i)}
		if parent := strings.TrimSpace(git(t, root, "--git-dir="+gd, "rev-parse", "-q", "--verify", "master")); parent != "" {
			args = append(args, "-p", parent)
		}
		ch := strings.TrimSpace(gitEnv(t, root, env, "", args...))
		git(t, root, "--git-dir="+gd, "update-ref", "refs/heads/master", ch)
		blobs = append(blobs, blob)
	}
	return gd, blobs
}

type adopted struct {
	e Entry
	r RawCommit
}

func walkForeign(t *testing.T, gd string) []adopted {
	t.Helper()
	f, err := OpenForeign(gd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []adopted
	if err := f.Walk(ZeroHash, func(e Entry, r RawCommit) error {
		out = append(out, adopted{e, r})
		return nil
	}); err != nil {
		t.Fatalf("Foreign.Walk: %v", err)
	}
	return out
}

func TestForeignAdopt(t *testing.T) {
	gd, blobs := makeForeign(t, 12, 4)
	loose, _ := filepath.Glob(filepath.Join(gd, "objects/??/*"))
	if len(loose) == 0 {
		t.Fatal("test setup: no loose objects")
	}
	before := walkForeign(t, gd)
	if len(before) != len(blobs) {
		t.Fatalf("walked %d commits, want %d", len(before), len(blobs))
	}
	for i, a := range before {
		if !bytes.Equal(a.r.Blob, blobs[i]) || a.e.BlobSize != int64(len(blobs[i])) {
			t.Fatalf("commit %d: blob differs", i)
		}
	}
	if before[13].e.Author.Name != "Loose Author" {
		t.Errorf("loose commit author %+v", before[13].e.Author)
	}
	if _, off := before[13].e.Author.When.Zone(); off != -7*3600 {
		t.Errorf("loose commit zone %d", off)
	}
	// git gc: everything packed with deltas, refs packed.
	git(t, gd, "--git-dir="+gd, "gc", "-q", "--aggressive", "--prune=now")
	if _, err := os.Stat(filepath.Join(gd, "refs/heads/master")); err == nil {
		t.Log("ref not packed by gc")
	}
	after := walkForeign(t, gd)
	for i := range before {
		if before[i].e.Commit != after[i].e.Commit || !bytes.Equal(before[i].r.Blob, after[i].r.Blob) ||
			!bytes.Equal(before[i].r.Commit, after[i].r.Commit) || before[i].e.BlobSize != after[i].e.BlobSize {
			t.Fatalf("commit %d differs after gc", i)
		}
	}

	// Adopt in two calls; the commit ids stay.
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	raws := make([]RawCommit, len(after))
	for i, a := range after {
		raws[i] = a.r
	}
	es, err := s.AppendRaw(0, raws[:5])
	if err != nil {
		t.Fatal(err)
	}
	es2, err := s.AppendRaw(0, raws[5:])
	if err != nil {
		t.Fatal(err)
	}
	es = append(es, es2...)
	for i, e := range es {
		if e.Commit != after[i].e.Commit || e.Remove != after[i].e.Remove || e.Message != after[i].e.Message {
			t.Fatalf("adopted commit %d = %s, want %s", i, e.Commit, after[i].e.Commit)
		}
		if b, err := s.ReadBlob(e.BlobLoc); err != nil || !bytes.Equal(b, blobs[i]) {
			t.Fatalf("ReadBlob adopted %d: %v", i, err)
		}
	}
	ftip := strings.TrimSpace(git(t, gd, "--git-dir="+gd, "rev-parse", "master"))
	if tip, _ := s.Tip(0); tip.String() != ftip {
		t.Errorf("tip %s, foreign %s", tip, ftip)
	}
	git(t, dir, "--git-dir="+filepath.Join(dir, "git/0.git"), "fsck", "--strict")
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	// Appending on top of adopted history works.
	if more, err := s.Append(testCommits(50, 1)); err != nil || more[0].Parent != es[len(es)-1].Commit {
		t.Fatalf("Append after adopt: %v", err)
	}
	// A new epoch can be adopted; a gap cannot.
	if _, err := s.AppendRaw(1, raws[:1]); err != nil {
		t.Errorf("AppendRaw into a new epoch: %v", err)
	}
	if _, err := s.AppendRaw(5, raws[:1]); err == nil {
		t.Error("AppendRaw into epoch 5 succeeded")
	}
}

func TestAppendRawRejects(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	src := openTest(t, t.TempDir(), nil)
	if _, err := src.Append(testCommits(0, 3)); err != nil {
		t.Fatal(err)
	}
	var raws []RawCommit
	db, _ := src.impl.epoch(0)
	tip, _ := src.Tip(0)
	walkChain(db, 0, tip, ZeroHash, true, func(_ Entry, r RawCommit) error { raws = append(raws, r); return nil })
	cases := map[string][]RawCommit{
		"not the root":   raws[1:2],
		"broken chain":   {raws[0], raws[2]},
		"wrong tree":     {{Commit: raws[0].Commit, Tree: raws[1].Tree, Blob: raws[1].Blob}},
		"wrong blob":     {{Commit: raws[0].Commit, Tree: raws[0].Tree, Blob: []byte("other")}},
		"two entries":    {{Commit: raws[0].Commit, Tree: append(append([]byte{}, raws[0].Tree...), raws[0].Tree...), Blob: raws[0].Blob}},
		"garbage commit": {{Commit: []byte("junk"), Tree: raws[0].Tree, Blob: raws[0].Blob}},
	}
	for name, rc := range cases {
		if _, err := s.AppendRaw(0, rc); err == nil {
			t.Errorf("%s: AppendRaw succeeded", name)
		}
	}
	if tip, _ := s.Tip(0); !tip.IsZero() {
		t.Errorf("a rejected AppendRaw moved the ref to %s", tip)
	}
	if _, err := s.AppendRaw(0, raws); err != nil {
		t.Fatal(err)
	}
}

func TestRepackedStore(t *testing.T) {
	for _, keep := range []bool{true, false} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir, nil)
			commits := testCommits(0, 40)
			for i := 0; i < 40; i += 10 {
				if _, err := s.Append(commits[i : i+10]); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			gd := filepath.Join(dir, "git/0.git")
			if !keep {
				for _, k := range mustGlob(t, filepath.Join(gd, "objects/pack/*.keep")) {
					os.Remove(k)
				}
			}
			git(t, dir, "--git-dir="+gd, "repack", "-q", "-adf", "--depth=20", "--window=20")
			packs := mustGlob(t, filepath.Join(gd, "objects/pack/*.pack"))
			if keep && len(packs) != 4 || !keep && len(packs) != 1 {
				t.Fatalf("keep=%v: %d packs after repack", keep, len(packs))
			}
			if !keep {
				v := git(t, dir, "--git-dir="+gd, "verify-pack", "-v", strings.TrimSuffix(packs[0], ".pack")+".idx")
				if !strings.Contains(v, "chain length") {
					t.Log("no deltas made by repack")
				}
			}
			s2 := openTest(t, dir, nil)
			got := walkAll(t, s2, 0, ZeroHash)
			if len(got) != 40 {
				t.Fatalf("walked %d", len(got))
			}
			for i, e := range got {
				b, err := s2.ReadBlob(e.BlobLoc)
				if err != nil || !bytes.Equal(b, commits[i].Blob) || e.BlobSize != int64(len(b)) {
					t.Fatalf("ReadBlob %d after repack: %v", i, err)
				}
			}
			if err := s2.Check(); err != nil {
				t.Fatalf("Check after repack: %v", err)
			}
			if _, err := s2.Append(testCommits(40, 2)); err != nil {
				t.Fatal(err)
			}
			git(t, dir, "--git-dir="+gd, "fsck", "--strict")
		})
	}
}

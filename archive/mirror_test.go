package archive

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"mailswarm/gitstore"
	"mailswarm/internal/peertest"
)

// dayPacks writes the canonical packs of origin's epoch 0 in ranges of
// about per commits into files in dir, as the swarm does, and returns
// their paths in chain order.
func dayPacks(t testing.TB, origin *List, per int, dir string) []string {
	t.Helper()
	var commits []CommitRef
	if err := origin.WalkCommits(0, Hash{}, func(c CommitRef) error { commits = append(commits, c); return nil }); err != nil {
		t.Fatal(err)
	}
	var paths []string
	from := Hash{}
	for i := 0; i < len(commits); i += per {
		to := commits[min(i+per, len(commits))-1].Commit
		var buf bytes.Buffer
		if _, err := origin.WriteCanonicalPack(&buf, 0, from, to); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, strconv.Itoa(len(paths))+".pack")
		if err := os.WriteFile(p, buf.Bytes(), 0o444); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		from = to
	}
	return paths
}

// mirrorState is what a refused install must leave alone: epochs and
// tips, the index's article count and the pack directories' files.
func mirrorState(t *testing.T, l *List) string {
	t.Helper()
	st, err := l.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := strconv.FormatInt(st.Messages, 10) + "/" + strconv.FormatInt(st.LastArticle, 10)
	for _, n := range l.Epochs() {
		tip, _ := l.Tip(n)
		s += " " + strconv.Itoa(n) + ":" + tip.String()
		ents, _ := os.ReadDir(filepath.Join(l.Dir(), "git", strconv.Itoa(n)+".git", "objects", "pack"))
		for _, e := range ents {
			s += " " + e.Name()
		}
	}
	return s
}

// An origin's day packs installed into a mirror list give the same list:
// the same commits, article numbers and export, one copy of each pack
// (the file installed is the git pack), git fsck clean, public-inbox
// indexes it, and subscribers hear of the articles.
func TestMirrorInstallPack(t *testing.T) {
	ctx := context.Background()
	origin, err := newTestArchive(t).Create("dev", "dev@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := origin.Import(ctx, []string{peertest.Corpus(t, "notmuch-test/default.mboxrd.gz")}, nil); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	packs := dayPacks(t, origin, 20, src)
	if len(packs) < 3 {
		t.Fatalf("only %d packs", len(packs))
	}
	ma := newTestArchive(t)
	m, err := ma.CreateMirror("devcopy", origin.PublicKey(), "dev@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if !m.Mirror() || origin.Mirror() {
		t.Fatalf("Mirror(): mirror %v, origin %v", m.Mirror(), origin.Mirror())
	}
	events, stop := ma.Subscribe()
	defer stop()
	total := 0
	for _, p := range packs {
		n, err := m.InstallPack(ctx, 0, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		total += n
		info, _ := os.Stat(p)
		h, _ := os.ReadFile(p)
		trailer := gitstore.Hash(h[len(h)-20:])
		in, err := os.Stat(filepath.Join(m.Dir(), "git", "0.git", "objects", "pack", "pack-"+trailer.String()+".pack"))
		if err != nil || !os.SameFile(info, in) {
			t.Fatalf("%s: not the git pack (%v)", p, err)
		}
	}
	select {
	case ev := <-events:
		if ev.List != "devcopy" || ev.First != 1 {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event for the installed articles")
	}
	ot, _ := origin.Tip(0)
	mt, _ := m.Tip(0)
	if ot != mt {
		t.Fatalf("tips %s and %s", ot, mt)
	}
	if articleIDs(t, m) != articleIDs(t, origin) {
		t.Fatal("article numbers or commits differ")
	}
	want, got := exportAll(t, origin), exportAll(t, m)
	if len(got) != len(want) {
		t.Fatalf("exported %d, origin %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("message %d differs", i+1)
		}
	}
	if m.UIDValidity("dev") != origin.UIDValidity("dev") {
		t.Fatal("UIDVALIDITY differs from the origin's")
	}
	if err := m.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	gitFsck(t, m)
	out, err := exec.Command("git", "-C", filepath.Join(m.Dir(), "all.git"), "rev-list", "--count", ot.String()).CombinedOutput()
	if err != nil || string(bytes.TrimSpace(out)) != strconv.Itoa(total) {
		t.Fatalf("git rev-list in all.git: %q %v (want %d)", out, err, total)
	}
	// Reopened, the mirror is still one.
	ma.Close()
	ma2, err := Open(&Options{Dir: ma.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ma2.Close()
	if l, err := ma2.OpenOrCreateMirror("devcopy", origin.PublicKey(), ""); err != nil || !l.Mirror() {
		t.Fatalf("reopen: %v", err)
	}
	peertest.Need(t, "public-inbox-index")
	if n := peertest.PIIndex(t, m.Dir()); n != len(want) {
		t.Fatalf("public-inbox-index counted %d, we have %d", n, len(want))
	}
}

// A mirror list takes no mail (Accept, Add, Import refused as ErrMirror
// and ErrRejected), and a list name is never reused for another key or
// for an origin list.
func TestMirrorRefuses(t *testing.T) {
	ctx := context.Background()
	a := newTestArchive(t)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	m, err := a.CreateMirror("copy", pub, "")
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("From: a@example.org\nSubject: hi\nMessage-ID: <1@x>\n\nbody\n")
	mbox := filepath.Join(t.TempDir(), "in.mbox")
	os.WriteFile(mbox, append([]byte("From a@example.org Mon Jan  2 15:04:05 2006\n"), msg...), 0o644)
	_, addErr := m.Add(ctx, msg)
	_, impErr := m.Import(ctx, []string{mbox}, nil)
	for what, err := range map[string]error{"Accept": m.Accept(ctx, msg), "Add": addErr, "Import": impErr} {
		if !errors.Is(err, ErrMirror) || !errors.Is(err, ErrRejected) {
			t.Errorf("%s: %v, want ErrMirror and ErrRejected", what, err)
		} else if err.Error() != "archive: list copy is a read-only mirror: post to its origin" {
			t.Errorf("%s: %q", what, err)
		}
	}
	if st, _ := m.Stats(ctx); st.Messages != 0 || m.SpoolStats() != (SpoolStats{}) {
		t.Fatalf("refused mail got in: %+v %+v", st, m.SpoolStats())
	}
	if _, err := a.CreateMirror("copy", other, ""); !errors.Is(err, ErrListExists) {
		t.Fatalf("CreateMirror again with another key: %v", err)
	}
	if _, err := a.OpenOrCreateMirror("copy", other, ""); !errors.Is(err, ErrListExists) {
		t.Fatalf("OpenOrCreateMirror with another key: %v", err)
	}
	if l, err := a.OpenOrCreateMirror("copy", pub, ""); err != nil || l != m {
		t.Fatalf("OpenOrCreateMirror with its key: %v", err)
	}
	origin, err := a.Create("dev", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.OpenOrCreateMirror("dev", origin.PublicKey(), ""); !errors.Is(err, ErrListExists) {
		t.Fatalf("an origin list opened as a mirror: %v", err)
	}
	if err := origin.Accept(ctx, msg); err != nil {
		t.Fatalf("origin Accept: %v", err)
	}
}

// Hostile packs leave the mirror as it was: tip, index and pack files;
// a crash between the pack landing and the ref move leaves a list that
// opens and verifies, and the same install then completes.
func TestMirrorInstallPackRefusesAndRecovers(t *testing.T) {
	ctx := context.Background()
	origin, err := newTestArchive(t).Create("dev", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if _, err := origin.Add(ctx, []byte("From: a@example.org\nSubject: m"+strconv.Itoa(i)+"\nMessage-ID: <"+strconv.Itoa(i)+"@x>\n\nbody "+strconv.Itoa(i)+"\n")); err != nil {
			t.Fatal(err)
		}
	}
	src := t.TempDir()
	packs := dayPacks(t, origin, 4, src) // 3 packs of 4
	ma := newTestArchive(t)
	m, err := ma.CreateMirror("copy", origin.PublicKey(), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.InstallPack(ctx, 0, packs[0]); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(packs[1])
	flip := slices.Clone(good)
	flip[len(flip)/3] ^= 1
	bad := filepath.Join(t.TempDir(), "bad.pack")
	for what, p := range map[string][]byte{
		"bit flip":        flip,
		"truncated":       good[:len(good)-7],
		"trailing bytes":  append(slices.Clone(good), 0),
		"missing trailer": good[:len(good)-20],
	} {
		before := mirrorState(t, m)
		os.Remove(bad)
		os.WriteFile(bad, p, 0o444)
		if _, err := m.InstallPack(ctx, 0, bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: %v, want ErrCorrupt", what, err)
		}
		if after := mirrorState(t, m); after != before {
			t.Fatalf("%s: changed\n%s\n%s", what, before, after)
		}
	}
	for what, p := range map[string]string{"the first again": packs[0], "the third before the second": packs[2]} {
		before := mirrorState(t, m)
		if _, err := m.InstallPack(ctx, 0, p); !errors.Is(err, ErrNotTip) {
			t.Fatalf("%s: %v, want ErrNotTip", what, err)
		}
		if after := mirrorState(t, m); after != before {
			t.Fatalf("%s: changed\n%s\n%s", what, before, after)
		}
	}
	// The crash: the second pack's files in place (linked, its idx by git
	// index-pack, .keep), the ref not moved.
	ma.Close()
	peertest.Need(t, "git")
	h, _ := os.ReadFile(packs[1])
	base := filepath.Join(m.Dir(), "git", "0.git", "objects", "pack", "pack-"+gitstore.Hash(h[len(h)-20:]).String())
	if err := os.Link(packs[1], base+".pack"); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("git", "index-pack", "-o", base+".idx", base+".pack").CombinedOutput(); err != nil {
		t.Fatalf("git index-pack: %v\n%s", err, out)
	}
	os.WriteFile(base+".keep", nil, 0o644)
	ma2, err := Open(&Options{Dir: ma.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ma2.Close()
	m2, err := ma2.OpenOrCreateMirror("copy", origin.PublicKey(), "")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := m2.Stats(ctx); st.Messages != 4 {
		t.Fatalf("%d messages after the crash, want 4", st.Messages)
	}
	if err := m2.Verify(ctx); err != nil {
		t.Fatalf("verify after the crash: %v", err)
	}
	for _, p := range packs[1:] {
		if _, err := m2.InstallPack(ctx, 0, p); err != nil {
			t.Fatalf("install after the crash: %v", err)
		}
	}
	if articleIDs(t, m2) != articleIDs(t, origin) {
		t.Fatal("articles differ from the origin's")
	}
	if err := m2.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	gitFsck(t, m2)
}

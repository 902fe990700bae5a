package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// swapState counts a node's epoch 0 git packs: sealed (a day pack made
// the epoch's storage) and the others.
func swapState(data string) (sealed, others int) {
	dir := filepath.Join(data, "lists", "dev", "git", "0.git", "objects", "pack")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		base, ok := strings.CutSuffix(e.Name(), ".pack")
		if !ok {
			continue
		}
		if k, _ := os.ReadFile(filepath.Join(dir, base+".keep")); string(k) == "mailswarm sealed\n" {
			sealed++
		} else {
			others++
		}
	}
	return sealed, others
}

// TestMirrorSwapKill9: a mirror that followed a day's slices, started
// after the origin sealed the day, rebuilds the day pack and makes it the
// epoch's storage in place of the slice packs. It is killed with SIGKILL
// ten times on fresh copies: five at a random moment of its catch-up, five
// as soon as the day pack is linked in as a sealed git pack (the swap
// under way). After every kill verify passes and the export is the
// origin's; started again, it ends with the day pack only (one copy) and
// the origin's export.
func TestMirrorSwapKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a mirror ten times")
	}
	clock := newTestClock(t)
	env := clock.env
	origin := newClusterNode(t, 0, true)
	origin.env = env
	origin.start(t)
	m := newClusterNode(t, 1, false)
	m.key, m.sources, m.env = listKey(t, origin.data), []string{origin.httpBase()}, env
	m.start(t)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for s := range 12 {
		var b strings.Builder
		for i := range 20 {
			n := s*20 + i
			at := time.Now().UTC()
			fmt.Fprintf(&b, "From poster@example.net %s\nFrom: Poster <p%d@example.net>\nTo: dev@example.org\nSubject: post %d\n"+
				"Date: %s\nMessage-ID: <swap%d@example.net>\n\n%s\n", at.Format(time.ANSIC), n%5, n, at.Format(time.RFC1123Z), n,
				strings.Repeat(fmt.Sprintf("body line of post %d\n", n), 40))
		}
		path := filepath.Join(t.TempDir(), "slice.mbox")
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		seq := nodeStatus(t, origin).Seq
		if out, err := exec.Command(buildBinary(t), "import", "--data", origin.data, "--list", "dev", path).CombinedOutput(); err != nil {
			t.Fatalf("import: %v\n%s", err, out)
		}
		waitManifest(t, origin, seq)
	}
	if time.Now().UTC().Truncate(24*time.Hour) != today {
		t.Skip("midnight passed while the day's slices were written")
	}
	waitFollowed(t, m, nodeStatus(t, origin).Seq)
	m.srv.stop(t)
	tmpl := m.data
	if sealed, others := swapState(tmpl); sealed != 0 || others != 12 {
		t.Fatalf("the mirror holds %d sealed and %d other packs, want the 12 slices", sealed, others)
	}
	// Midnight at the origin: the day is sealed while the mirror is down.
	clock.set(t, time.Until(today.Add(24*time.Hour+5*time.Minute)))
	seq := nodeStatus(t, origin).Seq
	waitManifest(t, origin, seq)
	seq = nodeStatus(t, origin).Seq
	want, _ := exportSum(t, origin.data)

	copyData := func() string {
		dst := filepath.Join(t.TempDir(), "data")
		if out, err := exec.Command("cp", "-a", tmpl, dst).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		return dst
	}
	finish := func(when string) {
		t.Helper()
		m.start(t)
		waitFollowed(t, m, seq)
		m.srv.stop(t)
		verifyNode(t, m.data)
		if got, _ := exportSum(t, m.data); got != want {
			t.Fatalf("%s: export differs from the origin's", when)
		}
		if sealed, others := swapState(m.data); sealed != 1 || others != 0 {
			t.Fatalf("%s: %d sealed and %d other packs, want the day pack only", when, sealed, others)
		}
	}
	m.data = copyData()
	t0 := time.Now()
	finish("uninterrupted")
	took := time.Since(t0)
	out, err := exec.Command("git", "--git-dir", filepath.Join(m.data, "lists", "dev", "git", "0.git"), "fsck", "--strict", "--no-dangling").CombinedOutput()
	if err != nil {
		t.Fatalf("git fsck --strict: %v\n%s", err, out)
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 14))
	midSwap := 0
	for k := range 10 {
		m.data = copyData()
		m.start(t)
		if k < 5 {
			time.Sleep(time.Duration(rng.Int64N(int64(took))))
		} else {
			// As soon as the day pack is a sealed git pack, or a little after.
			deadline := time.Now().Add(30 * time.Second)
			for s, _ := swapState(m.data); s == 0 && time.Now().Before(deadline); s, _ = swapState(m.data) {
				time.Sleep(200 * time.Microsecond)
			}
			time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		}
		m.srv.cmd.Process.Signal(syscall.SIGKILL)
		m.srv.cmd.Wait()
		sealed, others := swapState(m.data)
		if sealed > 0 && others > 0 {
			midSwap++
		}
		when := fmt.Sprintf("kill %d (%d sealed, %d other packs)", k+1, sealed, others)
		t.Log(when)
		verifyNode(t, m.data)
		if got, _ := exportSum(t, m.data); got != want {
			t.Fatalf("%s: export differs from the origin's", when)
		}
		finish(when + ", started again")
	}
	t.Logf("uninterrupted catch-up %v; %d of 10 kills with the sealed day pack and slice packs side by side", took.Round(time.Millisecond), midSwap)
	if midSwap == 0 {
		t.Error("no kill landed during the swap")
	}
}

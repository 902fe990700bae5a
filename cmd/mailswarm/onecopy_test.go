package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailswarm/internal/peertest"
)

// packState counts an epoch's packs: sealed (a day pack linked in as the
// epoch's storage) and the others (batch packs), and their bytes.
func packState(t *testing.T, list string) (sealed, batch int, size int64) {
	t.Helper()
	dir := filepath.Join(list, "git", "0.git", "objects", "pack")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		base, ok := strings.CutSuffix(e.Name(), ".pack")
		if !ok {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size()
		if k, _ := os.ReadFile(filepath.Join(dir, base+".keep")); string(k) == "mailswarm sealed\n" {
			sealed++
		} else {
			batch++
		}
	}
	return
}

// TestSwarmPublishOneCopyKill9: `swarm publish` of a history written as
// batch packs spanning days (two posts a day, batches of 37) seals day
// packs and makes them the epoch's storage, dropping the batch packs. It
// is killed with SIGKILL ten times at random moments of that publish, each
// time on a fresh copy of the same list: after each kill verify passes and
// the export is unchanged; a publish run again finishes the swap, after
// which the epoch holds only the sealed day packs, verify passes, the
// export is unchanged and git fsck --strict is clean.
func TestSwarmPublishOneCopyKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real publish ten times")
	}
	peertest.Need(t, "git")
	tmpl := t.TempDir()
	if _, stderr, err := mailswarm(t, "keygen", "--data", tmpl, "--list", "oc"); err != nil {
		t.Fatalf("keygen: %v\n%s", err, stderr)
	}
	const days = 600
	var mbox strings.Builder
	start := time.Date(2021, 1, 1, 9, 0, 0, 0, time.UTC)
	for d := range days {
		for k := range 2 {
			at := start.AddDate(0, 0, d).Add(time.Duration(k) * 5 * time.Hour)
			fmt.Fprintf(&mbox, "From poster@example.org %s\nFrom: Poster <poster@example.org>\nTo: oc@example.org\n"+
				"Subject: day %d post %d\nDate: %s\nMessage-ID: <d%dp%d@example.org>\n\nPost %d of day %d.\n%s\n\n",
				at.Format(time.ANSIC), d, k, at.Format(time.RFC1123Z), d, k, k, d, strings.Repeat("words of the day ", 60))
		}
	}
	mboxPath := filepath.Join(t.TempDir(), "oc.mbox")
	if err := os.WriteFile(mboxPath, []byte(mbox.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := mailswarm(t, "import", "--data", tmpl, "--list", "oc", "--batch", "37", mboxPath); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	want, stderr, err := mailswarm(t, "export", "--data", tmpl, "--list", "oc")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	_, batches, before := packState(t, filepath.Join(tmpl, "lists", "oc"))

	// An uninterrupted publish, for its duration and the end state.
	check := func(data, when string) {
		t.Helper()
		if _, stderr, err := mailswarm(t, "verify", "--data", data, "--list", "oc"); err != nil {
			t.Fatalf("%s: verify: %v\n%s", when, err, stderr)
		}
		got, stderr, err := mailswarm(t, "export", "--data", data, "--list", "oc")
		if err != nil {
			t.Fatalf("%s: export: %v\n%s", when, err, stderr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: the export (%d bytes) differs from the one before publishing (%d bytes)", when, len(got), len(want))
		}
	}
	copyData := func() string {
		dst := filepath.Join(t.TempDir(), "data")
		if out, err := exec.Command("cp", "-a", tmpl, dst).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		return dst
	}
	finish := func(data, when string) int64 {
		t.Helper()
		if _, stderr, err := mailswarm(t, "swarm", "publish", "--data", data, "--list", "oc"); err != nil {
			t.Fatalf("%s: publish: %v\n%s", when, err, stderr)
		}
		check(data, when)
		sealed, batch, size := packState(t, filepath.Join(data, "lists", "oc"))
		if batch != 0 || sealed != days {
			t.Fatalf("%s: %d sealed and %d batch packs, want %d sealed only", when, sealed, batch, days)
		}
		return size
	}
	clean := copyData()
	t0 := time.Now()
	after := finish(clean, "uninterrupted")
	took := time.Since(t0)
	t.Logf("%d batch packs, %d bytes -> %d day packs, %d bytes; publish %v", batches, before, days, after, took)
	out, err := exec.Command("git", "--git-dir", filepath.Join(clean, "lists", "oc", "git", "0.git"), "fsck", "--strict", "--no-dangling").CombinedOutput()
	if err != nil {
		t.Fatalf("git fsck --strict: %v\n%s", err, out)
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))
	kills, midSwap := 0, 0
	for try := 0; kills < 10 && try < 30; try++ {
		data := copyData()
		cmd := exec.Command(buildBinary(t), "swarm", "publish", "--data", data, "--list", "oc")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(took))))
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil || cmd.Wait() == nil {
			cmd.Wait()
			continue // finished first
		}
		kills++
		sealed, batch, _ := packState(t, filepath.Join(data, "lists", "oc"))
		if sealed > 0 && batch > 0 {
			midSwap++
		}
		when := fmt.Sprintf("kill %d (%d sealed, %d batch packs)", kills, sealed, batch)
		check(data, when)
		finish(data, when+", publish again")
	}
	t.Logf("%d kills, %d of them with sealed and batch packs side by side", kills, midSwap)
	if kills < 10 {
		t.Fatalf("only %d publishes were killed mid-way", kills)
	}
	if midSwap == 0 {
		t.Fatal("no kill landed during the swap")
	}
}

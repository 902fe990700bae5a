package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"mailswarm/internal/peertest"
)

// buildBinary builds the mailswarm command once per test binary.
func buildBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mailswarm-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "mailswarm")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = &buildError{err, out}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + string(e.out) }

func mailswarm(t testing.TB, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	cmd := exec.Command(buildBinary(t), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

// TestImportKill9 kills `mailswarm import` with SIGKILL at random moments,
// at least ten times: after each kill `verify` passes, and a final re-run
// completes with exactly the messages of an uninterrupted import, none
// duplicated, in the same order.
func TestImportKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real import ten times")
	}
	mbox := peertest.Corpus(t, "spamassassin/easy-ham-1.mboxrd.gz")
	clean := t.TempDir()
	if _, e, err := mailswarm(t, "import", "--data", clean, "--list", "l", "--batch", "50", mbox); err != nil {
		t.Fatalf("clean import: %v\n%s", err, e)
	}
	want, e, err := mailswarm(t, "export", "--data", clean, "--list", "l")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, e)
	}

	data := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	kills := 0
	for try := 0; kills < 12 && try < 40; try++ {
		cmd := exec.Command(buildBinary(t), "import", "--data", data, "--list", "l", "--batch", "50", mbox)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(20+rng.IntN(600)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err == nil {
			if werr := cmd.Wait(); werr != nil {
				kills++
			}
		} else {
			cmd.Wait()
		}
		if _, e, err := mailswarm(t, "verify", "--data", data, "--list", "l"); err != nil {
			if _, serr := os.Stat(filepath.Join(data, "lists", "l", "list.json")); serr != nil {
				continue // killed before the list existed
			}
			t.Fatalf("verify after kill %d: %v\n%s", kills, err, e)
		}
	}
	if kills < 10 {
		t.Fatalf("only %d imports were killed mid-way", kills)
	}
	if _, e, err := mailswarm(t, "import", "--data", data, "--list", "l", "--batch", "50", mbox); err != nil {
		t.Fatalf("re-run: %v\n%s", err, e)
	}
	if _, e, err := mailswarm(t, "verify", "--data", data, "--list", "l"); err != nil {
		t.Fatalf("verify: %v\n%s", err, e)
	}
	got, e, err := mailswarm(t, "export", "--data", data, "--list", "l")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, e)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("after %d kills the export (%d bytes) differs from an uninterrupted import's (%d bytes)", kills, len(got), len(want))
	}
}

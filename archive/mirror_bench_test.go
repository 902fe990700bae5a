package archive

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"mailswarm/internal/peertest"
)

// benchPack returns a canonical pack of a whole list's epoch 0 and its
// commit count (0 when not known yet), made from the mbox
// MAILSWARM_BENCH_MBOX or else from gen_mbox.py's MAILSWARM_BENCH_N
// (default 10000) messages. MAILSWARM_BENCH_PACK names a file to keep it
// in (and reuse when it exists).
func benchPack(b *testing.B) (string, int) {
	b.Helper()
	keep := os.Getenv("MAILSWARM_BENCH_PACK")
	if _, err := os.Stat(keep); keep != "" && err == nil {
		return keep, 0
	}
	dir := b.TempDir()
	mbox := os.Getenv("MAILSWARM_BENCH_MBOX")
	if mbox == "" {
		n := os.Getenv("MAILSWARM_BENCH_N")
		if n == "" {
			n = "10000"
		}
		mbox = filepath.Join(dir, "gen.mbox")
		gen := filepath.Join(peertest.SharedDir(b), "peers", "gen_mbox.py")
		if out, err := exec.Command("python3", gen, mbox, "-n", n).CombinedOutput(); err != nil {
			b.Fatalf("gen_mbox.py: %v\n%s", err, out)
		}
	}
	a, err := Open(&Options{Dir: filepath.Join(dir, "origin"), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	l, err := a.Create("bench", "")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := l.Import(context.Background(), []string{mbox}, nil); err != nil {
		b.Fatal(err)
	}
	tip, _ := l.Tip(0)
	out := keep
	if out == "" {
		out = filepath.Join(dir, "day.pack")
	}
	f, err := os.Create(out)
	if err != nil {
		b.Fatal(err)
	}
	info, err := l.WriteCanonicalPack(f, 0, Hash{}, tip)
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
	return f.Name(), info.Commits
}

// BenchmarkInstallPack installs one canonical pack of a whole list
// (10,000 gen_mbox.py messages by default) into a fresh mirror list,
// durably, git and index: InstallPack (the file linked in) against
// AppendPack (the pack read, its commits re-packed and written), on the
// same pack in the same run. Reports MiB of pack and messages per second.
func BenchmarkInstallPack(b *testing.B) {
	path, commits := benchPack(b)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	mib := float64(st.Size()) / (1 << 20)
	b.Logf("pack: %.1f MiB, %d commits", mib, commits)
	for _, mode := range []string{"InstallPack", "AppendPack"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				b.StopTimer()
				a, err := Open(&Options{Dir: b.TempDir()})
				if err != nil {
					b.Fatal(err)
				}
				l, err := a.CreateMirror("copy", make([]byte, 32), "")
				if err != nil {
					b.Fatal(err)
				}
				// The file the swarm verified sits in the list's
				// directory (same file system: linked, not copied).
				src := filepath.Join(l.Dir(), "day.pack")
				copyFile(b, path, src)
				b.StartTimer()
				var n int
				if mode == "InstallPack" {
					n, err = l.InstallPack(ctx, 0, src)
				} else {
					var p []byte
					if p, err = os.ReadFile(src); err == nil {
						n, err = l.AppendPack(ctx, 0, p)
					}
				}
				if err != nil {
					b.Fatal(err)
				}
				if commits == 0 {
					commits = n
				}
				b.StopTimer()
				a.Close()
				b.StartTimer()
			}
			s := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(mib/s, "MiB/s")
			b.ReportMetric(float64(commits)/s, "msg/s")
			var ru syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			b.Logf("%s: max RSS of the process so far %d MiB", mode, ru.Maxrss>>10)
		})
	}
}

// TestInstallPackMemory reports the peak RSS of installing (or, with
// MAILSWARM_BENCH_MODE=append, AppendPack-ing) the pack
// MAILSWARM_BENCH_PACK into a fresh mirror list: run it alone, in its own
// process, so the peak is this install's.
func TestInstallPackMemory(t *testing.T) {
	path := os.Getenv("MAILSWARM_BENCH_PACK")
	if path == "" {
		t.Skip("MAILSWARM_BENCH_PACK not set")
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	before := ru.Maxrss
	a, err := Open(&Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	l, err := a.CreateMirror("copy", make([]byte, 32), "")
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(l.Dir(), "day.pack")
	copyFile(t, path, src)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	before = max(before, ru.Maxrss)
	var n int
	if os.Getenv("MAILSWARM_BENCH_MODE") == "append" {
		var p []byte
		if p, err = os.ReadFile(src); err == nil {
			n, err = l.AppendPack(context.Background(), 0, p)
		}
	} else {
		n, err = l.InstallPack(context.Background(), 0, src)
	}
	if err != nil {
		t.Fatal(err)
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	st, _ := os.Stat(src)
	t.Logf("%d commits, pack %d MiB: max RSS %d MiB before, %d MiB after", n, st.Size()>>20, before>>10, ru.Maxrss>>10)
}

// copyFile copies a file, streamed (not to count in the RSS measured).
func copyFile(t testing.TB, from, to string) {
	t.Helper()
	r, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err == nil {
		_, err = io.Copy(w, r)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

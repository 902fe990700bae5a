package gitstore

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// benchPackPath is the pack file MAILSWARM_BENCH_PACK names; the
// benchmark is skipped when it names none.
func benchPackPath(b *testing.B) string {
	path := os.Getenv("MAILSWARM_BENCH_PACK")
	if path == "" {
		b.Skip("MAILSWARM_BENCH_PACK not set")
	}
	return path
}

// BenchmarkInstallPackGit is the git side of archive's
// BenchmarkInstallPack, without the index: the canonical pack file
// MAILSWARM_BENCH_PACK (skipped when unset; archive's benchmark makes one
// of 10,000 gen_mbox.py messages) into a fresh store, durably, by
// InstallPack (verified, linked in) and by PackCommits + AppendRaw (the
// commits re-packed and written), in the same run.
func BenchmarkInstallPackGit(b *testing.B) {
	path := benchPackPath(b)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	mib := float64(st.Size()) / (1 << 20)
	for _, mode := range []string{"InstallPack", "AppendRaw"} {
		b.Run(mode, func(b *testing.B) {
			commits := 0
			for b.Loop() {
				b.StopTimer()
				dir := b.TempDir()
				s, err := Open(dir, &Options{})
				if err != nil {
					b.Fatal(err)
				}
				src := filepath.Join(dir, "day.pack")
				streamCopy(b, path, src)
				b.StartTimer()
				var es []Entry
				if mode == "InstallPack" {
					es, err = s.InstallPack(0, src)
				} else {
					var p []byte
					var cs []RawCommit
					if p, err = os.ReadFile(src); err == nil {
						if _, cs, err = PackCommits(p); err == nil {
							es, err = s.AppendRaw(0, cs)
						}
					}
				}
				if err != nil {
					b.Fatal(err)
				}
				commits = len(es)
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(mib/sec, "MiB/s")
			b.ReportMetric(float64(commits)/sec, "msg/s")
		})
	}
}

func streamCopy(t testing.TB, from, to string) {
	t.Helper()
	r, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := os.Create(to)
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

// TestInstallPackMemoryGit reports the peak RSS of InstallPack (or, with
// MAILSWARM_BENCH_MODE=append, of PackCommits + AppendRaw) of the pack
// MAILSWARM_BENCH_PACK, git only: run it alone, in its own process.
func TestInstallPackMemoryGit(t *testing.T) {
	path := os.Getenv("MAILSWARM_BENCH_PACK")
	if path == "" {
		t.Skip("MAILSWARM_BENCH_PACK not set")
	}
	dir := t.TempDir()
	s := openTest(t, dir, &Options{})
	src := filepath.Join(dir, "day.pack")
	streamCopy(t, path, src)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	before := ru.Maxrss
	var es []Entry
	var err error
	if os.Getenv("MAILSWARM_BENCH_MODE") == "append" {
		var p []byte
		var cs []RawCommit
		if p, err = os.ReadFile(src); err == nil {
			if _, cs, err = PackCommits(p); err == nil {
				es, err = s.AppendRaw(0, cs)
			}
		}
	} else {
		es, err = s.InstallPack(0, src)
	}
	if err != nil {
		t.Fatal(err)
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	st, _ := os.Stat(src)
	t.Logf("%d commits, pack %d MiB: max RSS %d MiB before, %d MiB after", len(es), st.Size()>>20, before>>10, ru.Maxrss>>10)
}

package durable

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// tempLeft lists the temporary files WriteFile left in dir.
func tempLeft(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			left = append(left, e.Name())
		}
	}
	return left
}

func TestWriteFile(t *testing.T) {
	for _, sync := range []bool{true, false} {
		dir := t.TempDir()
		path := filepath.Join(dir, "meta.json")
		for _, body := range []string{"first\n", "second, longer\n", ""} {
			if err := WriteFile(path, []byte(body), 0o600, sync); err != nil {
				t.Fatalf("WriteFile(sync=%v): %v", sync, err)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != body {
				t.Fatalf("after WriteFile(%q, sync=%v): read %q, %v", body, sync, got, err)
			}
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", fi.Mode().Perm())
		}
		if left := tempLeft(t, dir); len(left) > 0 {
			t.Errorf("temporary files left: %v", left)
		}
	}
}

// TestWriteFileFails: a WriteFile that cannot rename (path is a directory)
// fails, leaves what was there and no temporary file.
func TestWriteFileFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x")
	if err := os.MkdirAll(filepath.Join(path, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("data"), 0o644, true); err == nil {
		t.Fatal("WriteFile over a non-empty directory succeeded")
	}
	if fi, err := os.Stat(filepath.Join(path, "inside")); err != nil || !fi.IsDir() {
		t.Errorf("the directory was changed: %v", err)
	}
	if left := tempLeft(t, dir); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "y"), []byte("data"), 0o644, true); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}

// TestWriteFileNeverTorn: readers racing a writer that replaces a file
// 200 times, alternating a 1 MiB and a 256 KiB content, read one of the
// two whole every time, never a mix or a short file.
func TestWriteFileNeverTorn(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "checkpoint")
	a := bytes.Repeat([]byte("a"), 1<<20)
	b := bytes.Repeat([]byte("b"), 256<<10)
	if err := WriteFile(path, a, 0o644, false); err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool
	var reads, torn atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for !done.Load() {
				got, err := os.ReadFile(path)
				if err != nil {
					t.Errorf("read: %v", err)
					return
				}
				reads.Add(1)
				if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
					torn.Add(1)
				}
			}
		})
	}
	for i := range 200 {
		data := a
		if i%2 == 0 {
			data = b
		}
		if err := WriteFile(path, data, 0o644, false); err != nil {
			t.Fatal(err)
		}
	}
	done.Store(true)
	wg.Wait()
	t.Logf("%d reads during 200 replacements", reads.Load())
	if torn.Load() > 0 {
		t.Fatalf("%d of %d reads saw neither the old nor the new content", torn.Load(), reads.Load())
	}
}

func TestWriteTempRename(t *testing.T) {
	dir := t.TempDir()
	tmp, err := WriteTemp(dir, "tmp_x_*", []byte("idx"), 0o444, true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(tmp), "tmp_x_") || filepath.Dir(tmp) != dir {
		t.Errorf("WriteTemp = %q, want tmp_x_* in %s", tmp, dir)
	}
	path := filepath.Join(dir, "pack.idx")
	if err := Rename(tmp, path, true); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "idx" {
		t.Fatalf("read %q, %v", got, err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary file still there: %v", err)
	}
	if err := Rename(filepath.Join(dir, "missing"), path, true); err == nil {
		t.Error("Rename of a missing file succeeded")
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if err := SyncDir(filepath.Join(t.TempDir(), "missing")); err == nil {
			t.Error("SyncDir of a missing directory succeeded")
		}
	}
}

func TestInode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "manifest")
	if err := WriteFile(path, []byte("one"), 0o644, false); err != nil {
		t.Fatal(err)
	}
	fi1, _ := os.Stat(path)
	if err := WriteFile(path, []byte("two"), 0o644, false); err != nil {
		t.Fatal(err)
	}
	fi2, _ := os.Stat(path)
	i1, ok1 := Inode(fi1)
	i2, ok2 := Inode(fi2)
	if ok1 != ok2 || (ok1 && i1 == i2) {
		t.Errorf("Inode before and after WriteFile: %d,%v and %d,%v; want two different inodes", i1, ok1, i2, ok2)
	}
	if runtime.GOOS == "linux" && !ok1 {
		t.Error("no inode on linux")
	}
}

package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// bigSpoolMsg returns a distinct message of about 64 KiB.
func bigSpoolMsg(n int) []byte {
	m := spoolMsg(n, true)
	return append(m, bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n"), 1000)...)
}

// TestAcceptDiskFull fills the spool, a 2 MiB tmpfs: Accept must fail
// with ErrTempFail and lose nothing acknowledged, and work again once
// space returns; a read-only spool is ErrTempFail too. Needs root.
func TestAcceptDiskFull(t *testing.T) {
	ctx := context.Background()
	_, l := newSpoolList(t, Options{})
	dir := l.spool.dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("cannot mount tmpfs: %v %s", err, out)
		}
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	remount := func(o string) {
		t.Helper()
		if out, err := exec.Command("mount", "-o", "remount,"+o, dir).CombinedOutput(); err != nil {
			t.Fatalf("remount %s: %v %s", o, err, out)
		}
	}
	t.Cleanup(func() {
		l.spool.close()
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount: %v %s", err, out)
		}
	})

	acked := 0
	var full error
	for i := range 200 {
		if err := l.Accept(ctx, bigSpoolMsg(i)); err != nil {
			full = err
			break
		}
		acked++
	}
	if !errors.Is(full, ErrTempFail) || errors.Is(full, ErrRejected) {
		t.Fatalf("Accept on a full disk = %v, want ErrTempFail", full)
	}
	t.Logf("disk full after %d messages: %v", acked, full)
	if err := l.Accept(ctx, bigSpoolMsg(1000)); !errors.Is(err, ErrTempFail) {
		t.Errorf("second Accept on a full disk = %v, want ErrTempFail", err)
	}

	remount("size=64m")
	for i := range 3 {
		if err := l.Accept(ctx, bigSpoolMsg(2000+i)); err != nil {
			t.Fatalf("Accept after space returned: %v", err)
		}
		acked++
	}
	res, err := l.Drain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != acked {
		t.Errorf("Drain added %d, want the %d acknowledged", res.Added, acked)
	}
	for i, s := range subjects(t, l) {
		want := fmt.Sprintf("spool %d", i)
		if i >= acked-3 {
			want = fmt.Sprintf("spool %d", 2000+i-(acked-3))
		}
		if s != want {
			t.Errorf("article %d is %q, want %q", i+1, s, want)
		}
	}

	l.spool.close() // no file open for writing, or the remount is refused
	remount("ro")
	defer remount("rw")
	if err := l.Accept(ctx, spoolMsg(3000, true)); !errors.Is(err, ErrTempFail) {
		t.Errorf("Accept on a read-only disk = %v, want ErrTempFail", err)
	}
}

// TestDrainDiskFull fills a 3 MiB data directory with spooled mail: the
// committer fails with ErrTempFail, keeps every record, and archives them
// all once space returns. Needs root.
func TestDrainDiskFull(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("cannot mount tmpfs: %v %s", err, out)
		}
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount: %v %s", err, out)
		}
	})
	a, l := newSpoolList(t, Options{Dir: dir})
	acked := 0
	for i := range 200 {
		if err := l.Accept(ctx, bigSpoolMsg(i)); err != nil {
			if !errors.Is(err, ErrTempFail) {
				t.Fatalf("Accept on a full disk = %v, want ErrTempFail", err)
			}
			break
		}
		acked++
	}
	if _, err := l.Drain(ctx); !errors.Is(err, ErrTempFail) {
		t.Fatalf("Drain on a full disk = %v, want ErrTempFail", err)
	}
	if out, err := exec.Command("mount", "-o", "remount,size=64m", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	res, err := l.Drain(ctx)
	if err != nil {
		t.Fatalf("Drain once space returned: %v", err)
	}
	// The failed pass may have committed to git before the index write
	// failed; the next pass indexes those commits (catch-up) rather than
	// adding them again, so Added counts only what it archived itself.
	if got := len(subjects(t, l)); res.Added > acked || got != acked {
		t.Errorf("Drain added %d, %d articles; want the %d acknowledged, once each", res.Added, got, acked)
	}
	gitFsck(t, l)
	a.Close()
}

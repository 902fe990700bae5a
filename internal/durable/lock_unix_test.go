//go:build unix

package durable

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// TestTryLockFile: a held lock makes TryLockFile report (nil, nil), also
// within one process; once released it can be taken again.
func TestTryLockFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "commit.lock")
	l1, err := TryLockFile(path)
	if err != nil || l1 == nil {
		t.Fatalf("TryLockFile on a free lock = %v, %v", l1, err)
	}
	l2, err := TryLockFile(path)
	if err != nil || l2 != nil {
		t.Fatalf("TryLockFile on a held lock = %v, %v; want nil, nil", l2, err)
	}
	l1.Unlock()
	l3, err := TryLockFile(path)
	if err != nil || l3 == nil {
		t.Fatalf("TryLockFile after Unlock = %v, %v", l3, err)
	}
	l3.Unlock()
	var nilLock *Lock
	nilLock.Unlock() // does nothing
	if _, err := TryLockFile(filepath.Join(t.TempDir(), "missing", "x.lock")); err == nil {
		t.Error("TryLockFile in a missing directory succeeded")
	}
}

// TestLockFileWaits: LockFile on a held lock returns only after the holder
// unlocks.
func TestLockFileWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "append.lock")
	l1, err := LockFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var released atomic.Bool
	got := make(chan bool)
	go func() {
		l2, err := LockFile(path)
		if err != nil {
			t.Error(err)
			got <- false
			return
		}
		got <- released.Load()
		l2.Unlock()
	}()
	released.Store(true)
	l1.Unlock()
	if !<-got {
		t.Fatal("LockFile returned while the lock was held")
	}
}

// TestLockAcrossProcesses: a lock held by another process excludes this
// one, and is free again once that process is killed (SIGKILL: no stale
// lock survives its holder).
func TestLockAcrossProcesses(t *testing.T) {
	if path := os.Getenv("DURABLE_TEST_HOLD"); path != "" {
		if _, err := LockFile(path); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		select {} // held until killed
	}
	path := filepath.Join(t.TempDir(), "swarm.lock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockAcrossProcesses$")
	cmd.Env = append(os.Environ(), "DURABLE_TEST_HOLD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	if l, err := TryLockFile(path); err != nil || l != nil {
		l.Unlock()
		t.Fatalf("TryLockFile while another process holds the lock = %v, %v; want nil, nil", l, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err := LockFile(path) // blocks forever if the lock outlived its holder
	if err != nil {
		t.Fatal(err)
	}
	l.Unlock()
}

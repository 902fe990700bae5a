package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mailswarm/internal/peertest"
)

// serveExitWait bounds how long a test waits for serve to exit on its own
// (it exits as soon as a listener fails; the bound is for a hung serve on
// a loaded machine, not a timing assertion).
const serveExitWait = 30 * time.Second

// TestServeListenerTaken: when one of serve's ports is taken, serve exits
// non-zero naming that listener and its address (it used to bind SMTP,
// serve it, then hang on the IMAP or HTTP error, deaf to SIGTERM, without
// printing it). Whether its other ports still answer is not asked: once the
// process has exited the kernel has closed them whatever serve did.
func TestServeListenerTaken(t *testing.T) {
	for _, name := range []string{"imap", "http", "bittorrent"} {
		t.Run(name, func(t *testing.T) {
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			takenAddr := taken.Addr().String()
			free := func() string { return fmt.Sprintf("127.0.0.1:%d", peertest.FreePort(t)) }
			addrs := map[string]string{"smtp": free(), "lmtp": free(), "imap": free(), "http": free(), "bittorrent": "127.0.0.1:0"}
			addrs[name] = takenAddr
			data := t.TempDir()
			cfg := filepath.Join(t.TempDir(), "mailswarm.toml")
			text := fmt.Sprintf("data = %q\n[smtp]\nlisten = %q\n[lmtp]\nlisten = %q\n[imap]\nlisten = %q\n[http]\nlisten = %q\n"+
				"[bittorrent]\nlisten = %q\n[[list]]\nname = \"dev\"\naddresses = [\"dev@example.org\"]\n",
				data, addrs["smtp"], addrs["lmtp"], addrs["imap"], addrs["http"], addrs["bittorrent"])
			if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}

			code, stderr := runServeToExit(t, cfg, "")
			if code == 0 {
				t.Fatalf("serve exited 0 with the %s port taken\n%s", name, stderr)
			}
			if !strings.Contains(stderr, "mailswarm serve: "+name+" ") || !strings.Contains(stderr, takenAddr) {
				t.Errorf("serve's error does not name listener %s at %s:\n%s", name, takenAddr, stderr)
			}
		})
	}
}

// TestServeSIGTERMDuringStartup: a SIGTERM sent while serve is still
// starting (its data directory has just appeared: the archive is being
// opened, the signal handler is installed) ends it with exit 0.
func TestServeSIGTERMDuringStartup(t *testing.T) {
	data := t.TempDir()
	smtpAddr := fmt.Sprintf("127.0.0.1:%d", peertest.FreePort(t))
	imapAddr := fmt.Sprintf("127.0.0.1:%d", peertest.FreePort(t))
	cfg := filepath.Join(t.TempDir(), "mailswarm.toml")
	text := fmt.Sprintf("data = %q\n[smtp]\nlisten = %q\n[imap]\nlisten = %q\n[http]\nlisten = \"\"\n"+
		"[[list]]\nname = \"dev\"\naddresses = [\"dev@example.org\"]\n", data, smtpAddr, imapAddr)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr := runServeToExit(t, cfg, data)
	if code != 0 {
		t.Fatalf("serve exited %d on SIGTERM during startup\n%s", code, stderr)
	}
}

// runServeToExit runs serve with cfg (sending it SIGTERM as soon as
// something appears in termData, when set) and returns its exit code (-1 when killed by a
// signal) and stderr. A serve that has not exited after serveExitWait gets
// SIGTERM, then SIGKILL, and fails the test.
func runServeToExit(t *testing.T, cfg, termData string) (int, string) {
	t.Helper()
	var mu sync.Mutex
	var stderr bytes.Buffer
	log := func() string { mu.Lock(); defer mu.Unlock(); return stderr.String() }
	cmd := exec.Command(buildBinary(t), "serve", "--config", cfg)
	cmd.Stderr = lockedBuffer{&mu, &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if termData != "" {
		for i := 0; ; i++ {
			if ents, _ := os.ReadDir(termData); len(ents) > 0 {
				break
			}
			if i == 2000 { // 20 s
				cmd.Process.Kill()
				<-done
				t.Fatalf("serve created nothing in %s\n%s", termData, log())
			}
			time.Sleep(10 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGTERM)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(serveExitWait):
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			t.Fatalf("serve did not exit within %v; it did on SIGTERM\n%s", serveExitWait, log())
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("serve did not exit within %v, nor on SIGTERM 10 s later\n%s", serveExitWait, log())
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), log()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, log()
}

package peertest

import (
	"context"
	_ "embed" // the libtorrent helper and the static tracker
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BitTorrent peers: libtorrent-rasterbar (python3-libtorrent, driven by
// bittorrent/lt_tool.py), aria2c and transmission-daemon, each on
// 127.0.0.1 only with DHT, LSD, PEX, UPnP/NAT-PMP and uTP off. The
// scripts and the client quirks they work around come from
// shared/peers/bittorrent (see its README). Helpers take and give .torrent
// files by path; making them is the caller's business.

//go:embed bittorrent/lt_tool.py
var ltToolPY []byte

//go:embed bittorrent/static_tracker.py
var staticTrackerPY []byte

// SystemPython is the interpreter python3-libtorrent is installed for:
// Debian's, whatever python3 comes first in PATH.
const SystemPython = "/usr/bin/python3"

// NeedLibtorrent skips t (fails it under CI) unless SystemPython imports
// libtorrent (Debian package python3-libtorrent).
func NeedLibtorrent(t testing.TB) {
	t.Helper()
	const key = "python3-libtorrent"
	if _, ok := lookups.Load(key); !ok {
		var err error = errNone
		if out, e := exec.Command(SystemPython, "-c", "import libtorrent").CombinedOutput(); e != nil {
			err = fmt.Errorf("%s cannot import libtorrent (apt-get install python3-libtorrent): %v: %s",
				SystemPython, e, lastLine(out))
		}
		lookups.Store(key, err)
	}
	if v, _ := lookups.Load(key); v != errNone {
		missing(t, "peertest: need %s: %v", key, v)
	}
}

// btProc is a peer program running in its own process group, its output
// in a log file.
type btProc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
	err  error         // cmd.Wait's, once done is closed
}

// startProc starts name with args in a new process group, stdout and
// stderr to logPath.
func startProc(logPath, name string, args ...string) (*btProc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &btProc{name: filepath.Base(name), log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *btProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process group: SIGTERM, then SIGKILL after 5 s.
func (p *btProc) stop(t testing.TB) {
	pgid := p.cmd.Process.Pid
	if !p.exited() {
		_ = signalGroup(pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	}
	// Children may outlive the leader: the group goes either way.
	_ = signalGroup(pgid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Logf("peertest: %s pid %d did not exit after SIGKILL", p.name, pgid)
	}
}

// logTail returns the last lines of the process's log.
func (p *btProc) logTail() string {
	b, _ := os.ReadFile(p.log)
	return lastLines(string(b), 15)
}

// runBounded runs name with args in its own process group, output to
// logPath, and kills the group when it outlives limit.
func runBounded(ctx context.Context, limit time.Duration, logPath, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	ownGroup(cmd)
	cmd.Cancel = func() error { return signalGroup(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w after %v (%v)", ctx.Err(), limit, err)
	}
	if err != nil {
		b, _ := os.ReadFile(logPath)
		return fmt.Errorf("%s: %w\n%s", filepath.Base(name), err, lastLines(string(b), 15))
	}
	return nil
}

// LTGet downloads the torrent at torrentPath into outDir with libtorrent,
// given the one peer addr (127.0.0.1:PORT) with connect_peer, and fails t
// unless it has every piece within limit. With peer "", libtorrent finds
// peers through the torrent's trackers alone (which must be on 127.x).
func LTGet(t testing.TB, torrentPath, peer, outDir string, limit time.Duration) {
	t.Helper()
	ltGet(t, []string{"--torrent", torrentPath}, peer, outDir, limit)
}

// LTGetMagnet is LTGet of a magnet link (BEP 9): libtorrent fetches the
// info dictionary from the peers it finds, through the magnet's tr=
// trackers when peer is "".
func LTGetMagnet(t testing.TB, magnet, peer, outDir string, limit time.Duration) {
	t.Helper()
	ltGet(t, []string{"--magnet", magnet}, peer, outDir, limit)
}

func ltGet(t testing.TB, what []string, peer, outDir string, limit time.Duration) {
	t.Helper()
	NeedLibtorrent(t)
	dir := t.TempDir()
	script := writeScript(t, dir, "lt_tool.py", ltToolPY)
	secs := strconv.Itoa(int(limit.Seconds()))
	args := append([]string{script, "get"}, what...)
	if peer != "" {
		args = append(args, "--peer", peer)
	}
	args = append(args, "--out", outDir, "--timeout", secs)
	err := runBounded(t.Context(), limit+15*time.Second, filepath.Join(dir, "lt-get.log"), SystemPython, args...)
	if err != nil {
		t.Fatalf("peertest: libtorrent get: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "lt-get.log"))
	t.Logf("peertest: libtorrent: %s", strings.TrimSpace(string(b)))
}

// LTSeed seeds the torrent at torrentPath with libtorrent from dataParent
// (the directory holding the torrent's file or directory) on a free port
// of 127.0.0.1 and returns that address once libtorrent has checked the
// data; it fails t if the data is incomplete. The seeder runs until the
// test ends.
func LTSeed(t testing.TB, torrentPath, dataParent string) (addr string) {
	t.Helper()
	NeedLibtorrent(t)
	dir := t.TempDir()
	script := writeScript(t, dir, "lt_tool.py", ltToolPY)
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		port := FreePort(t)
		ready := filepath.Join(dir, fmt.Sprintf("ready-%d", attempt))
		p, err := startProc(filepath.Join(dir, fmt.Sprintf("lt-seed-%d.log", attempt)),
			SystemPython, script, "seed", "--torrent", torrentPath, "--data", dataParent,
			"--port", strconv.Itoa(port), "--seconds", "900", "--ready", ready)
		if err != nil {
			t.Fatalf("peertest: libtorrent seed: %v", err)
		}
		lastErr = waitFor(60*time.Second, func() (bool, error) {
			if fi, err := os.Stat(ready); err == nil && fi.Size() > 0 {
				return true, nil
			}
			if p.exited() {
				return false, fmt.Errorf("exited (%v)", p.err)
			}
			return false, nil
		})
		if lastErr == nil {
			t.Cleanup(func() { p.stop(t) })
			return "127.0.0.1:" + strconv.Itoa(port)
		}
		lastErr = fmt.Errorf("%w\n%s", lastErr, p.logTail())
		p.stop(t)
		t.Logf("peertest: libtorrent seed attempt %d on port %d: %v", attempt, port, lastErr)
	}
	t.Fatalf("peertest: libtorrent seed did not start: %v", lastErr)
	return ""
}

// waitFor polls cond every 100 ms until it is true or fails, or limit
// passes.
func waitFor(limit time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// StaticTracker starts an HTTP tracker on a free port of 127.0.0.1 that
// answers every announce with peers (127.x.y.z:PORT), and returns its
// announce URL. It is for clients that cannot be handed a peer (aria2,
// transmission). It runs until the test ends.
func StaticTracker(t testing.TB, peers ...string) (announce string) {
	t.Helper()
	Need(t, SystemPython)
	dir := t.TempDir()
	script := writeScript(t, dir, "static_tracker.py", staticTrackerPY)
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		port := FreePort(t)
		args := []string{script, "--port", strconv.Itoa(port), "--seconds", "900"}
		for _, p := range peers {
			args = append(args, "--peer", p)
		}
		p, err := startProc(filepath.Join(dir, fmt.Sprintf("tracker-%d.log", attempt)), SystemPython, args...)
		if err != nil {
			t.Fatalf("peertest: static tracker: %v", err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		lastErr = waitFor(20*time.Second, func() (bool, error) {
			if p.exited() {
				return false, fmt.Errorf("exited (%v)", p.err)
			}
			return waitDial(addr, 0) == nil, nil
		})
		if lastErr == nil {
			t.Cleanup(func() { p.stop(t) })
			return "http://" + addr + "/announce"
		}
		lastErr = fmt.Errorf("%w\n%s", lastErr, p.logTail())
		p.stop(t)
	}
	t.Fatalf("peertest: static tracker did not start: %v", lastErr)
	return ""
}

// Aria2Get downloads the torrent at torrentPath into outDir with aria2c
// and fails t unless it finishes within limit. aria2 cannot be handed a
// peer: the torrent must announce to a tracker (see [StaticTracker]).
func Aria2Get(t testing.TB, torrentPath, outDir string, limit time.Duration) {
	t.Helper()
	aria2Get(t, torrentPath, outDir, limit, func(string) []string { return []string{"--enable-dht=false"} })
}

// Aria2GetUDP is Aria2Get for a torrent whose tracker is a udp:// one:
// aria2 speaks BEP 15 only through its DHT's UDP socket, so its DHT is
// on, on a free port of 127.0.0.1, with no bootstrap node (it learns of
// no DHT node: nothing leaves loopback) and its routing table in a
// temporary directory.
func Aria2GetUDP(t testing.TB, torrentPath, outDir string, limit time.Duration) {
	t.Helper()
	aria2Get(t, torrentPath, outDir, limit, func(dir string) []string {
		return []string{"--enable-dht=true", "--dht-listen-port=" + strconv.Itoa(FreePort(t)), "--dht-file-path=" + filepath.Join(dir, "dht.dat")}
	})
}

// aria2Get runs aria2c on loopback only, with dht's options (given the
// run's temporary directory), and fails t with its log unless it
// finishes within limit.
func aria2Get(t testing.TB, torrentPath, outDir string, limit time.Duration, dht func(dir string) []string) {
	t.Helper()
	Need(t, "aria2c")
	dir := t.TempDir()
	secs := strconv.Itoa(int(limit.Seconds()))
	args := append([]string{"--no-conf=true", "--dir=" + outDir, "--seed-time=0",
		"--listen-port=" + strconv.Itoa(FreePort(t)), "--interface=127.0.0.1", "--disable-ipv6=true"},
		dht(dir)...)
	args = append(args, "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
		"--file-allocation=none", "--console-log-level=warn", "--summary-interval=0",
		"--bt-save-metadata=false", "--auto-save-interval=0", "--bt-stop-timeout="+secs, torrentPath)
	if err := runBounded(t.Context(), limit, filepath.Join(dir, "aria2.log"), "aria2c", args...); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "aria2.log"))
		t.Fatalf("peertest: aria2c: %v\n%s", err, b)
	}
}

// Transmission is a private transmission-daemon (3.00) on 127.0.0.1:
// configuration, resume files and downloads in a test's temporary
// directory, RPC without authentication on 127.0.0.1.
//
// Transmission drops 127.x peers it learns from trackers or PEX
// ("martian" addresses) and takes them only as incoming connections: a
// seeder on loopback must dial PeerAddr. It keys peers by IP alone.
type Transmission struct {
	// PeerAddr is the BitTorrent listen address, 127.0.0.1:PORT.
	PeerAddr string
	// DownloadDir is where torrents' data is written.
	DownloadDir string

	rpc string
	t   testing.TB
}

// TransmissionStart starts transmission-daemon; it is stopped when the
// test ends.
func TransmissionStart(t testing.TB) *Transmission {
	t.Helper()
	Need(t, "transmission-daemon", "transmission-remote")
	dir := t.TempDir()
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		conf := filepath.Join(dir, fmt.Sprintf("conf-%d", attempt))
		tr := &Transmission{DownloadDir: filepath.Join(dir, fmt.Sprintf("data-%d", attempt)), t: t}
		for _, d := range []string{conf, tr.DownloadDir} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatalf("peertest: %v", err)
			}
		}
		peerPort, rpcPort := FreePort(t), FreePort(t)
		tr.PeerAddr = "127.0.0.1:" + strconv.Itoa(peerPort)
		tr.rpc = "127.0.0.1:" + strconv.Itoa(rpcPort)
		settings := fmt.Sprintf(`{
  "bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1",
  "peer-port": %d, "peer-port-random-on-start": false, "port-forwarding-enabled": false,
  "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
  "rpc-enabled": true, "rpc-bind-address": "127.0.0.1", "rpc-port": %d,
  "rpc-authentication-required": false, "rpc-whitelist-enabled": true,
  "rpc-whitelist": "127.0.0.1", "rpc-host-whitelist-enabled": false,
  "download-dir": %q, "incomplete-dir-enabled": false, "watch-dir-enabled": false,
  "speed-limit-up-enabled": false, "speed-limit-down-enabled": false, "alt-speed-enabled": false,
  "ratio-limit-enabled": false, "blocklist-enabled": false, "encryption": 1,
  "preallocation": 0, "cache-size-mb": 4, "message-level": 2, "start-added-torrents": false
}
`, peerPort, rpcPort, tr.DownloadDir)
		if err := os.WriteFile(filepath.Join(conf, "settings.json"), []byte(settings), 0o644); err != nil {
			t.Fatalf("peertest: %v", err)
		}
		// -f: the process we start is the daemon itself.
		p, err := startProc(filepath.Join(conf, "daemon.log"), "transmission-daemon", "-f", "-g", conf)
		if err != nil {
			t.Fatalf("peertest: %v", err)
		}
		lastErr = waitFor(20*time.Second, func() (bool, error) {
			if p.exited() {
				return false, fmt.Errorf("exited (%v)", p.err)
			}
			return waitDial(tr.rpc, 0) == nil && waitDial(tr.PeerAddr, 0) == nil, nil
		})
		if lastErr == nil {
			t.Cleanup(func() {
				_, _ = tr.remote("--exit")
				p.stop(t)
			})
			return tr
		}
		lastErr = fmt.Errorf("%w\n%s", lastErr, p.logTail())
		p.stop(t)
		t.Logf("peertest: transmission-daemon attempt %d: %v", attempt, lastErr)
	}
	t.Fatalf("peertest: transmission-daemon did not start: %v", lastErr)
	return nil
}

// remote runs transmission-remote against the daemon, bounded to 30 s.
func (tr *Transmission) remote(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(tr.t.Context(), 30*time.Second)
	defer cancel()
	if tr.t.Context().Err() != nil { // in cleanup: the test's context is done
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "transmission-remote", append([]string{tr.rpc}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("transmission-remote %s: %w: %s", strings.Join(args, " "), err, tail(out, 2000))
	}
	return string(out), nil
}

// Add adds the torrent at torrentPath and starts it; the torrent's
// trackers are its own (Transmission does not start a torrent's peer
// activity without one announcing).
func (tr *Transmission) Add(torrentPath string) {
	tr.t.Helper()
	if _, err := tr.remote("-a", torrentPath); err != nil {
		tr.t.Fatalf("peertest: %v", err)
	}
	if _, err := tr.remote("-t", "all", "-s"); err != nil {
		tr.t.Fatalf("peertest: %v", err)
	}
}

// WaitDone waits until every torrent is 100% done, calling poke about
// every 2 s meanwhile (to dial the daemon again, say), then stops the
// torrents so that their data is on disk. It returns an error with the
// daemon's view of the torrents if limit passes first.
func (tr *Transmission) WaitDone(limit time.Duration, poke func()) error {
	deadline := time.Now().Add(limit)
	lastPoke := time.Now()
	var info string
	for time.Now().Before(deadline) {
		out, err := tr.remote("-t", "all", "-i")
		info = out
		if err == nil && allDone(out) {
			if _, err := tr.remote("-t", "all", "-S"); err != nil {
				return err
			}
			return nil
		}
		if poke != nil && time.Since(lastPoke) > 2*time.Second {
			poke()
			lastPoke = time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("transmission: not done after " + limit.String() + "\n" + lastLines(info, 40))
}

// allDone reports whether transmission-remote -i output shows torrents
// all at "Percent Done: 100%".
func allDone(info string) bool {
	n := 0
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Percent Done:"); ok {
			if strings.TrimSpace(v) != "100%" {
				return false
			}
			n++
		}
	}
	return n > 0
}

// Info returns transmission-remote's view of every torrent (-t all -i),
// or the error.
func (tr *Transmission) Info() string {
	out, err := tr.remote("-t", "all", "-i")
	if err != nil {
		return err.Error()
	}
	return out
}

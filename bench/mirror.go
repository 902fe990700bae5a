package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mailswarm/internal/peertest"
)

// defaultMirrorEpoch is the real archive the mirror benchmark was written
// for: the alsa-devel list's public-inbox epoch 0 (90,504 commits), fetched
// as benchmark input and never committed.
const defaultMirrorEpoch = "/work/.mirror/linux-mailinglist-archives+alsa-devel.alsa-project.org.0/repo"

// mirrorConfig is what the mirror benchmark was asked to do.
type mirrorConfig struct {
	Epoch    string // a public-inbox v2 epoch (bare git repository)
	List     string
	Address  string
	Seeders  int
	Bin      string
	SkipPI   bool
	SkipOurs bool
	SkipLT   bool
	// CopySeeders makes every seeder a copy of the origin even when the
	// binary has follow (then seeders 2 and up are mirrors of seeder 1).
	CopySeeders bool
	Timeout     time.Duration
	Keep        bool
	// Years > 0: the list is synthEpoch's, Years years of PerDay
	// messages a day, not Epoch.
	Years, PerDay int
	// CacheDir holds the prepared origin (import + publish), keyed by the
	// epoch's tip; "" is os.TempDir().
	CacheDir string
}

func mirrorMain(args []string) error {
	fs := flag.NewFlagSet("mirror", flag.ContinueOnError)
	var c mirrorConfig
	fs.StringVar(&c.Epoch, "epoch", defaultMirrorEpoch, "public-inbox v2 epoch (bare git repository) to mirror")
	fs.StringVar(&c.List, "list", "alsa", "list name on the mailswarm side")
	fs.StringVar(&c.Address, "address", "alsa-devel@alsa-project.org", "the list's address on the mailswarm side")
	fs.IntVar(&c.Seeders, "seeders", 3, "mailswarm serve seeders (127.0.0.2 and up)")
	fs.StringVar(&c.Bin, "bin", "", "mailswarm binary (default: build ./cmd/mailswarm)")
	fs.BoolVar(&c.SkipPI, "skip-pi", false, "do not run the git clone + public-inbox-index side")
	fs.BoolVar(&c.SkipOurs, "skip-ours", false, "do not run the mailswarm (follow) and libtorrent side")
	fs.BoolVar(&c.SkipLT, "skip-lt", false, "do not run libtorrent beside the follower")
	fs.BoolVar(&c.CopySeeders, "copy-seeders", false, "every seeder a copy of the origin (default with follow: seeders 2 and up mirror seeder 1)")
	fs.DurationVar(&c.Timeout, "timeout", 2*time.Hour, "give up after this long")
	fs.IntVar(&c.Years, "years", 0, "mirror a synthetic list of this many years ending now instead of -epoch (list synth)")
	fs.IntVar(&c.PerDay, "per-day", 10, "with -years: messages a day")
	fs.BoolVar(&c.Keep, "keep", false, "keep the work directory and the prepared origin (reused by the next run on the same epoch tip)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("mirror: unexpected arguments %q", fs.Args())
	}
	if c.Years > 0 && c.List == "alsa" {
		c.List, c.Address = "synth", "synth@example.org"
	}
	if c.Seeders < 1 || c.Seeders > 200 {
		return errors.New("mirror: -seeders must be 1 to 200")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	rep, err := runMirrorBench(ctx, c, os.Stderr)
	fmt.Print(rep.render())
	return err
}

// mirrorReport is everything one run measured.
type mirrorReport struct {
	Synthetic string // what -years made, "" for a real epoch
	Epoch     string
	Tip       string
	Commits   int
	Seeders   int
	PI        *piMirror
	Ours      *oursMirror
}

// piMirror is what a lore.kernel.org mirror does today: git clone
// --mirror of the epoch from git daemon, then public-inbox-index.
type piMirror struct {
	Clone, Index measurement
	CloneKiB     int64 // du of the clone
	Messages     int   // msgmap rows after the index
	Err          error
}

// oursMirror is a new mailswarm mirror following the list from the
// seeders, and libtorrent downloading the same torrents from them.
type oursMirror struct {
	Messages int // the origin's (mailswarm stats)
	Key      string
	Spec     string // the string given to follow
	Torrents []mirrorTorrent
	Bytes    int64 // sum of the torrents' sizes
	Prepare  time.Duration
	Cached   bool
	// MirrorSeeders: seeders 2 and up are mirrors following seeder 1;
	// false: copies of the origin.
	MirrorSeeders bool
	Follow        *followResult
	LT            *ltMirrorResult
	Err           error
}

// mirrorTorrent is one torrent a new mirror fetches: a month bundle (of
// day pack files), a day pack not in a bundle, or a slice.
type mirrorTorrent struct {
	Kind  string
	Year  bool // a year bundle
	Name  string
	Files []string // bundle: its files; else Name itself
	Size  int64
}

// followResult is the timed `mailswarm follow --once` and IMAP SELECT.
type followResult struct {
	NotBuilt  bool
	Follow    measurement   // follow --once
	Ready     time.Duration // follow start to SELECT answering the origin's EXISTS
	Exists    int
	BytesDown int64 // from follow status --json; -1 unknown
	// TorrentsOpened is follow status's torrents_opened: the torrents
	// the sync downloaded through (a bundle counts once); -1 unknown.
	TorrentsOpened int
	// Sync is the follower's own figures of the sync (follow status
	// --json, last_sync): bytes downloaded, seconds to the last
	// download's end, seconds installing; nil when not reported.
	Sync     *syncFigures
	ServeKiB int64 // VmHWM of serve on the new mirror at SELECT, -1 unknown
	Err      error
}

// ltMirrorResult is libtorrent downloading the same torrents.
type ltMirrorResult struct {
	Run measurement
	// Bytes and Seconds are bench/lt_mirror.py's count: payload bytes
	// and time from adding the torrents to the last one complete.
	Bytes   int64
	Seconds float64
	Err     error
}

// runMirrorBench runs each side not skipped. A side that fails is in the
// report with its error; the error returned joins them.
func runMirrorBench(ctx context.Context, c mirrorConfig, log io.Writer) (mirrorReport, error) {
	rep := mirrorReport{Seeders: c.Seeders}
	root, err := peertest.ModuleRoot()
	if err != nil {
		return rep, err
	}
	work, cleanup, err := workDir("mailswarm-bench-mirror-", c.Keep, log)
	if err != nil {
		return rep, err
	}
	defer cleanup()
	if c.Years > 0 {
		bin, err := mailswarmBinary(ctx, c.Bin, root, work, log)
		if err != nil {
			return rep, err
		}
		c.Bin = bin
		if c.Epoch, err = synthEpoch(ctx, bin, c.Years, c.PerDay, c.List, c.Address, filepath.Join(work, "synth"), log); err != nil {
			return rep, err
		}
		rep.Synthetic = fmt.Sprintf("synthetic list of %d years, %d messages a day", c.Years, c.PerDay)
	}
	epoch, err := filepath.Abs(c.Epoch)
	if err != nil {
		return rep, err
	}
	rep.Epoch = epoch
	tip, err := exec.CommandContext(ctx, "git", "--git-dir", epoch, "rev-parse", "HEAD").Output()
	if err != nil {
		return rep, fmt.Errorf("mirror: %s is not a git epoch: %w", epoch, err)
	}
	rep.Tip = strings.TrimSpace(string(tip))
	if out, err := exec.CommandContext(ctx, "git", "--git-dir", epoch, "rev-list", "--count", "HEAD").Output(); err == nil {
		rep.Commits, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	}
	var errs []error
	if !c.SkipPI {
		fmt.Fprintf(log, "bench: git clone --mirror of %s from git daemon, then public-inbox-index\n", epoch)
		rep.PI = runPIMirror(ctx, epoch, filepath.Join(work, "pi"), log)
		if rep.PI.Err != nil {
			errs = append(errs, fmt.Errorf("clone + index: %w", rep.PI.Err))
		}
	}
	if !c.SkipOurs {
		bin, err := mailswarmBinary(ctx, c.Bin, root, work, log)
		if err != nil {
			return rep, errors.Join(append(errs, err)...)
		}
		rep.Ours = runOursMirror(ctx, c, bin, root, epoch, rep.Tip, filepath.Join(work, "ours"), log)
		if rep.Ours.Err != nil {
			errs = append(errs, fmt.Errorf("mailswarm: %w", rep.Ours.Err))
		}
		if f := rep.Ours.Follow; f != nil && f.Err != nil {
			errs = append(errs, fmt.Errorf("follow: %w", f.Err))
		}
		if lt := rep.Ours.LT; lt != nil && lt.Err != nil {
			errs = append(errs, fmt.Errorf("libtorrent: %w", lt.Err))
		}
	}
	return rep, errors.Join(errs...)
}

// ---- the lore mirror of today ----

// runPIMirror serves epoch with git daemon on 127.0.0.1, clones it with
// git clone --mirror (timed), makes the clone epoch 0 of a fresh v2 inbox
// (public-inbox-init -V2 -L full, as the import benchmark does) and runs
// public-inbox-index on it (timed; full level, fsync on: its defaults).
func runPIMirror(ctx context.Context, epoch, dir string, log io.Writer) *piMirror {
	r := &piMirror{Clone: measurement{RSSKiB: -1}, Index: measurement{RSSKiB: -1}, CloneKiB: -1}
	fail := func(err error) *piMirror { r.Err = err; return r }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	daemon, err := startGitDaemon(ctx, epoch, port, filepath.Join(dir, "daemon.err"))
	if err != nil {
		return fail(err)
	}
	clone := filepath.Join(dir, "clone.git")
	url := fmt.Sprintf("git://127.0.0.1:%d/%s", port, filepath.Base(epoch))
	r.Clone, err = timed(ctx, nil, filepath.Join(dir, "clone"), "git", "clone", "--mirror", "--quiet", url, clone)
	stopGroup(daemon)
	if err != nil {
		return fail(err)
	}
	if r.CloneKiB, err = diskKiB(clone); err != nil {
		return fail(err)
	}
	inbox, env, err := initPIInbox(ctx, filepath.Join(dir, "pi"), "git", "sqlite3", "public-inbox-init", "public-inbox-index")
	if err != nil {
		return fail(err)
	}
	// The clone replaces the empty epoch public-inbox-init made: what a
	// lore mirror does with grokmirror or a fetch script.
	ep0 := filepath.Join(inbox, "git", "0.git")
	if err := os.RemoveAll(ep0); err != nil {
		return fail(err)
	}
	if err := os.Rename(clone, ep0); err != nil {
		return fail(err)
	}
	fmt.Fprintf(log, "bench: public-inbox-index %s (clone took %.1f s)\n", inbox, r.Clone.Wall.Seconds())
	r.Index, err = timed(ctx, env, filepath.Join(dir, "index"), "public-inbox-index", inbox)
	if err != nil {
		return fail(err)
	}
	if r.Messages, err = msgmapCount(ctx, inbox); err != nil {
		return fail(err)
	}
	return r
}

// startGitDaemon serves epoch (only it: the whitelist) read-only on
// 127.0.0.1:port and waits until it listens.
func startGitDaemon(ctx context.Context, epoch string, port int, errLog string) (*exec.Cmd, error) {
	f, err := os.Create(errLog)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, "git", "daemon", "--listen=127.0.0.1", "--port="+strconv.Itoa(port),
		"--export-all", "--reuseaddr", "--informative-errors", "--base-path="+filepath.Dir(epoch), epoch)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("git daemon: %w", err)
	}
	if err := waitListen(ctx, fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second); err != nil {
		stopGroup(cmd)
		b, _ := os.ReadFile(errLog)
		return nil, fmt.Errorf("git daemon: %w: %s", err, lastLines(b, 3))
	}
	return cmd, nil
}

// waitListen waits up to d for a TCP listener on addr.
func waitListen(ctx context.Context, addr string, d time.Duration) error {
	for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not listening after %v: %w", addr, d, err)
		}
	}
}

// stopGroup ends a child started in its own process group: SIGTERM, then
// SIGKILL after 10 s.
func stopGroup(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// ---- mailswarm: origin, seeders, a new mirror ----

// runOursMirror prepares the origin (cached), starts the seeders, then
// times the new mirror and libtorrent.
func runOursMirror(ctx context.Context, c mirrorConfig, bin, root, epoch, tip, dir string, log io.Writer) *oursMirror {
	r := &oursMirror{}
	fail := func(err error) *oursMirror { r.Err = err; return r }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	t0 := time.Now()
	origin, cached, err := prepareOrigin(ctx, c, bin, epoch, tip, log)
	if err != nil {
		return fail(err)
	}
	r.Prepare, r.Cached = time.Since(t0), cached
	if !cached && !c.Keep {
		// after the seeders stop (deferred later, so run first)
		defer os.RemoveAll(filepath.Dir(origin))
	}
	if out, err := exec.CommandContext(ctx, bin, "stats", "--data", origin, "--list", c.List, "--json").Output(); err == nil {
		r.Messages, _ = statsMessages(out, c.List)
	}
	st, err := swarmStatus(ctx, bin, origin, c.List)
	if err != nil {
		return fail(err)
	}
	r.Key = st.Key
	r.Torrents = mirrorTorrents(st)
	for _, t := range r.Torrents {
		r.Bytes += t.Size
	}
	fmt.Fprintf(log, "bench: origin %s: %d messages, manifest %d, %d torrents to fetch (%.1f MiB)\n",
		origin, r.Messages, st.Seq, len(r.Torrents), mibOf(r.Bytes))

	hasFollow := hasCommand(ctx, bin, "follow")
	r.MirrorSeeders = hasFollow && !c.CopySeeders
	seeders, err := startSeeders(ctx, c, bin, origin, st, r.MirrorSeeders, dir, log)
	defer func() {
		for _, s := range seeders {
			stopGroup(s.cmd)
		}
	}()
	if err != nil {
		return fail(err)
	}
	var sources []string
	for _, s := range seeders {
		sources = append(sources, "http://"+s.http)
	}
	for _, s := range seeders {
		sources = append(sources, s.bt)
	}
	r.Spec = fmt.Sprintf("mailswarm:%s:%s@%s", c.List, r.Key, strings.Join(sources, ","))
	// Untimed: both sides read the seeders' packs from the page cache.
	for _, s := range seeders {
		if err := readTree(filepath.Join(s.data, "lists", c.List, "swarm", "packs")); err != nil {
			return fail(err)
		}
	}

	if !hasFollow {
		fmt.Fprintf(log, "bench: %s has no follow command: its row is \"not built yet\"\n", bin)
		r.Follow = &followResult{NotBuilt: true, BytesDown: -1, ServeKiB: -1}
	} else {
		fmt.Fprintf(log, "bench: mailswarm follow --once from %d seeders, then IMAP SELECT\n", len(seeders))
		r.Follow = runFollow(ctx, c, bin, r, sources, filepath.Join(dir, "mirror"), log)
	}
	if !c.SkipLT {
		fmt.Fprintf(log, "bench: libtorrent downloads the same %d torrents from the %d seeders\n", len(r.Torrents), len(seeders))
		r.LT = runLTMirror(ctx, root, c.List, r.Torrents, st, seeders, filepath.Join(dir, "libtorrent"))
	}
	return r
}

// prepareOrigin returns an origin data directory holding epoch as list
// c.List, published: `mailswarm import` (which adopts a public-inbox epoch
// with the same commit ids) then `mailswarm swarm publish`, untimed. It is
// kept in CacheDir under the list name and the epoch's tip and reused
// (cached true); the caller removes one made by this run unless -keep.
func prepareOrigin(ctx context.Context, c mirrorConfig, bin, epoch, tip string, log io.Writer) (data string, cached bool, err error) {
	cache := c.CacheDir
	if cache == "" {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, fmt.Sprintf("mailswarm-bench-mirror-origin-%s-%s", c.List, tip[:min(12, len(tip))]))
	data = filepath.Join(dir, "data")
	if fi, err := os.Stat(data); err == nil && fi.IsDir() {
		fmt.Fprintf(log, "bench: reusing the prepared origin %s\n", data)
		return data, true, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, err
	}
	// A directory of its own: a second run preparing the same origin
	// must not remove this one's files under it (the first of them to
	// finish wins the rename; the other's is removed).
	tmp, err := os.MkdirTemp(dir, "data.tmp-")
	if err != nil {
		return "", false, err
	}
	defer os.RemoveAll(tmp)
	logBase := tmp + "."
	fmt.Fprintf(log, "bench: preparing the origin (untimed): mailswarm import %s, then swarm publish\n", epoch)
	if _, err := timed(ctx, nil, logBase+"import", bin, "import", "--data", tmp, "--list", c.List,
		"--address", c.Address, epoch); err != nil {
		return "", false, err
	}
	if _, err := timed(ctx, nil, logBase+"publish", bin, "swarm", "publish", "--data", tmp, "--list", c.List); err != nil {
		return "", false, err
	}
	if err := os.Rename(tmp, data); err != nil {
		if fi, serr := os.Stat(data); serr == nil && fi.IsDir() {
			return data, true, nil // another run prepared it first
		}
		return "", false, err
	}
	if c.Keep {
		fmt.Fprintf(log, "bench: prepared origin kept in %s\n", data)
	}
	return data, false, nil
}

// swarmStatusJSON is the part of `mailswarm swarm status --json` used here.
type swarmStatusJSON struct {
	Key   string `json:"key"`
	Seq   int64  `json:"seq"`
	Packs []struct {
		Kind   string `json:"kind"`
		Name   string `json:"name"`
		Epoch  int    `json:"epoch"`
		Day    string `json:"day"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	} `json:"packs"`
	Bundles []struct {
		Name  string   `json:"name"`
		Files []string `json:"files"`
		Epoch int      `json:"epoch"`
		Month string   `json:"month"`
		Size  int64    `json:"size"`
	} `json:"bundles"`
}

func swarmStatus(ctx context.Context, bin, data, list string) (swarmStatusJSON, error) {
	var st swarmStatusJSON
	out, err := exec.CommandContext(ctx, bin, "swarm", "status", "--data", data, "--list", list, "--json").Output()
	if err != nil {
		return st, fmt.Errorf("swarm status: %w", err)
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("swarm status: %w", err)
	}
	if st.Key == "" || st.Seq == 0 {
		return st, fmt.Errorf("swarm status: list %s not published (seq %d)", list, st.Seq)
	}
	return st, nil
}

// mirrorTorrents is the fewest torrents a new mirror opens: every year
// bundle, the month bundles of no year bundle, the day packs no bundle
// holds, the slices of the open day.
func mirrorTorrents(st swarmStatusJSON) []mirrorTorrent {
	var ts []mirrorTorrent
	inBundle := map[string]bool{}
	for _, years := range []bool{true, false} {
		for _, b := range st.Bundles {
			if (len(b.Month) == len("2006")) != years || inBundle[b.Files[0]] {
				continue
			}
			ts = append(ts, mirrorTorrent{Kind: "bundle", Year: years, Name: b.Name, Files: b.Files, Size: b.Size})
			for _, f := range b.Files {
				inBundle[f] = true
			}
		}
	}
	for _, p := range st.Packs {
		if !inBundle[p.Name] {
			ts = append(ts, mirrorTorrent{Kind: p.Kind, Name: p.Name, Files: []string{p.Name}, Size: p.Size})
		}
	}
	return ts
}

// seeder is one `mailswarm serve`: over a copy of the origin, or a mirror
// of it.
type seeder struct {
	cmd      *exec.Cmd
	data     string
	http, bt string // host:port
	mirror   bool
}

// startSeeders runs c.Seeders `mailswarm serve` processes, seeder i on
// 127.0.0.(2+i) with its own HTTP and BitTorrent ports and data directory,
// and waits until each seeds the list at the origin's manifest seq.
// Seeder 1 serves a copy (cp -a) of the origin. With mirrors (the binary
// has follow), the others are real mirrors: copies of one data directory
// synced from seeder 1 by `follow --once` (untimed, cached beside the
// origin), each serving with a [[follow]] table whose source is seeder 1.
// Without, they are copies of the origin too: each holds list.key, so each
// is an origin of the same list (same manifest, same packs); no mail
// arrives, so none publishes anything new.
func startSeeders(ctx context.Context, c mirrorConfig, bin, origin string, st swarmStatusJSON, mirrors bool, dir string, log io.Writer) ([]*seeder, error) {
	var ss []*seeder
	var mirrorData string
	for i := range c.Seeders {
		ip := fmt.Sprintf("127.0.0.%d", 2+i)
		sd := filepath.Join(dir, fmt.Sprintf("seeder-%d", i+1))
		if err := os.MkdirAll(sd, 0o755); err != nil {
			return ss, err
		}
		s := &seeder{data: filepath.Join(sd, "data"), mirror: mirrors && i > 0}
		hp, err1 := freePortOn(ip)
		bp, err2 := freePortOn(ip)
		if err := errors.Join(err1, err2); err != nil {
			return ss, err
		}
		s.http, s.bt = fmt.Sprintf("%s:%d", ip, hp), fmt.Sprintf("%s:%d", ip, bp)
		from := origin
		if s.mirror {
			if mirrorData == "" {
				var err error
				if mirrorData, err = prepareMirrorSeed(ctx, c, bin, origin, st.Key, ss[0], log); err != nil {
					return ss, err
				}
			}
			from = mirrorData
		}
		if b, err := exec.CommandContext(ctx, "cp", "-a", from, s.data).CombinedOutput(); err != nil {
			return ss, fmt.Errorf("cp -a %s: %w: %s", from, err, lastLines(b, 3))
		}
		// Caps raised as for a public mirror behind one address: every
		// torrent of the new mirror (and of libtorrent) connects from one
		// loopback address.
		cfg := fmt.Sprintf("data = %q\n\n[smtp]\nlisten = \"\"\n\n[imap]\nlisten = \"\"\n\n"+
			"[http]\nlisten = %q\nmax_conns_per_client = 256\n\n"+
			"[bittorrent]\nlisten = %q\nweb_seed = %q\nmax_conns = 2048\nmax_conns_per_client = 2048\n\n",
			s.data, s.http, s.bt, "http://"+s.http)
		if s.mirror {
			cfg += fmt.Sprintf("[[follow]]\nlist = %q\nkey = %q\nsources = [%q]\n", c.List, st.Key, "http://"+ss[0].http)
		} else {
			cfg += fmt.Sprintf("[[list]]\nname = %q\naddresses = [%q]\n", c.List, c.Address)
		}
		cfgPath := filepath.Join(sd, "mailswarm.toml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			return ss, err
		}
		cmd, err := startLogged(ctx, filepath.Join(sd, "serve.err"), bin, "serve", "--config", cfgPath)
		if err != nil {
			return ss, err
		}
		s.cmd = cmd
		ss = append(ss, s)
		kind := "a copy of the origin"
		if s.mirror {
			kind = "a mirror following seeder 1"
		}
		fmt.Fprintf(log, "bench: seeder %d (%s): http %s, bittorrent %s\n", i+1, kind, s.http, s.bt)
		if err := waitSeeding(ctx, "http://"+s.http+"/lists/"+c.List+"/status", st.Seq, 10*time.Minute); err != nil {
			b, _ := os.ReadFile(filepath.Join(sd, "serve.err"))
			return ss, fmt.Errorf("seeder %d: %w: %s", i+1, err, lastLines(b, 5))
		}
	}
	return ss, nil
}

// prepareMirrorSeed returns a data directory mirroring the list from the
// seeder src (`follow --once`, untimed), cached beside the origin (same
// key: epoch tip) and reused; the caller copies it for each mirror seeder.
func prepareMirrorSeed(ctx context.Context, c mirrorConfig, bin, origin, key string, src *seeder, log io.Writer) (string, error) {
	dir := filepath.Dir(origin)
	data := filepath.Join(dir, "mirror-data")
	if fi, err := os.Stat(data); err == nil && fi.IsDir() {
		fmt.Fprintf(log, "bench: reusing the prepared mirror %s\n", data)
		return data, nil
	}
	tmp := data + ".tmp"
	os.RemoveAll(tmp)
	fmt.Fprintf(log, "bench: preparing the mirror seeders' data (untimed): follow --once from seeder 1\n")
	spec := fmt.Sprintf("mailswarm:%s:%s@http://%s,%s", c.List, key, src.http, src.bt)
	if _, err := timed(ctx, nil, filepath.Join(dir, "mirror-follow"), bin, "follow", "--data", tmp, "--once", spec); err != nil {
		return "", fmt.Errorf("prepare the mirror seeders: %w", err)
	}
	if err := os.Rename(tmp, data); err != nil {
		return "", err
	}
	return data, nil
}

// startLogged starts bin with args in its own process group, its output
// in errLog.
func startLogged(ctx context.Context, errLog, bin string, args ...string) (*exec.Cmd, error) {
	f, err := os.Create(errLog)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own descriptor
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", filepath.Base(bin), args[0], err)
	}
	return cmd, nil
}

// waitSeeding polls a node's /lists/NAME/status until it says it seeds
// manifest seq.
func waitSeeding(ctx context.Context, url string, seq int64, d time.Duration) error {
	client := &http.Client{Timeout: 10 * time.Second}
	var last string
	for deadline := time.Now().Add(d); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(200 * time.Millisecond) {
		resp, err := client.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		var st struct {
			Seeding bool  `json:"seeding"`
			Seq     int64 `json:"seq"`
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK && st.Seeding && st.Seq >= seq {
			return nil
		}
		last = fmt.Sprintf("status %d, seeding %v, seq %d, %v", resp.StatusCode, st.Seeding, st.Seq, err)
	}
	return fmt.Errorf("%s not seeding after %v (last: %s)", url, d, last)
}

// freePortOn returns a TCP port free on the loopback address ip.
func freePortOn(ip string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// readTree reads every file under dir (page cache warm-up).
func readTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return readAll(p)
	})
}

// hasCommand reports whether `bin` (no arguments) lists command among its
// commands: a binary built before the command existed does not.
func hasCommand(ctx context.Context, bin, command string) bool {
	out, _ := exec.CommandContext(ctx, bin).CombinedOutput()
	return commandListed(out, command)
}

// commandListed reports whether mailswarm's usage text lists command (an
// indented line starting with it).
func commandListed(usage []byte, command string) bool {
	for l := range strings.SplitSeq(string(usage), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == command && strings.HasPrefix(l, " ") {
			return true
		}
	}
	return false
}

// runFollow times a new mirror becoming IMAP-ready: `mailswarm follow
// --data NEW --once SPEC`, then `mailswarm serve` on NEW (IMAP on the next
// loopback address after the seeders) until SELECT of the list answers
// with the origin's EXISTS.
func runFollow(ctx context.Context, c mirrorConfig, bin string, o *oursMirror, sources []string, dir string, log io.Writer) *followResult {
	r := &followResult{BytesDown: -1, ServeKiB: -1, TorrentsOpened: -1}
	fail := func(err error) *followResult { r.Err = err; return r }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	data := filepath.Join(dir, "data")
	ip := fmt.Sprintf("127.0.0.%d", 2+c.Seeders)
	imapPort, err1 := freePortOn(ip)
	btPort, err2 := freePortOn(ip)
	if err := errors.Join(err1, err2); err != nil {
		return fail(err)
	}
	imapAddr := fmt.Sprintf("%s:%d", ip, imapPort)
	var quoted []string
	for _, s := range sources {
		quoted = append(quoted, strconv.Quote(s))
	}
	cfg := fmt.Sprintf("data = %q\n\n[smtp]\nlisten = \"\"\n\n[imap]\nlisten = %q\n\n[http]\nlisten = \"\"\n\n"+
		"[bittorrent]\nlisten = \"%s:%d\"\n\n[[follow]]\nlist = %q\nkey = %q\nsources = [%s]\n",
		data, imapAddr, ip, btPort, c.List, o.Key, strings.Join(quoted, ", "))
	cfgPath := filepath.Join(dir, "mailswarm.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return fail(err)
	}

	t0 := time.Now()
	var err error
	r.Follow, err = timed(ctx, nil, filepath.Join(dir, "follow"), bin, "follow", "--data", data, "--once", o.Spec)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(log, "bench: follow --once done in %.1f s; serve on the mirror, SELECT %s\n", r.Follow.Wall.Seconds(), c.List)
	serve, err := startLogged(ctx, filepath.Join(dir, "serve.err"), bin, "serve", "--config", cfgPath)
	if err != nil {
		return fail(err)
	}
	defer stopGroup(serve)
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		n, err := imapSelectExists(imapAddr, c.List)
		if err == nil {
			r.Exists = n
			if n == o.Messages {
				r.Ready = time.Since(t0)
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			b, _ := os.ReadFile(filepath.Join(dir, "serve.err"))
			return fail(fmt.Errorf("SELECT %s on the mirror: EXISTS %d, want %d (%v): %s", c.List, r.Exists, o.Messages, err, lastLines(b, 3)))
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", serve.Process.Pid)); err == nil {
		r.ServeKiB = procStatusField(b, "VmHWM:")
	}
	if out, err := exec.CommandContext(ctx, bin, "follow", "status", "--data", data, "--list", c.List, "--json").Output(); err == nil {
		r.BytesDown = jsonSum(out, "bytes_down")
		r.TorrentsOpened = int(jsonSum(out, "torrents_opened"))
		var st struct {
			Follow struct {
				LastSync *syncFigures `json:"last_sync"`
			} `json:"follow"`
			LastSync *syncFigures `json:"last_sync"`
		}
		if json.Unmarshal(out, &st) == nil {
			r.Sync = st.LastSync
			if r.Sync == nil {
				r.Sync = st.Follow.LastSync
			}
		}
	}
	return r
}

// syncFigures is swarm.SyncFigures as follow status prints it.
type syncFigures struct {
	Bytes           int64   `json:"bytes"`
	DownloadSeconds float64 `json:"download_seconds"`
	InstallSeconds  float64 `json:"install_seconds"`
	Seconds         float64 `json:"seconds"`
}

// imapSelectExists logs in (loopback: any name and password), selects
// mailbox and returns its EXISTS.
func imapSelectExists(addr, mailbox string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	ic := &idleConn{c: c, r: bufio.NewReader(c)}
	if _, err := ic.r.ReadString('\n'); err != nil {
		return 0, err
	}
	if _, err := ic.cmd("a LOGIN bench bench"); err != nil {
		return 0, err
	}
	lines, err := ic.cmd("b SELECT " + mailbox)
	if err != nil {
		return 0, err
	}
	for _, l := range lines {
		if m := idleExistsRE.FindStringSubmatch(l); m != nil {
			return strconv.Atoi(m[1])
		}
	}
	return 0, errors.New("SELECT answered no EXISTS")
}

// jsonSum is the sum of every number named key anywhere in the JSON
// document b, or -1 when there is none: `follow status --json` is being
// written, so its shape is not relied on.
func jsonSum(b []byte, key string) int64 {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return -1
	}
	sum, found := int64(0), false
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if n, ok := e.(float64); ok && k == key {
					sum += int64(n)
					found = true
					continue
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	if !found {
		return -1
	}
	return sum
}

// ---- libtorrent beside it ----

// ltMirrorRE matches bench/lt_mirror.py's last line.
var ltMirrorRE = regexp.MustCompile(`downloaded (\d+) bytes of (\d+) torrents in ([0-9.]+)s`)

// runLTMirror fetches the .torrent of each torrent from the first seeder's
// HTTP (as served: its web seed in url-list), then lt_mirror.py downloads
// them all at once with libtorrent's default settings from the seeders'
// BitTorrent listeners and HTTP web seeds, and the files are checked
// against the manifest's sha256.
func runLTMirror(ctx context.Context, root, list string, ts []mirrorTorrent, st swarmStatusJSON, ss []*seeder, dir string) *ltMirrorResult {
	r := &ltMirrorResult{Run: measurement{RSSKiB: -1}}
	fail := func(err error) *ltMirrorResult { r.Err = err; return r }
	if out, err := exec.CommandContext(ctx, ltPython, "-c", "import libtorrent").CombinedOutput(); err != nil {
		return fail(fmt.Errorf("%s cannot import libtorrent (apt-get install python3-libtorrent): %v: %s", ltPython, err, lastLines(out, 2)))
	}
	tdir := filepath.Join(dir, "torrents")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		return fail(err)
	}
	client := &http.Client{Timeout: time.Minute}
	for _, t := range ts {
		if err := httpGetFile(ctx, client, "http://"+ss[0].http+"/lists/"+list+"/torrents/"+t.Name+".torrent",
			filepath.Join(tdir, t.Name+".torrent")); err != nil {
			return fail(err)
		}
	}
	out := filepath.Join(dir, "out")
	args := []string{filepath.Join(root, "bench", "lt_mirror.py"), "--torrents", tdir, "--out", out, "--timeout", "3600"}
	for _, s := range ss {
		args = append(args, "--peer", s.bt, "--web-seed", "http://"+s.http+"/lists/"+list+"/packs/")
	}
	var err error
	r.Run, err = timed(ctx, nil, filepath.Join(dir, "lt"), ltPython, args...)
	if err != nil {
		return fail(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "lt.out"))
	m := ltMirrorRE.FindSubmatch(b)
	if m == nil {
		return fail(fmt.Errorf("lt_mirror.py: no result line: %s", lastLines(b, 3)))
	}
	r.Bytes, _ = strconv.ParseInt(string(m[1]), 10, 64)
	r.Seconds, _ = strconv.ParseFloat(string(m[3]), 64)
	sums := map[string][32]byte{}
	for _, p := range st.Packs {
		if b, err := hex.DecodeString(p.SHA256); err == nil && len(b) == 32 {
			sums[p.Name] = [32]byte(b)
		}
	}
	for _, t := range ts {
		d := out
		if t.Kind == "bundle" {
			d = filepath.Join(out, t.Name)
		}
		if err := verifyFiles(d, t.Files, sums); err != nil {
			return fail(err)
		}
	}
	return r
}

func httpGetFile(ctx context.Context, client *http.Client, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return os.WriteFile(path, b, 0o644)
}

// ---- the table ----

func (r mirrorReport) render() string {
	var b strings.Builder
	what := r.Epoch
	if r.Synthetic != "" {
		what = r.Synthetic
	}
	fmt.Fprintf(&b, "\nMirror, %s, %d CPUs: a new mirror of %s (tip %.12s, %d commits)\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), what, r.Tip, r.Commits)
	b.WriteString("| side | step | seconds | clone+index / this | clone / this | MiB down | MiB/s | peak RSS MiB | messages |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	var clone, both float64
	if p := r.PI; p != nil {
		const side = "lore mirror today"
		if p.Err != nil && p.Clone.Wall == 0 {
			fmt.Fprintf(&b, "| %s | git clone --mirror from git daemon + public-inbox-index | failed: %v | | | | | | |\n", side, oneLine(p.Err))
		} else {
			clone = p.Clone.Wall.Seconds()
			fmt.Fprintf(&b, "| %s | git clone --mirror from local git daemon | %.1f | | 1.00× | %s | %s | %s | |\n",
				side, clone, kibMiB(p.CloneKiB), kibRate(p.CloneKiB, clone), mib(p.Clone.RSSKiB))
			if p.Err != nil {
				fmt.Fprintf(&b, "| %s | public-inbox-index (-L full, fsync) | failed: %v | | | | | | |\n", side, oneLine(p.Err))
			} else {
				idx := p.Index.Wall.Seconds()
				both = clone + idx
				fmt.Fprintf(&b, "| %s | public-inbox-index (-L full, fsync) | %.1f | | | | | %s | %d |\n",
					side, idx, mib(p.Index.RSSKiB), p.Messages)
				fmt.Fprintf(&b, "| %s | **clone + index** | **%.1f** | 1.00× | | | | %s | %d |\n",
					side, both, mib(max(p.Clone.RSSKiB, p.Index.RSSKiB)), p.Messages)
			}
		}
	}
	ratio := func(base, this float64) string {
		if base <= 0 || this <= 0 {
			return ""
		}
		return fmt.Sprintf("%.2f×", base/this)
	}
	var oursRate, ltRate float64
	if o := r.Ours; o != nil {
		step := fmt.Sprintf("follow --once from %d seeders, serve, SELECT (IMAP-ready)", r.Seeders)
		switch f := o.Follow; {
		case o.Err != nil && f == nil:
			fmt.Fprintf(&b, "| mailswarm | setup | failed: %v | | | | | | |\n", oneLine(o.Err))
		case f == nil:
		case f.NotBuilt:
			fmt.Fprintf(&b, "| mailswarm | %s | not built yet | | | | | | %d |\n", step, o.Messages)
		case f.Err != nil:
			fmt.Fprintf(&b, "| mailswarm | %s | failed: %v | | | | | | %d |\n", step, oneLine(f.Err), o.Messages)
		default:
			s := f.Ready.Seconds()
			down, rate := "n/a", "n/a"
			switch {
			case f.Sync != nil && f.Sync.DownloadSeconds > 0:
				// The download's own rate: downloads run ahead of the
				// installs, so this is the network side, as libtorrent's.
				oursRate = mibOf(f.Sync.Bytes) / f.Sync.DownloadSeconds
				down, rate = fmt.Sprintf("%.1f", mibOf(f.Sync.Bytes)), fmt.Sprintf("%.1f", oursRate)
			case f.BytesDown >= 0:
				oursRate = mibOf(f.BytesDown) / f.Follow.Wall.Seconds()
				down, rate = fmt.Sprintf("%.1f", mibOf(f.BytesDown)), fmt.Sprintf("%.1f (whole sync)", oursRate)
			}
			vsBoth := ratio(both, s)
			if vsBoth != "" {
				vsBoth = "**" + vsBoth + "**"
			}
			fmt.Fprintf(&b, "| mailswarm | %s | **%.1f** (follow %.1f) | %s | %s | %s | %s | %s | %d |\n",
				step, s, f.Follow.Wall.Seconds(), vsBoth, ratio(clone, s), down, rate,
				mib(max(f.Follow.RSSKiB, f.ServeKiB)), f.Exists)
		}
		if lt := o.LT; lt != nil {
			ltStep := fmt.Sprintf("libtorrent: the same %d torrents from the %d seeders (download only)", len(o.Torrents), r.Seeders)
			if lt.Err != nil {
				fmt.Fprintf(&b, "| libtorrent | %s | failed: %v | | | | | | |\n", ltStep, oneLine(lt.Err))
			} else {
				ltRate = mibOf(lt.Bytes) / lt.Seconds
				fmt.Fprintf(&b, "| libtorrent | %s | %.1f (process %.1f) | %s | %s | %.1f | %.1f | %s | |\n",
					ltStep, lt.Seconds, lt.Run.Wall.Seconds(), ratio(both, lt.Seconds), ratio(clone, lt.Seconds),
					mibOf(lt.Bytes), ltRate, mib(lt.Run.RSSKiB))
			}
		}
		if oursRate > 0 && ltRate > 0 {
			fmt.Fprintf(&b, "\nDownload rate, mailswarm follow / libtorrent from the same seeders: **%.2f×**\n", oursRate/ltRate)
		}
		if f := o.Follow; f != nil && f.Sync != nil && f.Sync.Bytes > 0 {
			fmt.Fprintf(&b, "\nThe follower's own figures: %.1f MiB downloaded in %.1f s from the start of the sync; "+
				"installed (verify, link, index) in %.1f s: **%.3f s per MiB**; the whole sync %.1f s.\n",
				mibOf(f.Sync.Bytes), f.Sync.DownloadSeconds, f.Sync.InstallSeconds,
				f.Sync.InstallSeconds/mibOf(f.Sync.Bytes), f.Sync.Seconds)
		}
		if f := o.Follow; f != nil && f.Err == nil && !f.NotBuilt {
			var years, months, days, slices int
			for _, t := range o.Torrents {
				switch {
				case t.Year:
					years++
				case t.Kind == "bundle":
					months++
				case t.Kind == "day":
					days++
				default:
					slices++
				}
			}
			fmt.Fprintf(&b, "\nLate joiner: **%d torrents opened** (follow status torrents_opened) for the manifest's %d: "+
				"%d years + %d months + %d days + %d slices; synced and IMAP-ready in **%.1f s** (follow --once %.1f s).\n",
				f.TorrentsOpened, len(o.Torrents), years, months, days, slices, f.Ready.Seconds(), f.Follow.Wall.Seconds())
		}
		if o.Err == nil || o.Key != "" {
			origin := "prepared"
			if o.Cached {
				origin = "cached"
			}
			seeders := fmt.Sprintf("%d copies of the origin", r.Seeders)
			if o.MirrorSeeders {
				seeders = fmt.Sprintf("a copy of the origin and %d mirrors following it", r.Seeders-1)
			}
			fmt.Fprintf(&b, "\nOrigin (%s, untimed: %.0f s): %d messages, %d torrents to fetch (%.1f MiB). Seeders: %s. Follow string:\n\n    %s\n",
				origin, o.Prepare.Seconds(), o.Messages, len(o.Torrents), mibOf(o.Bytes), seeders, o.Spec)
		}
	}
	return b.String()
}

func kibMiB(kib int64) string {
	if kib < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", float64(kib)/1024)
}

func kibRate(kib int64, s float64) string {
	if kib < 0 || s <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", float64(kib)/1024/s)
}

// oneLine is err's text on one line, for a table cell.
func oneLine(err error) string {
	return strings.ReplaceAll(strings.ReplaceAll(err.Error(), "\n", " "), "|", "/")
}

package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mailswarm/archive"
	"mailswarm/internal/peertest"
	"mailswarm/swarm"
)

// swarmConfig is what the swarm benchmark was asked to do.
type swarmConfig struct {
	MiB            int // day packs of the throughput list, at least
	Repeat         int
	CutN           int // messages in the one open day that is cut
	Days           int // days (one message each) of the RSS list
	SkipThroughput bool
	SkipCut        bool
	SkipRSS        bool
	Idle           time.Duration // how long the measured node idles before it reports
	Shared         string
	Keep           bool
}

func swarmMain(args []string) error {
	fs := flag.NewFlagSet("swarm", flag.ContinueOnError)
	var c swarmConfig
	fs.IntVar(&c.MiB, "mib", 512, "MiB of day packs (one month bundle) for the throughput runs, at least")
	fs.IntVar(&c.Repeat, "repeat", 3, "downloads per seeder, alternating")
	fs.IntVar(&c.CutN, "cut-n", 10000, "messages (gen_mbox.py) in the open day that is cut and sealed")
	fs.IntVar(&c.Days, "days", 5000, "days (one message each) of the list whose node is measured")
	fs.BoolVar(&c.SkipThroughput, "skip-throughput", false, "do not measure seeding throughput")
	fs.BoolVar(&c.SkipCut, "skip-cut", false, "do not time the slice cut and day seal")
	fs.BoolVar(&c.SkipRSS, "skip-rss", false, "do not measure the node's memory with many torrents")
	fs.StringVar(&c.Shared, "shared", "", "shared directory (default: $MAILSWARM_SHARED or ../shared)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the work directory")
	fs.DurationVar(&c.Idle, "idle", 5*time.Second, "how long the measured node idles (CPU measured) before it reports")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("swarm: unexpected arguments %q", fs.Args())
	}
	if c.MiB <= 0 || c.Repeat <= 0 || c.CutN <= 0 || c.Days <= 0 {
		return errors.New("swarm: -mib, -repeat, -cut-n and -days must be positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := runSwarmBench(ctx, c, os.Stderr)
	fmt.Print(rep.render())
	return err
}

// swarmReport is everything one run measured.
type swarmReport struct {
	Throughput *throughputReport
	Cut        *cutReport
	RSS        *rssReport
}

func (r swarmReport) render() string {
	var b strings.Builder
	if r.Throughput != nil {
		b.WriteString(r.Throughput.render())
	}
	if r.Cut != nil {
		b.WriteString(r.Cut.render())
	}
	if r.RSS != nil {
		b.WriteString(r.RSS.render())
	}
	return b.String()
}

// runSwarmBench builds the fixtures under one work directory and runs
// every part not skipped. A part that fails stops the run; the parts done
// before it are in the report.
func runSwarmBench(ctx context.Context, c swarmConfig, log io.Writer) (swarmReport, error) {
	var rep swarmReport
	root, err := peertest.ModuleRoot()
	if err != nil {
		return rep, err
	}
	shared, err := sharedDir(c.Shared, root)
	if err != nil {
		return rep, err
	}
	work, cleanup, err := workDir("mailswarm-bench-swarm-", c.Keep, log)
	if err != nil {
		return rep, err
	}
	defer cleanup()
	gen := filepath.Join(shared, "peers", "gen_mbox.py")
	if !c.SkipThroughput {
		lt := filepath.Join(root, "internal", "peertest", "bittorrent", "lt_tool.py")
		if _, err := os.Stat(lt); err != nil {
			lt = filepath.Join(shared, "peers", "bittorrent", "lt_tool.py")
		}
		rep.Throughput, err = runThroughput(ctx, c, gen, lt, filepath.Join(work, "throughput"), log)
		if err != nil {
			return rep, fmt.Errorf("throughput: %w", err)
		}
	}
	if !c.SkipCut {
		rep.Cut, err = runCut(ctx, c, gen, filepath.Join(work, "cut"), log)
		if err != nil {
			return rep, fmt.Errorf("cut: %w", err)
		}
	}
	if !c.SkipRSS {
		rep.RSS, err = runRSS(ctx, c, gen, filepath.Join(work, "rss"), log)
		if err != nil {
			return rep, fmt.Errorf("rss: %w", err)
		}
	}
	return rep, nil
}

// genMessages runs gen_mbox.py for n messages into dir and returns them.
func genMessages(ctx context.Context, gen, dir string, n int, extra ...string) ([][]byte, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, fmt.Sprintf("gen-%d.mbox", n))
	args := append([]string{gen, out, "-n", strconv.Itoa(n)}, extra...)
	if b, err := exec.CommandContext(ctx, "python3", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("gen_mbox.py -n %d: %w: %s", n, err, lastLines(b, 5))
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	msgs, err := splitMboxrd(f)
	if err != nil {
		return nil, err
	}
	if len(msgs) != n {
		return nil, fmt.Errorf("gen_mbox.py -n %d made %d messages", n, len(msgs))
	}
	return msgs, nil
}

// newBenchList makes a fresh archive in dir (no fsync: fixtures only) with
// the bench list.
func newBenchList(dir string) (*archive.Archive, *archive.List, error) {
	a, err := archive.Open(&archive.Options{Dir: dir, NoSync: true})
	if err != nil {
		return nil, nil, err
	}
	l, err := a.Create(benchList, benchAddr)
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, l, nil
}

// addArrived archives raws in order, message i arriving at at[i], in
// batches of batch.
func addArrived(ctx context.Context, l *archive.List, raws [][]byte, at []time.Time, batch int) error {
	for i := 0; i < len(raws); i += batch {
		j := min(i+batch, len(raws))
		ps := make([]*archive.Prepared, 0, j-i)
		for k := i; k < j; k++ {
			ps = append(ps, archive.Prepare(raws[k], at[k]))
		}
		res, err := l.AddPrepared(ctx, ps)
		if err != nil {
			return err
		}
		if res.Added != len(ps) {
			return fmt.Errorf("archived %d of %d messages (%d duplicates)", res.Added, len(ps), res.Duplicates)
		}
	}
	return nil
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func mibOf(n int64) float64 { return float64(n) / (1 << 20) }

// ---- 1. throughput ----

// throughputReport is the downloads of one month bundle from each seeder.
type throughputReport struct {
	Bundle   string
	Files    int
	Bytes    int64
	Messages int
	Build    time.Duration // archive and publish the fixture
	Runs     []transferRun
}

// transferRun is one download by the libtorrent leecher.
type transferRun struct {
	Seeder string // "mailswarm" or "libtorrent"
	Run    int
	LTRate float64 // MiB/s lt_tool reports (first piece request to done)
	Wall   time.Duration
	Err    error
}

// ltPython is the interpreter python3-libtorrent is installed for
// (Debian's, whatever python3 comes first in PATH).
const ltPython = "/usr/bin/python3"

const (
	seederOurs = "mailswarm (anacrolix)"
	seederLT   = "libtorrent"
	month      = "2026-10"
)

func runThroughput(ctx context.Context, c swarmConfig, gen, ltTool, dir string, log io.Writer) (*throughputReport, error) {
	if out, err := exec.CommandContext(ctx, ltPython, "-c", "import libtorrent").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s cannot import libtorrent (apt-get install python3-libtorrent): %v: %s",
			ltPython, err, lastLines(out, 2))
	}
	t0 := time.Now()
	data := filepath.Join(dir, "data")
	a, l, err := newBenchList(data)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	n, err := buildAttachmentMonth(ctx, l, gen, dir, c.MiB, log)
	if err != nil {
		return nil, err
	}
	o, err := swarm.NewOrigin(l, &swarm.OriginOptions{NoSync: true})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "bench: publishing %s\n", month)
	res, err := o.Publish(mustTime("2026-11-15T00:00:00Z"))
	if err != nil {
		return nil, err
	}
	m := res.Manifest
	if len(m.Bundles) != 1 {
		return nil, fmt.Errorf("publish made %d bundles, want 1", len(m.Bundles))
	}
	b := m.Bundles[0]
	rep := &throughputReport{Bundle: b.Name, Files: len(b.Files), Bytes: b.Size, Messages: n, Build: time.Since(t0)}
	if b.Size < int64(c.MiB)<<20 {
		return nil, fmt.Errorf("bundle %s is %.1f MiB, under -mib %d", b.Name, mibOf(b.Size), c.MiB)
	}
	sums := map[string][32]byte{}
	for _, p := range m.Packs {
		sums[p.File] = p.SHA256
	}
	packs := filepath.Join(o.Dir(), "packs")
	torrent := filepath.Join(o.Dir(), "torrents", b.Name+".torrent")

	// libtorrent seeds the same files: hard links in PARENT/NAME/ (same
	// inodes, so the same page cache).
	ltParent := filepath.Join(dir, "lt-seed")
	if err := os.MkdirAll(filepath.Join(ltParent, b.Name), 0o755); err != nil {
		return nil, err
	}
	for _, f := range b.Files {
		if err := os.Link(filepath.Join(packs, f), filepath.Join(ltParent, b.Name, f)); err != nil {
			return nil, err
		}
	}
	// Untimed warm-up: both seeders read from the page cache.
	for _, f := range b.Files {
		if err := readAll(filepath.Join(packs, f)); err != nil {
			return nil, err
		}
	}

	fmt.Fprintf(log, "bench: starting the seeders\n")
	ours, err := startNodeChild(ctx, data, filepath.Join(dir, "node.log"), 0)
	if err != nil {
		return nil, err
	}
	defer ours.stop()
	// The day packs, the bundle and the list's rendezvous torrent
	// (gossip between nodes: swarm/gossip_rendezvous.go).
	if want := len(m.Packs) + 1 + 1; ours.Info.Torrents != want {
		return nil, fmt.Errorf("node seeds %d torrents, want %d", ours.Info.Torrents, want)
	}
	ltSeed, ltAddr, err := startLTSeed(ctx, ltTool, torrent, ltParent, dir)
	if err != nil {
		return nil, err
	}
	defer ltSeed.stop()

	for i := range c.Repeat {
		for _, s := range []struct{ name, addr string }{{seederOurs, ours.Info.Addr}, {seederLT, ltAddr}} {
			out := filepath.Join(dir, fmt.Sprintf("get-%d-%s", i+1, strings.Fields(s.name)[0]))
			fmt.Fprintf(log, "bench: libtorrent downloads %s from %s (run %d)\n", b.Name, s.name, i+1)
			r := ltGet(ctx, ltTool, torrent, s.addr, out)
			r.Seeder, r.Run = s.name, i+1
			if r.Err == nil {
				r.Err = verifyFiles(filepath.Join(out, b.Name), b.Files, sums)
			}
			os.RemoveAll(out)
			syscall.Sync()
			rep.Runs = append(rep.Runs, r)
			if err := ctx.Err(); err != nil {
				return rep, err
			}
		}
	}
	var errs []error
	for _, r := range rep.Runs {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s run %d: %w", r.Seeder, r.Run, r.Err))
		}
	}
	return rep, errors.Join(errs...)
}

// buildAttachmentMonth archives, over the 30 days of October 2026,
// gen_mbox.py's mail plus patch-style messages each carrying 1 MiB of
// random bytes as a base64 attachment, enough for about mib MiB of day
// packs (base64 of random bytes deflates back to about its raw size). It
// returns the number of messages.
func buildAttachmentMonth(ctx context.Context, l *archive.List, gen, dir string, mib int, log io.Writer) (int, error) {
	const days = 30
	nAtt := mib*103/100 + 1 // a few per cent of margin over the pack headers
	nGen := max(nAtt*4, 300)
	fmt.Fprintf(log, "bench: archiving %d gen_mbox.py messages and %d with 1 MiB attachments over %s\n", nGen, nAtt, month)
	plain, err := genMessages(ctx, gen, dir, nGen, "--start", strconv.FormatInt(mustTime(month+"-01T00:00:00Z").Unix(), 10), "--days", strconv.Itoa(days))
	if err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewChaCha8([32]byte{'m', 'a', 'i', 'l', 's', 'w', 'a', 'r', 'm'}))
	start := mustTime(month + "-01T00:00:00Z")
	for d := range days {
		var raws [][]byte
		var at []time.Time
		for i := d; i < nGen; i += days {
			raws = append(raws, plain[i])
		}
		for i := d; i < nAtt; i += days {
			raws = append(raws, attachmentMessage(rng, i, start.AddDate(0, 0, d)))
		}
		step := 24 * time.Hour / time.Duration(len(raws)+1)
		for i := range raws {
			at = append(at, start.AddDate(0, 0, d).Add(time.Duration(i+1)*step))
		}
		if err := addArrived(ctx, l, raws, at, 64); err != nil {
			return 0, err
		}
	}
	return nGen + nAtt, nil
}

// attachmentMessage is a patch-style message with 1 MiB of random bytes
// attached in base64.
func attachmentMessage(rng *rand.Rand, i int, day time.Time) []byte {
	blob := make([]byte, 1<<20)
	for j := 0; j < len(blob); j += 8 {
		v := rng.Uint64()
		for k := range 8 {
			blob[j+k] = byte(v >> (8 * k))
		}
	}
	enc := base64.StdEncoding.EncodeToString(blob)
	var b strings.Builder
	fmt.Fprintf(&b, "From: Firmware Bot %d <fw%d@example.org>\nTo: %s\nSubject: [PATCH %d/1] firmware: update blob for board %d\n"+
		"Date: %s\nMessage-ID: <fw-%d@bench.example.org>\nMIME-Version: 1.0\n"+
		"Content-Type: multipart/mixed; boundary=\"=-blob-%d\"\n\n"+
		"--=-blob-%d\nContent-Type: text/plain; charset=utf-8\n\n"+
		"This updates the firmware image for board %d.\nThe blob is attached; checksums are in the changelog.\n\n"+
		"--=-blob-%d\nContent-Type: application/octet-stream; name=\"board-%d.bin\"\n"+
		"Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"board-%d.bin\"\n\n",
		i%17, i%17, benchAddr, i, i, day.Add(time.Hour).Format(time.RFC1123Z), i, i, i, i, i, i, i)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteByte('\n')
		enc = enc[76:]
	}
	b.WriteString(enc)
	fmt.Fprintf(&b, "\n--=-blob-%d--\n", i)
	return []byte(b.String())
}

func readAll(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// verifyFiles checks that dir holds every file with the manifest's sha256.
func verifyFiles(dir string, files []string, sums map[string][32]byte) error {
	for _, f := range files {
		fh, err := os.Open(filepath.Join(dir, f))
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		h := sha256.New()
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return fmt.Errorf("verify %s: %w", f, err)
		}
		if [32]byte(h.Sum(nil)) != sums[f] {
			return fmt.Errorf("verify %s: sha256 differs from the manifest", f)
		}
	}
	return nil
}

// ltRateRE matches lt_tool.py get's last line.
var ltRateRE = regexp.MustCompile(`downloaded (\d+) bytes in ([0-9.]+)s .*= ([0-9.]+) MiB/s`)

// ltGet downloads torrent from peer into out with lt_tool.py get, with
// libtorrent's default settings.
func ltGet(ctx context.Context, ltTool, torrent, peer, out string) transferRun {
	var r transferRun
	cmd := exec.CommandContext(ctx, ltPython, ltTool, "get", "--torrent", torrent,
		"--peer", peer, "--out", out, "--timeout", "600")
	cmd.WaitDelay = 10 * time.Second
	t0 := time.Now()
	b, err := cmd.CombinedOutput()
	r.Wall = time.Since(t0)
	if err != nil {
		r.Err = fmt.Errorf("lt_tool.py get: %w: %s", err, lastLines(b, 3))
		return r
	}
	mm := ltRateRE.FindSubmatch(b)
	if mm == nil {
		r.Err = fmt.Errorf("lt_tool.py get: no rate line: %s", lastLines(b, 3))
		return r
	}
	r.LTRate, _ = strconv.ParseFloat(string(mm[3]), 64)
	return r
}

// child is a process the benchmark started, in its own process group.
type child struct {
	cmd   *exec.Cmd
	stdin io.Closer
	done  chan struct{}
	// a swarm-node child's report and the time from exec to "loaded"
	Info   nodeInfo
	Loaded time.Duration
}

// stop ends the child: closing its stdin asks a node to stop, then
// SIGTERM, then SIGKILL to its process group.
func (c *child) stop() {
	if c.stdin != nil {
		c.stdin.Close()
	}
	select {
	case <-c.done:
		return
	case <-time.After(5 * time.Second):
	}
	syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	}
}

// startLTSeed runs lt_tool.py seed (libtorrent defaults) over parent on a
// free port and waits until it has checked the files.
func startLTSeed(ctx context.Context, ltTool, torrent, parent, dir string) (*child, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	ready := filepath.Join(dir, "lt-seed.ready")
	logf, err := os.Create(filepath.Join(dir, "lt-seed.log"))
	if err != nil {
		return nil, "", err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, ltPython, ltTool, "seed", "--torrent", torrent,
		"--data", parent, "--port", strconv.Itoa(port), "--seconds", "7200", "--ready", ready)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("lt_tool.py seed: %w", err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(c.done) }()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if _, err := os.Stat(ready); err == nil {
			return c, fmt.Sprintf("127.0.0.1:%d", port), nil
		}
		select {
		case <-c.done:
			b, _ := os.ReadFile(logf.Name())
			return nil, "", fmt.Errorf("lt_tool.py seed exited: %s", lastLines(b, 3))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, "", errors.New("lt_tool.py seed: not ready after 5 minutes")
		}
	}
}

func (r *throughputReport) render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nSwarm seeding throughput, %s, %d CPUs: libtorrent (lt_tool.py get, default settings) downloads bundle %s "+
		"(%d day packs, %.1f MiB, %d messages; fixture built in %.0f s) over loopback TCP\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), r.Bundle, r.Files, mibOf(r.Bytes), r.Messages, r.Build.Seconds())
	b.WriteString("| run | seeder | MiB/s (libtorrent's count) | wall s | MiB/s (wall) | sha256 |\n")
	b.WriteString("|---:|---|---:|---:|---:|---|\n")
	for _, x := range r.Runs {
		if x.Err != nil && x.LTRate == 0 {
			fmt.Fprintf(&b, "| %d | %s | failed | %.1f | | %v |\n", x.Run, x.Seeder, x.Wall.Seconds(), x.Err)
			continue
		}
		ok := "ok"
		if x.Err != nil {
			ok = x.Err.Error()
		}
		fmt.Fprintf(&b, "| %d | %s | %.1f | %.2f | %.1f | %s |\n", x.Run, x.Seeder, x.LTRate, x.Wall.Seconds(),
			mibOf(r.Bytes)/x.Wall.Seconds(), ok)
	}
	med := func(seeder string, wall bool) float64 {
		var v []float64
		for _, x := range r.Runs {
			if x.Seeder == seeder && x.Err == nil {
				if wall {
					v = append(v, mibOf(r.Bytes)/x.Wall.Seconds())
				} else {
					v = append(v, x.LTRate)
				}
			}
		}
		return median(v)
	}
	b.WriteString("\n| seeder | median MiB/s (libtorrent's count) | median MiB/s (wall) |\n|---|---:|---:|\n")
	for _, s := range []string{seederOurs, seederLT} {
		fmt.Fprintf(&b, "| %s | %.1f | %.1f |\n", s, med(s, false), med(s, true))
	}
	if lt := med(seederLT, false); lt > 0 {
		fmt.Fprintf(&b, "| **ours / libtorrent** | **%.2f** | **%.2f** |\n", med(seederOurs, false)/lt,
			med(seederOurs, true)/med(seederLT, true))
	}
	return b.String()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ---- 2. cutting a busy day ----

// cutReport is the timed publishes of one busy open day, and git
// pack-objects over the same commits.
type cutReport struct {
	Messages int
	Rows     []cutRow
}

type cutRow struct {
	Step    string
	Commits int
	Objects int
	Bytes   int64
	Wall    time.Duration
}

func runCut(ctx context.Context, c swarmConfig, gen, dir string, log io.Writer) (*cutReport, error) {
	day := mustTime("2026-11-20T00:00:00Z")
	msgs, err := genMessages(ctx, gen, dir, c.CutN, "--start", strconv.FormatInt(day.Unix(), 10), "--days", "1")
	if err != nil {
		return nil, err
	}
	a, l, err := newBenchList(filepath.Join(dir, "data"))
	if err != nil {
		return nil, err
	}
	defer a.Close()
	fmt.Fprintf(log, "bench: archiving %d messages arriving on %s\n", len(msgs), day.Format("2006-01-02"))
	at := make([]time.Time, len(msgs))
	step := 24 * time.Hour / time.Duration(len(msgs)+1)
	for i := range at {
		at[i] = day.Add(time.Duration(i+1) * step)
	}
	if err := addArrived(ctx, l, msgs, at, 1000); err != nil {
		return nil, err
	}
	// The timed publishes fsync, as the product does.
	o, err := swarm.NewOrigin(l, nil)
	if err != nil {
		return nil, err
	}
	rep := &cutReport{Messages: len(msgs)}
	fmt.Fprintf(log, "bench: cutting the open day, then sealing it\n")
	for _, s := range []struct {
		step string
		now  time.Time
		kind string
	}{
		{"Publish: cut the open day as one slice", day.Add(23*time.Hour + 59*time.Minute), swarm.KindSlice},
		{"Publish next day: seal the day pack (from the slice)", day.Add(24*time.Hour + 30*time.Minute), swarm.KindDay},
	} {
		t0 := time.Now()
		res, err := o.Publish(s.now)
		wall := time.Since(t0)
		if err != nil {
			return rep, err
		}
		ps := res.Manifest.Packs
		if len(ps) != 1 || ps[0].Kind != s.kind {
			return rep, fmt.Errorf("%s: manifest has %d packs, want one %s", s.step, len(ps), s.kind)
		}
		rep.Rows = append(rep.Rows, cutRow{s.step, ps[0].Commits, ps[0].Objects, ps[0].Size, wall})
	}
	tip, err := l.Tip(0)
	if err != nil {
		return rep, err
	}
	git := filepath.Join(l.Git().Dir(), "git", "0.git")
	for _, extra := range []string{"", " --no-reuse-object"} {
		script := fmt.Sprintf("git -C %q rev-list --objects %s | git -C %q pack-objects --stdout --window=0 --depth=0%s",
			git, tip, git, extra)
		var cw countWriter
		cmd := exec.CommandContext(ctx, "sh", "-c", script)
		cmd.Stdout = &cw
		t0 := time.Now()
		b, err := cmd.StderrPipe()
		if err != nil {
			return rep, err
		}
		if err := cmd.Start(); err != nil {
			return rep, err
		}
		errText, _ := io.ReadAll(b)
		if err := cmd.Wait(); err != nil {
			return rep, fmt.Errorf("git pack-objects: %w: %s", err, lastLines(errText, 3))
		}
		rep.Rows = append(rep.Rows, cutRow{"git pack-objects --window=0 --depth=0" + extra + " (of rev-list --objects TIP)",
			rep.Rows[1].Commits, rep.Rows[1].Objects, cw.n, time.Since(t0)})
	}
	return rep, nil
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

func (r *cutReport) render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nSwarm cut of one busy day, %s, %d CPUs: %d gen_mbox.py messages arriving in one UTC day (fsync on)\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), r.Messages)
	b.WriteString("| step | commits | objects | pack MiB | seconds | MiB/s | commits/s |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range r.Rows {
		s := x.Wall.Seconds()
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f | %.2f | %.1f | %.0f |\n", x.Step, x.Commits, x.Objects,
			mibOf(x.Bytes), s, mibOf(x.Bytes)/s, float64(x.Commits)/s)
	}
	return b.String()
}

// ---- 3. a node with thousands of torrents ----

// rssReport is the node's footprint with a long history published, beside
// the same node with nothing published.
type rssReport struct {
	Days, Packs, Bundles int
	PackBytes            int64
	Publish              time.Duration
	Nodes                []rssRow
}

type rssRow struct {
	Label string
	Wall  time.Duration // exec to loaded, as the parent saw it
	Info  nodeInfo
}

func runRSS(ctx context.Context, c swarmConfig, gen, dir string, log io.Writer) (*rssReport, error) {
	start := mustTime("2012-01-01T00:00:00Z")
	msgs, err := genMessages(ctx, gen, dir, c.Days, "--start", strconv.FormatInt(start.Unix(), 10), "--days", strconv.Itoa(c.Days))
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	a, l, err := newBenchList(data)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	fmt.Fprintf(log, "bench: archiving %d messages, one a day from %s\n", len(msgs), start.Format("2006-01-02"))
	at := make([]time.Time, len(msgs))
	for i := range at {
		at[i] = start.AddDate(0, 0, i).Add(12 * time.Hour)
	}
	if err := addArrived(ctx, l, msgs, at, 500); err != nil {
		return nil, err
	}
	o, err := swarm.NewOrigin(l, nil) // fsync, as the product publishes
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "bench: publishing %d days\n", len(msgs))
	t0 := time.Now()
	res, err := o.Publish(mustTime("2026-11-24T12:00:00Z"))
	rep := &rssReport{Days: len(msgs), Publish: time.Since(t0)}
	if err != nil {
		return nil, err
	}
	rep.Packs, rep.Bundles = len(res.Manifest.Packs), len(res.Manifest.Bundles)
	for _, p := range res.Manifest.Packs {
		rep.PackBytes += p.Size
	}
	a.Close()

	empty := filepath.Join(dir, "empty")
	ea, _, err := newBenchList(empty)
	if err != nil {
		return nil, err
	}
	ea.Close()
	for _, x := range []struct{ label, data string }{{"list with nothing published", empty}, {"list with " + strconv.Itoa(len(msgs)) + " days published", data}} {
		fmt.Fprintf(log, "bench: node over %s\n", x.label)
		ch, err := startNodeChild(ctx, x.data, filepath.Join(dir, fmt.Sprintf("node-%d.log", len(rep.Nodes))), c.Idle)
		if err != nil {
			return rep, err
		}
		ch.stop()
		rep.Nodes = append(rep.Nodes, rssRow{Label: x.label, Wall: ch.Loaded, Info: ch.Info})
	}
	// The packs and bundles, and the list's rendezvous torrent (gossip).
	if got, want := rep.Nodes[1].Info.Torrents, rep.Packs+rep.Bundles+1; got != want {
		return rep, fmt.Errorf("node seeds %d torrents, want %d", got, want)
	}
	return rep, nil
}

func (r *rssReport) render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nSwarm node with many torrents, %s, %d CPUs: one message a day for %d days; "+
		"publishing %d day packs and %d bundles (%.1f MiB, fsync on) took %.1f s\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), r.Days, r.Packs, r.Bundles, mibOf(r.PackBytes), r.Publish.Seconds())
	b.WriteString("| node over | torrents | start s (NewNode) | start s (exec to ready) | VmRSS MiB | VmHWM MiB | Go heap in use MiB | goroutines | idle CPU % |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range r.Nodes {
		i := x.Info
		fmt.Fprintf(&b, "| %s | %d | %.2f | %.2f | %.1f | %.1f | %.1f | %d | %.1f |\n", x.Label, i.Torrents,
			i.StartSeconds, x.Wall.Seconds(), float64(i.RSSKiB)/1024, float64(i.HWMKiB)/1024, mibOf(int64(i.HeapInuse)),
			i.Goroutines, i.IdleCPU)
	}
	if len(r.Nodes) == 2 && r.Nodes[1].Info.Torrents > 0 {
		z, f := r.Nodes[0].Info, r.Nodes[1].Info
		n := float64(f.Torrents - z.Torrents)
		fmt.Fprintf(&b, "| **per torrent** | | %.2f ms | | %.1f KiB | %.1f KiB | %.1f KiB | %.3f | |\n",
			(f.StartSeconds-z.StartSeconds)*1000/n, float64(f.RSSKiB-z.RSSKiB)/n, float64(f.HWMKiB-z.HWMKiB)/n,
			float64(int64(f.HeapInuse)-int64(z.HeapInuse))/1024/n, float64(f.Goroutines-z.Goroutines)/n)
	}
	return b.String()
}

// ---- the node child: bench swarm-node ----

// nodeInfo is what a swarm-node child reports once loaded, as one JSON
// line on its standard output.
type nodeInfo struct {
	Addr         string  `json:"addr"`
	Torrents     int     `json:"torrents"`
	StartSeconds float64 `json:"start_seconds"` // archive.Open + swarm.NewNode
	RSSKiB       int64   `json:"rss_kib"`
	HWMKiB       int64   `json:"hwm_kib"`
	HeapInuse    uint64  `json:"heap_inuse"`
	Goroutines   int     `json:"goroutines"`
	IdleCPU      float64 `json:"idle_cpu_pct"` // CPU time over -idle while idle, in % of one core
}

// swarmNodeMain is the hidden `bench swarm-node` command: it starts a
// swarm.Node over -data on 127.0.0.1, prints "loaded" once the node has
// loaded its torrents, then a nodeInfo line, and runs until its standard
// input closes.
func swarmNodeMain(args []string) error {
	fs := flag.NewFlagSet("swarm-node", flag.ContinueOnError)
	data := fs.String("data", "", "data directory")
	idle := fs.Duration("idle", 5*time.Second, "measure CPU while idle this long before reporting (0: report at once)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t0 := time.Now()
	a, err := archive.Open(&archive.Options{Dir: *data, NoSync: true})
	if err != nil {
		return err
	}
	defer a.Close()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := swarm.NewNode(a, &swarm.Options{Listen: "127.0.0.1:0", NoSync: true, Logger: logger})
	if err != nil {
		return err
	}
	defer n.Close()
	info := nodeInfo{Addr: n.Addr().String(), Torrents: len(n.Client().Torrents()), StartSeconds: time.Since(t0).Seconds()}
	fmt.Println("loaded")
	if *idle > 0 {
		runtime.GC()
		time.Sleep(time.Second)
		c0 := cpuTime()
		time.Sleep(*idle)
		info.IdleCPU = 100 * (cpuTime() - c0).Seconds() / idle.Seconds()
	}
	info.RSSKiB, info.HWMKiB = procStatus("VmRSS:"), procStatus("VmHWM:")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	info.HeapInuse = ms.HeapInuse
	info.Goroutines = runtime.NumGoroutine()
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", b)
	io.Copy(io.Discard, os.Stdin) // until the parent closes it
	return nil
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatus returns a "kB" field of /proc/self/status, or -1.
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// startNodeChild runs this program as `swarm-node -data data -idle idle`
// (0 when the node is only wanted as a seeder) and waits for its report.
func startNodeChild(ctx context.Context, data, logPath string, idle time.Duration) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"swarm-node", "-data", data, "-idle", idle.String()}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("swarm-node: %w", err)
	}
	t0 := time.Now()
	c := &child{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	lines := make(chan []byte, 2)
	go func() {
		br := bufio.NewReader(stdout)
		for range 2 {
			b, _ := br.ReadBytes('\n')
			lines <- b
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		close(c.done)
	}()
	timeout := time.After(10 * time.Minute)
	for i := range 2 {
		select {
		case b := <-lines:
			switch {
			case i == 0 && string(b) == "loaded\n":
				c.Loaded = time.Since(t0)
				continue
			case i == 1 && json.Unmarshal(b, &c.Info) == nil:
				return c, nil
			}
			c.stop()
			errText, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("swarm-node: no report (%q): %s", b, lastLines(errText, 3))
		case <-timeout:
			c.stop()
			return nil, errors.New("swarm-node: no report after 10 minutes")
		}
	}
	panic("unreachable")
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"mailswarm/internal/peertest"
)

const (
	benchList = "bench"
	benchAddr = "bench@lists.example.org"
	// piImportScript is the repository's copy of shared/peers/public-inbox/import_mbox.pl.
	piImportScript = "internal/peertest/testdata/public-inbox/import_mbox.pl"
	realCorpus     = "corpora/spamassassin/easy-ham-1.mboxrd.gz"
)

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// importConfig is what the import benchmark was asked to do.
type importConfig struct {
	N        int
	Mboxes   []string
	SkipPI   bool
	SkipOurs bool
	Bin      string   // mailswarm binary; "" = build ./cmd/mailswarm
	PIOpts   []string // extra options for import_mbox.pl and public-inbox-index
	Shared   string
	Keep     bool
}

// input is one mbox to import.
type input struct {
	Label string
	Path  string // plain mbox both sides read
	Count int    // "From " separators in it
}

// result is one side's import of one input.
type result struct {
	Impl    string
	Kept    int // messages in the archive afterwards, -1 if unknown
	Wall    time.Duration
	RSSKiB  int64 // -1 if unknown
	DiskKiB int64 // -1 if unknown
	Err     error
}

func importMain(args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	var c importConfig
	var mboxes multiFlag
	var piOpts string
	fs.IntVar(&c.N, "n", 10000, "messages in the synthetic input (gen_mbox.py -n); 0: none")
	fs.Var(&mboxes, "mbox", "input mbox (repeatable; .gz ok); replaces the default inputs")
	fs.BoolVar(&c.SkipPI, "skip-pi", false, "do not run public-inbox")
	fs.BoolVar(&c.SkipOurs, "skip-ours", false, "do not run mailswarm")
	fs.StringVar(&c.Bin, "bin", "", "mailswarm binary to run (default: go build ./cmd/mailswarm)")
	fs.StringVar(&piOpts, "pi-opts", "", `extra options for public-inbox's import and index, e.g. "--no-fsync"`)
	fs.StringVar(&c.Shared, "shared", "", "shared directory (default: $MAILSWARM_SHARED or ../shared)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the work directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("import: unexpected arguments %q", fs.Args())
	}
	c.Mboxes = mboxes
	c.PIOpts = strings.Fields(piOpts)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rows, err := runImportBench(ctx, c, os.Stderr)
	if rows != nil {
		fmt.Print(renderImportTable(rows))
	}
	if err != nil {
		return err
	}
	var failed []string
	for _, r := range rows {
		for _, res := range r.Results {
			if res.Err != nil {
				failed = append(failed, fmt.Sprintf("%s / %s: %v", r.Input.Label, res.Impl, res.Err))
			}
		}
	}
	return runsFailed(failed)
}

// importRow is one input and each side's result.
type importRow struct {
	Input   input
	Results []result
}

// runImportBench prepares the inputs and runs each side on each, logging
// progress to log. Per-run failures are in the results; the error is for
// failures that stop everything.
func runImportBench(ctx context.Context, c importConfig, log io.Writer) ([]importRow, error) {
	root, err := peertest.ModuleRoot()
	if err != nil {
		return nil, err
	}
	work, cleanup, err := workDir("mailswarm-bench-", c.Keep, log)
	if err != nil {
		return nil, err
	}
	defer cleanup()

	inputs, err := prepareInputs(ctx, c, root, work, log)
	if err != nil {
		return nil, err
	}

	var bin string
	var binErr error
	if !c.SkipOurs {
		bin, binErr = mailswarmBinary(ctx, c.Bin, root, work, log)
	}

	var rows []importRow
	for i, in := range inputs {
		row := importRow{Input: in}
		if !c.SkipOurs {
			var r result
			if binErr != nil {
				r = result{Impl: "mailswarm", Kept: -1, RSSKiB: -1, DiskKiB: -1, Err: binErr}
			} else {
				fmt.Fprintf(log, "bench: mailswarm import %s (%d messages)\n", in.Label, in.Count)
				r = runOurs(ctx, bin, in.Path, filepath.Join(work, fmt.Sprintf("ours-%d", i)))
			}
			row.Results = append(row.Results, r)
		}
		if !c.SkipPI {
			fmt.Fprintf(log, "bench: public-inbox import %s (%d messages)\n", in.Label, in.Count)
			r := runPI(ctx, filepath.Join(root, piImportScript), in.Path,
				filepath.Join(work, fmt.Sprintf("pi-%d", i)), c.PIOpts)
			row.Results = append(row.Results, r)
		}
		rows = append(rows, row)
		if err := ctx.Err(); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// prepareInputs generates or decompresses every input into work.
func prepareInputs(ctx context.Context, c importConfig, root, work string, log io.Writer) ([]input, error) {
	var inputs []input
	add := func(label, src string) error {
		path := src
		if strings.HasSuffix(src, ".gz") {
			path = filepath.Join(work, fmt.Sprintf("input-%d-%s", len(inputs), strings.TrimSuffix(filepath.Base(src), ".gz")))
			if err := peertest.GunzipFile(src, path); err != nil {
				return err
			}
		}
		n, err := countMbox(path)
		if err != nil {
			return err
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return fmt.Errorf("input %s: %w", path, err)
		}
		inputs = append(inputs, input{Label: label, Path: abs, Count: n})
		return nil
	}
	if len(c.Mboxes) > 0 {
		for _, m := range c.Mboxes {
			if err := add(filepath.Base(m), m); err != nil {
				return nil, err
			}
		}
		return inputs, nil
	}
	shared, err := sharedDir(c.Shared, root)
	if err != nil {
		return nil, err
	}
	if c.N > 0 {
		out := filepath.Join(work, fmt.Sprintf("synthetic-%d.mbox", c.N))
		fmt.Fprintf(log, "bench: generating %d messages with gen_mbox.py\n", c.N)
		cmd := exec.CommandContext(ctx, "python3", filepath.Join(shared, "peers", "gen_mbox.py"), out, "-n", strconv.Itoa(c.N))
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("gen_mbox.py -n %d: %w: %s", c.N, err, lastLines(b, 5))
		}
		if err := add(fmt.Sprintf("synthetic (gen_mbox.py -n %d)", c.N), out); err != nil {
			return nil, err
		}
	}
	if err := add(filepath.Base(realCorpus), filepath.Join(shared, filepath.FromSlash(realCorpus))); err != nil {
		return nil, err
	}
	return inputs, nil
}

// sideBin is a bench side's label and binary.
type sideBin struct{ Label, Bin string }

// sideBinaries returns the sides of a bench that compares binaries, in the
// order they run: the baseline (when given), then this tree ("this": bin,
// or ./cmd/mailswarm built into work).
func sideBinaries(ctx context.Context, baseline, bin, root, work string, log io.Writer) ([]sideBin, error) {
	var sides []sideBin
	if baseline != "" {
		b, err := mailswarmBinary(ctx, baseline, root, work, log)
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		sides = append(sides, sideBin{"baseline", b})
	}
	b, err := mailswarmBinary(ctx, bin, root, work, log)
	if err != nil {
		return nil, err
	}
	return append(sides, sideBin{"this", b}), nil
}

// mailswarmBinary returns bin, or builds ./cmd/mailswarm into work.
func mailswarmBinary(ctx context.Context, bin, root, work string, log io.Writer) (string, error) {
	if bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return "", fmt.Errorf("mailswarm binary: %w", err)
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("mailswarm binary: %w", err)
		}
		return abs, nil
	}
	out := filepath.Join(work, "mailswarm")
	fmt.Fprintf(log, "bench: go build -o %s ./cmd/mailswarm\n", out)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/mailswarm")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build mailswarm: %w: %s", err, lastLines(b, 8))
	}
	return out, nil
}

// summaryRE matches the line `mailswarm import` ends with on stderr.
var summaryRE = regexp.MustCompile(`imported (\d+), duplicates (\d+), unparseable (\d+)`)

// parseSummary returns the imported count of `mailswarm import`'s summary
// line, the last one in stderr.
func parseSummary(stderr []byte) (imported int, ok bool) {
	all := summaryRE.FindAllSubmatch(stderr, -1)
	if len(all) == 0 {
		return 0, false
	}
	n, err := strconv.Atoi(string(all[len(all)-1][1]))
	return n, err == nil
}

// statsMessages returns the list's message count from `mailswarm stats --json`.
func statsMessages(out []byte, list string) (int, bool) {
	var st struct {
		Lists []struct {
			Name     string `json:"name"`
			Messages int    `json:"messages"`
		} `json:"lists"`
	}
	if json.Unmarshal(out, &st) != nil {
		return 0, false
	}
	for _, l := range st.Lists {
		if l.Name == list {
			return l.Messages, true
		}
	}
	return 0, false
}

// runOurs imports mbox with `mailswarm import` into a new data directory
// under dir.
func runOurs(ctx context.Context, bin, mbox, dir string) result {
	r := result{Impl: "mailswarm", Kept: -1, RSSKiB: -1, DiskKiB: -1}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.Err = err
		return r
	}
	data := filepath.Join(dir, "data")
	m, err := timed(ctx, nil, filepath.Join(dir, "import"), bin,
		"import", "--data", data, "--list", benchList, "--address", benchAddr, mbox)
	r.Wall, r.RSSKiB = m.Wall, m.RSSKiB
	if err != nil {
		r.Err = fmt.Errorf("mailswarm import: %w", err)
		return r
	}
	stderr, _ := os.ReadFile(filepath.Join(dir, "import.err"))
	if n, ok := parseSummary(stderr); ok {
		r.Kept = n
	}
	// the archive's own count, if stats works, beats the summary line
	if out, err := exec.CommandContext(ctx, bin, "stats", "--data", data, "--list", benchList, "--json").Output(); err == nil {
		if n, ok := statsMessages(out, benchList); ok {
			r.Kept = n
		}
	}
	if r.Kept < 0 {
		r.Err = errors.New("mailswarm import: no summary line and no stats: message count unknown")
	}
	if k, err := diskKiB(filepath.Join(data, "lists", benchList)); err == nil {
		r.DiskKiB = k
	} else if r.Err == nil {
		r.Err = err
	}
	return r
}

// runPI imports mbox into a new public-inbox v2 inbox (full index level,
// Mirror filter) with import_mbox.pl, then runs public-inbox-index (which
// has next to nothing left to do), as shared/peers/public-inbox/run.sh
// does; both are timed.
func runPI(ctx context.Context, script, mbox, dir string, opts []string) result {
	r := result{Impl: "public-inbox", Kept: -1, RSSKiB: -1, DiskKiB: -1}
	fail := func(err error) result {
		r.Err = err
		return r
	}
	inbox, env, err := initPIInbox(ctx, dir, "perl", "git", "sqlite3", "public-inbox-init", "public-inbox-index")
	if err != nil {
		return fail(err)
	}
	imp, err := timed(ctx, env, filepath.Join(dir, "import"), "perl",
		append(append([]string{script}, opts...), benchList, mbox)...)
	r.Wall, r.RSSKiB = imp.Wall, imp.RSSKiB
	if err != nil {
		return fail(err)
	}
	idx, err := timed(ctx, env, filepath.Join(dir, "index"), "public-inbox-index", append(opts, inbox)...)
	r.Wall += idx.Wall
	r.RSSKiB = max(r.RSSKiB, idx.RSSKiB)
	if err != nil {
		return fail(err)
	}
	if r.Kept, err = msgmapCount(ctx, inbox); err != nil {
		return fail(err)
	}
	if r.DiskKiB, err = diskKiB(inbox); err != nil {
		return fail(err)
	}
	return r
}

// msgmapCount counts the rows of a public-inbox inbox's msgmap: the
// messages public-inbox kept (it skips duplicates by Message-ID).
func msgmapCount(ctx context.Context, inbox string) (int, error) {
	out, err := exec.CommandContext(ctx, "sqlite3", "-readonly", filepath.Join(inbox, "msgmap.sqlite3"),
		"SELECT COUNT(*) FROM msgmap").Output()
	if err != nil {
		return 0, fmt.Errorf("count msgmap: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return 0, fmt.Errorf("count msgmap: %q: %w", out, err)
	}
	return n, nil
}

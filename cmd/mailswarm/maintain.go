package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"

	"mailswarm/archive"
	"mailswarm/message"
	"mailswarm/swarm"
)

func openArchive(data string) (*archive.Archive, error) {
	return archive.Open(&archive.Options{Dir: data})
}

func runImport(ctx context.Context, args []string) error {
	fs := newFlags("import")
	data := fs.String("data", "", "data directory")
	list := fs.String("list", "", "list name (created when missing)")
	address := fs.String("address", "", "the list's posting address, for a new list")
	format := fs.String("format", "mboxrd", "mbox quoting: mboxrd or mboxo")
	batch := fs.Int("batch", 1000, "messages per git pack and index transaction")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := errors.Join(required("data", *data), required("list", *list)); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: no PATH to import", errUsage)
	}
	opts := &archive.ImportOptions{BatchSize: *batch}
	switch *format {
	case "mboxrd":
		opts.Format = message.MboxRD
	case "mboxo":
		opts.Format = message.MboxO
	default:
		return fmt.Errorf("%w: unknown --format %q", errUsage, *format)
	}
	if !archive.ValidName(*list) {
		return fmt.Errorf("%w: bad list name %q", errUsage, *list)
	}
	// A source that holds no mail (a directory of git repositories, say)
	// refuses the import before the list is created.
	for _, p := range fs.Args() {
		if _, err := archive.DetectFormat(p); err != nil {
			return err
		}
	}
	a, err := openArchive(*data)
	if err != nil {
		return err
	}
	defer a.Close()
	l, err := a.OpenOrCreate(*list, *address)
	if err != nil {
		return err
	}
	var total int64
	for _, p := range fs.Args() {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			total += fi.Size()
		}
	}
	// Two batches in flight keep about 100 MB live; without a limit the
	// collector lets the heap double that. A soft limit keeps peak RSS near
	// 250 MB at a few percent of CPU (docs/BENCHMARKS.md).
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(160 << 20)
	}
	start := time.Now()
	if isatty.IsTerminal(os.Stderr.Fd()) {
		bar := progressbar.DefaultBytes(total, "importing")
		opts.Progress = func(r archive.ImportResult, read int64) {
			bar.Describe(fmt.Sprintf("importing: %d messages", r.Added+r.Adopted))
			bar.Set64(read)
		}
		defer bar.Finish()
	}
	res, err := l.Import(ctx, fs.Args(), opts)
	el := time.Since(start)
	fmt.Fprintf(os.Stderr, "imported %d, adopted %d, duplicates %d, malformed (kept) %d, read %d in %.2fs (%.0f msg/s)\n",
		res.Added, res.Adopted, res.Duplicates, res.Malformed, res.Read, el.Seconds(),
		float64(res.Read)/max(el.Seconds(), 1e-9))
	return err
}

func runExport(ctx context.Context, args []string) error {
	fs := newFlags("export")
	data := fs.String("data", "", "data directory")
	list := fs.String("list", "", "list name")
	since := fs.String("since", "", "first day (YYYY-MM-DD, by Date header, UTC)")
	until := fs.String("until", "", "last day (YYYY-MM-DD, inclusive)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := errors.Join(required("data", *data), required("list", *list)); err != nil {
		return err
	}
	var opts archive.ExportOptions
	for _, d := range []struct {
		s string
		t *time.Time
	}{{*since, &opts.Since}, {*until, &opts.Until}} {
		if d.s == "" {
			continue
		}
		t, err := time.Parse("2006-01-02", d.s)
		if err != nil {
			return fmt.Errorf("%w: bad date %q (want YYYY-MM-DD)", errUsage, d.s)
		}
		*d.t = t
	}
	l, a, err := openList(*data, *list)
	if err != nil {
		return err
	}
	defer a.Close()
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	if _, err := l.Export(ctx, w, &opts); err != nil {
		return err
	}
	return w.Flush()
}

func openList(data, name string) (*archive.List, *archive.Archive, error) {
	if _, err := os.Stat(data); err != nil {
		return nil, nil, fmt.Errorf("data directory: %w", err)
	}
	a, err := openArchive(data)
	if err != nil {
		return nil, nil, err
	}
	l, err := a.List(name)
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return l, a, nil
}

func runStats(ctx context.Context, args []string) error {
	fs := newFlags("stats")
	data := fs.String("data", "", "data directory")
	list := fs.String("list", "", "only this list")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required("data", *data); err != nil {
		return err
	}
	if _, err := os.Stat(*data); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	a, err := openArchive(*data)
	if err != nil {
		return err
	}
	defer a.Close()
	names := []string{*list}
	if *list == "" {
		if names, err = a.Names(); err != nil {
			return err
		}
	}
	out := struct {
		Lists []archive.Stats `json:"lists"`
	}{Lists: []archive.Stats{}}
	for _, n := range names {
		l, err := a.List(n)
		if err != nil {
			return err
		}
		s, err := l.Stats(ctx)
		if err != nil {
			return err
		}
		out.Lists = append(out.Lists, s)
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(out)
	}
	for _, s := range out.Lists {
		fmt.Printf("%s: %d messages, %d epochs, last article %d, %d bytes of mail, %d bytes on disk\n",
			s.Name, s.Messages, s.Epochs, s.LastArticle, s.Bytes, s.DiskBytes)
	}
	return nil
}

// listArgs adds the --data and --list flags every per-list command takes
// to fs (which may hold the command's own), parses args and opens the
// list; the caller closes the archive.
func listArgs(fs *flag.FlagSet, args []string) (*archive.List, *archive.Archive, error) {
	data := fs.String("data", "", "data directory")
	list := fs.String("list", "", "list name")
	if err := parse(fs, args); err != nil {
		return nil, nil, err
	}
	if err := errors.Join(required("data", *data), required("list", *list)); err != nil {
		return nil, nil, err
	}
	return openList(*data, *list)
}

func runVerify(ctx context.Context, args []string) error {
	l, a, err := listArgs(newFlags("verify"), args)
	if err != nil {
		return err
	}
	defer a.Close()
	// Both, whatever the first says: at the origin a sealed day pack is
	// also a git pack (one file), and a damaged one is named by both.
	verr := l.Verify(ctx)
	packs, err := swarm.CheckPublished(l)
	if err := errors.Join(verr, err); err != nil {
		return err
	}
	s, _ := l.Stats(ctx)
	fmt.Fprintf(os.Stderr, "%s: ok, %d messages, last article %d, %d published packs\n", l.Name(), s.Messages, s.LastArticle, packs)
	return nil
}

func runReindex(ctx context.Context, args []string) error {
	l, a, err := listArgs(newFlags("reindex"), args)
	if err != nil {
		return err
	}
	defer a.Close()
	var progress func(int64)
	if isatty.IsTerminal(os.Stderr.Fd()) {
		bar := progressbar.Default(-1, "reindexing")
		progress = func(n int64) { bar.Set64(n) }
		defer bar.Finish()
	}
	start := time.Now()
	if err := l.Reindex(ctx, progress); err != nil {
		return err
	}
	s, _ := l.Stats(ctx)
	fmt.Fprintf(os.Stderr, "%s: reindexed %d articles in %.2fs\n", l.Name(), s.LastArticle, time.Since(start).Seconds())
	return nil
}

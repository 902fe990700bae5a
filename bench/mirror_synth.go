package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// synthEpoch writes a synthetic list of years years ending now (perDay
// messages a day at even hours, threads of three, the last few today, so
// the origin has an open day cut into a slice), imports it with
// `mailswarm import` into dir (untimed) and returns the list's epoch 0: a
// public-inbox v2 epoch like any other for both sides of the benchmark.
// A late joiner of it opens year bundles for the closed years, month
// bundles for the closed months of this year, the day packs of this
// month and today's slice.
func synthEpoch(ctx context.Context, bin string, years, perDay int, list, address, dir string, log io.Writer) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	now := time.Now().UTC()
	start := now.AddDate(-years, 0, 0).Truncate(24 * time.Hour)
	path := filepath.Join(dir, "synth.mbox")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	n := 0
	for day := start; !day.After(now); day = day.AddDate(0, 0, 1) {
		for k := range perDay {
			at := day.Add(time.Duration(k) * 24 * time.Hour / time.Duration(perDay))
			if at.After(now.Add(-time.Minute)) {
				break
			}
			fmt.Fprintf(w, "From poster@example.net %s\nFrom: Poster %d <p%d@example.net>\nTo: %s\nSubject: topic %d\n"+
				"Date: %s\nMessage-ID: <synth%d@example.net>\n", at.Format(time.ANSIC), n%23, n%23, address, n/3, at.Format(time.RFC1123Z), n)
			if n%3 != 0 {
				fmt.Fprintf(w, "In-Reply-To: <synth%d@example.net>\nReferences: <synth%d@example.net>\n", n-n%3, n-n%3)
			}
			fmt.Fprintf(w, "\n%s\n", strings.Repeat(fmt.Sprintf("Line of message %d of the synthetic list.\n", n), 8+n%40))
			n++
		}
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "bench: synthetic list: %d messages over %d years (%s to now), mailswarm import (untimed)\n", n, years, start.Format("2006-01-02"))
	data := filepath.Join(dir, "data")
	if _, err := timed(ctx, nil, filepath.Join(dir, "import"), bin, "import", "--data", data, "--list", list, "--address", address, path); err != nil {
		return "", fmt.Errorf("synthetic list: %w", err)
	}
	os.Remove(path)
	return filepath.Join(data, "lists", list, "git", "0.git"), nil
}

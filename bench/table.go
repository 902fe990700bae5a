package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"
)

// renderImportTable formats the import results as a markdown table: one
// line per input and implementation, mailswarm's line carrying its msg/s
// over public-inbox's.
func renderImportTable(rows []importRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nImport, %s, %d CPUs, GNU time: %v\n\n", time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), gnuTime != "")
	b.WriteString("| input | messages in | impl | kept | seconds | msg/s | peak RSS MiB | disk KiB/msg | msg/s ours/PI |\n")
	b.WriteString("|---|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range rows {
		var piRate float64
		for _, r := range row.Results {
			if r.Impl == "public-inbox" && r.Err == nil {
				piRate = rate(r)
			}
		}
		for _, r := range row.Results {
			ratio := ""
			if r.Impl == "mailswarm" && r.Err == nil && piRate > 0 {
				ratio = fmt.Sprintf("%.2f×", rate(r)/piRate)
			}
			if r.Err != nil {
				fmt.Fprintf(&b, "| %s | %d | %s | failed | | | | | |\n", row.Input.Label, row.Input.Count, r.Impl)
				continue
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %d | %.1f | %.0f | %s | %s | %s |\n",
				row.Input.Label, row.Input.Count, r.Impl, r.Kept, r.Wall.Seconds(), rate(r),
				mib(r.RSSKiB), perMsg(r.DiskKiB, r.Kept), ratio)
		}
	}
	return b.String()
}

// rate is messages kept per wall-clock second.
func rate(r result) float64 {
	if r.Wall <= 0 || r.Kept <= 0 {
		return 0
	}
	return float64(r.Kept) / r.Wall.Seconds()
}

func mib(kib int64) string {
	if kib < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", float64(kib)/1024)
}

func perMsg(kib int64, n int) string {
	if kib < 0 || n <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", float64(kib)/float64(n))
}

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mailswarm/internal/peertest"
	"mailswarm/swarm"
)

// TestMirrorWeek: a simulated week at an origin with 2,000+ days of
// history and two mirrors, the second following the first. The nodes'
// clock (testClockEnv) is moved in steps through seven days; at each step
// a few messages dated then are imported at the origin (another process:
// serve hears of them through the list's watcher) and cut into a slice;
// seven day closes follow, and a month close (the week spans a month's
// end). For each mirror: every slice is downloaded once and nothing else
// (the day and month closes download nothing: days rebuilt from the held
// slices), bytes down / the week's day packs ≤ 1.05, manifest bytes
// fetched per slice measured (goal ≤ 2 KiB), the export is the origin's,
// and every object is on disk once (the day packs are the epoch's git
// packs, no slice pack left beside them), verify and git fsck --strict
// clean.
func TestMirrorWeek(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated week: a few minutes of real serve processes")
	}
	peertest.Need(t, "git")
	histDays, perDay, perSlice := 2100, 12, 3
	if raceDetector {
		histDays, perDay = 400, 3
	}
	clock := newTestClock(t)
	setClock := func(at time.Time) {
		t.Helper()
		clock.set(t, time.Until(at))
		time.Sleep(250 * time.Millisecond) // read again within 100 ms
	}
	// The week starts after today (the history's publish runs on the real
	// clock and seals every day before today) and spans a month's end.
	today := time.Now().UTC().Truncate(24 * time.Hour)
	month := time.Date(today.Year(), today.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	week := month.AddDate(0, 0, -5)
	if !week.After(today) {
		month = month.AddDate(0, 1, 0)
		week = month.AddDate(0, 0, -5)
	}
	setClock(week.Add(time.Minute))
	env := clock.env

	origin := newClusterNode(t, 0, true)
	origin.env = env
	mbox := history(t, today.AddDate(0, 0, -histDays).Add(9*time.Hour), 24*time.Hour, histDays)
	if out, err := exec.Command(buildBinary(t), "import", "--data", origin.data, "--list", "dev", "--address", "dev@example.org", mbox).CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if out, err := exec.Command(buildBinary(t), "swarm", "publish", "--data", origin.data, "--list", "dev").CombinedOutput(); err != nil {
		t.Fatalf("publish: %v\n%s", err, out)
	}
	origin.start(t)
	key := listKey(t, origin.data)
	var mirrors []*clusterNode
	ost := nodeStatus(t, origin)
	seq := ost.Seq
	t.Logf("history: %d days, %d packs and %d bundles in the manifest", histDays, len(ost.Packs), len(ost.Bundles))
	syncAll := func(seq int64) {
		t.Helper()
		for _, m := range mirrors {
			waitFollowed(t, m, seq)
		}
	}
	// The late joins one after the other: the second follows the first.
	// (Their web-seed connections leave from their own addresses, not the
	// test's 127.0.0.1: swarm/dialfrom.go.)
	for i := 1; i <= 2; i++ {
		m := newClusterNode(t, i, false)
		m.key, m.env = key, env
		m.sources = []string{origin.httpBase()}
		if i == 2 {
			m.sources = []string{mirrors[0].httpBase()} // a mirror of a mirror
		}
		m.start(t)
		waitFollowed(t, m, seq)
		mirrors = append(mirrors, m)
	}

	base := map[string]*swarm.FollowStatus{}
	for _, m := range mirrors {
		base[m.name] = nodeStatus(t, m).Follow
	}
	slicesSeen := map[string]int64{} // slice file → size
	nextSeq := func(after int64, what string) swarm.Status {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := nodeStatus(t, origin)
			if st.Seq > after {
				for _, p := range st.Packs {
					if p.Kind == swarm.KindSlice {
						slicesSeen[p.Name] = p.Size
					}
				}
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("origin: %s: no manifest after seq %d\n%s", what, after, origin.srv.log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	msgNum := 0
	var weekDays []string
	for d := range 7 {
		day := week.AddDate(0, 0, d)
		weekDays = append(weekDays, day.Format("2006-01-02"))
		for k := range perDay {
			at := day.Add(30*time.Minute + time.Duration(k)*(23*time.Hour)/time.Duration(perDay))
			setClock(at.Add(time.Minute))
			var b strings.Builder
			for i := range perSlice {
				msgNum++
				when := at.Add(time.Duration(i) * time.Second)
				fmt.Fprintf(&b, "From poster@example.net %s\nFrom: Poster %d <p%d@example.net>\nTo: dev@example.org\n"+
					"Subject: week post %d\nDate: %s\nMessage-ID: <week%d@example.net>\n\n%s\n",
					when.Format(time.ANSIC), msgNum%7, msgNum%7, msgNum, when.Format(time.RFC1123Z), msgNum,
					strings.Repeat(fmt.Sprintf("Line of post %d of the simulated week.\n", msgNum), 5+msgNum%20))
			}
			path := filepath.Join(t.TempDir(), "slice.mbox")
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(buildBinary(t), "import", "--data", origin.data, "--list", "dev", path).CombinedOutput(); err != nil {
				t.Fatalf("import at %s: %v\n%s", at, err, out)
			}
			seq = nextSeq(seq, "slice at "+at.Format(time.RFC3339)).Seq
			syncAll(seq)
		}
		// The day close: the mirrors hold every slice of the day.
		before := map[string]int64{}
		for _, m := range mirrors {
			before[m.name] = nodeStatus(t, m).Follow.BytesDown
		}
		setClock(day.AddDate(0, 0, 1).Add(2 * time.Minute))
		var st swarm.Status
		deadline := time.Now().Add(30 * time.Second)
		for sealed := false; !sealed; {
			st = nextSeq(seq, "day close "+weekDays[d])
			seq = st.Seq
			for _, p := range st.Packs {
				sealed = sealed || (p.Kind == swarm.KindDay && p.Day == weekDays[d])
			}
			if !sealed && time.Now().After(deadline) {
				t.Fatalf("origin did not seal %s\n%s", weekDays[d], origin.srv.log())
			}
		}
		if day.AddDate(0, 0, 1).Day() == 1 {
			m := day.Format("2006-01")
			if !slices.ContainsFunc(st.Bundles, func(b swarm.Item) bool { return b.Month == m }) {
				t.Fatalf("the month close of %s published no bundle of it", m)
			}
		}
		syncAll(seq)
		for _, m := range mirrors {
			if got := nodeStatus(t, m).Follow.BytesDown; got != before[m.name] {
				t.Errorf("%s: the close of %s downloaded %d bytes", m.name, weekDays[d], got-before[m.name])
			}
		}
	}

	ost = nodeStatus(t, origin)
	var dayBytes, sliceBytes int64
	for _, p := range ost.Packs {
		if p.Kind == swarm.KindDay && slices.Contains(weekDays, p.Day) {
			dayBytes += p.Size
		}
	}
	for _, n := range slicesSeen {
		sliceBytes += n
	}
	t.Logf("week: %d messages in %d slices of %d bytes; 7 day packs of %d bytes", msgNum, len(slicesSeen), sliceBytes, dayBytes)
	if len(slicesSeen) != 7*perDay {
		t.Errorf("%d slices published, want one a step (%d)", len(slicesSeen), 7*perDay)
	}
	want, _ := exportSum(t, origin.data)
	for _, m := range mirrors {
		f, b := nodeStatus(t, m).Follow, base[m.name]
		down := f.BytesDown - b.BytesDown
		manifests := f.ManifestsFetched - b.ManifestsFetched
		mbytes := f.ManifestBytes - b.ManifestBytes
		t.Logf("%s (sources %v): %d bytes down (ratio %.4f to the day packs), %d day packs rebuilt, %d downloaded; "+
			"%d manifests fetched (%d as patches), %d manifest bytes: %d bytes a manifest",
			m.name, m.sources, down, float64(down)/float64(dayBytes), f.DaysRebuilt-b.DaysRebuilt, f.DaysDownloaded-b.DaysDownloaded,
			manifests, f.ManifestPatches-b.ManifestPatches, mbytes, mbytes/int64(max(1, manifests)))
		if float64(down)/float64(dayBytes) > 1.05 {
			t.Errorf("%s: bytes down %d / the week's day packs %d > 1.05", m.name, down, dayBytes)
		}
		if down != sliceBytes {
			t.Errorf("%s: %d bytes down, the week's slices are %d: an object fetched twice or not at all", m.name, down, sliceBytes)
		}
		if f.DaysRebuilt-b.DaysRebuilt != 7 || f.DaysDownloaded != b.DaysDownloaded {
			t.Errorf("%s: %d day packs rebuilt and %d downloaded in the week, want 7 and 0", m.name, f.DaysRebuilt-b.DaysRebuilt, f.DaysDownloaded-b.DaysDownloaded)
		}
		if per := mbytes / int64(max(1, manifests)); per > 2048 {
			t.Errorf("%s: %d manifest bytes fetched a slice, goal ≤ 2 KiB", m.name, per)
		}
		if manifests < len(slicesSeen) {
			t.Errorf("%s: %d manifests fetched for %d slices", m.name, manifests, len(slicesSeen))
		}
		if got, _ := exportSum(t, m.data); got != want {
			t.Errorf("%s: export differs from the origin's", m.name)
		}
	}
	for _, n := range append([]*clusterNode{origin}, mirrors...) {
		n.srv.stop(t)
		verifyNode(t, n.data)
		checkNodeOneCopy(t, n, ost)
	}
	out, err := exec.Command("git", "--git-dir", filepath.Join(mirrors[1].data, "lists", "dev", "git", "0.git"), "fsck", "--strict", "--no-dangling").CombinedOutput()
	if err != nil {
		t.Fatalf("git fsck --strict at %s: %v\n%s", mirrors[1].name, err, out)
	}
}

// checkNodeOneCopy fails unless node n's git packs of list dev are
// exactly the day packs and open days' slices of st (each object once:
// no slice or batch pack beside the day pack holding its objects).
func checkNodeOneCopy(t *testing.T, n *clusterNode, st swarm.Status) {
	t.Helper()
	sealed := map[string]bool{}
	for _, p := range st.Packs {
		if p.Kind == swarm.KindDay {
			sealed[fmt.Sprint(p.Epoch, p.Day)] = true
		}
	}
	want := map[int][]string{}
	for _, p := range st.Packs {
		if p.Kind == swarm.KindDay || !sealed[fmt.Sprint(p.Epoch, p.Day)] {
			want[p.Epoch] = append(want[p.Epoch], "pack-"+p.Trailer)
		}
	}
	for epoch, w := range want {
		ents, err := os.ReadDir(filepath.Join(n.data, "lists", "dev", "git", fmt.Sprintf("%d.git", epoch), "objects", "pack"))
		if err != nil {
			t.Fatal(err)
		}
		var have []string
		for _, e := range ents {
			if b, ok := strings.CutSuffix(e.Name(), ".pack"); ok {
				have = append(have, b)
			}
		}
		slices.Sort(have)
		slices.Sort(w)
		if !slices.Equal(have, w) {
			extra := slices.DeleteFunc(slices.Clone(have), func(p string) bool { return slices.Contains(w, p) })
			t.Errorf("%s: epoch %d: %d git packs, want the manifest's %d day packs and open slices; not in the manifest: %v",
				n.name, epoch, len(have), len(w), extra)
		}
	}
}

package main

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailswarm/internal/peertest"
)

func TestCommandListed(t *testing.T) {
	usage := "usage: mailswarm COMMAND [flags]\n\ncommands:\n  serve    run the archive's servers\n" +
		"  swarm    publish (cut and seal what is due)\nRun 'mailswarm COMMAND -h' for a command's flags.\n"
	if !commandListed([]byte(usage), "swarm") || commandListed([]byte(usage), "follow") || commandListed([]byte(usage), "mailswarm") {
		t.Errorf("commandListed: want swarm listed, follow and mailswarm not")
	}
	if !commandListed([]byte(usage+"  follow   follow a list\n"), "follow") {
		t.Errorf("commandListed: follow not found")
	}
}

func TestJSONSum(t *testing.T) {
	js := `{"lists":[{"list":"a","bytes_down":100,"sources":[{"bytes_down":5}]},{"list":"b","bytes_down":20}]}`
	if got := jsonSum([]byte(js), "bytes_down"); got != 125 {
		t.Errorf("jsonSum = %d, want 125", got)
	}
	if got := jsonSum([]byte(`{"x":1}`), "bytes_down"); got != -1 {
		t.Errorf("jsonSum without the key = %d, want -1", got)
	}
}

func TestMirrorTorrents(t *testing.T) {
	var st swarmStatusJSON
	st.Bundles = append(st.Bundles, struct {
		Name  string   `json:"name"`
		Files []string `json:"files"`
		Epoch int      `json:"epoch"`
		Month string   `json:"month"`
		Size  int64    `json:"size"`
	}{Name: "b-2026-10", Files: []string{"d1", "d2"}, Month: "2026-10", Size: 30})
	for _, p := range []struct{ kind, name string }{{"day", "d1"}, {"day", "d2"}, {"day", "d3"}, {"slice", "s1"}} {
		st.Packs = append(st.Packs, struct {
			Kind   string `json:"kind"`
			Name   string `json:"name"`
			Epoch  int    `json:"epoch"`
			Day    string `json:"day"`
			Size   int64  `json:"size"`
			SHA256 string `json:"sha256"`
		}{Kind: p.kind, Name: p.name, Size: 7})
	}
	var got []string
	for _, x := range mirrorTorrents(st) {
		got = append(got, x.Kind+":"+x.Name)
	}
	if want := "bundle:b-2026-10 day:d3 slice:s1"; strings.Join(got, " ") != want {
		t.Errorf("mirrorTorrents = %q, want %q", got, want)
	}
}

func TestRenderMirrorTable(t *testing.T) {
	rep := mirrorReport{Epoch: "/x/repo", Tip: "450e3ddd583c06d6", Commits: 900, Seeders: 3,
		PI: &piMirror{Clone: measurement{Wall: 10 * time.Second, RSSKiB: 2048}, Index: measurement{Wall: 90 * time.Second, RSSKiB: 4096},
			CloneKiB: 10240, Messages: 900},
		Ours: &oursMirror{Messages: 900, Key: "ab", Spec: "mailswarm:x:ab@http://127.0.0.2:1",
			Follow: &followResult{Follow: measurement{Wall: 4 * time.Second, RSSKiB: 1024}, Ready: 5 * time.Second,
				Exists: 900, BytesDown: 20 << 20, ServeKiB: -1},
			LT: &ltMirrorResult{Run: measurement{Wall: 3 * time.Second, RSSKiB: 1024}, Bytes: 20 << 20, Seconds: 2}}}
	got := rep.render()
	for _, want := range []string{
		"| lore mirror today | git clone --mirror from local git daemon | 10.0 | | 1.00× | 10.0 | 1.0 | 2 | |",
		"| lore mirror today | **clone + index** | **100.0** | 1.00× | | | | 4 | 900 |",
		"| **5.0** (follow 4.0) | **20.00×** | 2.00× | 20.0 | 5.0 (whole sync) | 1 | 900 |",
		"| 2.0 (process 3.0) | 50.00× | 5.00× | 20.0 | 10.0 | 1 | |",
		"follow / libtorrent from the same seeders: **0.50×**",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	rep.Ours.Follow = &followResult{NotBuilt: true}
	rep.PI.Err = errors.New("index\nboom")
	got = rep.render()
	for _, want := range []string{"| not built yet |", "| public-inbox-index (-L full, fsync) | failed: index boom |"} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}

// TestMirrorBench runs the mirror benchmark on a small public-inbox
// epoch: 300 gen_mbox.py messages over the last 100 days (so closed
// months make bundles and this month day packs), written by
// shared/peers/public-inbox/mbox2v2git.py. Both sides run: the clone +
// index must index every message and the table must print; the follow row
// is "not built yet" when the binary has no follow command, else the
// mirror must answer SELECT with every message. libtorrent must fetch
// every torrent from the 3 seeders (left out without python3-libtorrent,
// a failure under CI).
func TestMirrorBench(t *testing.T) {
	peertest.Need(t, "python3", "git", "public-inbox", "sqlite3")
	shared := peertest.SharedDir(t)
	dir := t.TempDir()
	const n = 300
	mbox := filepath.Join(dir, "small.mbox")
	start := time.Now().AddDate(0, 0, -100).Unix()
	if out, err := exec.Command("python3", filepath.Join(shared, "peers", "gen_mbox.py"), mbox, "-n", strconv.Itoa(n),
		"--start", strconv.FormatInt(start, 10), "--days", "95").CombinedOutput(); err != nil {
		t.Fatalf("gen_mbox.py: %v\n%s", err, out)
	}
	epoch := filepath.Join(dir, "small", "0.git")
	if out, err := exec.Command("python3", filepath.Join(shared, "peers", "public-inbox", "mbox2v2git.py"),
		mbox, epoch, "small", "small@example.org").CombinedOutput(); err != nil {
		t.Fatalf("mbox2v2git.py: %v\n%s", err, out)
	}
	c := mirrorConfig{Epoch: epoch, List: "small", Address: "small@example.org", Seeders: 3,
		Bin: testBinary(t), CacheDir: t.TempDir()}
	if out, err := exec.Command(ltPython, "-c", "import libtorrent").CombinedOutput(); err != nil {
		if peertest.InCI() {
			t.Fatalf("%s cannot import libtorrent (CI must provide python3-libtorrent): %v: %s", ltPython, err, out)
		}
		t.Logf("%s cannot import libtorrent: leaving out the libtorrent row", ltPython)
		c.SkipLT = true
	}
	var log strings.Builder
	rep, err := runMirrorBench(t.Context(), c, &log)
	table := rep.render()
	if err != nil {
		t.Fatalf("runMirrorBench: %v\n%s\n%s", err, log.String(), table)
	}
	t.Logf("%s", table)
	if p := rep.PI; p == nil || p.Messages != n || p.Clone.Wall <= 0 || p.Index.Wall <= 0 || p.CloneKiB <= 0 {
		t.Errorf("clone + index: %+v; want %d messages indexed", p, n)
	}
	o := rep.Ours
	if o == nil || o.Messages != n || len(o.Torrents) < 2 || o.Bytes <= 0 {
		t.Fatalf("ours: %+v; want %d messages, a bundle and day packs", o, n)
	}
	switch f := o.Follow; {
	case f.NotBuilt:
		t.Logf("the binary has no follow command: its row is not built yet")
		if !strings.Contains(table, "| not built yet |") {
			t.Errorf("table lacks the not built yet row")
		}
	case f.Exists != n || f.Ready <= 0:
		t.Errorf("follow: %+v; want SELECT EXISTS %d", f, n)
	}
	if !c.SkipLT {
		if lt := o.LT; lt == nil || lt.Bytes != o.Bytes || lt.Seconds <= 0 {
			t.Errorf("libtorrent: %+v; want %d bytes", lt, o.Bytes)
		}
	}
	for _, want := range []string{"| lore mirror today | **clone + index** |",
		fmt.Sprintf("| libtorrent | libtorrent: the same %d torrents from the 3 seeders", len(o.Torrents))} {
		if c.SkipLT && strings.Contains(want, "libtorrent |") {
			continue
		}
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailswarm/internal/peertest"
	"mailswarm/swarm"
)

// TestMirrorsPropagation: an origin and three mirrors, the third
// following the second, each a real serve on its own loopback address.
// 200 messages sent over SMTP at a steady rate reach an IMAP client
// idling at every mirror; the delay from the origin's 250 to EXISTS at
// each mirror is reported (p50/p95); at the end every mirror's export
// equals the origin's byte for byte and verify passes on every node.
func TestMirrorsPropagation(t *testing.T) {
	const msgs, rate = 200, 20 // messages, per second
	origin := newClusterNode(t, 0, true)
	origin.start(t)
	key := listKey(t, origin.data)
	var mirrors []*clusterNode
	for i := 1; i <= 3; i++ {
		m := newClusterNode(t, i, false)
		m.key = key
		m.sources = []string{origin.httpBase()}
		if i == 3 {
			m.sources = []string{mirrors[1].httpBase()} // a mirror of a mirror
		}
		m.start(t)
		mirrors = append(mirrors, m)
	}
	var idlers []*idler
	for _, m := range mirrors {
		idlers = append(idlers, startIdler(t, m.imapAddr()))
	}
	propagation(t, origin, mirrors, idlers, msgs, rate, 60*time.Second, func(k int) string {
		return fmt.Sprintf("source %v", mirrors[k].sources)
	})
	// Wait for the mirrors to serve the origin's newest manifest, then
	// compare exports.
	for k, m := range mirrors {
		deadline := time.Now().Add(30 * time.Second)
		for {
			want, _ := exportSum(t, origin.data)
			if got, _ := exportSum(t, m.data); got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("mirror %d: export differs from the origin's\n%s", k+1, m.srv.log())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, n := range append([]*clusterNode{origin}, mirrors...) {
		n.srv.stop(t)
		verifyNode(t, n.data)
	}
}

// history writes an mbox of n messages, one every `every` from start,
// threads of three (each reply refers to the first of its thread).
func history(t *testing.T, start time.Time, every time.Duration, n int) string {
	t.Helper()
	var b strings.Builder
	for i := range n {
		at := start.Add(time.Duration(i) * every)
		fmt.Fprintf(&b, "From poster@example.net %s\n", at.UTC().Format("Mon Jan _2 15:04:05 2006"))
		fmt.Fprintf(&b, "From: Poster %d <p%d@example.net>\nTo: dev@example.org\nSubject: topic %d\n", i%11, i%11, i/3)
		fmt.Fprintf(&b, "Date: %s\nMessage-ID: <h%d@example.net>\n", at.Format(time.RFC1123Z), i)
		if i%3 != 0 {
			fmt.Fprintf(&b, "In-Reply-To: <h%d@example.net>\nReferences: <h%d@example.net>\n", i-i%3, i-i%3)
		}
		fmt.Fprintf(&b, "\nMessage %d of the history.\n\n", i)
	}
	path := filepath.Join(t.TempDir(), "history.mbox")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// articles returns "num thread blob" of every article of a node's index.
func articles(t *testing.T, data string) string {
	t.Helper()
	out, err := exec.Command("sqlite3", filepath.Join(data, "lists", "dev", "index.sqlite3"),
		"SELECT num, thread, hex(blob_id) FROM msg ORDER BY num").CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
	return string(out)
}

// TestMirrorLateJoiner: three years of history imported at the origin
// and published; two mirrors sync it; a new mirror then syncs from the
// origin and both mirrors, through month bundles (not a torrent a day),
// and ends with the origin's export, article numbers and thread ids.
func TestMirrorLateJoiner(t *testing.T) {
	peertest.Need(t, "sqlite3")
	origin := newClusterNode(t, 0, true)
	start := time.Date(2023, 1, 1, 9, 0, 0, 0, time.UTC)
	days := int(time.Since(start).Hours()/24) + 1
	mbox := history(t, start, 24*time.Hour*3/2, days*2/3) // every 36 hours up to now
	if out, err := exec.Command(buildBinary(t), "import", "--data", origin.data, "--list", "dev", "--address", "dev@example.org", mbox).CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	// Published before serve starts: serve would publish it in steps
	// of 256 packs, each a manifest of its own.
	if out, err := exec.Command(buildBinary(t), "swarm", "publish", "--data", origin.data, "--list", "dev").CombinedOutput(); err != nil {
		t.Fatalf("publish: %v\n%s", err, out)
	}
	origin.start(t)
	key := listKey(t, origin.data)
	waitManifest(t, origin, 0)
	var mirrors []*clusterNode
	for i := 1; i <= 2; i++ {
		m := newClusterNode(t, i, false)
		m.key, m.sources = key, []string{origin.httpBase()}
		m.start(t)
		mirrors = append(mirrors, m)
	}
	seq := nodeStatus(t, origin).Seq
	for _, m := range mirrors {
		waitFollowed(t, m, seq)
	}
	late := newClusterNode(t, 3, false)
	late.key, late.sources = key, []string{origin.httpBase(), mirrors[0].httpBase(), mirrors[1].httpBase()}
	late.start(t)
	waitFollowed(t, late, seq)
	st := nodeStatus(t, late)
	ost := nodeStatus(t, origin)
	t.Logf("late joiner: %d torrents opened for %d packs and %d bundles in the manifest; %d bytes down",
		st.Follow.TorrentsOpened, len(ost.Packs), len(ost.Bundles), st.Follow.BytesDown)
	if max := len(ost.Bundles) + 31 + 2; st.Follow.TorrentsOpened > max || len(ost.Bundles) < 30 {
		t.Errorf("opened %d torrents (bundles %d, packs %d): want about one per month", st.Follow.TorrentsOpened, len(ost.Bundles), len(ost.Packs))
	}
	want, _ := exportSum(t, origin.data)
	for _, n := range append(mirrors, late) {
		if got, _ := exportSum(t, n.data); got != want {
			t.Errorf("%s: export differs from the origin's", n.name)
		}
		if articles(t, n.data) != articles(t, origin.data) {
			t.Errorf("%s: article numbers or thread ids differ from the origin's", n.name)
		}
	}
}

// waitManifest waits until node n serves a manifest newer than seq.
func waitManifest(t *testing.T, n *clusterNode, seq int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for nodeStatus(t, n).Seq <= seq {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no manifest after seq %d\n%s", n.name, seq, n.srv.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFollowed waits until mirror n has applied manifest seq.
func waitFollowed(t *testing.T, n *clusterNode, seq int64) {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		st := nodeStatus(t, n)
		if st.Follow != nil && st.Follow.Seq >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not at seq %d after 120 s: %+v\n%s", n.name, seq, st.Follow, n.srv.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMirrorDayClose: two mirrors follow the open day's slices; after
// midnight (the nodes' clock moved ahead) the origin seals the day and
// each mirror seeds the sealed day pack rebuilt from the slices it held:
// it downloads nothing more (bytes down / the day pack's size, measured).
func TestMirrorDayClose(t *testing.T) {
	clock := newTestClock(t)
	env := clock.env
	origin := newClusterNode(t, 0, true)
	origin.env = env
	origin.start(t)
	key := listKey(t, origin.data)
	var mirrors []*clusterNode
	for i := 1; i <= 2; i++ {
		m := newClusterNode(t, i, false)
		m.key, m.sources, m.env = key, []string{origin.httpBase()}, env
		m.start(t)
		mirrors = append(mirrors, m)
	}
	today := time.Now().UTC().Format("2006-01-02")
	for i := 1; i <= 30; i++ {
		msg := fmt.Sprintf("From: Poster <p%d@example.net>\r\nTo: dev@example.org\r\nSubject: post %d\r\n"+
			"Message-ID: <day%d@example.net>\r\n\r\n%s\r\n", i%5, i, i, strings.Repeat("a line of the body\r\n", 10*i))
		origin.send(t, msg)
		if i%10 == 0 {
			time.Sleep(1500 * time.Millisecond) // a few slices
		}
	}
	for _, m := range mirrors {
		deadline := time.Now().Add(30 * time.Second)
		for {
			want, _ := exportSum(t, origin.data)
			if got, _ := exportSum(t, m.data); got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not follow the slices\n%s", m.name, m.srv.log())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	before := map[string]int64{}
	for _, m := range mirrors {
		before[m.name] = nodeStatus(t, m).Follow.BytesDown
	}
	// Midnight: five minutes into tomorrow.
	tomorrow, _ := time.Parse("2006-01-02", today)
	offset := tomorrow.Add(24*time.Hour + 5*time.Minute).Sub(time.Now())
	clock.set(t, offset)
	var day swarm.Item
	deadline := time.Now().Add(30 * time.Second)
	for day.Kind != swarm.KindDay {
		st := nodeStatus(t, origin)
		for _, p := range st.Packs {
			if p.Day == today && p.Kind == swarm.KindDay {
				day = p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("origin did not seal %s\n%s", today, origin.srv.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	seq := nodeStatus(t, origin).Seq
	for _, m := range mirrors {
		waitFollowed(t, m, seq)
		st := nodeStatus(t, m)
		total := st.Follow.BytesDown
		t.Logf("%s: day pack %s of %d bytes: %d bytes down in all (slices), %d at the close; rebuilt %d, downloaded %d; ratio %.3f",
			m.name, day.Name, day.Size, total, total-before[m.name], st.Follow.DaysRebuilt, st.Follow.DaysDownloaded, float64(total)/float64(day.Size))
		if st.Follow.DaysRebuilt != 1 || st.Follow.DaysDownloaded != 0 || total != before[m.name] {
			t.Errorf("%s: the day close downloaded: %+v", m.name, st.Follow)
		}
		if float64(total)/float64(day.Size) > 1.05 {
			t.Errorf("%s: bytes down %d / day pack %d > 1.05", m.name, total, day.Size)
		}
		resp, err := http.Get(m.httpBase() + "/lists/dev/packs/" + day.Name)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != day.SHA256 {
			t.Errorf("%s serves %s with another sha256", m.name, day.Name)
		}
	}
}

// TestMirrorKill9: a mirror killed with SIGKILL at random moments of its
// first sync, ten times, resumes each time; it ends with the origin's
// export (no article twice) and verify passes after every kill.
func TestMirrorKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a syncing mirror ten times")
	}
	origin := newClusterNode(t, 0, true)
	start := time.Date(2024, 1, 1, 9, 0, 0, 0, time.UTC)
	mbox := history(t, start, 7*time.Hour, int(time.Since(start).Hours()/7))
	if out, err := exec.Command(buildBinary(t), "import", "--data", origin.data, "--list", "dev", "--address", "dev@example.org", mbox).CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if out, err := exec.Command(buildBinary(t), "swarm", "publish", "--data", origin.data, "--list", "dev").CombinedOutput(); err != nil {
		t.Fatalf("publish: %v\n%s", err, out)
	}
	origin.start(t)
	seq := nodeStatus(t, origin).Seq
	m := newClusterNode(t, 1, false)
	m.key, m.sources = listKey(t, origin.data), []string{origin.httpBase()}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 12))
	for i := range 10 {
		m.start(t)
		d := time.Duration(200+rng.IntN(2800)) * time.Millisecond
		time.Sleep(d)
		st := nodeStatus(t, m)
		m.srv.cmd.Process.Kill()
		m.srv.cmd.Wait()
		t.Logf("kill %d after %v: seq %d, %d packs missing, %d bytes down", i+1, d, st.Follow.Seq, st.Follow.Missing, st.Follow.BytesDown)
		verifyNode(t, m.data)
	}
	m.start(t)
	waitFollowed(t, m, seq)
	want, _ := exportSum(t, origin.data)
	if got, _ := exportSum(t, m.data); got != want {
		t.Errorf("export after the kills differs from the origin's")
	}
	if articles(t, m.data) != articles(t, origin.data) {
		t.Errorf("article numbers or thread ids differ from the origin's")
	}
	m.srv.stop(t)
	verifyNode(t, m.data)
}

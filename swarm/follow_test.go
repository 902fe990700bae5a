package swarm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"mailswarm/archive"
)

// testMirror is a node following demo from sources, with its own HTTP.
type testMirror struct {
	a    *archive.Archive
	node *Node
	url  string
}

func startTestMirror(t testing.TB, key []byte, now func() time.Time, sources ...string) *testMirror {
	t.Helper()
	return startMirrorOpts(t, Options{Now: now}, key, sources...)
}

// startMirrorOpts starts a node following demo under key from sources
// with opts (WebSeedBase, NoSync and Follow are set here), its HTTP on
// 127.0.0.1.
func startMirrorOpts(t testing.TB, opts Options, key []byte, sources ...string) *testMirror {
	t.Helper()
	a, err := archive.Open(&archive.Options{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tm := &testMirror{a: a, url: "http://" + ln.Addr().String()}
	opts.WebSeedBase, opts.NoSync = tm.url, true
	opts.Follow = []FollowSpec{{List: "demo", Key: key, Sources: sources}}
	tm.node, err = NewNode(a, &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tm.node.Close() })
	srv := &httptest.Server{Listener: tm.node.HTTPListener(ln), Config: tm.node.HTTPServer(t.Context())}
	srv.Start()
	t.Cleanup(srv.Close)
	return tm
}

func exportOf(t testing.TB, a *archive.Archive, name string) []byte {
	t.Helper()
	l, err := a.List(name)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := l.Export(context.Background(), &buf, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFollowOnce(t *testing.T) {
	tn := startTestNode(t, 5)
	now := func() time.Time { return tn.now }
	m1 := startTestMirror(t, tn.l.PublicKey(), now, tn.url)
	if err := m1.node.SyncOnce(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(exportOf(t, tn.a, "demo"), exportOf(t, m1.a, "demo")) {
		t.Fatal("mirror export differs from the origin's")
	}
	st, _ := m1.node.FollowStatus("demo")
	t.Logf("status: %+v", st)
	// A mirror of the mirror.
	m2 := startTestMirror(t, tn.l.PublicKey(), now, m1.url)
	if err := m2.node.SyncOnce(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(exportOf(t, tn.a, "demo"), exportOf(t, m2.a, "demo")) {
		t.Fatal("second mirror export differs from the origin's")
	}
}

// clock is a test clock safe to read from the nodes' goroutines.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// waitFor polls cond every 20 ms for up to d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func runNode(t testing.TB, n *Node) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestFollowLive: a mirror running beside the origin takes each new
// slice, then seals the day by rebuilding the day pack from the slices it
// holds, downloading nothing more.
func TestFollowLive(t *testing.T) {
	clk := &clock{now: day("2026-11-23", 12)}
	tn := startTestNodeOpts(t, 3, Options{SliceInterval: 200 * time.Millisecond, Now: clk.Now}, nil)
	m1 := startTestMirror(t, tn.l.PublicKey(), clk.Now, tn.url)
	runNode(t, tn.node)
	runNode(t, m1.node)
	same := func() bool { return bytes.Equal(exportOf(t, tn.a, "demo"), exportOf(t, m1.a, "demo")) }
	waitFor(t, 20*time.Second, "the first sync", same)
	for i := range 3 {
		addAt(t, tn.l, 100+i, clk.Now().Add(time.Duration(i)*time.Second))
		waitFor(t, 20*time.Second, "slice "+strconv.Itoa(i), same)
	}
	st0, _ := m1.node.FollowStatus("demo")
	clk.set(day("2026-11-24", 0).Add(30 * time.Minute))
	var m *Manifest
	waitFor(t, 20*time.Second, "the sealed day at the mirror", func() bool {
		st, _ := m1.node.FollowStatus("demo")
		m = tn.node.manifest(tn.node.list("demo"))
		return st.Seq == m.Seq && m.Packs[len(m.Packs)-1].Kind == KindDay
	})
	st, _ := m1.node.FollowStatus("demo")
	if st.DaysRebuilt != 1 || st.DaysDownloaded != 0 {
		t.Errorf("day close: rebuilt %d, downloaded %d; want 1, 0", st.DaysRebuilt, st.DaysDownloaded)
	}
	if st.BytesDown != st0.BytesDown {
		t.Errorf("day close downloaded %d bytes", st.BytesDown-st0.BytesDown)
	}
	// One copy: the rebuilt day pack is the epoch's storage, the slice
	// packs it covers are gone.
	if st.DaysAdopted != 1 {
		t.Errorf("day close: %d day packs adopted, want 1", st.DaysAdopted)
	}
	checkOneCopy(t, m1.a, m)
	if !bytes.Equal(exportOf(t, tn.a, "demo"), exportOf(t, m1.a, "demo")) {
		t.Error("mirror export differs from the origin's after the swap")
	}
	// The mirror serves the sealed day pack as the origin does.
	p := m.Packs[len(m.Packs)-1]
	_, b := httpGet(t, m1.url+"/lists/demo/packs/"+p.File)
	if sha256.Sum256(b) != p.SHA256 {
		t.Errorf("mirror serves %s with another sha256", p.File)
	}
}

// TestFollowDaySealedWhileAway: a mirror that took the first slices of a
// day and was away when the day was sealed downloads the day pack and
// installs only the commits after its tip; then a month closes.
func TestFollowDaySealedWhileAway(t *testing.T) {
	tn := startTestNode(t, 2)
	now := func() time.Time { return tn.now }
	m1 := startTestMirror(t, tn.l.PublicKey(), now, tn.url)
	if err := m1.node.SyncOnce(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	addAt(t, tn.l, 50, tn.now, tn.now.Add(time.Minute))
	tn.now = day("2026-12-01", 1) // seals 2026-11-23 and bundles November
	if _, err := tn.node.Publish("demo"); err != nil {
		t.Fatal(err)
	}
	if err := m1.node.SyncOnce(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(exportOf(t, tn.a, "demo"), exportOf(t, m1.a, "demo")) {
		t.Fatal("mirror export differs from the origin's")
	}
	st, _ := m1.node.FollowStatus("demo")
	if st.DaysRebuilt != 0 {
		t.Errorf("rebuilt %d days: the mirror could not hold the sealed day's new commits", st.DaysRebuilt)
	}
	m := tn.manifest(t)
	for _, p := range m.Packs {
		if err := checkFile(filepath.Join(m1.a.Dir(), "lists", "demo", swarmDir, packsDir, p.File), &p); err != nil {
			t.Error(err)
		}
	}
	for _, b := range m.Bundles {
		if tt := m1.node.Torrent("demo", b.Name); tt == nil || !tt.Complete().Bool() {
			t.Errorf("bundle %s not seeded complete by the mirror", b.Name)
		}
	}
	// The downloaded day pack is the storage of the whole day: the
	// first slices' packs and the pack of the commits after the tip go.
	checkOneCopy(t, m1.a, m)
}

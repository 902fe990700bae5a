package swarm

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
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
	tm.node, err = NewNode(a, &Options{WebSeedBase: tm.url, Now: now, NoSync: true,
		Follow: []FollowSpec{{List: "demo", Key: key, Sources: sources}}})
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

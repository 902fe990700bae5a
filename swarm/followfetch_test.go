package swarm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestStatusListen: the follower reads a source's BitTorrent address
// from the first keys of its status and stops there. A status of a few
// years of day packs is over the 1 MiB the read is capped at (1.4 MB for
// 5 years): decoded whole, it failed, and every torrent asked again.
func TestStatusListen(t *testing.T) {
	big := Status{List: "demo", Key: strings.Repeat("ab", 32), Seq: 9, Seeding: true, Listen: "127.0.0.2:6881"}
	for i := range 12000 {
		big.Packs = append(big.Packs, Item{Kind: KindDay, Name: fmt.Sprintf("demo-e0-%05d.pack", i), Day: "2026-01-01", Size: 4000})
	}
	b, err := json.MarshalIndent(big, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) <= 1<<20 {
		t.Fatalf("status of %d bytes: want over 1 MiB", len(b))
	}
	for _, tc := range []struct {
		name, in, want string
		err            bool
	}{
		{name: "a big status", in: string(b), want: "127.0.0.2:6881"},
		{name: "listen last", in: `{"list":"demo","packs":[{"kind":"day","files":["a","b"]}],"x":{"listen":"no"},"listen":"[::1]:7000"}`, want: "[::1]:7000"},
		{name: "no listen", in: `{"list":"demo","seeding":false}`, err: true},
		{name: "not an object", in: `["listen","127.0.0.1:1"]`, err: true},
		{name: "torn", in: `{"list":"demo","packs":[{"kind"`, err: true},
		{name: "listen not a string", in: `{"listen":6881}`, err: true},
		{name: "empty", in: ``, err: true},
	} {
		got, err := statusListen(io.LimitReader(strings.NewReader(tc.in), 1<<20))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%s: statusListen = %q, %v; want %q, error %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

// TestFollowAsksStatusOnce: the torrents of a sync download at once and
// each wants the sources' BitTorrent addresses; a source's status is
// read once for all of them (16 torrents read 3 sources' 1.4 MB status
// 48 times, 1 to 4 s of every torrent's start, in bench mirror -years 5).
func TestFollowAsksStatusOnce(t *testing.T) {
	tn := startTestNode(t, 5)
	u, err := url.Parse(tn.url)
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int64
	rp := httputil.NewSingleHostReverseProxy(u)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/status") {
			asked.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	m := startTestMirror(t, tn.l.PublicKey(), func() time.Time { return tn.now }, proxy.URL)
	if err := m.node.SyncOnce(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(exportOf(t, tn.a, "demo"), exportOf(t, m.a, "demo")) {
		t.Fatal("mirror export differs from the origin's")
	}
	st := mustFollowStatus(t, m)
	if st.TorrentsOpened < 3 {
		t.Fatalf("%d torrents opened: the test wants several at once", st.TorrentsOpened)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("%d torrents opened, the source's status read %d times; want once", st.TorrentsOpened, n)
	}
	var bt string
	for _, s := range st.Sources {
		if s.Source == proxy.URL {
			bt = s.BTPeer
		}
	}
	if want := tn.node.ln.Addr().String(); bt != want {
		t.Errorf("the source's BitTorrent address %q, want %q", bt, want)
	}
}

package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestGossipMirrors: an origin and four mirrors, each a real serve on its
// own loopback address. Mirrors 1 and 2 follow the origin over HTTP
// (long-poll); mirrors 3 and 4 are given only mirror 1's, resp. 2's,
// BitTorrent address: manifests reach them by gossip (ms_manifest), the
// .torrent infos by ut_metadata, the packs over BitTorrent. Mail sent
// over SMTP at a steady rate reaches an IMAP client idling at every
// mirror; the delay from the origin's 250 to EXISTS is reported per
// mirror (p50/p95, gossip beside long-poll in the same run); every
// export ends equal to the origin's. Then the origin is killed (SIGKILL)
// and a new mirror, given only the key and mirror 1's BitTorrent
// address, syncs the whole list from it and ends with the origin's
// export, saved before the kill.
func TestGossipMirrors(t *testing.T) {
	msgs, rate := 120, 20 // messages, per second
	if raceDetector {
		msgs, rate = 40, 10
	}
	origin := newClusterNode(t, 0, true)
	origin.start(t)
	key := listKey(t, origin.data)
	var mirrors []*clusterNode
	for i := 1; i <= 4; i++ {
		m := newClusterNode(t, i, false)
		m.key = key
		switch i {
		case 1, 2:
			m.sources = []string{origin.httpBase()}
		case 3, 4:
			m.sources = []string{mirrors[i-3].btAddr()} // gossip only
		}
		m.start(t)
		mirrors = append(mirrors, m)
	}
	var idlers []*idler
	for _, m := range mirrors {
		idlers = append(idlers, startIdler(t, m.imapAddr()))
	}
	propagation(t, origin, mirrors, idlers, msgs, rate, 90*time.Second, func(k int) string {
		if k >= 2 {
			return fmt.Sprintf("gossip only, from mirror %d's BitTorrent address", k-1)
		}
		return "HTTP long-poll from the origin"
	})
	want, _ := exportSum(t, origin.data)
	for k, m := range mirrors {
		waitExport(t, m, want, fmt.Sprintf("mirror %d", k+1))
	}
	for k, m := range mirrors {
		st := nodeStatus(t, m)
		if st.Follow == nil {
			t.Fatalf("mirror %d: no follow status", k+1)
		}
		if k >= 2 && st.Follow.GossipManifests == 0 {
			t.Errorf("mirror %d took no manifest by gossip: %+v", k+1, st.Follow)
		}
		t.Logf("mirror %d: %d manifests (%d patches), %d manifest bytes, %d of them by gossip", k+1,
			st.Follow.ManifestsFetched, st.Follow.ManifestPatches, st.Follow.ManifestBytes, st.Follow.GossipBytes)
	}

	// The origin dies; a new mirror knows only the key and one mirror's
	// BitTorrent address.
	origin.srv.cmd.Process.Kill()
	origin.srv.cmd.Wait()
	late := newClusterNode(t, 5, false)
	late.key = key
	late.sources = []string{mirrors[0].btAddr()}
	start := time.Now()
	late.start(t)
	waitExport(t, late, want, "the new mirror")
	st := nodeStatus(t, late)
	t.Logf("new mirror after the origin's death: synced in %v from %s: %d torrents, %d gossip manifests (%d bytes)",
		time.Since(start).Round(time.Millisecond), mirrors[0].btAddr(), st.Follow.TorrentsOpened, st.Follow.GossipManifests, st.Follow.GossipBytes)
	for _, n := range append(mirrors, late) {
		n.srv.stop(t)
		verifyNode(t, n.data)
	}
}

// waitExport waits until node n's export has sha256 want.
func waitExport(t *testing.T, n *clusterNode, want, what string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if got, _ := exportSum(t, n.data); got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: export differs from the origin's after 90 s\n%s", what, tail(n.srv.log(), 60))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

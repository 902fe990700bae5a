package main

import (
	"fmt"
	"net/smtp"
	"slices"
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
	sent := make([]time.Time, msgs+1) // by article number
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 1; i <= msgs; i++ {
		<-tick.C
		msg := fmt.Sprintf("From: Poster <p%d@example.net>\r\nTo: dev@example.org\r\nSubject: post %d\r\n"+
			"Message-ID: <post%d@example.net>\r\nDate: %s\r\n\r\nbody %d\r\n", i%9, i, i, time.Now().Format(time.RFC1123Z), i)
		if err := smtp.SendMail(fmt.Sprintf("%s:%d", origin.ip, origin.smtp), nil, "p@example.net", []string{"dev@example.org"}, []byte(msg)); err != nil {
			t.Fatalf("message %d: %v\n%s", i, err, origin.srv.log())
		}
		sent[i] = time.Now()
	}
	for k, id := range idlers {
		var delays []time.Duration
		next := 1
		deadline := time.After(90 * time.Second)
		for next <= msgs {
			select {
			case e, ok := <-id.seen:
				if !ok {
					t.Fatalf("mirror %d: IMAP connection ended at %d of %d\n%s", k+1, next-1, msgs, mirrors[k].srv.log())
				}
				for ; next <= e.n && next <= msgs; next++ {
					delays = append(delays, e.at.Sub(sent[next]))
				}
			case <-deadline:
				t.Fatalf("mirror %d: saw %d of %d messages in IDLE\n%s", k+1, next-1, msgs, mirrors[k].srv.log())
			}
		}
		slices.Sort(delays)
		how := "HTTP long-poll from the origin"
		if k >= 2 {
			how = "gossip only, from mirror " + fmt.Sprint(k-1) + "'s BitTorrent address"
		}
		t.Logf("mirror %d (%s): 250 at origin → EXISTS at mirror: p50 %v, p95 %v, max %v", k+1, how,
			delays[len(delays)/2].Round(time.Millisecond), delays[len(delays)*95/100].Round(time.Millisecond), delays[len(delays)-1].Round(time.Millisecond))
	}
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

package main

import (
	"fmt"
	"testing"
	"time"
)

// TestServeDHTItem: real serve processes on 127.0.0.2 and .3, each
// with the DHT on and bootstrapped from the other's BitTorrent port (UDP)
// only. The mirror's one HTTP source is dead: it learns the origin's
// newest manifest from the list's BEP 44 item, fetches it from the URL
// the item names, syncs and ends with the origin's export; its status
// shows the item (seq, from "dht"). The origin reached no DHT node when
// it put the item (the mirror was not up): the mirror found it in the
// origin's own store.
func TestServeDHTItem(t *testing.T) {
	origin := newClusterNode(t, 0, true)
	mirror := newClusterNode(t, 1, false)
	origin.btExtra = fmt.Sprintf("dht = true\ndht_bootstrap = [%q]\n", mirror.btAddr())
	mirror.btExtra = fmt.Sprintf("dht = true\ndht_bootstrap = [%q]\n", origin.btAddr())
	origin.start(t)
	origin.postN(t, "dht", 3)
	waitManifest(t, origin, 0)
	time.Sleep(3 * time.Second) // the slices of all three cut (slice_interval 1 s)
	seq := nodeStatus(t, origin).Seq
	if st := nodeStatus(t, origin); st.DHTSeq != seq {
		t.Fatalf("origin holds DHT item seq %d, manifest seq %d", st.DHTSeq, seq)
	}
	mirror.key = listKey(t, origin.data)
	mirror.sources = []string{fmt.Sprintf("http://%s:%d", mirror.ip, freePortOn(t, mirror.ip))} // nothing listens
	mirror.start(t)
	waitFollowed(t, mirror, seq)
	st := nodeStatus(t, mirror)
	t.Logf("mirror: seq %d, dht_seq %d from %q, dht_put %v", st.Follow.Seq, st.Follow.DHTSeq, st.Follow.DHTFrom, st.Follow.DHTPut)
	if st.Follow.DHTSeq != seq || st.Follow.DHTFrom != "dht" {
		t.Errorf("mirror's item: seq %d from %q, want %d from the DHT", st.Follow.DHTSeq, st.Follow.DHTFrom, seq)
	}
	want, _ := exportSum(t, origin.data)
	if got, _ := exportSum(t, mirror.data); got != want {
		t.Errorf("mirror export %s, origin's %s", got, want)
	}
}

// TestServeDHTOnly: a list found by its key alone. The origin and a
// mirror (following it over HTTP) run with the DHT on, bootstrapped from
// each other. The origin is killed (SIGKILL). Then a brand-new mirror
// whose [[follow]] names the key and no source at all, its DHT
// bootstrapped from the mirror alone, syncs the whole list and ends with
// the origin's export: the BEP 44 item (which the mirror holds and
// re-puts) names the newest manifest, whose URL (the origin's) is dead;
// get_peers of the list's rendezvous torrent gives the mirror (which
// keeps itself in its own DHT peer store: a DHT announce never reaches
// the announcer, and the nodes that held the mirror's announces are
// gone); the manifest comes by gossip, the packs over BitTorrent. The
// same from the command line: `follow --once --dht --dht-bootstrap`
// with a follow string that has no source.
func TestServeDHTOnly(t *testing.T) {
	origin := newClusterNode(t, 0, true)
	mirror := newClusterNode(t, 1, false)
	origin.btExtra = fmt.Sprintf("dht = true\ndht_bootstrap = [%q]\n", mirror.btAddr())
	mirror.btExtra = fmt.Sprintf("dht = true\ndht_bootstrap = [%q]\n", origin.btAddr())
	origin.start(t)
	mirror.key = listKey(t, origin.data)
	mirror.sources = []string{origin.httpBase()}
	mirror.start(t)
	origin.postN(t, "dhtonly", 5)
	waitManifest(t, origin, 0)
	time.Sleep(3 * time.Second) // every post sliced (slice_interval 1 s)
	want, _ := exportSum(t, origin.data)
	waitExport(t, mirror, want, "the mirror")
	seq := nodeStatus(t, origin).Seq
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if st := nodeStatus(t, mirror); st.Follow != nil && st.Follow.DHTSeq == seq {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mirror does not hold the origin's DHT item (seq %d) after 30 s: %+v", seq, nodeStatus(t, mirror).Follow)
		}
	}
	origin.srv.cmd.Process.Kill()
	origin.srv.cmd.Wait()

	late := newClusterNode(t, 2, false)
	late.key = mirror.key
	late.btExtra = fmt.Sprintf("dht = true\ndht_bootstrap = [%q]\n", mirror.btAddr())
	start := time.Now()
	late.start(t)
	waitExport(t, late, want, "the new mirror (key and DHT only)")
	took := time.Since(start)
	st := nodeStatus(t, late)
	var peers []string
	for _, s := range st.Follow.Sources {
		peers = append(peers, s.Source)
	}
	t.Logf("new mirror, key and DHT bootstrap only, origin dead: synced in %v: seq %d, %d torrents, %d gossip manifests, peers %v",
		took.Round(time.Millisecond), st.Follow.Seq, st.Follow.TorrentsOpened, st.Follow.GossipManifests, peers)
	// The item comes from the DHT too (its get traversal waits out the
	// dead origin, which the mirror's routing table still names: seconds,
	// so the gossip is usually first).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if st = nodeStatus(t, late); st.Follow.DHTSeq == seq && st.Follow.DHTFrom == "dht" {
			t.Logf("new mirror: the item (seq %d) read from the DHT %v after start", seq, time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new mirror's item: seq %d from %q after 30 s, want %d from the DHT\n%s", st.Follow.DHTSeq, st.Follow.DHTFrom, seq, tail(late.srv.log(), 40))
		}
	}
	if st.Follow.GossipManifests == 0 {
		t.Errorf("new mirror took no manifest by gossip: %+v", st.Follow)
	}

	// The command line: a follow string with no source, --dht.
	data := t.TempDir()
	ip := "127.0.0.5"
	start = time.Now()
	out, stderr, err := mailswarm(t, "follow", "--data", data, "--once", "--dht", "--dht-bootstrap", mirror.btAddr(),
		"--listen", fmt.Sprintf("%s:%d", ip, freePortOn(t, ip)), "mailswarm:dev:"+mirror.key)
	if err != nil {
		t.Fatalf("follow --once --dht: %v\n%s%s", err, out, tail(string(stderr), 40))
	}
	if got, _ := exportSum(t, data); got != want {
		t.Errorf("follow --once --dht: export %s, the origin's %s\n%s", got, want, tail(string(stderr), 40))
	}
	t.Logf("follow --once --dht (no source): in sync in %v", time.Since(start).Round(time.Millisecond))
	for _, n := range []*clusterNode{mirror, late} {
		n.srv.stop(t)
		verifyNode(t, n.data)
	}
	verifyNode(t, data)
}

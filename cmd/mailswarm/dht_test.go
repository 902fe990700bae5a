package main

import (
	"fmt"
	"net/smtp"
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
	for i := 1; i <= 3; i++ {
		msg := fmt.Sprintf("From: Poster <p@example.net>\r\nTo: dev@example.org\r\nSubject: post %d\r\n"+
			"Message-ID: <dht%d@example.net>\r\nDate: %s\r\n\r\nbody %d\r\n", i, i, time.Now().Format(time.RFC1123Z), i)
		if err := smtp.SendMail(fmt.Sprintf("%s:%d", origin.ip, origin.smtp), nil, "p@example.net", []string{"dev@example.org"}, []byte(msg)); err != nil {
			t.Fatalf("message %d: %v\n%s", i, err, origin.srv.log())
		}
	}
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

package swarm

import (
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
)

// TestDialsAtOnce: a follower starting many torrents dials their peers at
// once. anacrolix's default dial limiter (10 a second, burst 10) spread a
// late joiner's 19 torrents × 3 peers over 5 s (bench mirror -years 5);
// under it, 40 dials take 3 s.
func TestDialsAtOnce(t *testing.T) {
	tn := startTestNode(t, 1)
	// Four silent peers on their own loopback addresses, ten torrents
	// each: under the per-address cap (DefaultPeerMaxConnsPerClient).
	var accepted atomic.Int64
	var mu sync.Mutex
	var conns []net.Conn
	var lns []net.Listener
	var wg sync.WaitGroup
	for k := range 4 {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", 61+k))
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				mu.Lock()
				conns = append(conns, c) // held open, silent: the handshake waits
				mu.Unlock()
			}
		})
	}
	t.Cleanup(func() {
		for _, ln := range lns {
			ln.Close()
		}
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	const n = 40
	start := time.Now()
	for i := range n {
		var ih metainfo.Hash
		rand.Read(ih[:])
		tt, _ := tn.node.cl.AddTorrentOpt(torrent.AddTorrentOpts{InfoHash: ih})
		t.Cleanup(tt.Drop)
		tt.AddPeers([]torrent.PeerInfo{{Addr: lns[i%len(lns)].Addr(), Trusted: true}})
	}
	for accepted.Load() < n && time.Since(start) < 10*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	el := time.Since(start)
	t.Logf("%d of %d torrents' dials arrived in %s", accepted.Load(), n, el)
	if accepted.Load() < n || el > 1500*time.Millisecond {
		t.Errorf("%d of %d dials arrived in %s; want all within 1.5 s (the default limiter takes 3 s)", accepted.Load(), n, el)
	}
}

// TestCompletionNotPersistent: the piece states are in memory and say
// so; anacrolix otherwise msyncs every file of a piece as it completes
// (some 450 msyncs for a year bundle of 365 day packs, under the
// client's lock).
func TestCompletionNotPersistent(t *testing.T) {
	var pc storage.PieceCompletion = newCompletion()
	p, ok := pc.(storage.PieceCompletionPersistenter)
	if !ok || p.Persistent() {
		t.Fatalf("completion: persistenter %v; want one that reports false", ok)
	}
}

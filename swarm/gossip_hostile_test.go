package swarm

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// hostilePeer is a BitTorrent peer on a list's rendezvous torrent that
// speaks ms_manifest and lies: it announces seq 1000 every 100 ms and
// answers every request per its mode, the modes taken in turn, one per
// transfer: 0 a manifest signed with another key, 1 a piece of a body
// larger than a follower reads, 2 the first piece of two and then
// nothing (torn).
type hostilePeer struct {
	addr    string
	forged  []byte
	xfers   atomic.Int64 // transfers answered (the mode is xfers % 3)
	altered atomic.Int64 // lies sent
}

func startHostilePeer(t *testing.T, key ed25519.PublicKey, list string, forged []byte) *hostilePeer {
	t.Helper()
	h := &hostilePeer{forged: forged}
	cfg := testClientConfig(t.TempDir())
	cfg.Seed = true // else anacrolix takes no connection for a torrent it wants nothing of
	var ltep torrent.LocalLtepProtocolMap
	cfg.Callbacks.PeerConnAdded = append(cfg.Callbacks.PeerConnAdded, func(pc *torrent.PeerConn) {
		if ltep.Index == nil {
			ltep = torrent.LocalLtepProtocolMap{Index: slices.Clone(pc.LocalLtepProtocolMap.Index), NumBuiltin: pc.LocalLtepProtocolMap.NumBuiltin}
			ltep.AddUserProtocol(gossipExt)
		}
		pc.LocalLtepProtocolMap = &ltep
	})
	have := (&gossipMsg{Type: gossipHave, List: list, Seq: 1000, Hash: make([]byte, 32)}).Encode()
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	cfg.Callbacks.ReadExtendedHandshake = func(pc *torrent.PeerConn, d *pp.ExtendedHandshakeMessage) {
		go func() {
			for range 300 {
				if pc.WriteExtendedMessage(gossipExt, have) != nil {
					return
				}
				select {
				case <-done:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
	}
	cfg.Callbacks.PeerConnReadExtensionMessage = append(cfg.Callbacks.PeerConnReadExtensionMessage, func(ev torrent.PeerConnReadExtensionMessageEvent) {
		name, builtin, err := ev.PeerConn.LocalLtepProtocolMap.LookupId(ev.ExtensionNumber)
		if err != nil || builtin || name != gossipExt {
			return
		}
		m, err := decodeGossip(ev.Payload)
		if err != nil || m.Type != gossipRequest {
			return
		}
		var reply *gossipMsg
		if m.Piece == 0 {
			h.xfers.Add(1)
		}
		switch (h.xfers.Load() - 1) % 3 {
		case 0:
			off := m.Piece * gossipPiece
			reply = &gossipMsg{Type: gossipData, List: list, Seq: m.Seq, Piece: m.Piece, Total: len(h.forged),
				Data: h.forged[off:min(len(h.forged), off+gossipPiece)]}
		case 1:
			reply = &gossipMsg{Type: gossipData, List: list, Seq: m.Seq, Piece: 0, Total: maxFollowManifest + 1,
				Data: make([]byte, gossipPiece)}
		case 2:
			if m.Piece > 0 {
				return
			}
			reply = &gossipMsg{Type: gossipData, List: list, Seq: m.Seq, Piece: 0, Total: 2 * gossipPiece,
				Data: make([]byte, gossipPiece)}
		}
		h.altered.Add(1)
		pc := ev.PeerConn
		go pc.WriteExtendedMessage(gossipExt, reply.Encode()) // the client's lock is held here
	})
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	info := rendezvousInfo(key, list)
	cl.AddTorrentOpt(torrent.AddTorrentOpts{InfoHash: RendezvousInfoHash(key, list), InfoBytes: info,
		Storage: newRendezvousStorage(key, list), DisableInitialPieceCheck: true})
	h.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(cl.LocalPort()))
	return h
}

// TestGossipHostilePeer: a mirror given a hostile peer first and the
// honest origin second, the origin's gossip held back: every lie is
// refused with a penalty and a WARN naming the peer's address (a forged
// manifest, an oversized body, a torn transfer), the archive is
// unchanged, the peer is banned after three; then the origin's gossip
// runs and the mirror completes from it.
func TestGossipHostilePeer(t *testing.T) {
	old := gossipTimeout
	gossipTimeout = time.Second
	t.Cleanup(func() { gossipTimeout = old })
	tn := startTestNode(t, 3)
	other, otherPriv, _ := ed25519.GenerateKey(nil)
	forged := signed(t, tn.manifest(t), otherPriv, func(m *Manifest) { m.Key, m.Seq, m.Prev = other, 1000, [32]byte{1} })
	h := startHostilePeer(t, tn.l.PublicKey(), "demo", forged)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	now := func() time.Time { return tn.now }
	m1 := startMirrorOpts(t, Options{Now: now, Logger: log}, tn.l.PublicKey(), h.addr, tn.node.Addr().String())
	before := exportSum(t, m1.a)
	runNode(t, m1.node)
	peerStatus := func() SourceStatus {
		for _, s := range mustFollowStatus(t, m1).Sources {
			if s.Gossip && s.Source == h.addr {
				return s
			}
		}
		return SourceStatus{}
	}
	defer func() {
		if t.Failed() {
			t.Logf("mirror log:\n%s\nstatus %+v; hostile answered %d", logs, mustFollowStatus(t, m1), h.altered.Load())
		}
	}()
	waitFor(t, 20*time.Second, "three penalties for the hostile peer", func() bool { return peerStatus().Penalties >= penaltyBan })
	for _, want := range []string{"signed with key", "oversized: a body of 33554433 bytes", "torn"} {
		if lines := logs.warned(h.addr, want); len(lines) == 0 {
			t.Errorf("no WARN line names %s and says %q; log:\n%s", h.addr, want, logs)
		} else {
			t.Logf("logged: %s", lines[0])
		}
	}
	if st := mustFollowStatus(t, m1); st.Seq != 0 || exportSum(t, m1.a) != before {
		t.Errorf("the mirror took something from the hostile peer: seq %d", st.Seq)
	}
	sent := h.altered.Load()
	runNode(t, tn.node) // the honest peer's gossip starts
	waitFor(t, 20*time.Second, "the sync from the honest peer", func() bool {
		return bytes.Equal(exportOf(t, tn.a, "demo"), exportOf(t, m1.a, "demo"))
	})
	time.Sleep(300 * time.Millisecond) // the hostile peer's haves go on
	if n := h.altered.Load(); n != sent {
		t.Errorf("the banned peer was asked %d more times", n-sent)
	}
	t.Logf("hostile peer: %+v", peerStatus())
}

// TestGossipUnreadBound: a peer that requests manifest pieces at the
// allowed rate and never reads (a raw BitTorrent connection, its receive
// buffer 4 KiB): once the kernel's buffers are full (about 3 MiB on
// loopback) and gossipUnread more is queued, every further request is
// dropped, counted and logged once with its address. Without the bound
// the node queued every answer: 1,200 requests, 19 MiB held.
func TestGossipUnreadBound(t *testing.T) {
	tn := startHistoryNode(t, 120, Options{}) // a manifest over one 16 KiB piece
	runNode(t, tn.node)                       // the gossiper answers
	rv := RendezvousInfoHash(tn.l.PublicKey(), "demo")
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return serr
	}}
	c, err := d.Dial("tcp", tn.node.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	// BitTorrent handshake with the extension bit (BEP 10), then our
	// extended handshake naming ms_manifest.
	hs := append([]byte("\x13BitTorrent protocol"), 0, 0, 0, 0, 0, 0x10, 0, 0)
	hs = append(append(hs, rv[:]...), []byte("-XX0001-hostilereadr")...)
	writeMsg := func(id byte, payload []byte) {
		b := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)))
		if _, err := c.Write(append(append(b, id), payload...)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Write(hs); err != nil {
		t.Fatal(err)
	}
	writeMsg(20, append([]byte{0}, "d1:md11:ms_manifesti3eee"...))
	// Read the node's handshake and messages up to its extended
	// handshake, for its ms_manifest id; then never read again.
	r := bufio.NewReader(c)
	if _, err := io.ReadFull(r, make([]byte, 68)); err != nil {
		t.Fatal(err)
	}
	var ext byte
	var have *gossipMsg // the node's: the seq to ask for
	for ext == 0 || have == nil {
		var n uint32
		if err := binary.Read(r, binary.BigEndian, &n); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			t.Fatal(err)
		}
		switch {
		case n >= 2 && body[0] == 20 && body[1] == 0:
			var h pp.ExtendedHandshakeMessage
			if err := bencode.Unmarshal(body[2:], &h); err != nil {
				t.Fatal(err)
			}
			ext = byte(h.M[gossipExt])
			if ext == 0 {
				t.Fatalf("the node's extended handshake names no %s: %v", gossipExt, h.M)
			}
		case n >= 2 && body[0] == 20 && body[1] == 3: // ours, as our handshake said
			if have, err = decodeGossip(body[2:]); err != nil || have.Type != gossipHave {
				t.Fatalf("the node's first ms_manifest message: %+v, %v; want a have", have, err)
			}
		}
	}
	cur := tn.node.manifest(tn.node.list("demo"))
	if cur.Seq != have.Seq || len(cur.Bytes()) <= gossipPiece {
		t.Fatalf("manifest seq %d of %d bytes, the node announced %d; want one over %d bytes", cur.Seq, len(cur.Bytes()), have.Seq, gossipPiece)
	}
	answer := int64(len((&gossipMsg{Type: gossipData, List: "demo", Seq: cur.Seq, Total: len(cur.Bytes()), Data: cur.Bytes()[:gossipPiece]}).Encode()))
	g := tn.node.gossip
	counts := func() (answered, dropped int64) {
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, o := range g.out {
			answered += o.queued / answer
		}
		return answered, g.unread
	}
	// At 60 requests a second (the node answers 64 a peer): until the
	// first is dropped (the kernel's buffers full, then gossipUnread
	// queued), then 200 more.
	req := (&gossipMsg{Type: gossipRequest, List: "demo", Seq: have.Seq}).Encode()
	send := func() {
		writeMsg(20, append([]byte{ext}, req...))
		time.Sleep(time.Second / 60)
	}
	sent := 0
	for ; sent < 1200; sent++ {
		if _, d := counts(); d > 0 {
			break
		}
		send()
	}
	a1, d1 := counts()
	if d1 == 0 {
		t.Fatalf("%d requests from a peer that reads nothing: %d answered (%d KiB), none dropped", sent, a1, a1*answer>>10)
	}
	for range 200 {
		send()
	}
	var a2, d2 int64
	waitFor(t, 10*time.Second, "the last requests handled", func() bool {
		a2, d2 = counts()
		return a2+d2 >= a1+d1+195
	})
	t.Logf("a peer that reads nothing: %d requests before the first drop (%d answered, %d KiB: the kernel's buffers and gossipUnread), then of 200 more %d answered, %d dropped",
		sent, a1, a1*answer>>10, a2-a1, d2-d1)
	if a2-a1 > gossipUnread/answer+1 {
		t.Errorf("%d of 200 more requests answered to a peer that reads nothing, want at most %d (gossipUnread)", a2-a1, gossipUnread/answer+1)
	}
}

// TestGossipOutFollowsConns: the unread bound's table holds an entry
// from a connection's opening to its close: a request served after its
// connection closed (or on one never opened) writes nothing and adds
// nothing, and a peer that goes on requesting keeps its count however
// many other connections come and go.
func TestGossipOutFollowsConns(t *testing.T) {
	g := &gossiper{out: map[*torrent.PeerConn]*gossipOut{}}
	hostile := new(torrent.PeerConn)
	g.connAdded(hostile)
	g.out[hostile].queued = gossipUnread
	for range 5 * gossipKnown {
		pc := new(torrent.PeerConn)
		g.connAdded(pc)
		g.connClosed(pc)
		if g.mayWrite(gossipIn{pc: pc}, 100) {
			t.Fatal("a closed connection was written to")
		}
	}
	if g.mayWrite(gossipIn{pc: new(torrent.PeerConn)}, 100) {
		t.Error("a connection never opened was written to")
	}
	if len(g.out) != 1 {
		t.Errorf("%d entries, want the open connection's alone", len(g.out))
	}
	if o := g.out[hostile]; o == nil || o.queued != gossipUnread {
		t.Errorf("the requesting peer's count was forgotten: %+v", o)
	}
}

package swarm

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"mailswarm/archive"

	"github.com/anacrolix/torrent/metainfo"
)

// Status is what `mailswarm swarm status --json` prints for a list. The
// JSON names are a contract scripts rely on: add, never rename. Over
// public HTTP (GET /lists/NAME/status) dir and every path are left out:
// server paths are for the operator's command line (see StatusToken).
type Status struct {
	List        string `json:"list"`
	Key         string `json:"key"` // hex ed25519 public key
	Seq         int64  `json:"seq"` // manifest sequence; 0 before the first publish
	ManifestURL string `json:"manifest_url,omitempty"`
	// Tracker is the announce URL of the node's tracker (tracker.go),
	// which the .torrent files it serves name first.
	Tracker string `json:"tracker,omitempty"`
	// TrackerUDP is its UDP announce URL (tracker_udp.go), live only.
	TrackerUDP string `json:"tracker_udp,omitempty"`
	Dir        string `json:"dir,omitempty"` // the list's swarm directory (absolute, as every path here)
	// Seeding says whether a running node reported the live figures
	// (peers, bytes_up, listen); otherwise they are zero.
	Seeding bool     `json:"seeding"`
	Listen  string   `json:"listen,omitempty"`
	Peers   int      `json:"peers"`
	BytesUp int64    `json:"bytes_up"`
	Epochs  []string `json:"epoch_tips"` // "EPOCH:COMMIT"
	Packs   []Item   `json:"packs"`      // day packs and slices, in manifest order
	Bundles []Item   `json:"bundles"`
	// FollowString is the string a mirror follows the list by
	// (FollowSpec.String with this node's HTTP base as the source).
	FollowString string `json:"follow_string,omitempty"`
	// Follow is set for a list this node follows (a mirror): what its
	// follower knows.
	Follow *FollowStatus `json:"follow,omitempty"`
	// DHTSeq is the sequence of the signed BEP 44 item the running node
	// holds for the list and puts into the DHT (dhtput.go), DHTPut when
	// it last did.
	DHTSeq int64     `json:"dht_seq,omitempty"`
	DHTPut time.Time `json:"dht_put,omitzero"`
}

// Item is one slice, day pack or bundle.
type Item struct {
	Kind         string   `json:"kind"`            // "slice", "day" or "bundle"
	Name         string   `json:"name"`            // file name (bundle: torrent name)
	Path         string   `json:"path,omitempty"`  // the file (bundle: the directory of its files)
	Files        []string `json:"files,omitempty"` // bundle: member file names
	Epoch        int      `json:"epoch"`
	Day          string   `json:"day,omitempty"`   // YYYY-MM-DD (packs)
	Month        string   `json:"month,omitempty"` // YYYY-MM (bundles)
	Size         int64    `json:"size"`
	SHA256       string   `json:"sha256,omitempty"`
	Trailer      string   `json:"trailer,omitempty"`
	From         string   `json:"from,omitempty"` // commit range: after from, up to to
	To           string   `json:"to,omitempty"`
	FirstArticle int64    `json:"first_article,omitempty"`
	LastArticle  int64    `json:"last_article,omitempty"`
	Commits      int      `json:"commits,omitempty"`
	InfoHash     string   `json:"infohash"`
	TorrentURL   string   `json:"torrent_url,omitempty"`
	Peers        int      `json:"peers"`
	BytesUp      int64    `json:"bytes_up"`
}

// StatusOf describes list's published state as found on disk (no live
// figures); httpBase, when not empty, gives the URLs.
func StatusOf(list *archive.List, httpBase string) (Status, error) {
	dir := filepath.Join(list.Dir(), swarmDir)
	m, err := readManifest(dir, list.PublicKey())
	if err != nil {
		return Status{}, err
	}
	return statusOf(list, dir, m, httpBase), nil
}

func statusOf(list *archive.List, dir string, m *Manifest, httpBase string) Status {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs // paths scripts can use from anywhere
	}
	st := Status{List: list.Name(), Key: hex.EncodeToString(list.PublicKey()), Dir: dir,
		Packs: []Item{}, Bundles: []Item{}, Epochs: []string{}}
	if httpBase != "" {
		st.FollowString = FollowSpec{List: list.Name(), Key: list.PublicKey(), Sources: []string{httpBase}}.String()
	}
	base := ""
	if httpBase != "" {
		base = httpBase + "/lists/" + list.Name()
		st.ManifestURL = base + "/manifest"
		st.Tracker = trackerOf(httpBase)
	}
	if m == nil {
		return st
	}
	st.Seq = m.Seq
	for _, e := range m.Epochs {
		st.Epochs = append(st.Epochs, fmt.Sprintf("%d:%x", e.Epoch, e.Tip))
	}
	url := func(name string) string {
		if base == "" {
			return ""
		}
		return base + "/torrents/" + name + ".torrent"
	}
	for _, p := range m.Packs {
		it := Item{Kind: p.Kind, Name: p.File, Path: filepath.Join(dir, packsDir, p.File), Epoch: p.Epoch,
			Day: p.Day, Size: p.Size, SHA256: hex.EncodeToString(p.SHA256[:]), Trailer: hex.EncodeToString(p.Trailer[:]),
			To: hex.EncodeToString(p.To[:]), FirstArticle: p.FirstArticle, LastArticle: p.LastArticle,
			Commits: p.Commits, InfoHash: hex.EncodeToString(p.InfoHash[:]), TorrentURL: url(p.File)}
		if p.From != ([20]byte{}) {
			it.From = hex.EncodeToString(p.From[:])
		}
		st.Packs = append(st.Packs, it)
	}
	for _, b := range m.Bundles {
		st.Bundles = append(st.Bundles, Item{Kind: "bundle", Name: b.Name, Path: filepath.Join(dir, packsDir),
			Files: b.Files, Epoch: b.Epoch, Month: b.Month, Size: b.Size,
			InfoHash: hex.EncodeToString(b.InfoHash[:]), TorrentURL: url(b.Name)})
	}
	return st
}

// Status describes list as this node seeds it, with live peers and bytes.
func (n *Node) Status(list string) (Status, error) {
	nl := n.list(list)
	if nl == nil {
		return Status{}, fmt.Errorf("swarm: no list %q", list)
	}
	st := statusOf(nl.list, nl.dir, n.manifest(nl), n.opts.WebSeedBase)
	st.Seeding = true
	st.Tracker = n.TrackerURL()
	st.TrackerUDP = n.UDPTrackerURL()
	if it, put := n.heldItem(nl); it != nil {
		st.DHTSeq, st.DHTPut = it.Seq, put
	}
	if nl.follow != nil {
		fs := nl.follow.status()
		st.Follow = &fs
	}
	if a := n.Addr(); a != nil {
		st.Listen = a.String()
	}
	live := func(it *Item) {
		t := n.Torrent(list, it.Name)
		if t == nil {
			return
		}
		s := t.Stats()
		it.Peers = s.ActivePeers
		it.BytesUp = s.BytesWrittenData.Int64()
		st.Peers += it.Peers
		st.BytesUp += it.BytesUp
	}
	for i := range st.Packs {
		live(&st.Packs[i])
	}
	for i := range st.Bundles {
		live(&st.Bundles[i])
	}
	return st, nil
}

// withoutPaths returns st without its server paths (dir, every path): the
// status strangers see over HTTP.
func (st Status) withoutPaths() Status {
	st.Dir = ""
	for _, items := range []*[]Item{&st.Packs, &st.Bundles} {
		c := append([]Item(nil), *items...)
		for i := range c {
			c[i].Path = ""
		}
		*items = c
	}
	return st
}

// StatusTokenHeader is the request header of a status token.
const StatusTokenHeader = "X-Mailswarm-Status-Token"

// StatusToken returns the token with which `swarm status` asks the node
// serving list for its status with server paths (GET
// /lists/NAME/status, header StatusTokenHeader). It is an HMAC of the
// list's swarm directory under a key derived from list.key: only who can
// read list.key (the operator) can make it, and it matches only the node
// serving this very directory, so the live figures shown are this list's.
func StatusToken(list *archive.List) (string, error) {
	priv, err := archive.ReadPrivateKey(list.Dir())
	if err != nil {
		return "", err
	}
	return statusToken(priv, filepath.Join(list.Dir(), swarmDir)), nil
}

func statusToken(priv ed25519.PrivateKey, dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	k := sha256.Sum256(append([]byte("mailswarm status token\x00"), priv.Seed()...))
	mac := hmac.New(sha256.New, k[:])
	mac.Write([]byte(dir))
	return hex.EncodeToString(mac.Sum(nil))
}

// CheckPublished verifies list's published state on disk: the manifest's
// signature, and every pack it names against it (size, sha256, trailer, a
// strict pack check) and every stored torrent's infohash. It returns how
// many packs it checked (0 when nothing was published). A damaged file
// is an error naming it: seeding it would only waste peers' bandwidth.
func CheckPublished(list *archive.List) (int, error) {
	dir := filepath.Join(list.Dir(), swarmDir)
	m, err := readManifest(dir, list.PublicKey())
	if err != nil || m == nil {
		return 0, err
	}
	for _, p := range m.Packs {
		b, err := os.ReadFile(filepath.Join(dir, packsDir, p.File))
		if err != nil {
			return 0, fmt.Errorf("swarm: %s: %w", p.File, err)
		}
		if int64(len(b)) != p.Size || sha256.Sum256(b) != p.SHA256 {
			return 0, fmt.Errorf("swarm: %s: %w: size or sha256 differs from the manifest", p.File, archive.ErrCorrupt)
		}
		if _, err := archive.VerifyPack(b); err != nil {
			return 0, fmt.Errorf("swarm: %s: %w", p.File, err)
		}
	}
	torrents := map[string][20]byte{}
	for _, p := range m.Packs {
		torrents[p.File] = p.InfoHash
	}
	for _, b := range m.Bundles {
		torrents[b.Name] = b.InfoHash
	}
	for name, ih := range torrents {
		mi, err := metainfo.LoadFromFile(filepath.Join(dir, torrentsDir, name+".torrent"))
		if err != nil {
			return 0, fmt.Errorf("swarm: torrent %s: %w", name, err)
		}
		if mi.HashInfoBytes() != ih {
			return 0, fmt.Errorf("swarm: torrent %s: %w: infohash differs from the manifest", name, archive.ErrCorrupt)
		}
	}
	for _, b := range m.Bundles {
		var paths []string
		for _, f := range b.Files {
			paths = append(paths, filepath.Join(dir, packsDir, f))
		}
		mi, err := BundleTorrentFor(b.Name, paths)
		if err != nil {
			return 0, err
		}
		if mi.HashInfoBytes() != b.InfoHash {
			return 0, fmt.Errorf("swarm: bundle %s: %w: its files hash to another infohash", b.Name, archive.ErrCorrupt)
		}
	}
	return len(m.Packs), nil
}

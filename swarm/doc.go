// Package swarm publishes a list's history over BitTorrent and HTTP and
// follows lists others publish (docs/SWARM.md). Gossip between peers and
// finding peers through the DHT are coming (issue 13; docs/DESIGN.md,
// "Mirrors").
//
// It owns, for every list whose private key (list.key) it holds:
//
//   - Origin: slices of the open day's new mail, day packs of closed UTC
//     days (by committer date, never going back along the chain), month
//     bundles over the day-pack files, all canonical packs
//     (archive.List.WriteCanonicalPack); their torrents by one fixed recipe
//     (TorrentFor, BundleTorrentFor); and the signed manifest chain
//     (manifest.go: the format; ParseManifest, Follows). A long history is
//     published in steps of at most 256 packs, each ending in a signed
//     manifest.
//   - Node: one anacrolix/torrent client seeding every list of an archive,
//     publishing at each slice interval (and after a 1 s linger for a quiet
//     list's first post) on archive events, the HTTP side (http.go: the
//     manifest with long-poll, torrents with this node's web seed, packs
//     with Range requests; httpserve.go: its limits, HTTPLimits, for a
//     listener open to anyone: connection caps, timeouts, a deadline on
//     each write, long-poll caps), the BitTorrent side's limits (peerlimits.go,
//     PeerLimits: its own TCP listener and dialer, capped in all and per
//     client, and a rate-limited client log), DHT announces plus the
//     newest manifest as a BEP 44 item under the list key, which every
//     node, origin or mirror, puts again every hour (dhtput.go), and
//     an HTTP tracker at /announce (tracker.go: only for the infohashes of
//     manifests the node verified, a bounded peer store, the node itself
//     as a seeder; its URL first in every .torrent served), the same
//     over UDP on the BitTorrent port (tracker_udp.go, BEP 15: the DHT's
//     socket shared by first byte; its URL second) and scrape for both
//     (tracker_scrape.go).
//   - Mirror (follow.go, followapply.go, followfetch.go, followdht.go):
//     a followed list, Options.Follow: the list's BEP 44 item read from
//     the DHT and from sources, verified under the key, kept and put
//     again, a hint to the manifest it names; manifests long-polled from
//     HTTP sources and
//     taken only when signed by the given key and following the last one
//     verified; the fewest torrents downloaded into swarm/incoming (web
//     seeds, a stall watchdog with HTTP range fill); each pack checked
//     against the manifest and installed as the epoch's own git pack
//     (archive.List.InstallPacks); held day packs rebuilt rather than
//     downloaded; the manifest written last, then served and seeded.
//   - StatusOf and CheckPublished: what `swarm status` prints and what
//     `verify` checks of the published files against the manifest.
//
// It imports archive (never gitstore: archive/packs.go is what the swarm
// sees of git) and internal/durable; anacrolix/torrent and anacrolix/dht
// are used only here, and their types stay inside except where the
// Node's own API hands out a torrent (Client, Torrent). Only cmd/mailswarm
// and bench import it; archive never calls it: the Node subscribes to
// archive events.
//
// On-disk layout, a list's swarm directory DATA/lists/NAME/swarm:
//
//	manifest                the current signed manifest
//	packs/FILE.pack         slices and day packs: the torrents' payload
//	                        (a bundle's files are these same files)
//	torrents/NAME.torrent   one per pack and per bundle, without url-list
//	                        (web seed and trackers are added when served)
//	swarm.lock              flock: one publisher at a time (serve, or
//	                        `mailswarm swarm publish` beside it)
//	dht                     a mirror's signed BEP 44 item for the list,
//	                        as the origin signed it (bencode {seq, sig, v})
//
// Packs and torrents are written under a temporary name (.tmp-*), fsynced
// and renamed, their directories fsynced; the manifest is written last
// (temporary file, fsync, rename, directory fsync). So after a crash the
// manifest names only complete files, and the files it does not name
// (leftovers, retired slices) are removed by the next publish
// (docs/DESIGN.md, "Durability order", step 9).
package swarm

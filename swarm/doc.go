// Package swarm publishes a list's history as canonical packs over
// BitTorrent and follows other lists as a mirror. It subscribes to archive
// events; anacrolix/torrent is used only here.
package swarm

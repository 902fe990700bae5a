// Package archive owns mailing lists: accepting messages, deduplication,
// article numbers and the derived SQLite index.
//
// It imports gitstore (storage) and message (parsing; the index caches
// what message.Parse computes). smtpin, imapd and swarm import archive;
// archive imports none of them and never calls swarm: consumers subscribe
// to its events.
//
// A list lives in DATA/lists/NAME: list.json (name, address, creation
// time), the git epochs (see gitstore), the derived index.sqlite3
// (rebuildable from git alone by Reindex), users.sqlite3 (per user IMAP
// flags, never touched by Reindex), the list key (list.key, the ed25519
// private key, mode 0600; list.pub, its public key) and spool/ (below).
// A mirror list (CreateMirror; "mirror": true in list.json) is another
// node's list followed through the swarm: list.pub is the origin's key, it
// has no list.key, grows only by InstallPack and refuses mail (ErrMirror).
// swarm/ beside them is the swarm package's. The whole tree is in
// docs/DESIGN.md, "On disk".
//
// Accepted mail first goes to the list's write-ahead spool, DATA/lists/NAME/spool
// (spool.go, spoolrec.go): segment files named by the zero-padded sequence
// number of their first record, each record checksummed (CRC-32C) and
// fsynced before List.Accept returns; append.lock serialises appends across
// processes, commit.lock committers. The committer (drain.go) archives
// records in batches, recording each record's sequence number in its commit
// message ("Mailswarm-Spool: N") and the highest in the index (meta
// spool_seq), then writes spool/checkpoint and removes archived segments.
//
// Every writer (Add, Drain, import, AppendPack, InstallPack, a catch-up,
// Reindex), in any process, holds the list's index.lock (a flock) from its
// git append to its index commit; Run's watcher (watch.go) indexes commits
// git has and the index lacks only when it can take that lock, that is
// when their writer died.
package archive

// Package gitstore owns a list's git repositories in the public-inbox v2
// layout and the pack files inside them.
//
// It owns the bytes of git: object encoding, pack and idx writing and
// reading, ref moves, canonical packs (the swarm's payload), the strict
// pack verifier, and reading foreign repositories to adopt them (Foreign).
// Only archive imports it; it imports nothing of ours but internal/durable
// (atomic writes, directory fsync, flock).
//
// Why not go-git. It writes and reads packs, idx files and refs itself, for
// three reasons:
//
//   - Durability: go-git's ref updates are neither atomic nor fsynced (a
//     crash can leave a ref truncated, or naming objects that never reached
//     the disk). Here a batch is durable (pack and idx fsynced, renamed,
//     directory fsynced) before its ref moves, by a lock file, fsync and
//     rename (docs/DESIGN.md, "Durability order").
//   - Canonical bytes: a day pack must be byte for byte what any holder of
//     the same commits writes (fixed object order, no deltas, zlib level 6:
//     WriteCanonicalPack, TestCanonicalPackGolden), and reads go straight to
//     a blob's pack offset kept in the index, with no object lookup.
//   - Strict checks: packs from the swarm are untrusted. go-git accepts a
//     missing trailer, trailing garbage and short objects; VerifyPack and
//     PackCommits refuse them (FuzzVerifyPack).
//
// go-git is not in go.mod (it was dropped in the first tidy; nothing ever
// used it). It is still welcome inside gitstore, and only here
// (TestImportDirection reserves it), as a second reader: in tests, to
// cross-check what we write the way git fsck --strict and index-pack
// --strict already do, and for reading foreign repositories in forms this
// package does not handle (reftable, SHA-256 object names, a pack index
// version other than 2). Never for writes, ref moves or the read path by
// Loc.
//
// On-disk layout under the list directory (DATA/lists/NAME):
//
//	inbox.lock                  marks a public-inbox v2 inbox (empty file)
//	all.git/                    bare repo whose objects/info/alternates names every epoch
//	git/N.git/                  one bare repository per epoch, N = 0, 1, ...
//	git/N.git/refs/heads/master the epoch's tip; history is one linear chain
//	git/N.git/objects/pack/     pack-<sha1>.pack, .idx and .keep written by us
//	git/.append.lock            flock held by whoever appends (any process)
//	tmp_mailswarm_*             temporary files, removed by Open after a crash
//
// Every commit holds one message: its tree has the single blob "m" (a removal
// holds "d" instead). Objects are appended as one pack per batch, written to a
// temporary file, fsynced, renamed idx first then pack, and the directory
// fsynced; only then does the ref move, by lock file + fsync + rename. Packs are
// never deltified by us and are marked .keep; gc.auto is 0. InstallPack
// (a mirror's day pack from the swarm) writes no pack: it verifies the
// canonical pack file, writes its idx and .keep and hard-links the file in
// (one copy on disk; copied only across file systems), then moves the ref.
// InstallSealed does the same at the origin for a day pack of objects the
// epoch already has (no ref move, .keep "mailswarm sealed"), and
// DropCovered then removes the batch packs whose every object sealed packs
// hold (onecopy.go; the order is in docs/ARCHITECTURE.md, "One copy").
//
// Open only lists the packs. Reading a blob by its Loc opens the named pack
// and reads at the offset; at most 64 pack files are open per Store, the
// least recently used closed and reopened on demand. The idx files (parsed
// here, idx v2) are read the first time an object is looked up by name
// (Walk, Append, AppendRaw, Check, ...) and merged, per epoch, into a few
// in-memory sorted name arrays of 28 bytes an object, searched by binary
// search; a pack that appears on disk (another process appended) is picked
// up on the next miss or append. Packs written by git itself (git gc, repack,
// fast-import) may hold OFS_DELTA/REF_DELTA objects and loose objects may
// exist: both are read. A Loc of a loose object has Pack "loose/<hex name>"
// and Offset 0. A pack without a ref pointing into it (a crash between pack
// and ref) is harmless.
package gitstore

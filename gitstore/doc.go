// Package gitstore owns a list's git repositories in the public-inbox v2
// layout and the pack files inside them.
//
// It imports nothing of ours but internal/durable (the atomic writes,
// directory fsyncs and flock it shares with archive and swarm) and reads
// and writes git objects, packs and indexes itself (go-git is not needed: its ref writes are not atomic and its
// pack parser is lenient).
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
// never deltified by us and are marked .keep; gc.auto is 0.
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

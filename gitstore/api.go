package gitstore

// This file is the contract the archive package builds on: the exported
// types, and Store's methods, each of which calls its implementation in
// the package's other files. Every one is implemented.

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"time"
)

// Hash is a git SHA-1 object name.
type Hash [20]byte

// ZeroHash is the zero Hash: "no commit".
var ZeroHash Hash

// String returns the 40-digit lower-case hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero hash.
func (h Hash) IsZero() bool { return h == ZeroHash }

// ParseHash parses a 40-digit hex object name.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 40 {
		return h, fmt.Errorf("gitstore: bad object name %q", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("gitstore: bad object name %q", s)
	}
	return h, nil
}

// Ident is a git author or committer line.
type Ident struct {
	Name  string // may be empty; '<', '>' and newlines are removed on write
	Email string // may be empty; whitespace, '<' and '>' are removed on write
	// When is the time; its zone offset (When.Zone()) is written as the git
	// time zone, so keep the sender's offset where it is known.
	When time.Time
}

// Commit is one message, or one removal, to append to a list.
type Commit struct {
	// Blob is the raw message, stored byte for byte as the tree entry "m"
	// (or "d" when Remove is set: public-inbox's removal marker).
	Blob      []byte
	Remove    bool
	Author    Ident
	Committer Ident
	// Message is the commit message (public-inbox writes the Subject); a
	// final newline is added when missing.
	Message string
	// Prepared, when not nil, is PrepareBlob(Blob): the blob's name and
	// compressed pack record computed ahead of Append, so that the costly
	// part of writing runs on the caller's cores rather than under the
	// append lock.
	Prepared *PreparedBlob
}

// PreparedBlob is a blob hashed and compressed ahead of Append.
type PreparedBlob struct {
	hash Hash
	rec  []byte // pack record: object header and zlib stream
	crc  uint32
}

// PrepareBlob hashes and compresses data as Append would. It is safe for
// concurrent use.
func PrepareBlob(data []byte) *PreparedBlob {
	rec := packRecord(ObjBlob, data)
	return &PreparedBlob{hash: hashObject(ObjBlob, data), rec: rec, crc: crc32.ChecksumIEEE(rec)}
}

// Hash returns the blob's object name.
func (b *PreparedBlob) Hash() Hash { return b.hash }

// Loc says where an object's bytes are: pack base name ("pack-<sha1>", no
// extension) in the epoch's objects/pack directory and the object's offset.
type Loc struct {
	Epoch  int
	Pack   string
	Offset int64
	// Blob, when not zero, is the object's name: a Loc whose pack is gone
	// (a batch pack dropped once sealed day packs hold all its objects,
	// DropCovered) is read by that name instead. Readers of the index set
	// it, so a row read just before the rows moved still reads.
	Blob Hash
}

// Entry describes one commit of a list, as written or as walked.
type Entry struct {
	Epoch     int
	Commit    Hash
	Parent    Hash // zero for an epoch's root commit
	Tree      Hash
	Blob      Hash // the "m" (or "d") blob
	Remove    bool // the tree holds "d"
	BlobLoc   Loc  // where the blob is; ReadBlob(BlobLoc) returns it
	BlobSize  int64
	Author    Ident
	Committer Ident
	Message   string // as stored, with its final newline
}

// RawCommit is one commit adopted byte for byte from another repository
// (for example an existing public-inbox epoch): the contents of its commit,
// tree and blob objects without the git object header.
type RawCommit struct {
	Commit []byte
	Tree   []byte
	Blob   []byte
}

// Options configures a Store. The zero value is usable.
type Options struct {
	// EpochSize is how many bytes of packs an epoch holds before Append
	// starts the next epoch. Zero means 1 GiB (as public-inbox).
	EpochSize int64
	// NoSync skips fsync. Only for throwaway stores in benchmarks; never
	// set by the product.
	NoSync bool
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// PackInfo describes a canonical pack.
type PackInfo struct {
	Objects int
	Commits int
	Size    int64    // bytes, trailer included
	SHA256  [32]byte // of the whole file
	Trailer Hash     // the pack's own SHA-1 trailer
}

// ErrCorrupt is wrapped by every error about bytes that are not what they
// should be (packs, indexes, objects, refs).
var ErrCorrupt = errors.New("gitstore: corrupt")

// Store is one list's set of epochs. Methods are safe for concurrent use;
// appends are serialised.
type Store struct {
	dir  string
	opts Options
	impl *store
}

// Open opens the list directory dir, creating the layout (inbox.lock,
// all.git, git/0.git) when missing.
func Open(dir string, opts *Options) (*Store, error) { return open(dir, opts) }

// Close releases open pack files.
func (s *Store) Close() error { return s.impl.close() }

// Dir returns the list directory.
func (s *Store) Dir() string { return s.dir }

// Epochs returns the epoch numbers present, ascending (at least [0]).
func (s *Store) Epochs() []int { return s.impl.epochs() }

// Tip returns an epoch's refs/heads/master; zero when the epoch is empty.
func (s *Store) Tip(epoch int) (Hash, error) { return s.impl.tip(epoch) }

// Append writes commits in order on top of the newest epoch's tip, as one
// pack (+ idx, .keep) per epoch touched, durably, then moves the ref. A new
// epoch starts when the current one's packs exceed Options.EpochSize. The
// returned entries are in the same order as commits. Either all commits of
// an epoch's pack become visible or none do.
func (s *Store) Append(commits []Commit) ([]Entry, error) { return s.impl.append(commits) }

// AppendRaw adopts commits byte for byte into epoch (created when missing):
// the first commit's parent must be the epoch's tip (none for an empty
// epoch), each next one's parent the previous, and each tree must hold only
// "m" or "d" naming the given blob. Object names are kept, so the adopted
// history has the same commit ids as its source.
func (s *Store) AppendRaw(epoch int, commits []RawCommit) ([]Entry, error) {
	return s.impl.appendRaw(epoch, commits)
}

// ReadBlob returns the contents of the blob at loc (delta chains inside one
// pack are resolved).
func (s *Store) ReadBlob(loc Loc) ([]byte, error) { return s.impl.readBlob(loc) }

// ReadBlobHead returns a prefix of the blob at loc: inflated a few KiB at
// a time until done reports true for what has been read (or the blob
// ends). For a blob stored as a delta it returns the whole blob.
func (s *Store) ReadBlobHead(loc Loc, done func([]byte) bool) ([]byte, error) {
	return s.impl.readBlobHead(loc, done)
}

// Walk calls fn for every commit of epoch after from (zero: from the root)
// up to the tip, oldest first. It follows parent links back from the tip and
// never lists the whole repository. A non-nil error from fn stops the walk
// and is returned.
func (s *Store) Walk(epoch int, from Hash, fn func(Entry) error) error {
	return s.impl.walk(epoch, from, fn)
}

// WriteCanonicalPack writes the objects of epoch's commits after from (zero:
// from the root) up to and including to, as a canonical pack: commits
// oldest to newest, then their trees, then their blobs, each object once,
// no deltas, zlib level 6. Anyone holding those objects writes the same bytes.
func (s *Store) WriteCanonicalPack(w io.Writer, epoch int, from, to Hash) (PackInfo, error) {
	return s.impl.writeCanonicalPack(w, epoch, from, to)
}

// Check verifies the store end to end: every pack and idx strictly, every
// ref's chain resolves with trees of "m" or "d" only.
func (s *Store) Check() error { return s.impl.check() }

// ObjectType is a git object type as coded in packs.
type ObjectType int8

// Object types (pack codes).
const (
	ObjCommit ObjectType = 1
	ObjTree   ObjectType = 2
	ObjBlob   ObjectType = 3
	ObjTag    ObjectType = 4
)

// PackObject is one object found by VerifyPack.
type PackObject struct {
	Hash   Hash
	Type   ObjectType
	Offset int64
	Size   int64 // uncompressed
}

// VerifyPack checks a pack strictly: "PACK" header, version 2, the exact
// object count, every object's zlib stream inflating to exactly its declared
// size and ending where the next begins, every object re-hashed, no deltas,
// the trailing SHA-1 present and correct, and no bytes after it. Errors wrap
// ErrCorrupt.
func VerifyPack(pack []byte) ([]PackObject, error) { return verifyPack(pack) }

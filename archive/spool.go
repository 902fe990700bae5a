package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"mailswarm/internal/durable"
)

// Errors returned by List.Accept.
var (
	// ErrTempFail is wrapped by storage trouble: disk full, read-only data
	// directory, I/O error. The message was not accepted; try again later
	// (SMTP 451, deliver exit 75).
	ErrTempFail = errors.New("archive: temporary storage failure")
	// ErrRejected is wrapped when a message cannot be archived at all:
	// empty, or over Options.MaxMessageSize (SMTP 554, deliver exit 65).
	ErrRejected = errors.New("archive: message rejected")
)

const (
	spoolDir        = "spool"
	spoolAppendLock = "append.lock"
	spoolCommitLock = "commit.lock"
	spoolCheckpoint = "checkpoint"
	// spoolSegmentMax is the size past which appends start a new segment.
	spoolSegmentMax = 16 << 20
	// defaultMaxMessageSize is Options.MaxMessageSize's zero value.
	defaultMaxMessageSize = 64 << 20
)

// SpoolStats counts a list's spool appends in this process.
type SpoolStats struct {
	Appends uint64 // messages made durable
	Fsyncs  uint64 // fsyncs that made them so (group commit shares one)
}

// spool is a list's write-ahead log of accepted messages (see spoolrec.go
// for the format). Appends are group-committed: the first Accept to find
// no write under way becomes the leader and writes, in one write and one
// fsync, every record queued meanwhile; the others wait for its result.
// Across processes, append.lock serialises sequence numbering and writes.
type spool struct {
	dir    string
	noSync bool
	log    *slog.Logger

	mu      sync.Mutex
	queue   []*spoolReq
	leading bool

	// Writer state, owned by the leader.
	f       *os.File // the last segment, open for appending
	fname   uint64   // its first sequence number (its name)
	durable int64    // its size after the last durable append
	lastSeq uint64
	dirty   bool // a failed append may have left bytes past durable
	// dirReady: the spool directory exists, durably.
	dirReady bool
	buf      []byte

	// Committer state, under List.drainMu: segment readSeg was read up to
	// readOff, whose last record was readSeq (0: none).
	readSeg, readSeq uint64
	readOff          int64

	appends, fsyncs atomic.Uint64
	pending         atomic.Int64  // appended since the last drain began
	wake            chan struct{} // signalled when pending reaches a batch
	arrived         chan struct{} // signalled when pending leaves zero
}

type spoolReq struct {
	raw  []byte
	done chan error
}

func newSpool(dir string, noSync bool, log *slog.Logger) *spool {
	return &spool{dir: dir, noSync: noSync, log: log, wake: make(chan struct{}, 1), arrived: make(chan struct{}, 1)}
}

func segmentName(first uint64) string { return fmt.Sprintf("%020d", first) }

// segments returns the first sequence numbers of the spool's segments, in
// order.
func (s *spool) segments() ([]uint64, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var segs []uint64
	for _, e := range ents {
		if n, err := strconv.ParseUint(e.Name(), 10, 64); err == nil && len(e.Name()) == 20 {
			segs = append(segs, n)
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i] < segs[j] })
	return segs, nil
}

// Accept makes raw durable in the list's spool: when it returns nil the
// message survives a crash and the committer (Drain, Archive.Run) will
// archive it. Errors wrap ErrRejected (the message can never be archived)
// or ErrTempFail (storage trouble; nothing was promised); a mirror list
// refuses every message (ErrMirror with ErrRejected). Safe for
// concurrent use, also by several processes; concurrent calls share one
// fsync.
func (l *List) Accept(ctx context.Context, raw []byte) error {
	if err := l.refuseMirror(); err != nil {
		return err
	}
	max := l.a.opts.MaxMessageSize
	if max <= 0 {
		max = defaultMaxMessageSize
	}
	switch {
	case len(bytes.TrimSpace(raw)) == 0:
		// Nothing but line breaks: no header, no body, nothing to archive.
		return fmt.Errorf("%w: empty message", ErrRejected)
	case int64(len(raw)) > max:
		return fmt.Errorf("%w: message of %d bytes is over the limit of %d", ErrRejected, len(raw), max)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := l.spool.append(raw); err != nil {
		return fmt.Errorf("archive: accept into %s: %w: %w", l.name, ErrTempFail, err)
	}
	return nil
}

// SpoolStats returns the list's spool counters.
func (l *List) SpoolStats() SpoolStats {
	return SpoolStats{Appends: l.spool.appends.Load(), Fsyncs: l.spool.fsyncs.Load()}
}

func (s *spool) append(raw []byte) error {
	r := &spoolReq{raw: raw, done: make(chan error, 1)}
	s.mu.Lock()
	s.queue = append(s.queue, r)
	if s.leading {
		s.mu.Unlock()
		return <-r.done
	}
	s.leading = true
	for len(s.queue) > 0 {
		batch := s.queue
		s.queue = nil
		s.mu.Unlock()
		err := s.writeBatch(batch)
		for _, q := range batch {
			q.done <- err
		}
		s.mu.Lock()
	}
	s.leading = false
	s.mu.Unlock()
	return <-r.done
}

// writeBatch appends batch's records with one write and one fsync.
func (s *spool) writeBatch(batch []*spoolReq) error {
	if !s.dirReady {
		if _, err := os.Stat(s.dir); errors.Is(err, os.ErrNotExist) {
			if err := os.Mkdir(s.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
			if !s.noSync {
				if err := durable.SyncDir(filepath.Dir(s.dir)); err != nil {
					return err
				}
			}
		} else if err != nil {
			return err
		}
		s.dirReady = true
	}
	lk, err := durable.LockFile(filepath.Join(s.dir, spoolAppendLock))
	if err != nil {
		return fmt.Errorf("lock spool: %w", err)
	}
	defer lk.Unlock()
	if err := s.syncTail(); err != nil {
		return err
	}
	if s.durable >= spoolSegmentMax {
		if err := s.newSegment(s.lastSeq + 1); err != nil {
			return err
		}
	}
	now := time.Now().UnixNano()
	s.buf = s.buf[:0]
	seq := s.lastSeq
	for _, q := range batch {
		seq++
		s.buf = appendRecord(s.buf, seq, now, q.raw)
	}
	if len(s.buf) > 1<<20 && cap(s.buf) > 4<<20 {
		defer func() { s.buf = nil }()
	}
	_, err = s.f.WriteAt(s.buf, s.durable)
	if err == nil && !s.noSync {
		s.fsyncs.Add(1)
		err = s.f.Sync()
	}
	if err != nil {
		s.dirty = true
		if terr := s.f.Truncate(s.durable); terr == nil {
			s.dirty = false
		}
		return fmt.Errorf("append to spool: %w", err)
	}
	s.durable += int64(len(s.buf))
	s.lastSeq = seq
	s.appends.Add(uint64(len(batch)))
	n := s.pending.Add(int64(len(batch)))
	if n >= drainBatch {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	if n == int64(len(batch)) {
		select {
		case s.arrived <- struct{}{}:
		default:
		}
	}
	return nil
}

// syncTail brings the writer state up to date with the spool on disk
// (another process may have appended or started a segment) and removes
// a torn tail. The append lock must be held.
func (s *spool) syncTail() error {
	segs, err := s.segments()
	if err != nil {
		return err
	}
	if len(segs) == 0 {
		cp, err := readCheckpoint(s.dir)
		if err != nil {
			return err
		}
		return s.newSegment(max(cp, s.lastSeq) + 1)
	}
	last := segs[len(segs)-1]
	// After a failed append whose bytes could not be cut off, re-read: a
	// committer may have seen them, so their sequence numbers are taken.
	if s.f != nil && s.fname == last && !s.dirty {
		fi, err := s.f.Stat()
		if err != nil {
			return err
		}
		if fi.Size() == s.durable {
			return nil
		}
	}
	// Re-read the last segment.
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	f, err := os.OpenFile(filepath.Join(s.dir, segmentName(last)), os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return err
	}
	recs, valid, err := parseSegment(b)
	if err != nil {
		f.Close()
		return fmt.Errorf("segment %s: %w", segmentName(last), err)
	}
	if valid < len(b) {
		s.log.Warn("spool: truncating torn tail", "segment", filepath.Join(s.dir, segmentName(last)),
			"offset", valid, "bytes", len(b)-valid)
		if err := f.Truncate(int64(valid)); err != nil {
			f.Close()
			return err
		}
		if !s.noSync {
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
		}
	}
	s.f, s.fname, s.durable, s.dirty = f, last, int64(valid), false
	s.lastSeq = max(s.lastSeq, last-1)
	if len(recs) > 0 {
		s.lastSeq = max(s.lastSeq, recs[len(recs)-1].seq)
	}
	return nil
}

// newSegment creates (durably) the segment whose first record is first.
func (s *spool) newSegment(first uint64) error {
	f, err := os.OpenFile(filepath.Join(s.dir, segmentName(first)), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if !s.noSync {
		if err := durable.SyncDir(s.dir); err != nil {
			f.Close()
			return err
		}
	}
	if s.f != nil {
		s.f.Close()
	}
	s.f, s.fname, s.durable, s.dirty = f, first, 0, false
	s.lastSeq = max(s.lastSeq, first-1)
	return nil
}

// readCheckpoint returns the highest sequence number the committer has
// checkpointed (0: none).
func readCheckpoint(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, spoolCheckpoint))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(string(trimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("spool checkpoint: %w", err)
	}
	return n, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil && !s.leading {
		err := s.f.Close()
		s.f = nil
		return err
	}
	return nil
}

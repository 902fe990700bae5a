package archive

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"

	"mailswarm/gitstore"
	"mailswarm/internal/durable"
)

// List is one mailing list: its git epochs and its index. It is safe for
// concurrent use; writes are serialised.
type List struct {
	a    *Archive
	name string
	dir  string
	meta meta
	pub  ed25519.PublicKey

	git *gitstore.Store
	db  *sql.DB
	rdb *sql.DB // the index again, for IMAP reads (openReader)

	// wmu: one writer at a time in this process, and l.db and l.rdb are
	// swapped (Reindex) only under it. Across processes writers hold the
	// index lock too (lockIndex); git has its own flock.
	wmu sync.Mutex
	// progress, when set (under wmu), is told how many commits each index
	// chunk covered.
	progress func(commits int64)

	spool   *spool     // accepted messages not yet archived (spool.go)
	users   usersOnce  // per-user IMAP flags (users.go), opened on first use
	drainMu sync.Mutex // one committer pass at a time in this process

	evMu      sync.Mutex
	announced int64 // the last article told to subscribers (announce, watch.go)
}

func openList(a *Archive, name, dir string) (*List, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, fmt.Errorf("archive: open list %s: %w", name, err)
	}
	l := &List{a: a, name: name, dir: dir}
	l.spool = newSpool(filepath.Join(dir, spoolDir), a.opts.NoSync, a.log)
	if err := json.Unmarshal(b, &l.meta); err != nil {
		return nil, fmt.Errorf("archive: open list %s: %s: %w", name, metaFile, err)
	}
	if l.pub, err = readPublicKey(dir); err != nil {
		return nil, fmt.Errorf("archive: open list %s: %w", name, err)
	}
	l.git, err = gitstore.Open(dir, &gitstore.Options{EpochSize: a.opts.EpochSize, NoSync: a.opts.NoSync, Logger: a.log})
	if err != nil {
		return nil, fmt.Errorf("archive: open list %s: %w", name, err)
	}
	l.db, err = openIndex(filepath.Join(dir, indexFile), a.opts.NoSync)
	if errors.Is(err, errStaleSchema) {
		a.log.Warn("index schema changed: rebuilding from git", "list", name)
		err = l.rebuildIndex(context.Background(), nil) // leaves db and rdb open
	}
	if err == nil && l.rdb == nil {
		l.rdb, err = openReader(filepath.Join(dir, indexFile))
	}
	if err != nil {
		if l.db != nil {
			l.db.Close()
		}
		l.git.Close()
		return nil, fmt.Errorf("archive: open list %s: %w", name, err)
	}
	// Subscribers hear of articles from here on, not of the history.
	if l.announced, err = lastArticle(context.Background(), l.db); err != nil {
		l.close()
		return nil, fmt.Errorf("archive: open list %s: %w", name, err)
	}
	// The index may lag git after a crash between the ref move and the
	// index commit: catch up from git, which is the truth. When another
	// process holds the index lock it is writing, and indexes git itself.
	lk, err := l.lockIndex(true)
	if err == nil && lk != nil {
		_, _, err = l.catchUp(context.Background(), nil)
		lk.Unlock()
	}
	if err != nil {
		l.close()
		return nil, fmt.Errorf("archive: open list %s: %w", name, err)
	}
	return l, nil
}

// lockIndex takes the list's index lock (DATA/lists/NAME/index.lock, a
// flock), which a writer of any process holds from its git append until
// its index commit, and any catch-up holds while it indexes git: so a
// commit git has and the index lacks while the lock is free was left by a
// writer that died (the watcher, watch.go, then indexes it), never by a
// live but slow one. With try it returns (nil, nil) when the lock is held
// elsewhere. wmu must be held (the lock excludes this process's other
// holders too, so taking it without wmu could wait on ourselves).
//
// Why not a lock that exists: git/.append.lock is gitstore's, taken inside
// every Append and Open (a second flock on it from this process would wait
// for itself); spool/commit.lock is taken only by spool committers (not
// Add, import, AppendPack) and for a whole pass; spool/append.lock would
// stall Accept, and so SMTP's 250s, behind index commits. This one costs
// an open, a flock and a close per write: 9.5 µs (BenchmarkIndexLock).
func (l *List) lockIndex(try bool) (*durable.Lock, error) {
	path := filepath.Join(l.dir, indexLock)
	var lk *durable.Lock
	var err error
	if try {
		lk, err = durable.TryLockFile(path)
	} else {
		lk, err = durable.LockFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("index lock: %w", err)
	}
	return lk, nil
}

func (l *List) close() error {
	return errors.Join(l.spool.close(), l.closeUsers(), l.rdb.Close(), l.db.Close(), l.git.Close())
}

// Name returns the list's name.
func (l *List) Name() string { return l.name }

// Address returns the list's posting address as created (may be empty).
func (l *List) Address() string { return l.meta.Address }

// Dir returns the list directory (a public-inbox v2 inbox).
func (l *List) Dir() string { return l.dir }

// PublicKey returns the list's ed25519 public key: its identity.
func (l *List) PublicKey() ed25519.PublicKey { return l.pub }

// UIDValidity returns the IMAP UIDVALIDITY of the list's mailbox named
// mailbox (the list itself, or one of its year children).
func (l *List) UIDValidity(mailbox string) uint32 { return uidValidity(l.pub, mailbox) }

// Git returns the list's git store (for the swarm and verification).
func (l *List) Git() *gitstore.Store { return l.git }

// catchUp indexes every commit that git has and the index has not, epoch by
// epoch, in history order, committing every catchUpChunk messages so a
// rebuild of a large list neither holds one huge transaction nor loses its
// progress. It returns the range of article numbers added (first > last when
// none) and announces every article the index holds that subscribers have
// not heard of (announce), as one Event.
//
// b, when not nil, is the batch just appended: its messages need not be read
// back and parsed, and when the new commits are exactly its messages their
// full-text rows come from the batch's postings, built while the previous
// batch was being written.
//
// The caller holds wmu and the index lock (lockIndex). Where that lock
// excludes nothing (off unix) another process may catch the same index up
// at the same time: each chunk's transaction checks that the index is
// still where the previous chunk left it, and when another writer moved
// it, catchUp starts over from there (reading the new commits back from
// git), for as long as ctx allows: every restart means another writer
// indexed something, so git's commits run out.
func (l *List) catchUp(ctx context.Context, b *batch) (first, last int64, err error) {
	first = -1
	for {
		f, la, err := l.catchUpOnce(ctx, b)
		if first < 0 && (err == nil || errors.Is(err, errIndexMoved)) {
			// From where the index stood when this catch-up began: the
			// articles added meanwhile, whoever indexed them.
			first = f
		}
		if errors.Is(err, errIndexMoved) && ctx.Err() == nil {
			b = nil
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		l.announce(la)
		return min(first, la+1), la, nil
	}
}

// errIndexMoved tells catchUpOnce's caller that another writer indexed
// commits between two of its chunks.
var errIndexMoved = errors.New("archive: index moved under catch-up")

func (l *List) catchUpOnce(ctx context.Context, b *batch) (first, last int64, err error) {
	c := &chunker{l: l, ctx: ctx}
	defer c.abort()
	if err := c.begin(); err != nil {
		return first, last, err
	}
	tips, err := indexTips(ctx, c.tx)
	if err != nil {
		return first, last, err
	}
	c.tips, c.last = tips, &last
	if err := c.w.lastNum.QueryRowContext(ctx).Scan(&last); err != nil {
		return first, last, err
	}
	first = last + 1
	for _, epoch := range l.git.Epochs() {
		gtip, err := l.git.Tip(epoch)
		if err != nil {
			return first, last, err
		}
		if gtip == tips[epoch] {
			continue
		}
		add := func(e gitstore.Entry) error {
			c.n++
			if n := spoolSeqOf(e.Message); n > c.spoolSeq {
				c.spoolSeq = n
			}
			if e.Remove {
				_, err := c.w.markRemoved.ExecContext(ctx, e.Blob[:])
				return err
			}
			p := b.lookup(e.Blob)
			if p == nil {
				raw, err := l.git.ReadBlob(e.BlobLoc)
				if err != nil {
					return err
				}
				p = Prepare(raw, e.Committer.When)
			}
			last++
			if err := c.w.addMessage(ctx, last, &e, p); err != nil {
				return err
			}
			if c.batch != nil {
				c.batch.nums[p.pos] = last
			} else {
				c.w.tri.add(last, p.trigrams)
			}
			if c.n >= catchUpChunk {
				return c.commit(epoch, e.Commit)
			}
			return nil
		}
		if b != nil {
			var ents []gitstore.Entry
			if err := l.git.Walk(epoch, tips[epoch], func(e gitstore.Entry) error {
				ents = append(ents, e)
				return nil
			}); err != nil {
				return first, last, fmt.Errorf("index epoch %d: %w", epoch, err)
			}
			c.batch = b.postingsFor(ents)
			for _, e := range ents {
				if err := add(e); err != nil {
					return first, last, fmt.Errorf("index epoch %d: %w", epoch, err)
				}
			}
		} else if err := l.git.Walk(epoch, tips[epoch], add); err != nil {
			return first, last, fmt.Errorf("index epoch %d: %w", epoch, err)
		}
		if err := c.commit(epoch, gtip); err != nil {
			return first, last, err
		}
	}
	return first, last, nil
}

// catchUpChunk is how many commits one catch-up transaction indexes (a
// variable for tests).
var catchUpChunk int64 = 5000

// testHookChunkCommitted, when set, runs after each catch-up chunk is
// committed and before the next transaction begins.
var testHookChunkCommitted func(l *List)

// chunker is catchUp's transaction, renewed every catchUpChunk commits.
type chunker struct {
	l   *List
	ctx context.Context
	tx  *sql.Tx
	w   *indexWriter
	n   int64 // commits walked in this transaction
	// batch, when set, supplies this transaction's full-text rows.
	batch *batch
	// spoolSeq is the highest spool sequence number in the commit messages
	// walked, recorded in meta with the rows (see Drain).
	spoolSeq uint64
	// tips and last are where the index stands after this catch-up's
	// commits: each new transaction checks that no one else moved it.
	tips map[int]gitstore.Hash
	last *int64
}

func (c *chunker) begin() error {
	tx, err := c.l.db.BeginTx(c.ctx, nil)
	if err != nil {
		return err
	}
	w, err := newIndexWriter(c.ctx, tx)
	if err != nil {
		tx.Rollback()
		return err
	}
	c.tx, c.w, c.n = tx, w, 0
	return nil
}

// commit records tip as epoch's last indexed commit, commits, and begins
// the next transaction.
func (c *chunker) commit(epoch int, tip gitstore.Hash) error {
	if _, err := c.w.setTip.ExecContext(c.ctx, epoch, tip[:], c.n); err != nil {
		return err
	}
	if c.spoolSeq > 0 {
		if _, err := c.tx.ExecContext(c.ctx, `INSERT INTO meta (k, v) VALUES ('spool_seq', ?)
			ON CONFLICT (k) DO UPDATE SET v = excluded.v
			WHERE CAST(excluded.v AS INTEGER) > CAST(meta.v AS INTEGER)`, fmt.Sprint(c.spoolSeq)); err != nil {
			return err
		}
	}
	if c.batch != nil {
		if err := c.batch.flush(c.ctx, c.w.insTri, c.w.insTriBatch); err != nil {
			return err
		}
		c.batch = nil
	}
	if err := c.w.tri.flush(c.ctx, c.w.insTri, c.w.insTriBatch); err != nil {
		return err
	}
	c.w.close()
	if err := c.tx.Commit(); err != nil {
		return err
	}
	c.tips[epoch] = tip
	if c.l.progress != nil {
		c.l.progress(c.n)
	}
	if testHookChunkCommitted != nil {
		testHookChunkCommitted(c.l)
	}
	if err := c.begin(); err != nil {
		return err
	}
	return c.check()
}

// check returns errIndexMoved when the index, in the transaction just
// begun, is not where this catch-up left it.
func (c *chunker) check() error {
	tips, err := indexTips(c.ctx, c.tx)
	if err != nil {
		return err
	}
	var last int64
	if err := c.w.lastNum.QueryRowContext(c.ctx).Scan(&last); err != nil {
		return err
	}
	if last != *c.last || !maps.Equal(tips, c.tips) {
		return errIndexMoved
	}
	return nil
}

func (c *chunker) abort() {
	if c.tx != nil {
		c.w.close()
		c.tx.Rollback()
	}
}

// Stats is a summary of a list.
type Stats struct {
	Name        string `json:"name"`
	Messages    int64  `json:"messages"`     // archived and not removed
	Epochs      int    `json:"epochs"`       // git epochs
	LastArticle int64  `json:"last_article"` // highest article number
	Bytes       int64  `json:"bytes"`        // raw message bytes of the archived messages
	DiskBytes   int64  `json:"disk_bytes"`   // bytes the list directory takes
}

// Stats returns the list's summary.
func (l *List) Stats(ctx context.Context) (Stats, error) {
	s := Stats{Name: l.name, Epochs: len(l.git.Epochs())}
	err := l.db.QueryRowContext(ctx, `SELECT coalesce(sum(removed = 0), 0), coalesce(max(num), 0),
		coalesce(sum(CASE WHEN removed = 0 THEN size END), 0) FROM msg`).Scan(&s.Messages, &s.LastArticle, &s.Bytes)
	if err != nil {
		return s, fmt.Errorf("archive: stats %s: %w", l.name, err)
	}
	filepath.WalkDir(l.dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				s.DiskBytes += fi.Size()
			}
		}
		return nil
	})
	return s, nil
}

// Article is one archived message's index row.
type Article struct {
	Num       int64
	Epoch     int
	Commit    gitstore.Hash
	Blob      gitstore.Hash
	Loc       gitstore.Loc
	Size      int64
	MessageID string
	Date      int64 // Date header, unix seconds (commit author time when missing)
	Arrived   int64 // committer time, unix seconds (IMAP INTERNALDATE)
	Subject   string
	Removed   bool
}

// Articles calls fn for each article with from <= num <= to (to 0: no
// bound) in article order, removed ones included when withRemoved.
func (l *List) Articles(ctx context.Context, from, to int64, withRemoved bool, fn func(*Article) error) error {
	if to <= 0 {
		to = 1<<63 - 1
	}
	rows, err := l.db.QueryContext(ctx, `SELECT num, epoch, commit_id, blob_id, pack, off, size, mid, date,
		arrived, subject, removed FROM msg WHERE num BETWEEN ? AND ? ORDER BY num`, from, to)
	if err != nil {
		return fmt.Errorf("archive: articles %s: %w", l.name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var a Article
		var c, b []byte
		if err := rows.Scan(&a.Num, &a.Epoch, &c, &b, &a.Loc.Pack, &a.Loc.Offset, &a.Size, &a.MessageID,
			&a.Date, &a.Arrived, &a.Subject, &a.Removed); err != nil {
			return fmt.Errorf("archive: articles %s: %w", l.name, err)
		}
		copy(a.Commit[:], c)
		copy(a.Blob[:], b)
		a.Loc.Epoch, a.Loc.Blob = a.Epoch, a.Blob
		if a.Removed && !withRemoved {
			continue
		}
		if err := fn(&a); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Read returns an article's raw bytes, straight from its pack.
func (l *List) Read(a *Article) ([]byte, error) {
	b, err := l.git.ReadBlob(a.Loc)
	if err != nil {
		return nil, fmt.Errorf("archive: read %s article %d: %w", l.name, a.Num, err)
	}
	return b, nil
}

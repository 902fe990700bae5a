package archive

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"modernc.org/sqlite" // the "sqlite" driver (pure Go, no cgo)

	"mailswarm/gitstore"
	"mailswarm/message"
)

// schemaVersion changes whenever the index layout does; an index of another
// version is rebuilt from git.
const schemaVersion = 7

// The index is derived from git: every row can be rebuilt by Reindex.
//
//	msg     one row per archived message; num is the article number (its
//	        position in the list's history across epochs, counting only "m"
//	        commits), so it is the same on every mirror and after a rebuild.
//	        size is the raw size, vsize the size with CRLF line endings
//	        (IMAP's RFC822.SIZE); sentday the day of the Date header in its
//	        own time zone, as days since 1970-01-01 (IMAP SENTBEFORE/ON/SINCE)
//	        hdrs holds the header fields mail clients list mailboxes with
//	        (CachedHeader), as stored, so such fetches read no pack
//	        thread is the lowest article number of the message's thread
//	        (see indexWriter.thread)
//	mids    every Message-ID of a message (dedup, threading)
//	refs    the ids a message refers to (Parsed.ThreadRefs, its own ids
//	        left out); an id here that no row of mids has is a "ghost",
//	        a message the list never got, and still joins its replies
//	epochs  per epoch, the last commit indexed: the catch-up point after a
//	        crash between the git ref move and the index commit
//	tri     full text: a trigram index of subject, header and body, one
//	        row per trigram and batch (see trigram.go)
var schema = []string{
	`CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)`,
	`CREATE TABLE epochs (
		epoch INTEGER PRIMARY KEY,
		tip BLOB NOT NULL,
		commits INTEGER NOT NULL
	)`,
	`CREATE TABLE msg (
		num INTEGER PRIMARY KEY,
		epoch INTEGER NOT NULL,
		commit_id BLOB NOT NULL,
		blob_id BLOB NOT NULL,
		pack TEXT NOT NULL,
		off INTEGER NOT NULL,
		size INTEGER NOT NULL,
		vsize INTEGER NOT NULL,
		mid TEXT NOT NULL,
		chash BLOB NOT NULL,
		date INTEGER NOT NULL,
		sentday INTEGER NOT NULL,
		arrived INTEGER NOT NULL,
		subject TEXT NOT NULL,
		from_name TEXT NOT NULL,
		from_addr TEXT NOT NULL,
		thread INTEGER NOT NULL,
		env BLOB NOT NULL,
		bs BLOB NOT NULL,
		hdrs BLOB NOT NULL,
		removed INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE INDEX msg_blob ON msg (blob_id)`,
	`CREATE INDEX msg_arrived ON msg (arrived)`,
	`CREATE INDEX msg_date ON msg (date)`,
	// The IMAP server's timeline (List.Timeline) and SEARCH ranges read
	// these without touching the rows, whose cached ENVELOPE, BODYSTRUCTURE
	// and header blobs spill into overflow pages on real mail.
	`CREATE INDEX msg_timeline ON msg (num, arrived, removed)`,
	`CREATE INDEX msg_sentday ON msg (sentday)`,
	`CREATE INDEX msg_vsize ON msg (vsize)`,
	// joining two threads rewrites every row of one (indexWriter.thread)
	`CREATE INDEX msg_thread ON msg (thread)`,
	`CREATE TABLE mids (mid TEXT NOT NULL, num INTEGER NOT NULL)`,
	`CREATE INDEX mids_mid ON mids (mid)`,
	`CREATE TABLE refs (mid TEXT NOT NULL, num INTEGER NOT NULL)`,
	`CREATE INDEX refs_mid ON refs (mid)`,
	`CREATE TABLE tri (seg INTEGER NOT NULL, key INTEGER NOT NULL, nums BLOB NOT NULL,
		PRIMARY KEY (seg, key)) WITHOUT ROWID`,
	`CREATE TABLE tri_batch (first INTEGER PRIMARY KEY, last INTEGER NOT NULL)`,
}

// openIndex opens (creating when missing) the SQLite index at path.
func openIndex(path string, nosync bool) (*sql.DB, error) {
	sync := "NORMAL" // WAL + NORMAL: a killed process loses no committed transaction
	if nosync {
		sync = "OFF"
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+sync+")")
	q.Add("_pragma", "busy_timeout(30000)")
	q.Add("_pragma", "foreign_keys(OFF)")
	// A writer touches trigram rows all over the tree: a larger page cache
	// and memory-mapped reads keep that from becoming read syscalls.
	q.Add("_pragma", "cache_size(-32768)")
	q.Add("_pragma", "mmap_size(0)")
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("archive: index %s: %w", path, err)
	}
	// SQLite answers SQLITE_BUSY without waiting out busy_timeout when
	// openers race on a file that is not in WAL mode yet (the journal
	// mode switch and the lock promotion it needs): TestOpenIndexConcurrentCreate
	// saw it in 1 of 20 rounds of 4 openers under CI load. Such an open
	// is tried again, for as long as busy_timeout would have waited.
	deadline := time.Now().Add(30 * time.Second)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := initSchema(db)
		if err == nil {
			return db, nil
		}
		if !isBusy(err) || time.Now().After(deadline) {
			db.Close()
			return nil, fmt.Errorf("archive: index %s: %w", path, err)
		}
		time.Sleep(wait)
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (primary code 5).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == 5
}

// openReader opens a second handle on the index for the IMAP server's
// reads: a small page cache per connection (the writer's is 32 MiB) and
// at most 8 connections, so that many clients reading at once cost a
// bounded amount of memory.
func openReader(path string) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(30000)")
	q.Add("_pragma", "cache_size(-4096)")
	q.Add("_pragma", "query_only(1)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("archive: index %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	return db, nil
}

var errStaleSchema = errors.New("archive: index schema is stale")

func initSchema(db *sql.DB) error {
	ctx := context.Background()
	if ok, err := checkSchema(ctx, db); ok || err != nil {
		return err
	}
	// Another process may be creating the index too (serve creating a
	// mirror list while `mailswarm export` opens it): the transaction is
	// immediate, so whoever comes second waits here and then finds the
	// schema, instead of failing with "table meta already exists".
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if ok, err := checkSchema(ctx, tx); ok || err != nil {
		return err
	}
	for _, s := range schema {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (k, v) VALUES ('schema', ?)`, fmt.Sprint(schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

// checkSchema reports whether the index has its schema: false (and no
// error) when it has none yet, errStaleSchema when it has another version's.
func checkSchema(ctx context.Context, q querier) (bool, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'schema'`).Scan(&v)
	switch {
	case err == nil && v != fmt.Sprint(schemaVersion):
		return false, errStaleSchema
	case err == nil:
		return true, nil
	case strings.Contains(err.Error(), "no such table"):
		return false, nil
	}
	return false, err
}

// indexTips returns the last indexed commit of every epoch.
func indexTips(ctx context.Context, q querier) (map[int]gitstore.Hash, error) {
	rows, err := q.QueryContext(ctx, `SELECT epoch, tip FROM epochs`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	tips := map[int]gitstore.Hash{}
	for rows.Next() {
		var e int
		var b []byte
		if err := rows.Scan(&e, &b); err != nil {
			return nil, err
		}
		var h gitstore.Hash
		copy(h[:], b)
		tips[e] = h
	}
	return tips, rows.Err()
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// indexWriter inserts rows within one transaction.
type indexWriter struct {
	tx                                     *sql.Tx
	insMsg, insMid, insRef, thrOf, joinThr *sql.Stmt
	setTip, markRemoved, lastNum, chash    *sql.Stmt
	insTri, insTriBatch                    *sql.Stmt
	tri                                    postings // flushed by the owner before commit
}

func newIndexWriter(ctx context.Context, tx *sql.Tx) (*indexWriter, error) {
	w := &indexWriter{tx: tx}
	for _, p := range []struct {
		s **sql.Stmt
		q string
	}{
		{&w.insMsg, `INSERT INTO msg (num, epoch, commit_id, blob_id, pack, off, size, vsize, mid, chash, date, sentday,
			arrived, subject, from_name, from_addr, thread, env, bs, hdrs) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`},
		{&w.insMid, `INSERT INTO mids (mid, num) VALUES (?, ?)`},
		{&w.insRef, `INSERT INTO refs (mid, num) VALUES (?, ?)`},
		{&w.insTri, `INSERT INTO tri (seg, key, nums) VALUES (?, ?, ?)`},
		{&w.insTriBatch, `INSERT INTO tri_batch (first, last) VALUES (?, ?)`},
		// the thread of the messages with id ?1, and that of the messages
		// referring to ?1 (one thread each: see thread)
		{&w.thrOf, `SELECT
			(SELECT msg.thread FROM mids JOIN msg ON msg.num = mids.num WHERE mids.mid = ?1 LIMIT 1),
			(SELECT msg.thread FROM refs JOIN msg ON msg.num = refs.num WHERE refs.mid = ?1 LIMIT 1)`},
		{&w.joinThr, `UPDATE msg SET thread = ? WHERE thread = ?`},
		{&w.setTip, `INSERT INTO epochs (epoch, tip, commits) VALUES (?, ?, ?)
			ON CONFLICT (epoch) DO UPDATE SET tip = excluded.tip, commits = epochs.commits + excluded.commits`},
		{&w.markRemoved, `UPDATE msg SET removed = 1 WHERE num = (SELECT max(num) FROM msg WHERE blob_id = ? AND removed = 0)`},
		{&w.lastNum, `SELECT coalesce(max(num), 0) FROM msg`},
		{&w.chash, `SELECT msg.chash FROM mids JOIN msg ON msg.num = mids.num WHERE mids.mid = ? AND msg.removed = 0`},
	} {
		s, err := tx.PrepareContext(ctx, p.q)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("prepare: %w", err)
		}
		*p.s = s
	}
	return w, nil
}

func (w *indexWriter) close() {
	for _, s := range []*sql.Stmt{w.insMsg, w.insMid, w.insRef, w.thrOf, w.joinThr,
		w.setTip, w.markRemoved, w.lastNum, w.chash, w.insTri, w.insTriBatch} {
		if s != nil {
			s.Close()
		}
	}
}

// thread returns the thread of new article num, whose own Message-IDs are
// ids and which refers to refs, and joins into it every thread it links.
//
// A thread is a connected part of the graph whose nodes are Message-IDs
// and whose edges join each message's ids with one another and with every
// id it refers to, whether or not a message with that id is in the list:
// public-inbox's threads (OverIdx.pm link_refs and merge_threads, with its
// ghost rows for absent ids), so two replies to a message the list never
// got share a thread, and so do two messages with one Message-ID. Its id
// is the lowest article number in it: a function of the set of messages
// alone, so a rebuild from git, a bulk import and one commit per message
// give the same ids (in public-inbox they depend on the order of arrival).
//
// Every message's thread is kept equal to those of the messages with the
// same ids and of those referring to the same ids, so the first match for
// each id stands for all of them.
func (w *indexWriter) thread(ctx context.Context, num int64, ids, refs []string) (int64, error) {
	thr := num
	var found []int64
	for _, list := range [][]string{ids, refs} {
		for _, id := range list {
			var byMid, byRef sql.NullInt64
			if err := w.thrOf.QueryRowContext(ctx, id).Scan(&byMid, &byRef); err != nil {
				return 0, fmt.Errorf("thread of <%s>: %w", id, err)
			}
			for _, t := range []sql.NullInt64{byMid, byRef} {
				if t.Valid && !slices.Contains(found, t.Int64) {
					found = append(found, t.Int64)
					thr = min(thr, t.Int64)
				}
			}
		}
	}
	for _, t := range found {
		if t == thr {
			continue
		}
		if _, err := w.joinThr.ExecContext(ctx, thr, t); err != nil {
			return 0, fmt.Errorf("join thread %d into %d: %w", t, thr, err)
		}
	}
	return thr, nil
}

// isDuplicate reports whether a message with p's Message-ID and content is
// already archived (public-inbox's rule: same id and same content).
func (w *indexWriter) isDuplicate(ctx context.Context, p *message.Parsed) (bool, error) {
	rows, err := w.chash.QueryContext(ctx, p.MessageID)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			return false, err
		}
		if string(h) == string(p.ContentHash[:]) {
			return true, nil
		}
	}
	return false, rows.Err()
}

// addMessage inserts article num for entry e whose blob was prepared as m.
func (w *indexWriter) addMessage(ctx context.Context, num int64, e *gitstore.Entry, m *Prepared) error {
	p := m.Parsed
	mids := p.MessageIDs
	if len(mids) == 0 {
		mids = []string{p.MessageID}
	}
	thr, err := w.thread(ctx, num, mids, p.ThreadRefs)
	if err != nil {
		return err
	}
	date := p.Date
	if date.IsZero() {
		date = e.Author.When
	}
	_, err = w.insMsg.ExecContext(ctx, num, e.Epoch, e.Commit[:], e.Blob[:], e.BlobLoc.Pack, e.BlobLoc.Offset,
		e.BlobSize, p.CRLFSize, p.MessageID, p.ContentHash[:], date.Unix(), sentDay(date),
		e.Committer.When.Unix(),
		p.Subject, p.From.Name, p.From.Mailbox+"@"+p.From.Host, thr,
		message.EncodeEnvelope(&p.Envelope), message.EncodeBodyStructure(&p.Body), cachedHeaders(m.Raw))
	if err != nil {
		return fmt.Errorf("insert article %d: %w", num, err)
	}
	seen := map[string]bool{}
	for _, m := range mids {
		if seen[m] {
			continue
		}
		seen[m] = true
		if _, err := w.insMid.ExecContext(ctx, m, num); err != nil {
			return err
		}
	}
	for _, r := range p.ThreadRefs {
		if seen[r] {
			continue
		}
		seen[r] = true
		if _, err := w.insRef.ExecContext(ctx, r, num); err != nil {
			return err
		}
	}
	return nil
}

// sentDay is the calendar day of t in t's own time zone, as days since
// 1970-01-01: the date IMAP's SENT* search keys compare, "disregarding
// time and timezone" (RFC 3501 section 6.4.4).
func sentDay(t time.Time) int64 {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

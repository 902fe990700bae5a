package gitstore

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// BenchmarkAppend appends 1,000 messages of about 10 KB per op.
func BenchmarkAppend(b *testing.B) {
	const n = 1000
	commits := make([]Commit, n)
	when := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := range commits {
		commits[i] = Commit{
			Blob:      testMessage(i, 10<<10),
			Author:    Ident{Name: fmt.Sprintf("Sender %d", i), Email: "s@example.org", When: when},
			Committer: Ident{Name: "mailswarm", Email: "list@example.org", When: when},
			Message:   fmt.Sprintf("message %d", i),
		}
	}
	s, err := Open(b.TempDir(), &Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.SetBytes(int64(n * 10 << 10))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range commits { // fresh blobs each op
			commits[k].Message = fmt.Sprintf("message %d/%d", i, k)
			commits[k].Blob[len(commits[k].Blob)-2] = byte('a' + i%26)
		}
		if _, err := s.Append(commits); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkWalk walks 5,000 commits.
func BenchmarkWalk(b *testing.B) {
	s, err := Open(b.TempDir(), &Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 5; i++ {
		if _, err := s.Append(testCommits(i*1000, 1000)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		s.Walk(0, ZeroHash, func(Entry) error { n++; return nil })
		if n != 5000 {
			b.Fatalf("walked %d", n)
		}
	}
	b.ReportMetric(float64(b.N*5000)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkLoadIdx opens a database with a pack of 1M objects and indexes
// it.
func BenchmarkLoadIdx(b *testing.B) {
	const n = 1 << 20
	entries := make([]idxEntry, n)
	for i := range entries {
		e := &entries[i]
		e.hash = hashObject(ObjBlob, []byte(fmt.Sprint(i)))
		e.offset = int64(12 + i*100)
	}
	dir := b.TempDir()
	packDir := dir + "/pack"
	if err := os.MkdirAll(packDir, 0o755); err != nil {
		b.Fatal(err)
	}
	os.WriteFile(packDir+"/pack-x.idx", encodeIdx(entries, Hash{}), 0o644)
	os.WriteFile(packDir+"/pack-x.pack", make([]byte, 64), 0o644)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		db, err := openODB(dir, newFileCache(maxOpenPacks))
		if err != nil {
			b.Fatal(err)
		}
		if _, ok, err := db.lookup(entries[n/2].hash); !ok || err != nil {
			b.Fatalf("lookup: %v, %v", ok, err)
		}
		db.close()
	}
}

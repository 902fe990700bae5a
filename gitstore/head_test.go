package gitstore

import (
	"bytes"
	"testing"
)

// ReadBlobHead stops inflating once done is satisfied, and what it returns
// is always a prefix of the blob (the whole blob for small ones).
func TestReadBlobHead(t *testing.T) {
	s := openTest(t, t.TempDir(), &Options{NoSync: true})
	commits := testCommits(0, 3)
	commits[0].Blob = testMessage(0, 300)     // small: one read, whole
	commits[1].Blob = testMessage(1, 400<<10) // large: streamed
	noise := make([]byte, 100<<10)            // incompressible, no empty line: read whole
	for i, x := 0, uint32(1); i < len(noise); i++ {
		x = x*1664525 + 1013904223
		noise[i] = 'a' + byte(x>>24)%26
	}
	commits[2].Blob = noise
	ents, err := s.Append(commits)
	if err != nil {
		t.Fatal(err)
	}
	header := func(b []byte) bool { return bytes.Contains(b, []byte("\n\n")) }
	for i, e := range ents {
		full, err := s.ReadBlob(e.BlobLoc)
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		head, err := s.ReadBlobHead(e.BlobLoc, func(b []byte) bool { calls++; return header(b) })
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(full, head) {
			t.Fatalf("blob %d: head is not a prefix", i)
		}
		switch i {
		case 0:
			if len(head) != len(full) {
				t.Errorf("small blob: %d of %d bytes", len(head), len(full))
			}
		case 1:
			if !header(head) || len(head) >= len(full)/10 {
				t.Errorf("large blob: %d of %d bytes, header complete %v", len(head), len(full), header(head))
			}
		case 2:
			if len(head) != len(full) || calls == 0 {
				t.Errorf("blob without a header end: %d of %d bytes, %d calls", len(head), len(full), calls)
			}
		}
	}
}

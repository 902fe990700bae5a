package gitstore

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// sliceFiles writes the canonical packs of the ranges between cuts (entry
// indexes, the last of each slice) as files, as the origin cuts slices.
func sliceFiles(t testing.TB, s *Store, es []Entry, cuts []int) []string {
	t.Helper()
	dir := t.TempDir()
	var out []string
	from := ZeroHash
	for i, c := range cuts {
		var buf bytes.Buffer
		if _, err := s.WriteCanonicalPack(&buf, 0, from, es[c].Commit); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fmt.Sprintf("s%05d.pack", i+1))
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
		from = es[c].Commit
	}
	return out
}

// TestCanonicalPackFromSlices: a day pack sealed by copying its slices'
// records is byte for byte the one written from git, whether the slices
// hold all of its objects or some; a damaged slice is refused.
func TestCanonicalPackFromSlices(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	commits := testCommits(0, 40)
	commits = append(commits, commits[3]) // a blob in two slices
	var es []Entry
	for i := 0; i < len(commits); i += 7 {
		e, err := s.Append(commits[i:min(i+7, len(commits))])
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e...)
	}
	last := es[len(es)-1].Commit
	want, wantInfo := canonical(t, s, 0, ZeroHash, last)
	slicesAll := sliceFiles(t, s, es, []int{9, 24, 33, len(es) - 1})
	for name, srcs := range map[string][]string{
		"all slices":  slicesAll,
		"some slices": slicesAll[1:3],
		"none":        nil,
	} {
		var buf bytes.Buffer
		info, err := s.WriteCanonicalPackFrom(&buf, 0, ZeroHash, last, srcs)
		if err != nil {
			t.Fatalf("%s: WriteCanonicalPackFrom: %v", name, err)
		}
		if info != wantInfo || !bytes.Equal(buf.Bytes(), want) {
			t.Fatalf("%s: pack differs from WriteCanonicalPack's: %+v vs %+v", name, info, wantInfo)
		}
	}
	bad, err := os.ReadFile(slicesAll[0])
	if err != nil {
		t.Fatal(err)
	}
	bad[len(bad)/2] ^= 1
	badPath := filepath.Join(t.TempDir(), "bad.pack")
	if err := os.WriteFile(badPath, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteCanonicalPackFrom(io.Discard, 0, ZeroHash, last, []string{badPath}); err == nil {
		t.Fatal("WriteCanonicalPackFrom took records from a damaged slice")
	}
}

// BenchmarkSealDay: sealing a day of 2,000 messages (about 5 KiB each,
// alsa-devel's mean) from git (inflate + deflate every object) against
// copying the compressed records of its 20 slices.
func BenchmarkSealDay(b *testing.B) {
	s := openTest(b, b.TempDir(), nil)
	commits := testCommits(0, 2000)
	for i := range commits {
		commits[i].Blob = proseMessage(i, 3000+(i*7919)%5000)
		commits[i].Remove = false
	}
	var es []Entry
	for i := 0; i < len(commits); i += 50 { // the committer's passes
		e, err := s.Append(commits[i : i+50])
		if err != nil {
			b.Fatal(err)
		}
		es = append(es, e...)
	}
	var cuts []int
	for i := 99; i < len(es); i += 100 {
		cuts = append(cuts, i)
	}
	srcs := sliceFiles(b, s, es, cuts)
	last := es[len(es)-1].Commit
	info, err := s.WriteCanonicalPack(io.Discard, 0, ZeroHash, last)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("deflate", func(b *testing.B) {
		b.SetBytes(info.Size)
		for b.Loop() {
			if _, err := s.WriteCanonicalPack(io.Discard, 0, ZeroHash, last); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(info.Size)
		for b.Loop() {
			if _, err := s.WriteCanonicalPackFrom(io.Discard, 0, ZeroHash, last, srcs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// proseMessage is a message of about size bytes of words drawn at random
// from a small vocabulary: it deflates about as mail does (3:1), where
// testMessage's repeated lines deflate far better and faster.
func proseMessage(i, size int) []byte {
	words := []string{"the", "driver", "patch", "codec", "sound", "alsa", "for", "and", "to", "of",
		"a", "in", "is", "fix", "when", "stream", "buffer", "period", "hw_params", "snd_pcm",
		"this", "that", "with", "not", "be", "on", "it", "mixer", "control", "volume", "jack",
		"Signed-off-by:", "Reviewed-by:", "Takashi", "Mark", "Jaroslav", "struct", "return", "err"}
	r := rand.New(rand.NewPCG(uint64(i), 7))
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Sender %d <s%d@example.org>\nSubject: [PATCH %d] sound %d\nMessage-ID: <p%d@example.org>\n\n", i%7, i%7, i, r.IntN(1e6), i)
	for b.Len() < size {
		b.WriteString(words[r.IntN(len(words))])
		if r.IntN(12) == 0 {
			fmt.Fprintf(&b, " 0x%04x\n", r.IntN(1<<16))
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()
}

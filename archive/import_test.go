package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportSources imports a Maildir, a directory of .eml files and a
// single .eml file in one call: every message arrives once, in order.
func TestImportSources(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	msg := func(i int) []byte {
		return fmt.Appendf(nil, "From: P%d <p%d@example.org>\nSubject: message %d\nMessage-ID: <m%d@example.org>\nDate: Tue, 2 Jan 2024 10:%02d:00 +0000\n\nbody %d\n", i, i, i, i, i, i)
	}
	md := filepath.Join(dir, "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(md, "cur", "1000.a:2,S"), msg(1), 0o644)
	os.WriteFile(filepath.Join(md, "new", "1001.b"), msg(2), 0o644)
	os.WriteFile(filepath.Join(md, "tmp", "1002.c"), msg(99), 0o644) // being delivered: not a message yet
	emls := filepath.Join(dir, "emls")
	os.MkdirAll(emls, 0o755)
	os.WriteFile(filepath.Join(emls, "a.eml"), msg(3), 0o644)
	os.WriteFile(filepath.Join(emls, "b.eml"), msg(4), 0o644)
	single := filepath.Join(dir, "one.eml")
	os.WriteFile(single, msg(5), 0o644)

	a := newTestArchive(t)
	l, err := a.Create("src", "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Import(ctx, []string{md, emls, single}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 5 {
		t.Fatalf("imported %+v, want 5 messages", res)
	}
	out := exportAll(t, l)
	for i, m := range out {
		if !bytes.Equal(m, msg(i+1)) {
			t.Fatalf("message %d: %q, want %q", i+1, m, msg(i+1))
		}
	}
}

// TestImportBadInput: sources that are not mail give a clear error and
// leave the list as it was.
func TestImportBadInput(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.mbox")
	os.WriteFile(empty, nil, 0o644)
	binary := filepath.Join(dir, "image.bin")
	os.WriteFile(binary, bytes.Repeat([]byte{0x89, 0, 0xff, 0x10}, 4096), 0o644)
	a := newTestArchive(t)
	l, err := a.Create("bad", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Add(ctx, []byte("Subject: kept\nMessage-ID: <k@x>\n\nkept\n")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{empty, binary, filepath.Join(dir, "missing.mbox")} {
		_, err := l.Import(ctx, []string{p}, nil)
		if err == nil {
			t.Errorf("Import(%s) succeeded", filepath.Base(p))
			continue
		}
		if !strings.Contains(err.Error(), filepath.Base(p)) {
			t.Errorf("Import(%s) error %q does not name the file", filepath.Base(p), err)
		}
	}
	if _, err := l.Import(ctx, []string{dir}, nil); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("Import of a directory without messages: %v, want ErrUnknownFormat", err)
	}
	if n := len(exportAll(t, l)); n != 1 {
		t.Fatalf("list has %d messages after bad imports, want 1", n)
	}
	if err := l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestImportHugeMessage archives a 24 MiB message byte for byte next to
// small ones, and a mailbox of malformed messages without losing any.
func TestImportHugeMessage(t *testing.T) {
	ctx := context.Background()
	var huge bytes.Buffer
	huge.WriteString("From: Big <big@example.org>\nSubject: huge\nMessage-ID: <huge@x>\nContent-Type: text/plain\n\n")
	line := strings.Repeat("0123456789abcdef", 4) + "\n"
	for huge.Len() < 24<<20 {
		huge.WriteString(line)
	}
	malformed := [][]byte{
		[]byte("no header separator at all, just text\n"),
		[]byte("Subject: =?bogus?Q?x?=\nFrom: <<<>>>\nDate: not a date\nContent-Type: multipart/mixed\n\nno boundary\n"),
		[]byte("Subject: nul\x00byte\nMessage-ID: <nul@x>\n\n\x00\x01\x02\n"),
		[]byte("Message-ID: <8bit@x>\nSubject: Gr\xfc\xdfe \xe6\x97\xa5\xe6\x9c\xac\n\n\xff\xfe\n"),
	}
	a := newTestArchive(t)
	l, err := a.Create("huge", "")
	if err != nil {
		t.Fatal(err)
	}
	raws := append([][]byte{[]byte("Subject: small\nMessage-ID: <s@x>\n\nsmall\n"), huge.Bytes()}, malformed...)
	res, err := l.Add(ctx, raws...)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != len(raws) {
		t.Fatalf("added %+v, want %d", res, len(raws))
	}
	if res.Malformed == 0 {
		t.Error("no message reported as malformed")
	}
	err = l.Articles(ctx, 0, 0, false, func(art *Article) error {
		got, err := l.Read(art)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, raws[art.Num-1]) {
			t.Errorf("article %d (%d bytes) differs from what was added (%d bytes)", art.Num, len(got), len(raws[art.Num-1]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

package message

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// piMboxDump is one message as public-inbox's reader hands it over.
type piMboxDump struct {
	size int
	sum  string // hex sha256
}

// piMboxAvailable reports whether perl can load public-inbox's mbox reader;
// without it the test is skipped, unless $CI is set, where it fails.
func piMboxAvailable(t *testing.T) {
	t.Helper()
	needPeers(t)
	err := exec.Command("perl", "-MPublicInbox::Eml", "-MPublicInbox::MboxReader", "-e", "1").Run()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("perl cannot load PublicInbox::MboxReader: %v", err)
	}
	t.Skipf("perl cannot load PublicInbox::MboxReader (install public-inbox): %v", err)
}

// piMboxRead runs testdata/pi_mbox_dump.pl on path.
func piMboxRead(t *testing.T, format, path string) []piMboxDump {
	t.Helper()
	out, err := exec.Command("perl", "testdata/pi_mbox_dump.pl", format, path).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("pi_mbox_dump.pl %s: %v\n%s", path, err, stderr)
	}
	var dumps []piMboxDump
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var d piMboxDump
		var asSize int
		var asSum string
		if _, err := fmt.Sscan(sc.Text(), &d.size, &d.sum, &asSize, &asSum); err != nil {
			t.Fatalf("pi_mbox_dump.pl output %q: %v", sc.Text(), err)
		}
		if asSize != d.size || asSum != d.sum {
			// Eml rewrote the message (header > 100 KB, or no
			// header): we keep the raw bytes, see ReadMbox.
			t.Logf("%s: public-inbox's Eml changes message %d from %d to %d bytes", path, len(dumps), d.size, asSize)
		}
		dumps = append(dumps, d)
	}
	return dumps
}

// TestReadMboxMatchesPublicInbox checks that ReadMbox splits every corpus
// file into the very messages public-inbox 1.9's MboxReader gives.
func TestReadMboxMatchesPublicInbox(t *testing.T) {
	files := mboxCorpusFiles(t)
	piMboxAvailable(t)
	for _, path := range files {
		for _, format := range []MboxFormat{MboxRD, MboxO} {
			t.Run(filepath.Base(path)+"/"+format.String(), func(t *testing.T) {
				if format == MboxO && strings.HasSuffix(path, ".gz") && testing.Short() {
					t.Skip("short")
				}
				piMboxCompare(t, format, path)
			})
		}
	}
}

// TestReadMboxMatchesPublicInboxEdges runs the comparison on the
// hand-written cases of TestReadMbox and the fuzz seeds.
func TestReadMboxMatchesPublicInboxEdges(t *testing.T) {
	piMboxAvailable(t)
	dir := t.TempDir()
	for i, in := range mboxEdgeInputs() {
		path := filepath.Join(dir, fmt.Sprintf("edge%d.mbox", i))
		if err := os.WriteFile(path, []byte(in), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			piMboxCompare(t, MboxRD, path)
			piMboxCompare(t, MboxO, path)
		})
	}
	// mboxcl, on well-formed input (public-inbox dies on malformed).
	cl := "\n" + mboxSep + "A: 1\nContent-Length: 27\n\nx\n\n>From here\n>>From there\n" +
		"\n" + mboxSep + "A: 2\r\ncontent-length: 3\r\n\r\nabc\n"
	path := filepath.Join(dir, "cl.mbox")
	if err := os.WriteFile(path, []byte(cl), 0o644); err != nil {
		t.Fatal(err)
	}
	piMboxCompare(t, MboxCL, path)
}

// piMboxCompare compares ReadMbox and public-inbox on one file.
func piMboxCompare(t *testing.T, format MboxFormat, path string) {
	t.Helper()
	want := piMboxRead(t, format.String(), path)
	rc, err := openMaybeGzip(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []piMboxDump
	err = ReadMbox(rc, format, func(msg []byte) error {
		sum := sha256.Sum256(msg)
		got = append(got, piMboxDump{len(msg), hex.EncodeToString(sum[:])})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("%s: ReadMbox gave %d messages, public-inbox %d", path, len(got), len(want))
	}
	bad := 0
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			bad++
			if bad <= 5 {
				t.Errorf("%s: message %d: ReadMbox %d bytes %.12s, public-inbox %d bytes %.12s",
					path, i, got[i].size, got[i].sum, want[i].size, want[i].sum)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d messages differ", path, bad, len(want))
	}
}

package archive

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// gzipString returns s gzip-compressed.
func gzipString(t *testing.T, s string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestOpenMaybeGzip(t *testing.T) {
	dir := t.TempDir()
	both := gzipString(t, "part one, ") + gzipString(t, "part two")
	writeTestFiles(t, dir, map[string]string{
		"plain":     "From x\n",
		"plain.gz":  "not really gzip",
		"packed":    gzipString(t, mboxSep+"A: 1\n"),
		"multi":     both,
		"empty":     "",
		"one":       "\x1f",
		"truncated": gzipString(t, "some text that is long enough")[:20],
	})
	tests := []struct {
		file, want string
		fail       bool
	}{
		{"plain", "From x\n", false},
		{"plain.gz", "not really gzip", false},
		{"packed", mboxSep + "A: 1\n", false},
		{"multi", "part one, part two", false},
		{"empty", "", false},
		{"one", "\x1f", false},
		{"truncated", "", true},
	}
	for _, tc := range tests {
		rc, err := OpenMaybeGzip(filepath.Join(dir, tc.file))
		if err != nil {
			t.Errorf("OpenMaybeGzip(%s): %v", tc.file, err)
			continue
		}
		got, err := io.ReadAll(rc)
		if cerr := rc.Close(); cerr != nil && !tc.fail {
			t.Errorf("Close(%s): %v", tc.file, cerr)
		}
		if tc.fail {
			if err == nil {
				t.Errorf("reading %s = nil error, want one", tc.file)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("reading %s = %q, %v, want %q", tc.file, got, err, tc.want)
		}
	}
	if _, err := OpenMaybeGzip(filepath.Join(dir, "missing")); err == nil {
		t.Error("OpenMaybeGzip(missing) = nil error, want one")
	}
}

func TestDetectFormat(t *testing.T) {
	dir := t.TempDir()
	writeTestFiles(t, dir, map[string]string{
		"a.mbox":                    "\n\n" + mboxSep + "A: 1\n",
		"a.mbox.gz":                 gzipString(t, mboxSep+"A: 1\n"),
		"loose.mbox":                "From someone\nA: 1\n",
		"a.eml":                     "Subject: hi\r\n\r\nbody\r\n",
		"obs.eml":                   "Subject : hi\n",
		"envelope.eml":              "From a@b  Wed Jul  1 13:17:17 1998\nA: 1\n",
		"junk.txt":                  "hello world\n",
		"blank.txt":                 "\n \n",
		"empty":                     "",
		"md/cur/1.M1.h:2,":          "A: 1\n",
		"md2/new/1.M1.h":            "A: 1\n",
		"emls/x/1.eml":              "A: 1\n",
		"inbox/inbox.lock":          "",
		"inbox/git/0.git/HEAD":      "ref: refs/heads/master\n",
		"inbox/git/0.git/objects/x": "",
		"pi1/msgmap.sqlite3":        "",
		"pi1/git/0.git/HEAD":        "ref: refs/heads/master\n",
		"nogit/inbox.lock":          "",
		"epoch.git/HEAD":            "ref: refs/heads/master\n",
		"epoch.git/objects/pack/x":  "",
		"emptydir/.keep":            "",
		// git clone --mirror of an epoch: no inbox.lock, no msgmap
		"mirror/git/0.git/HEAD":          "ref: refs/heads/master\n",
		"mirror/git/0.git/packed-refs":   "",
		"mirror/git/0.git/objects/x":     "",
		"mirror/git/0.git/refs/heads/.k": "",
		// a bare repository deeper down and no mail
		"onlyrepo/sub/r.git/HEAD":        "ref: refs/heads/master\n",
		"onlyrepo/sub/r.git/description": "Unnamed repository\n",
		"onlyrepo/sub/r.git/objects/x":   "",
	})
	tests := []struct {
		path, want string
	}{
		{"a.mbox", FormatMbox},
		{"a.mbox.gz", FormatMbox},
		{"loose.mbox", FormatMbox},
		{"a.eml", FormatEML},
		{"obs.eml", FormatEML},
		{"envelope.eml", FormatMbox},
		{"md", FormatMaildir},
		{"md2", FormatMaildir},
		{"emls", FormatMaildir},
		{"inbox", FormatPublicInbox},
		{"pi1", FormatPublicInbox},
		{"inbox/git/0.git", FormatEpoch},
		{"epoch.git", FormatEpoch},
		{"junk.txt", ""},
		{"blank.txt", ""},
		{"empty", ""},
		{"emptydir", ""},
		{"nogit", ""}, // has inbox.lock only: holds no messages
		{"mirror", FormatPublicInbox},
		{"onlyrepo", ""}, // git's HEAD is not mail
	}
	for _, tc := range tests {
		got, err := DetectFormat(filepath.Join(dir, tc.path))
		if tc.want == "" {
			if err == nil || !errors.Is(err, ErrUnknownFormat) {
				t.Errorf("DetectFormat(%s) = %q, %v, want ErrUnknownFormat", tc.path, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("DetectFormat(%s) = %q, %v, want %q", tc.path, got, err, tc.want)
		}
	}
	if _, err := DetectFormat(filepath.Join(dir, "missing")); err == nil || errors.Is(err, ErrUnknownFormat) {
		t.Errorf("DetectFormat(missing) = %v, want a not-found error", err)
	}
	if !errors.Is(func() error { _, err := DetectFormat(filepath.Join(dir, "missing")); return err }(), os.ErrNotExist) {
		t.Error("DetectFormat(missing) does not wrap os.ErrNotExist")
	}
}

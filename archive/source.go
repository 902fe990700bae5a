package archive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"mailswarm/message"
)

// OpenMaybeGzip opens path for reading, decompressing it when it starts
// with the gzip magic bytes (1f 8b), whatever its name. Concatenated gzip
// members are read as one stream. Closing the result closes the file.
func OpenMaybeGzip(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("archive: open %s: %w", path, err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	magic, err := br.Peek(2)
	if err != nil && err != io.EOF {
		f.Close()
		return nil, fmt.Errorf("archive: read %s: %w", path, err)
	}
	if !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		return &readCloser{Reader: br, close: f.Close}, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("archive: gunzip %s: %w", path, err)
	}
	return &readCloser{
		Reader: &gzipErrReader{zr: zr, path: path},
		close: func() error {
			zerr := zr.Close()
			if err := f.Close(); err != nil {
				return fmt.Errorf("archive: close %s: %w", path, err)
			}
			if zerr != nil {
				return fmt.Errorf("archive: gunzip %s: %w", path, zerr)
			}
			return nil
		},
	}, nil
}

// readCloser joins a Reader and a close function.
type readCloser struct {
	io.Reader
	close func() error
}

// Close calls the close function.
func (r *readCloser) Close() error { return r.close() }

// gzipErrReader names the file in decompression errors (a corrupt or
// truncated .gz), leaving io.EOF alone.
type gzipErrReader struct {
	zr   *gzip.Reader
	path string
}

// Read reads decompressed bytes.
func (g *gzipErrReader) Read(p []byte) (int, error) {
	n, err := g.zr.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("gunzip %s: %w", g.path, err)
	}
	return n, err
}

// Source formats DetectFormat reports.
const (
	FormatMbox        = "mbox"         // an mbox file (maybe gzip-compressed)
	FormatMaildir     = "maildir"      // a Maildir, or a directory of message files
	FormatEML         = "eml"          // one message file
	FormatPublicInbox = "public-inbox" // a public-inbox v2 inbox
	FormatEpoch       = "epoch"        // one bare git repository (a v2 epoch, N.git)
)

// ErrUnknownFormat is returned (wrapped) by DetectFormat for a path that is
// none of the formats it knows.
var ErrUnknownFormat = errors.New("archive: unknown source format")

// epochName is the name of a public-inbox v2 epoch directory.
var epochName = regexp.MustCompile(`^[0-9]+\.git$`)

// headerLine matches the start of an RFC 5322 header field (RFC 5322
// section 2.2: printable ASCII but ':' for the name; obsolete syntax allows
// white space before the colon, section 4.5).
var headerLine = regexp.MustCompile(`^[!-9;-~]+[ \t]*:`)

// DetectFormat sniffs path and names its format:
//
//   - FormatPublicInbox: a directory holding git/ and either
//     msgmap.sqlite3 (public-inbox's own test), inbox.lock with a
//     git/N.git, or a git/N.git that is a bare repository (what `git clone
//     --mirror` of an inbox's epochs makes: neither file comes with it);
//   - FormatEpoch: a bare git repository (objects/ and HEAD), such as
//     git/0.git of an inbox;
//   - FormatMaildir: a directory with cur/ or new/, or any other directory
//     with files that read as messages (FormatEML or FormatMbox) among the
//     first 16 below it (a directory of .eml files, as
//     message.WalkMaildir reads it). Bare repositories below it are
//     skipped: git's HEAD passes for a header field, and every file of a
//     repository would be archived as a malformed message;
//   - FormatMbox: a file, maybe gzip-compressed, whose first line that is
//     not blank starts with "From ";
//   - FormatEML: a file whose first non-blank line is a header field.
//
// Anything else is an error wrapping ErrUnknownFormat.
func DetectFormat(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("archive: detect format: %w", err)
	}
	if fi.IsDir() {
		return detectDir(path)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s is not a file or directory", ErrUnknownFormat, path)
	}
	return detectFile(path)
}

// detectDir sniffs a directory.
func detectDir(path string) (string, error) {
	isDir := func(name string) bool {
		fi, err := os.Stat(filepath.Join(path, name))
		return err == nil && fi.IsDir()
	}
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(path, name))
		return err == nil
	}
	if isDir("git") {
		if exists("msgmap.sqlite3") {
			return FormatPublicInbox, nil
		}
		lock := exists("inbox.lock")
		ents, _ := os.ReadDir(filepath.Join(path, "git"))
		for _, e := range ents {
			if e.IsDir() && epochName.MatchString(e.Name()) &&
				(lock || message.IsBareRepo(filepath.Join(path, "git", e.Name()))) {
				return FormatPublicInbox, nil
			}
		}
	}
	if message.IsBareRepo(path) {
		return FormatEpoch, nil
	}
	if isDir("cur") || isDir("new") {
		return FormatMaildir, nil
	}
	// A directory of message files: one of the first files found reads
	// as a message.
	found, tried := false, 0
	var repo string // the first bare repository skipped
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != path && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() && message.IsBareRepo(p) {
			if repo == "" {
				repo = p
			}
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if f, err := detectFile(p); err == nil && f != "" {
			found = true
			return fs.SkipAll
		}
		if tried++; tried >= 16 {
			return fs.SkipAll
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("archive: detect format: %w", err)
	}
	if found {
		return FormatMaildir, nil
	}
	if repo != "" {
		return "", fmt.Errorf("%w: %s: no mail found (git repository %s skipped: import an epoch by its own path)",
			ErrUnknownFormat, path, repo)
	}
	return "", fmt.Errorf("%w: %s: no mail found", ErrUnknownFormat, path)
}

// detectFile sniffs the first non-blank line of a (maybe compressed) file.
func detectFile(path string) (string, error) {
	rc, err := OpenMaybeGzip(path)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	br := bufio.NewReader(io.LimitReader(rc, 1<<20))
	for {
		line, err := br.ReadSlice('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			switch {
			case bytes.HasPrefix(line, []byte("From ")):
				return FormatMbox, nil
			case headerLine.Match(line):
				return FormatEML, nil
			}
			return "", fmt.Errorf("%w: %s: neither mbox nor message", ErrUnknownFormat, path)
		}
		if err == io.EOF || err == bufio.ErrBufferFull {
			return "", fmt.Errorf("%w: %s: empty", ErrUnknownFormat, path)
		}
		if err != nil {
			return "", fmt.Errorf("archive: detect format %s: %w", path, err)
		}
	}
}

package peertest

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// InCI reports whether the tests run under CI (environment variable CI
// non-empty), where a missing peer is a failure rather than a skip.
func InCI() bool { return os.Getenv("CI") != "" }

// missing skips t, or fails it under CI, with a message naming what is
// missing.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI is set, so this fails: .ci/run must provide it)", msg)
	}
	t.Skipf("%s: skipping", msg)
}

// lookups caches the result of checkTool per tool name.
var lookups sync.Map // string → error (nil stored as errNone)

var errNone = errors.New("ok")

// Need skips t (fails it under CI) unless every tool is available.
//
// A tool is one of:
//   - a program name, looked up in PATH ("git", "sqlite3", "dovecot");
//   - "public-inbox": the public-inbox-init, -index and -imapd programs,
//     perl, and the PublicInbox Perl modules;
//   - "perl:Module::Name": a Perl module that `perl -MModule::Name -e1` loads;
//   - "python3:module": a Python module that `python3 -c 'import module'`
//     loads, with the python3 first in PATH (a pyenv one may not see
//     Debian's python3-* packages: for libtorrent use NeedLibtorrent,
//     which asks /usr/bin/python3).
func Need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if err := checkTool(tool); err != nil {
			missing(t, "peertest: need %s: %v", tool, err)
		}
	}
}

// checkTool reports why tool is unavailable, or nil.
func checkTool(tool string) error {
	if v, ok := lookups.Load(tool); ok {
		if v == errNone {
			return nil
		}
		return v.(error)
	}
	err := lookTool(tool)
	if err == nil {
		lookups.Store(tool, errNone)
	} else {
		lookups.Store(tool, err)
	}
	return err
}

func lookTool(tool string) error {
	switch {
	case tool == "public-inbox":
		for _, p := range []string{"perl", "git", "public-inbox-init", "public-inbox-index", "public-inbox-imapd"} {
			if _, err := exec.LookPath(p); err != nil {
				return fmt.Errorf("%s not in PATH (apt-get install public-inbox)", p)
			}
		}
		for _, m := range []string{"PublicInbox::Config", "PublicInbox::InboxWritable"} {
			if err := lookTool("perl:" + m); err != nil {
				return err
			}
		}
		return nil
	case strings.HasPrefix(tool, "perl:"):
		mod := strings.TrimPrefix(tool, "perl:")
		if _, err := exec.LookPath("perl"); err != nil {
			return errors.New("perl not in PATH")
		}
		if out, err := exec.Command("perl", "-M"+mod, "-e1").CombinedOutput(); err != nil {
			return fmt.Errorf("perl module %s does not load: %v: %s", mod, err, firstLine(out))
		}
		return nil
	case strings.HasPrefix(tool, "python3:"):
		mod := strings.TrimPrefix(tool, "python3:")
		if _, err := exec.LookPath("python3"); err != nil {
			return errors.New("python3 not in PATH")
		}
		if out, err := exec.Command("python3", "-c", "import "+mod).CombinedOutput(); err != nil {
			return fmt.Errorf("python3 module %s does not import: %v: %s", mod, err, lastLine(out))
		}
		return nil
	default:
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not in PATH", tool)
		}
		return nil
	}
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// SharedDir returns the absolute path of the shared directory (corpora,
// peers): $MAILSWARM_SHARED if set, else the first directory named
// "shared" beside the module root or beside one of its parents. It skips t
// (fails it under CI) when there is none.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := findShared()
	if err != nil {
		missing(t, "peertest: %v", err)
	}
	return dir
}

func findShared() (string, error) {
	if env := os.Getenv("MAILSWARM_SHARED"); env != "" {
		abs, err := filepath.Abs(env)
		if err != nil {
			return "", fmt.Errorf("MAILSWARM_SHARED=%s: %w", env, err)
		}
		if !isDir(abs) {
			return "", fmt.Errorf("MAILSWARM_SHARED=%s is not a directory", env)
		}
		return abs, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	for d := root; ; {
		parent := filepath.Dir(d)
		cand := filepath.Join(parent, "shared")
		if isDir(filepath.Join(cand, "corpora")) || isDir(filepath.Join(cand, "peers")) {
			return cand, nil
		}
		if parent == d {
			break
		}
		d = parent
	}
	return "", fmt.Errorf("no shared directory beside %s or its parents (set MAILSWARM_SHARED)", root)
}

// ModuleRoot returns the directory holding go.mod, walking up from the
// working directory (a test runs in its package's directory).
func ModuleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("module root: %w", err)
	}
	for d := wd; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("module root: no go.mod above %s", wd)
		}
		d = parent
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// Corpora returns the absolute paths of the shared corpus files, sorted:
// every *.mboxrd.gz and the raw mboxes of corpora/mbox-edge-cases. It skips
// t (fails it under CI) when the shared directory is absent, and fails it
// when that directory holds no corpus.
func Corpora(t testing.TB) []string {
	t.Helper()
	root := filepath.Join(SharedDir(t), "corpora")
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "LICENSES" {
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		if strings.HasSuffix(name, ".mboxrd.gz") || filepath.Base(filepath.Dir(p)) == "mbox-edge-cases" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("peertest: list corpora: %v", err)
	}
	if len(files) == 0 {
		t.Fatalf("peertest: no corpus files under %s", root)
	}
	sort.Strings(files)
	return files
}

// Corpus returns the absolute path of one shared corpus file named by its
// path under corpora/ ("notmuch-test/default.mboxrd.gz"); it fails t when
// the file does not exist.
func Corpus(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(SharedDir(t), "corpora", filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("peertest: corpus %s: %v", rel, err)
	}
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before the caller binds it; helpers that
// start servers on it retry.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("peertest: free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatalf("peertest: free port: %v", err)
	}
	return port
}

package gitstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"mailswarm/internal/durable"
)

// repoConfig is the config of every bare repository we create: gc.auto=0
// so git never merges the seeded packs.
const repoConfig = `[core]
	repositoryformatversion = 0
	filemode = true
	bare = true
[gc]
	auto = 0
`

// initRepo creates a bare repository at path unless it exists. It is built
// under a temporary name and renamed into place, so a half-made repository
// never appears.
func initRepo(path string, noSync bool) error {
	if _, err := os.Stat(filepath.Join(path, "objects")); err == nil {
		return nil
	}
	parent := filepath.Dir(path)
	tmp := tmpName(parent, "repo")
	for _, d := range []string{"objects/pack", "objects/info", "refs/heads", "refs/tags"} {
		if err := os.MkdirAll(filepath.Join(tmp, filepath.FromSlash(d)), 0o755); err != nil {
			return fmt.Errorf("gitstore: init %s: %w", path, err)
		}
	}
	files := map[string]string{
		"HEAD":        "ref: refs/heads/master\n",
		"config":      repoConfig,
		"description": "mailswarm epoch\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(body), 0o644); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("gitstore: init %s: %w", path, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Stat(filepath.Join(path, "objects")); serr == nil {
			return nil
		}
		return fmt.Errorf("gitstore: init %s: %w", path, err)
	}
	if !noSync {
		return syncDir(parent)
	}
	return nil
}

// listEpochs returns the epoch numbers under dir/git, ascending.
func listEpochs(dir string) ([]int, error) {
	ents, err := os.ReadDir(filepath.Join(dir, "git"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("gitstore: list epochs: %w", err)
	}
	var out []int
	for _, e := range ents {
		s, ok := strings.CutSuffix(e.Name(), ".git")
		if !ok || !e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || strconv.Itoa(n) != s {
			continue
		}
		out = append(out, n)
	}
	sort.Ints(out)
	return out, nil
}

// writeAlternates points all.git at every epoch's objects, as public-inbox
// does: "../../git/N.git/objects", one a line.
func writeAlternates(dir string, epochs []int, noSync bool) error {
	var b strings.Builder
	for _, n := range epochs {
		fmt.Fprintf(&b, "../../git/%d.git/objects\n", n)
	}
	info := filepath.Join(dir, "all.git", "objects", "info")
	path := filepath.Join(info, "alternates")
	if old, err := os.ReadFile(path); err == nil && string(old) == b.String() {
		return nil
	}
	tmp, err := durable.WriteTemp(info, tmpPrefix+"alternates_*", []byte(b.String()), 0o644, !noSync)
	if err != nil {
		return fmt.Errorf("gitstore: alternates: %w", err)
	}
	if err := durable.Rename(tmp, path, !noSync); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("gitstore: alternates: %w", err)
	}
	return nil
}

// cleanTemp removes temporary files of ours left by a crash in dir.
func cleanTemp(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

package message

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// WalkMaildir calls fn for every message file under path, in an order that
// depends only on the file names:
//
//   - a Maildir (path has cur/ or new/): the files of cur/ and new/
//     together, sorted by file name (Maildir names start with the delivery
//     time, so this is about delivery order), then by directory; tmp/ and
//     Maildir++ subfolders (.Name) are not read;
//   - any other directory: every regular file below it (a directory of
//     .eml files, or a tree of them), in lexical order of path, except
//     inside bare git repositories (objects/ and HEAD): their files are
//     git's, not mail;
//   - a regular file: that file, as one message (.eml).
//
// Names starting with '.' are skipped, as the Maildir convention wants.
// An mbox "From " line at the very start of a file (some tools keep the
// envelope line in .eml and Maildir files) is not part of the message and
// is removed, if it is a line ReadMbox would take for a separator. msg is
// otherwise the file's bytes; fn may not keep it after returning. fn's
// error stops the walk and is returned as it is.
func WalkMaildir(path string, fn func(path string, msg []byte) error) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("message: walk maildir: %w", err)
	}
	var files []string
	switch {
	case fi.Mode().IsRegular():
		files = []string{path}
	case !fi.IsDir():
		return fmt.Errorf("message: walk maildir: %s is not a file or directory", path)
	case isMaildir(path):
		files, err = maildirFiles(path)
	default:
		files, err = treeFiles(path)
	}
	if err != nil {
		return err
	}
	for _, p := range files {
		msg, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("message: walk maildir: %w", err)
		}
		if err := fn(p, stripEnvelope(msg)); err != nil {
			return err
		}
	}
	return nil
}

// isMaildir reports whether dir has a cur or new subdirectory.
func isMaildir(dir string) bool {
	for _, sub := range []string{"cur", "new"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}

// maildirFiles lists the message files of a Maildir's cur/ and new/, sorted
// by file name, then directory.
func maildirFiles(dir string) ([]string, error) {
	type entry struct{ name, sub string }
	var ents []entry
	for _, sub := range []string{"cur", "new"} {
		des, err := os.ReadDir(filepath.Join(dir, sub))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("message: walk maildir: %w", err)
		}
		for _, de := range des {
			if strings.HasPrefix(de.Name(), ".") || !isRegular(filepath.Join(dir, sub), de) {
				continue
			}
			ents = append(ents, entry{de.Name(), sub})
		}
	}
	sort.Slice(ents, func(i, j int) bool {
		if ents[i].name != ents[j].name {
			return ents[i].name < ents[j].name
		}
		return ents[i].sub < ents[j].sub
	})
	files := make([]string, len(ents))
	for i, e := range ents {
		files[i] = filepath.Join(dir, e.sub, e.name)
	}
	return files, nil
}

// treeFiles lists the regular files below dir in lexical order, skipping
// names that start with '.'.
func treeFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() && p != dir && IsBareRepo(p) {
			return filepath.SkipDir
		}
		if !d.IsDir() && isRegular(filepath.Dir(p), d) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("message: walk maildir: %w", err)
	}
	return files, nil
}

// isRegular reports whether de (in dir) is a regular file, following a
// symbolic link.
func isRegular(dir string, de fs.DirEntry) bool {
	if de.Type().IsRegular() {
		return true
	}
	if de.Type()&fs.ModeSymlink == 0 {
		return false
	}
	fi, err := os.Stat(filepath.Join(dir, de.Name()))
	return err == nil && fi.Mode().IsRegular()
}

// stripEnvelope removes an mbox "From " separator line from the start of
// msg.
func stripEnvelope(msg []byte) []byte {
	if !bytes.HasPrefix(msg, []byte("From ")) {
		return msg
	}
	i := bytes.IndexByte(msg, '\n')
	if i < 0 || !isMboxFromLine(msg[:i+1]) {
		return msg
	}
	return msg[i+1:]
}

// IsBareRepo reports whether dir is a bare git repository: objects/ and
// HEAD. git also wants refs/, but a copy made by a tool that drops empty
// directories (a mirror keeps its refs in packed-refs) has none, and it is
// no more mail for that. WalkMaildir skips them, and archive's format
// sniffing never reads one as mail.
func IsBareRepo(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "objects"))
	if err != nil || !fi.IsDir() {
		return false
	}
	fi, err = os.Stat(filepath.Join(dir, "HEAD"))
	return err == nil && !fi.IsDir()
}

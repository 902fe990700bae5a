package archive

import (
	"os"
	"path/filepath"
	"testing"
)

// writeTestFiles creates files (path relative to dir → content).
func writeTestFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// mboxSep is an mboxrd "From " line.
const mboxSep = "From mboxrd@z Thu Jan  1 00:00:00 1970\n"

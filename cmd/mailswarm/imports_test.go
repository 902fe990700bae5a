package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection keeps the package graph of docs/DESIGN.md
// ("Packages"): imports go one way (cmd → everything; smtpin, swarm →
// archive; imapd → archive, message; archive → gitstore, message; message
// and config import nothing of ours; gitstore nothing but
// internal/durable, which imports nothing of ours; internal/netlimit
// neither), and each third-party
// protocol or storage library lives in one package.
func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "mailswarm/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	ours := map[string][]string{ // package → packages of ours it may import
		// The one exception to "gitstore imports nothing of ours":
		// internal/durable, the atomic-write, directory-fsync and flock
		// helpers that gitstore, archive and swarm share instead of
		// each keeping a copy. durable itself imports nothing of ours.
		"mailswarm/gitstore":         {"mailswarm/internal/durable"},
		"mailswarm/internal/durable": {},
		// internal/netlimit: the descriptor limit and the per-client
		// key that the listeners' caps share (swarm's HTTP, imapd).
		"mailswarm/internal/netlimit": {},
		"mailswarm/message":           {},
		"mailswarm/config":            {},
		"mailswarm/archive":           {"mailswarm/gitstore", "mailswarm/message", "mailswarm/internal/durable"},
		"mailswarm/smtpin":            {"mailswarm/archive"},
		"mailswarm/imapd":             {"mailswarm/archive", "mailswarm/message", "mailswarm/internal/netlimit"},
		"mailswarm/swarm":             {"mailswarm/archive", "mailswarm/internal/durable", "mailswarm/internal/netlimit"},
	}
	owner := map[string]string{ // library prefix → the one package that may import it
		"github.com/go-git/":             "mailswarm/gitstore",
		"github.com/emersion/go-smtp":    "mailswarm/smtpin",
		"github.com/emersion/go-imap":    "mailswarm/imapd",
		"github.com/anacrolix/":          "mailswarm/swarm",
		"github.com/emersion/go-message": "mailswarm/message",
		"modernc.org/sqlite":             "mailswarm/archive",
		"github.com/BurntSushi/toml":     "mailswarm/config",
	}
	checked := 0
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pkg, imports := f[0], f[1:]
		allowed, constrained := ours[pkg]
		for _, imp := range imports {
			if constrained && strings.HasPrefix(imp, "mailswarm/") {
				ok := false
				for _, a := range allowed {
					ok = ok || imp == a
				}
				if !ok {
					t.Errorf("%s imports %s: not allowed by the package graph of docs/DESIGN.md", pkg, imp)
				}
			}
			for prefix, own := range owner {
				if strings.HasPrefix(imp, prefix) && pkg != own {
					t.Errorf("%s imports %s, which belongs in %s only", pkg, imp, own)
				}
			}
		}
		checked++
	}
	if checked < 7 {
		t.Fatalf("go list listed %d packages", checked)
	}
}

// TestMessageTestsStandAlone: message's tests import nothing of ours
// either, so that `go test ./message` builds and runs on its own, a fast
// loop for parser work.
func TestMessageTestsStandAlone(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .TestImports " "}} {{join .XTestImports " "}}`, "mailswarm/message").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		if strings.HasPrefix(imp, "mailswarm/") {
			t.Errorf("a test of mailswarm/message imports %s", imp)
		}
	}
}

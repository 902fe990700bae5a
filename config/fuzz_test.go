package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that any text gives either a configuration that
// validates or an *Error with at least one problem, and never panics.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "docs", "mailswarm.example.toml")); err == nil {
		f.Add(string(b))
	}
	f.Add("")
	f.Add("max_message_size = \"1x\"\n[[list]]\nname = 3\naddresses = [1, \"a@b\"]\n[smtp]\nlisten = 5")
	f.Add("list = 1\nuser = [1]\nsmtp = []\nnetworks = \"x\"")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := parse(text)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("parse(%q) error %v, want an *Error with problems", text, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parse(%q) returned a config that does not validate: %v", text, err)
		}
	})
}

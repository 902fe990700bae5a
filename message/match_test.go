package message

import (
	"strings"
	"testing"
)

func TestContainsFolded(t *testing.T) {
	for _, s := range []string{"", "a", "Hello World", "HELLO", "xyzHeLLo", "héllo HÉLLO", "ab\x00cd", "ßtraße", "ΑΒΓ αβγ"} {
		for _, needle := range []string{"", "h", "hello", "llo w", "o", "héllo", "straße", "αβγ", "cd", "zz"} {
			folded := Fold(needle)
			want := strings.Contains(Fold(s), folded)
			if got := ContainsFolded(s, folded); got != want {
				t.Errorf("ContainsFolded(%q, %q) = %v, want %v", s, folded, got, want)
			}
		}
	}
}

package message

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text matching for IMAP SEARCH (RFC 3501 section 6.4.4: case-insensitive
// substring matching). archive's trigram index folds with FoldRune, so a
// candidate it returns can be confirmed here on the same folded text.

// FoldRune maps r to the form both indexing and searching use: ASCII
// upper case to lower case, other runes by unicode.ToLower.
func FoldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	return unicode.ToLower(r)
}

// Fold returns s case-folded the way the trigram index and the Match
// functions compare text.
func Fold(s string) string {
	return strings.Map(FoldRune, s)
}

// ContainsFolded reports whether Fold(s) contains folded (a Fold()ed
// needle), without building Fold(s) when folded is ASCII: then s is
// searched byte by byte with ASCII case folding. (The two differ only for
// the few non-ASCII runes that lower-case to ASCII, such as the Kelvin
// sign; the trigram index folds those the same way, so at worst such a
// message is a candidate that is not confirmed.)
func ContainsFolded(s, folded string) bool {
	for i := 0; i < len(folded); i++ {
		if folded[i] >= utf8.RuneSelf {
			return strings.Contains(Fold(s), folded)
		}
	}
	if folded == "" {
		return true
	}
	first := folded[0]
	upper := first
	if 'a' <= first && first <= 'z' {
		upper -= 'a' - 'A'
	}
	for i := 0; i+len(folded) <= len(s); i++ {
		c := s[i]
		if c != first && c != upper {
			continue
		}
		j := 1
		for ; j < len(folded); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != folded[j] {
				break
			}
		}
		if j == len(folded) {
			return true
		}
	}
	return false
}

// MatchHeader reports whether the decoded value of a header field of raw
// called name (any case) contains folded (a Fold()ed needle). With name
// "" every field matches as a "Name: value" line, which is how SEARCH
// TEXT sees the header (RFC 3501 section 6.4.4) and how the index holds
// it. An empty needle matches a message that has the field.
func MatchHeader(raw []byte, name, folded string) bool {
	var pr problems
	h, _, _ := splitMessage(raw, &pr)
	for _, f := range h {
		if name != "" && !strings.EqualFold(f.name, name) {
			continue
		}
		v := oneLine(decodeWords(unfoldPI(f.value)))
		if name == "" {
			v = f.name + ": " + v
		}
		if ContainsFolded(v, folded) {
			return true
		}
	}
	return false
}

// MatchBody reports whether the decoded text of raw's text parts (Parsed.Text)
// contains folded (a Fold()ed needle).
func MatchBody(raw []byte, folded string) bool {
	var pr problems
	h, body, _ := splitMessage(raw, &pr)
	root := parsePart(h, body, 0, false, &pr)
	return ContainsFolded(partsText(root), folded)
}

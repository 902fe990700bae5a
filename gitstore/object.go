package gitstore

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// typeName is the name of an object type in a loose object or hash header.
func typeName(t ObjectType) string {
	switch t {
	case ObjCommit:
		return "commit"
	case ObjTree:
		return "tree"
	case ObjBlob:
		return "blob"
	case ObjTag:
		return "tag"
	}
	return ""
}

// typeFromName is the inverse of typeName; 0 when unknown.
func typeFromName(s string) ObjectType {
	switch s {
	case "commit":
		return ObjCommit
	case "tree":
		return ObjTree
	case "blob":
		return ObjBlob
	case "tag":
		return ObjTag
	}
	return 0
}

// hashObject returns the git object name of data as an object of type t.
func hashObject(t ObjectType, data []byte) Hash {
	h := sha1.New()
	h.Write([]byte(typeName(t)))
	h.Write([]byte{' '})
	h.Write(strconv.AppendInt(nil, int64(len(data)), 10))
	h.Write([]byte{0})
	h.Write(data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// sanitizeName removes what public-inbox removes from an author name
// ('<', '>', newlines), plus NUL which git refuses in headers.
func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '<', '>', '\n', 0:
			return -1
		}
		return r
	}, s)
}

// sanitizeEmail removes whitespace, '<', '>' and NUL from an address.
func sanitizeEmail(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '<' || r == '>' || r == 0 || unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// appendIdent appends "NAME <EMAIL> UNIX +HHMM" to b.
func appendIdent(b []byte, id Ident) []byte {
	b = append(b, sanitizeName(id.Name)...)
	b = append(b, " <"...)
	b = append(b, sanitizeEmail(id.Email)...)
	b = append(b, "> "...)
	var secs int64
	off := 0
	if !id.When.IsZero() {
		secs = id.When.Unix()
		_, off = id.When.Zone()
	}
	if secs < 0 {
		secs = 0 // git cannot express dates before 1970
	}
	b = strconv.AppendInt(b, secs, 10)
	sign := byte('+')
	if off < 0 {
		sign = '-'
		off = -off
	}
	mins := (off + 30) / 60
	hh, mm := mins/60, mins%60
	if hh > 99 {
		hh, mm = 99, 59
	}
	return append(b, ' ', sign, byte('0'+hh/10), byte('0'+hh%10), byte('0'+mm/10), byte('0'+mm%10))
}

// encodeCommit returns the body of a commit object.
func encodeCommit(tree, parent Hash, author, committer Ident, msg string) []byte {
	b := make([]byte, 0, 200+len(msg))
	b = append(b, "tree "...)
	b = append(b, tree.String()...)
	b = append(b, '\n')
	if !parent.IsZero() {
		b = append(b, "parent "...)
		b = append(b, parent.String()...)
		b = append(b, '\n')
	}
	b = append(b, "author "...)
	b = appendIdent(b, author)
	b = append(b, "\ncommitter "...)
	b = appendIdent(b, committer)
	b = append(b, "\n\n"...)
	b = append(b, msg...)
	if !strings.HasSuffix(msg, "\n") {
		b = append(b, '\n')
	}
	return b
}

// encodeTree returns the body of a tree holding the single blob entry name.
func encodeTree(name string, blob Hash) []byte {
	b := make([]byte, 0, 32)
	b = append(b, "100644 "...)
	b = append(b, name...)
	b = append(b, 0)
	return append(b, blob[:]...)
}

// commitInfo is a parsed commit object.
type commitInfo struct {
	Tree      Hash
	Parent    Hash
	Parents   int
	Author    Ident
	Committer Ident
	Message   string
}

// parseCommit parses a commit body. Unknown headers (encoding, gpgsig,
// mergetag with continuation lines) are skipped; idents are parsed leniently.
func parseCommit(data []byte) (commitInfo, error) {
	var c commitInfo
	rest := data
	sawTree := false
	for {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			return c, fmt.Errorf("%w: commit header not terminated", ErrCorrupt)
		}
		line := rest[:nl]
		rest = rest[nl+1:]
		if len(line) == 0 {
			break
		}
		key, val, _ := bytes.Cut(line, []byte{' '})
		switch string(key) {
		case "tree":
			if sawTree {
				return c, fmt.Errorf("%w: commit has two trees", ErrCorrupt)
			}
			h, err := ParseHash(string(val))
			if err != nil {
				return c, fmt.Errorf("%w: commit tree: %v", ErrCorrupt, err)
			}
			c.Tree, sawTree = h, true
		case "parent":
			h, err := ParseHash(string(val))
			if err != nil {
				return c, fmt.Errorf("%w: commit parent: %v", ErrCorrupt, err)
			}
			if c.Parents == 0 {
				c.Parent = h
			}
			c.Parents++
		case "author":
			c.Author = parseIdent(string(val))
		case "committer":
			c.Committer = parseIdent(string(val))
		}
	}
	if !sawTree {
		return c, fmt.Errorf("%w: commit without tree", ErrCorrupt)
	}
	c.Message = string(rest)
	return c, nil
}

// parseIdent parses "NAME <EMAIL> UNIX +HHMM"; what it cannot parse stays
// zero.
func parseIdent(s string) Ident {
	var id Ident
	gt := strings.LastIndexByte(s, '>')
	if gt < 0 {
		id.Name = s
		return id
	}
	lt := strings.LastIndexByte(s[:gt], '<')
	if lt < 0 {
		id.Name = s
		return id
	}
	id.Name = strings.TrimSuffix(s[:lt], " ")
	id.Email = s[lt+1 : gt]
	f := strings.Fields(s[gt+1:])
	if len(f) < 1 {
		return id
	}
	secs, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return id
	}
	off := 0
	if len(f) >= 2 && len(f[1]) == 5 && (f[1][0] == '+' || f[1][0] == '-') {
		if n, err := strconv.Atoi(f[1][1:]); err == nil {
			off = (n/100*60 + n%100) * 60
			if f[1][0] == '-' {
				off = -off
			}
		}
	}
	id.When = time.Unix(secs, 0).In(time.FixedZone("", off))
	return id
}

// parseTree checks that a tree holds exactly one entry, a regular file named
// "m" or "d", and returns that entry.
func parseTree(data []byte) (name string, blob Hash, err error) {
	sp := bytes.IndexByte(data, ' ')
	if sp < 0 {
		return "", blob, fmt.Errorf("%w: bad tree entry", ErrCorrupt)
	}
	mode := string(data[:sp])
	nul := bytes.IndexByte(data[sp+1:], 0)
	if nul < 0 {
		return "", blob, fmt.Errorf("%w: bad tree entry", ErrCorrupt)
	}
	name = string(data[sp+1 : sp+1+nul])
	rest := data[sp+1+nul+1:]
	if len(rest) < 20 {
		return "", blob, fmt.Errorf("%w: short tree entry", ErrCorrupt)
	}
	copy(blob[:], rest[:20])
	if len(rest) != 20 {
		return "", blob, fmt.Errorf("%w: tree holds more than one entry", ErrCorrupt)
	}
	if mode != "100644" && mode != "100755" {
		return "", blob, fmt.Errorf("%w: tree entry %q has mode %s", ErrCorrupt, name, mode)
	}
	if name != "m" && name != "d" {
		return "", blob, fmt.Errorf("%w: tree entry named %q, want m or d", ErrCorrupt, name)
	}
	return name, blob, nil
}

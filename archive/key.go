package archive

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"mailswarm/internal/durable"
)

// Files of a list directory owned by this package.
const (
	metaFile    = "list.json"     // name, address, creation time
	privKeyFile = "list.key"      // PKCS#8 PEM ed25519 private key, mode 0600, origin only
	pubKeyFile  = "list.pub"      // PKIX PEM ed25519 public key: the list's identity
	indexFile   = "index.sqlite3" // derived; Reindex rebuilds it from git
	indexLock   = "index.lock"    // flock: a writer from its git append to its index commit (List.lockIndex)
)

// meta is list.json.
type meta struct {
	Name    string    `json:"name"`
	Address string    `json:"address,omitempty"`
	Created time.Time `json:"created"`
	// Mirror marks a read-only copy of another node's list (mirror.go).
	Mirror bool `json:"mirror,omitempty"`
}

func createList(dir, name, address string, sync bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("archive: create list %s: %w", name, err)
	}
	if _, err := os.Stat(filepath.Join(dir, pubKeyFile)); errors.Is(err, os.ErrNotExist) {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("archive: create list %s: key: %w", name, err)
		}
		if err := WriteKeyPair(dir, pub, priv, sync); err != nil {
			return fmt.Errorf("archive: create list %s: %w", name, err)
		}
	}
	if err := writeMeta(dir, meta{Name: name, Address: address, Created: time.Now().UTC()}, sync); err != nil {
		return fmt.Errorf("archive: create list %s: %w", name, err)
	}
	return nil
}

// writeMeta writes list.json durably.
func writeMeta(dir string, m meta, sync bool) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return durable.WriteFile(filepath.Join(dir, metaFile), append(b, '\n'), 0o644, sync)
}

// WriteKeyPair stores a list key pair in dir: the private key mode 0600
// (when priv is not nil) and the public key.
func WriteKeyPair(dir string, pub ed25519.PublicKey, priv ed25519.PrivateKey, sync bool) error {
	if priv != nil {
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		p := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := durable.WriteFile(filepath.Join(dir, privKeyFile), p, 0o600, sync); err != nil {
			return fmt.Errorf("key: %w", err)
		}
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return durable.WriteFile(filepath.Join(dir, pubKeyFile), p, 0o644, sync)
}

func readPublicKey(dir string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(filepath.Join(dir, pubKeyFile))
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%s: no PUBLIC KEY block", pubKeyFile)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pubKeyFile, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ed25519 key", pubKeyFile)
	}
	return pub, nil
}

// ReadPrivateKey returns the list's private key from its directory; only the
// origin has one.
func ReadPrivateKey(dir string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(filepath.Join(dir, privKeyFile))
	if err != nil {
		return nil, fmt.Errorf("archive: private key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("archive: %s: no PRIVATE KEY block", privKeyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("archive: %s: %w", privKeyFile, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("archive: %s: not an ed25519 key", privKeyFile)
	}
	return priv, nil
}

// uidValidity derives IMAP UIDVALIDITY from the public key: the same on every
// mirror and after any rebuild, never from a clock (RFC 3501 2.3.1.1 only asks
// that it not be reused for a different mailbox state). Zero is not allowed.
func uidValidity(pub ed25519.PublicKey, mailbox string) uint32 {
	h := sha256.New()
	h.Write(pub)
	h.Write([]byte{0})
	h.Write([]byte(mailbox))
	v := binary.BigEndian.Uint32(h.Sum(nil)) & 0x7fffffff
	if v == 0 {
		v = 1
	}
	return v
}

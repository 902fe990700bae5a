package archive

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
)

// TEMPORARY shims until helper A's InstallPack/CreateMirror land.

func (a *Archive) OpenOrCreateMirror(name string, pub ed25519.PublicKey, address string) (*List, error) {
	dir := filepath.Join(a.Dir(), "lists", name)
	if _, err := os.Stat(filepath.Join(dir, pubKeyFile)); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := WriteKeyPair(dir, pub, nil, true); err != nil {
			return nil, err
		}
	}
	return a.OpenOrCreate(name, address)
}

func (l *List) InstallPack(ctx context.Context, epoch int, path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return l.AppendPack(ctx, epoch, b)
}

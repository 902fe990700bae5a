package gitstore

// Temporary: replaced by the real implementation.

import (
	"errors"
	"io"
)

var errTODO = errors.New("gitstore: not implemented")

type store struct{}

func open(dir string, opts *Options) (*Store, error) { return nil, errTODO }
func (s *store) close() error                        { return nil }
func (s *store) epochs() []int                       { return []int{0} }
func (s *store) tip(int) (Hash, error)               { return ZeroHash, errTODO }
func (s *store) append([]Commit) ([]Entry, error)    { return nil, errTODO }
func (s *store) appendRaw(int, []RawCommit) ([]Entry, error) {
	return nil, errTODO
}
func (s *store) readBlob(Loc) ([]byte, error)            { return nil, errTODO }
func (s *store) walk(int, Hash, func(Entry) error) error { return errTODO }
func (s *store) writeCanonicalPack(io.Writer, int, Hash, Hash) (PackInfo, error) {
	return PackInfo{}, errTODO
}
func (s *store) check() error                 { return errTODO }
func verifyPack([]byte) ([]PackObject, error) { return nil, errTODO }

//go:build !unix

package netlimit

// OpenFileLimit returns 0: the descriptor limit is not known here.
func OpenFileLimit() int { return 0 }

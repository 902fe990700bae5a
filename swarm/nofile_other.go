//go:build !unix

package swarm

// openFileLimit returns 0: the descriptor limit is not known here.
func openFileLimit() int { return 0 }

package swarm

import "crypto/ed25519"

// TEMPORARY until helper B's followspec.go lands.
type FollowSpec struct {
	List    string
	Key     ed25519.PublicKey
	Sources []string
	Local   string
	Address string
}

func (f FollowSpec) LocalName() string {
	if f.Local != "" {
		return f.Local
	}
	return f.List
}

package swarm

// STUB until the lead's follower lands: the lead deletes this file at
// merge (and documents Options.Follow). It only lets cmd/mailswarm build
// against the names of plan12.md.

import (
	"context"
	"errors"
)

// errFollowStub is what the stubbed follower answers.
var errFollowStub = errors.New("swarm: following is not built yet (stub)")

// SyncOnce is the plan's "fetch until the followed list local is at its
// origin's newest manifest" (follow --once). STUB.
func (n *Node) SyncOnce(ctx context.Context, local string) error {
	return errFollowStub
}

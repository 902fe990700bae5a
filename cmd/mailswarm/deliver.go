package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"mailswarm/archive"
)

// Exit codes of deliver, from sysexits.h, as MTAs expect of a delivery
// program: EX_TEMPFAIL makes Postfix or Exim retry later, EX_DATAERR bounces.
const (
	exUsage    = 64
	exDataErr  = 65
	exNoUser   = 67
	exTempFail = 75
)

// exitError carries a specific exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// runDeliver archives one message read from standard input, for pipe
// delivery from an MTA. It returns once the message is durable in the
// list's spool, then commits it unless a running serve's committer will.
func runDeliver(ctx context.Context, args []string) error {
	fs := newFlags("deliver")
	data := fs.String("data", "", "data directory")
	list := fs.String("list", "", "list name")
	if err := parse(fs, args); err != nil {
		if errors.Is(err, errUsage) {
			return &exitError{exUsage, err}
		}
		return err
	}
	if err := errors.Join(required("data", *data), required("list", *list)); err != nil {
		return &exitError{exUsage, err}
	}
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		return &exitError{exTempFail, fmt.Errorf("read message: %w", err)}
	}
	a, err := archive.Open(&archive.Options{Dir: *data})
	if err != nil {
		return &exitError{exTempFail, err}
	}
	defer a.Close()
	l, err := a.List(*list)
	switch {
	case errors.Is(err, archive.ErrUnknownList), errors.Is(err, archive.ErrBadName):
		return &exitError{exNoUser, err}
	case err != nil:
		return &exitError{exTempFail, err}
	}
	switch err := l.Accept(ctx, raw); {
	case errors.Is(err, archive.ErrRejected):
		return &exitError{exDataErr, err}
	case err != nil:
		return &exitError{exTempFail, err}
	}
	// Durable now. Commit unless serve's committer holds the lock (then it
	// takes the message within a second); a failure here loses nothing.
	if _, err := l.Drain(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "mailswarm deliver: accepted; commit deferred: %v\n", err)
	}
	return nil
}

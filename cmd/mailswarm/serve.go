package main

import (
	"context"
	"log/slog"

	"mailswarm/archive"
)

// runServe runs the archive on the embedded default: data in
// ./mailswarm-data and one list, demo, for demo@localhost. The SMTP, IMAP and
// HTTP/BitTorrent front ends attach here as they are built; until then serve
// opens (and on first run creates) the archive, reports what it holds, and
// keeps it open until interrupted.
func runServe(ctx context.Context, args []string) error {
	fs := newFlags("serve")
	data := fs.String("data", defaultData, "data directory")
	if err := parse(fs, args); err != nil {
		return err
	}
	a, err := archive.Open(&archive.Options{Dir: *data})
	if err != nil {
		return err
	}
	defer a.Close()
	l, err := a.OpenOrCreate("demo", "demo@localhost")
	if err != nil {
		return err
	}
	st, err := l.Stats(ctx)
	if err != nil {
		return err
	}
	slog.Info("serving", "data", *data, "list", l.Name(), "address", l.Address(), "messages", st.Messages)
	<-ctx.Done()
	slog.Info("shutting down")
	return nil
}

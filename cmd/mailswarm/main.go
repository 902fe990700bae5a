// Command mailswarm runs and maintains a mailing-list archive that lives in
// git, travels over BitTorrent and reads like an ordinary mailbox.
//
// Usage:
//
//	mailswarm serve   [--config FILE] [--data DIR]
//	mailswarm deliver --data DIR --list NAME < message
//	mailswarm import  --data DIR --list NAME [--address ADDR] [--format mboxrd|mboxo] PATH...
//	mailswarm export  --data DIR --list NAME [--since YYYY-MM-DD] [--until YYYY-MM-DD]
//	mailswarm stats   --data DIR [--list NAME] --json
//	mailswarm verify  --data DIR --list NAME
//	mailswarm reindex --data DIR --list NAME
//	mailswarm keygen  --data DIR --list NAME [--address ADDR] [--config FILE]
//	mailswarm swarm publish --data DIR --list NAME [--json]
//	mailswarm swarm status  --data DIR --list NAME [--config FILE] --json
//	mailswarm follow  --data DIR --list NAME --key HEX [--local NAME] [--address ADDR]
//	                  [--once] [--listen BTADDR] [--http ADDR] [--dht [--dht-bootstrap HOST:PORT,...]]
//	                  SOURCE... (none with --dht)
//	mailswarm follow  --data DIR [flags] 'mailswarm:LIST:KEYHEX@SOURCE[,SOURCE...]' [SOURCE...]
//	mailswarm follow status --data DIR [--list NAME] [--config FILE] [--json]
//
// Exit status: 0 on success, 1 on failure, 2 on bad usage; deliver uses
// sysexits codes instead (see deliver.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// defaultData is where serve keeps its data without a config.
const defaultData = "./mailswarm-data"

type command struct {
	name, usage string
	run         func(ctx context.Context, args []string) error
}

var commands = []command{
	{"serve", "run the archive's servers", runServe},
	{"deliver", "archive one message from standard input (MDA pipe)", runDeliver},
	{"import", "archive mbox, Maildir, .eml or public-inbox sources", runImport},
	{"export", "write a list as mboxrd on standard output", runExport},
	{"stats", "print list statistics", runStats},
	{"verify", "check that git, packs and index agree", runVerify},
	{"reindex", "rebuild a list's index from git", runReindex},
	{"keygen", "create a list with a new ed25519 key; print its public key and follow string", runKeygen},
	{"swarm", "publish (cut and seal what is due) or show (status) a list's packs and torrents", runSwarm},
	{"follow", "mirror a list, read-only, by its key (or show the mirrors: follow status)", runFollow},
}

// errUsage marks an error in the command line (exit 2).
var errUsage = errors.New("usage")

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(ctx, args[1:])
			var ee *exitError
			switch {
			case errors.As(err, &ee):
				fmt.Fprintf(stderr, "mailswarm %s: %v\n", c.name, err)
				return ee.code
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				fmt.Fprintf(stderr, "mailswarm %s: %v\n", c.name, err)
				return 2
			default:
				fmt.Fprintf(stderr, "mailswarm %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "mailswarm: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: mailswarm COMMAND [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w, "\nRun 'mailswarm COMMAND -h' for a command's flags.")
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("mailswarm "+name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

// parse parses args, mapping flag errors to errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

func required(name, val string) error {
	if val == "" {
		return fmt.Errorf("%w: --%s is required", errUsage, name)
	}
	return nil
}

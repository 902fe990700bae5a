// Command bench measures mailswarm beside the peer it is compared with and
// prints a markdown table (docs/BENCHMARKS.md holds the results).
//
// Usage, from the repository root:
//
//	go run ./bench import [-n 10000] [-mbox FILE]... [-skip-pi] [-skip-ours]
//	                      [-bin PATH] [-pi-opts "--no-fsync"] [-shared DIR] [-keep]
//	go run ./bench smtp [-n 5000] [-conns 16] [-pi-n 500] [-skip-pi]
//	                    [-bin PATH] [-baseline PATH] [-shared DIR] [-keep]
//	go run ./bench imap [-n 10000] [-mbox FILE] [-repeat 3] [-skip-pi]
//	                    [-skip-dovecot] [-subject-word W] [-body-word W]
//	                    [-bin PATH] [-shared DIR] [-keep]
//	go run ./bench idle [-rates 10,100,1000] [-duration 10s] [-max 5000] [-senders 32]
//	                    [-ingest-n 3000] [-conns 16] [-bin PATH] [-baseline PATH] [-keep]
//	go run ./bench imapload [-n 1000] [-clients 200] [-duration 60s] [-rate 20]
//	                        [-senders 4] [-sources 1] [-bin PATH] [-baseline PATH]
//	                        [-shared DIR] [-keep]
//	go run ./bench swarm [-mib 512] [-repeat 3] [-cut-n 10000] [-days 5000]
//	                     [-skip-throughput] [-skip-cut] [-skip-rss] [-shared DIR] [-keep]
//	go run ./bench mirror [-epoch DIR | -years 5 [-per-day 10]] [-seeders 3] [-skip-pi] [-skip-ours] [-skip-lt]
//	                      [-bin PATH] [-keep]
//
// import: for each input mbox, `mailswarm import` into a fresh data
// directory and public-inbox's full-index import (import_mbox.pl, as
// shared/peers/public-inbox/run.sh does it) into a fresh v2 inbox, each
// under /usr/bin/time -v; then a table of messages kept, seconds, msg/s,
// peak RSS, disk per message and our msg/s over public-inbox's. The default
// inputs are a synthetic list of -n messages made by
// shared/peers/gen_mbox.py and the real corpus
// shared/corpora/spamassassin/easy-ham-1.mboxrd.gz; -mbox (repeatable)
// replaces them. Compressed inputs are decompressed first, untimed, and
// both sides read the same plain file.
//
// smtp: durable SMTP ingest. -n messages made by gen_mbox.py are sent to
// `mailswarm serve` over -conns SMTP connections (one goroutine each,
// MAIL/RCPT/DATA per message on the same connection); then msg/s, p50 and
// p99 latency (MAIL FROM to the reply after DATA), fsyncs per message from
// serve's shutdown line and the count `mailswarm stats` archived. Beside
// it, public-inbox-mda delivers the first -pi-n of the same messages into
// a fresh v2 inbox with -conns workers, one process per message. With
// -baseline, a second mailswarm binary delivers the same messages over
// the same connections first, in a row of its own.
//
// imap: IMAP reads of the same messages from three servers, one after the
// other, each driven by bench/imap_bench.py (a copy of
// shared/peers/imap_bench.py; -repeat runs, a fresh connection each):
// `mailswarm serve` after `mailswarm import`, Dovecot with an mdbox store
// loaded by doveadm import and not pre-indexed (bench/dovecot/run.sh, a
// copy of shared/peers/dovecot/run.sh), and public-inbox-imapd on a v2
// inbox made as the import benchmark makes it. The input is -n messages
// made by gen_mbox.py (searched for the words it plants) or -mbox (words
// picked from it). Then a table per operation (select, FETCH of envelopes
// and headers of every message, bodies by range and one by one, SEARCH
// SUBJECT/BODY/TEXT) of first-run and median milliseconds, ours over
// Dovecot, the message counts each server reports and each server's peak
// RSS (VmHWM from /proc).
//
// idle: how soon IMAP IDLE tells of new mail, under load. `mailswarm
// serve` (SMTP and IMAP) on a fresh list, one IMAP client in IDLE on it;
// mail is sent over SMTP at each steady -rates (message i handed to a free
// one of -senders connections at i/rate s) for -duration or -max messages,
// and each message's delay from its 250 to the first "* n EXISTS" counting
// it (its sequence number, read back by Message-ID) gives p50, p95, p99 and
// max. Then ingest throughput: -ingest-n messages over -conns connections
// as fast as they go, as smtp does. With -baseline, a second binary (built
// from the commit before a change) runs the same first, and the tables
// show both side by side.
//
// imapload: many IMAP clients at once, as imapd's TestManyClients runs
// them in process, against `mailswarm serve`. -n gen_mbox.py messages are
// imported with `mailswarm import` into a fresh data directory; serve
// (SMTP and IMAP) runs on it while -clients clients, each logged in as
// one of 20 users with the list selected, send in turn for -duration a
// UID FETCH of 51 envelopes, a FETCH of one whole message with its
// BODYSTRUCTURE, a UID SEARCH BODY and an IDLE of up to 2 s; meanwhile
// new mail arrives over -senders SMTP connections at -rate msg/s. Then a
// row per binary: commands/s, p50 and p99 latency of the commands but
// IDLE (and per kind), IDLEs that heard of new mail, commands answered
// NO or BAD, clients cut off, and serve's peak and final RSS. -sources
// spreads the clients over loopback addresses 127.0.0.1 to .N. With
// -baseline, a second binary runs the same first.
//
// swarm: the BitTorrent side, in one run. Throughput: a list of
// gen_mbox.py mail plus messages with 1 MiB random base64 attachments over
// the 30 days of 2026-10, published into one month bundle of at least -mib
// MiB of day packs; libtorrent (lt_tool.py get, default settings) downloads
// that bundle -repeat times from a swarm.Node and, alternating, from
// libtorrent (lt_tool.py seed, default settings) seeding the same files,
// each download checked against the manifest's sha256; then per-run and
// median MiB/s and ours over libtorrent. Cut: -cut-n gen_mbox.py messages
// arriving in one open day, Origin.Publish cutting them as one slice and,
// the next day, sealing the day pack (fsync on), beside git pack-objects
// of the same commits. Node: a list with one message a day for -days days,
// the time to publish its day packs and bundles, and a node over it (a
// child process, the hidden `bench swarm-node`) beside one over a list
// with nothing published: start time, VmRSS/VmHWM, Go heap, goroutines
// and idle CPU, and their cost per torrent. lt_tool.py is
// internal/peertest/bittorrent's copy, else shared/peers/bittorrent's.
//
// mirror: a new mirror of a real list, in one run on the same data (-epoch,
// a public-inbox v2 epoch; default the alsa-devel epoch fetched as
// benchmark input). What a lore.kernel.org mirror does today: git daemon
// serves the epoch on 127.0.0.1, `git clone --mirror` (timed), the clone
// becomes epoch 0 of a fresh v2 inbox and `public-inbox-index` (full
// level, fsync: its defaults) indexes it (timed). Ours: an origin made by
// `mailswarm import` of the epoch (same commit ids) and `swarm publish`,
// untimed and cached in os.TempDir() by the epoch's tip with -keep; -seeders
// `mailswarm serve` processes over copies of it (cp -a), each on its own
// loopback address 127.0.0.2 and up; then, timed, `mailswarm follow --once`
// of the list from all of them into a new data directory, serve on it and
// IMAP SELECT answering the origin's EXISTS (IMAP-ready; a binary without
// follow gets "not built yet"). Beside it, libtorrent (bench/lt_mirror.py)
// downloads the same torrents (month bundles, the day packs no bundle
// holds, slices) from the same seeders. The table: seconds of each, the
// ratio of clone + index and of the clone alone over ours, MiB down and
// MiB/s (ours: follow status --json bytes_down over follow's time), peak
// RSS. With -years N the list is synthetic instead (bench/mirror_synth.go):
// -per-day messages a day over N years ending now, imported untimed and
// used as the epoch; the report adds the late joiner's torrents opened
// (follow status) beside the manifest's years + months + days + slices.
//
// Needs: go, python3 (generator, IMAP client), public-inbox, perl,
// sqlite3, git, dovecot-imapd (imap), python3-libtorrent
// for Debian's /usr/bin/python3 (swarm) and GNU time at /usr/bin/time (else
// peak RSS of imports is not measured). Everything is
// written under one directory in os.TempDir, removed at the end unless
// -keep.
//
// It imports archive and swarm (to build lists and publish them in
// process) and internal/peertest (module root, corpora, peer helpers);
// nothing imports it.
package main

import (
	"fmt"
	"os"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage: go run ./bench COMMAND [flags]

commands:
  import   mailswarm import vs public-inbox import (go run ./bench import -h)
  smtp     mailswarm serve SMTP ingest vs public-inbox-mda (go run ./bench smtp -h)
  imap     IMAP reads: mailswarm serve vs Dovecot vs public-inbox-imapd (go run ./bench imap -h)
  idle     IMAP IDLE latency at steady SMTP rates and ingest throughput, -baseline beside (go run ./bench idle -h)
  imapload 200 IMAP clients fetching, searching and idling while mail arrives, -baseline beside (go run ./bench imapload -h)
  swarm    seeding vs libtorrent, cutting a busy day, a node with 5,000 torrents (go run ./bench swarm -h)
  mirror   a new mirror from 3 seeders vs git clone --mirror + public-inbox-index (go run ./bench mirror -h)
`)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "import":
		err = importMain(os.Args[2:])
	case "smtp":
		err = smtpMain(os.Args[2:])
	case "imap":
		err = imapMain(os.Args[2:])
	case "idle":
		err = idleMain(os.Args[2:])
	case "imapload":
		err = imapLoadMain(os.Args[2:])
	case "swarm":
		err = swarmMain(os.Args[2:])
	case "mirror":
		err = mirrorMain(os.Args[2:])
	case "swarm-node": // the node child of the swarm benchmark
		err = swarmNodeMain(os.Args[2:])
	case "-h", "-help", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "bench: unknown command %q\n", os.Args[1])
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

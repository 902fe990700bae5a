package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"mailswarm/archive"
	"mailswarm/config"
	"mailswarm/swarm"
)

// errNoKey is follow without --key or a follow string: the key is the
// list's identity, so no source may supply it.
var errNoKey = fmt.Errorf("%w: no key: a list is followed by its ed25519 key, never by what a source says (give --key HEX or a %sLIST:KEY@SOURCE string)", errUsage, swarm.FollowScheme)

// followSpecs converts cfg's [[follow]] tables (config checked them) to
// the swarm's specs.
func followSpecs(cfg *config.Config) ([]swarm.FollowSpec, error) {
	var specs []swarm.FollowSpec
	for i, f := range cfg.Follows {
		key, err := swarm.ParseFollowKey(f.Key)
		if err != nil {
			return nil, fmt.Errorf("follow[%d]: %w", i, err)
		}
		s := swarm.FollowSpec{List: f.List, Key: key, Sources: slices.Clone(f.Sources), Local: f.Local, Address: f.Address}
		if err := s.Check(); err != nil {
			return nil, fmt.Errorf("follow[%d]: %w", i, err)
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// smtpLists maps every address SMTP takes, lower-cased, to its list's
// name: the [[list]] addresses and the [[follow]] ones. Mail to a
// followed list reaches its mirror list, whose Accept refuses it as a
// read-only mirror (550 5.7.1: post to the origin) instead of the 550 5.1.1 of an
// unknown address.
func smtpLists(cfg *config.Config) map[string]string {
	m := cfg.ListAddresses()
	for _, f := range cfg.Follows {
		if f.Address != "" {
			m[strings.ToLower(f.Address)] = f.LocalName()
		}
	}
	return m
}

// readOnlyLists names the lists cfg follows: read-only here.
func readOnlyLists(cfg *config.Config) map[string]bool {
	m := map[string]bool{}
	for _, f := range cfg.Follows {
		m[f.LocalName()] = true
	}
	return m
}

// followString is the copyable string that follows list from httpBase
// (none: the string has no source, which follow then needs given).
func followString(list string, key []byte, httpBase string) string {
	f := swarm.FollowSpec{List: list, Key: key}
	if httpBase != "" {
		f.Sources = []string{httpBase}
	}
	return f.String()
}

// runFollow runs `follow` (mirror one list) and `follow status`.
func runFollow(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "status" {
		return runFollowStatus(ctx, args[1:])
	}
	fa, err := parseFollowArgs(args)
	if err != nil {
		return err
	}
	return follow(ctx, fa.data, fa.spec, fa.once, &swarm.Options{Listen: fa.listen, DHT: fa.dht, DHTBootstrap: fa.dhtBoot}, fa.http)
}

// followArgs is follow's command line.
type followArgs struct {
	data, listen, http string
	spec               swarm.FollowSpec
	once, dht          bool
	dhtBoot            []string
}

// parseFollowArgs parses follow's command line: --list and --key and
// SOURCE arguments, or a follow string (and more SOURCE arguments); no
// SOURCE with --dht.
// Without a key it fails with errNoKey.
func parseFollowArgs(args []string) (followArgs, error) {
	var fa followArgs
	fs := newFlags("follow")
	fs.StringVar(&fa.data, "data", "", "data directory (created when missing)")
	list := fs.String("list", "", "the list's name at its origin")
	keyHex := fs.String("key", "", "the list's ed25519 public key, 64 hex digits (as its origin's keygen printed it)")
	local := fs.String("local", "", "the list's name here (default: its name at the origin)")
	address := fs.String("address", "", "the list's posting address here (mail to it is refused: a mirror)")
	fs.BoolVar(&fa.once, "once", false, "fetch up to the newest manifest, then exit (0 once in sync)")
	fs.StringVar(&fa.listen, "listen", "127.0.0.1:0", "BitTorrent TCP address (seeding what is followed)")
	fs.StringVar(&fa.http, "http", "", "serve the mirror over HTTP on this address (default: no HTTP)")
	fs.BoolVar(&fa.dht, "dht", false, "join the mainline DHT (with it the key alone finds the list: no SOURCE needed)")
	boot := fs.String("dht-bootstrap", "", "DHT nodes to start from, host:port[,host:port...] (default: the mainline DHT's routers)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return fa, err
	}
	if *boot != "" {
		if !fa.dht {
			return fa, fmt.Errorf("%w: --dht-bootstrap without --dht", errUsage)
		}
		for _, hp := range strings.Split(*boot, ",") {
			if _, _, err := net.SplitHostPort(hp); err != nil {
				return fa, fmt.Errorf("%w: --dht-bootstrap: %q is not host:port", errUsage, hp)
			}
			fa.dhtBoot = append(fa.dhtBoot, hp)
		}
	}
	if err := required("data", fa.data); err != nil {
		return fa, err
	}
	spec := &fa.spec
	if len(pos) > 0 && strings.HasPrefix(pos[0], swarm.FollowScheme) {
		if *list != "" || *keyHex != "" {
			return fa, fmt.Errorf("%w: give either a follow string or --list and --key, not both", errUsage)
		}
		if *spec, err = swarm.ParseFollowString(pos[0]); err != nil {
			return fa, fmt.Errorf("%w: %v", errUsage, err)
		}
		pos = pos[1:]
	} else {
		if *keyHex == "" {
			return fa, errNoKey
		}
		if err := required("list", *list); err != nil {
			return fa, err
		}
		key, err := swarm.ParseFollowKey(*keyHex)
		if err != nil {
			return fa, fmt.Errorf("%w: --key: %v", errUsage, err)
		}
		*spec = swarm.FollowSpec{List: *list, Key: key}
	}
	spec.Sources = append(spec.Sources, pos...)
	spec.Local, spec.Address = *local, *address
	if len(spec.Sources) == 0 && !fa.dht {
		return fa, fmt.Errorf("%w: no SOURCE: give the origin's (or a mirror's) http://HOST:PORT or a BitTorrent peer HOST:PORT, or --dht (the key then finds the list)", errUsage)
	}
	if err := spec.Check(); err != nil {
		return fa, fmt.Errorf("%w: %v", errUsage, err)
	}
	return fa, nil
}

// parseInterleaved parses flags given before, between and after the
// positional arguments (`follow 'mailswarm:...' --once`), which
// flag.Parse alone stops at, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// follow mirrors spec into the archive at data: the archive's committers
// (for the IMAP events of what is installed), a swarm node following
// spec, and its HTTP server when httpAddr is set. once: sync, then
// return; otherwise follow and seed until ctx ends.
func follow(ctx context.Context, data string, spec swarm.FollowSpec, once bool, opts *swarm.Options, httpAddr string) error {
	a, err := openArchive(data)
	if err != nil {
		return err
	}
	defer a.Close()
	runCtx, stopArchive := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(runCtx) }()
	stop := func() error { stopArchive(); return <-runDone }

	var ln net.Listener
	if httpAddr != "" {
		if ln, err = net.Listen("tcp", httpAddr); err != nil {
			return errors.Join(fmt.Errorf("http listener %s: %w", httpAddr, err), stop())
		}
		opts.WebSeedBase = "http://" + ln.Addr().String()
	}
	opts.Follow = []swarm.FollowSpec{spec}
	// The node keeps to the followed list: other lists of the data
	// directory are serve's.
	opts.Lists = []string{spec.LocalName()}
	opts.Logger = slog.Default().With("part", "swarm")
	node, err := swarm.NewNode(a, opts)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return errors.Join(fmt.Errorf("bittorrent node (listen %s): %w", opts.Listen, err), stop())
	}
	if once {
		if ln != nil {
			ln.Close()
		}
		err := node.SyncOnce(ctx, spec.LocalName())
		node.Close()
		if err != nil {
			return errors.Join(fmt.Errorf("follow %s: %w", spec.LocalName(), err), stop())
		}
		slog.Info("in sync", "list", spec.LocalName())
		return stop()
	}
	if ln != nil {
		ln = node.HTTPListener(ln)
	}
	stopSwarm := startSwarm(node, ln)
	slog.Info("following", "list", spec.List, "local", spec.LocalName(), "sources", strings.Join(spec.Sources, ","))
	<-ctx.Done()
	slog.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	stopSwarm(sctx)
	return stop()
}

// followStatus is one followed list's status as `follow status` prints
// it. The JSON names are a contract scripts rely on: add, never rename.
type followStatus struct {
	List string `json:"list"` // the local name
	Key  string `json:"key"`  // hex ed25519 public key (list.pub)
	// Seq and ManifestTime are the newest manifest verified and applied
	// (0 and none before the first).
	Seq          int64  `json:"seq"`
	ManifestTime string `json:"manifest_time,omitempty"` // RFC 3339, UTC
	// Live says that the figures are the running node's (the serve
	// answering at the configuration's HTTP address); otherwise they are
	// what is on disk.
	Live bool `json:"live"`
	// Follow is the follower's state: sources, their last errors and
	// penalties, bytes down (the node's `follow` status, or
	// swarm/follow.json).
	Follow json.RawMessage `json:"follow,omitempty"`
}

// runFollowStatus prints the state of the followed lists: live from the
// serve answering at the configuration's HTTP address, else from disk.
func runFollowStatus(ctx context.Context, args []string) error {
	fs := newFlags("follow status")
	data := fs.String("data", "", "data directory")
	list := fs.String("list", "", "the followed list's local name (default: every followed list)")
	cfgPath := fs.String("config", "", "the configuration serve runs with (its HTTP address, its [[follow]] lists)")
	asJSON := fs.Bool("json", false, "print JSON: one object with --list, else {\"lists\": [...]}")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required("data", *data); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	a, err := openArchive(*data)
	if err != nil {
		return err
	}
	defer a.Close()
	names := []string{*list}
	if *list == "" {
		if names, err = followedLists(a, cfg); err != nil {
			return err
		}
		if len(names) == 0 {
			return fmt.Errorf("no followed list in %s", *data)
		}
	}
	var out []followStatus
	for _, name := range names {
		l, err := a.List(name)
		if err != nil {
			return err
		}
		st, err := followStatusOnDisk(l)
		if err != nil {
			return err
		}
		if live, ok := liveFollowStatus(ctx, cfg.WebSeedBase(), l); ok {
			if live.ManifestTime == "" && live.Seq == st.Seq {
				live.ManifestTime = st.ManifestTime
			}
			st = live
		}
		out = append(out, st)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if *list != "" {
			return enc.Encode(out[0])
		}
		return enc.Encode(struct {
			Lists []followStatus `json:"lists"`
		}{out})
	}
	for _, st := range out {
		from := "on disk"
		if st.Live {
			from = "live"
		}
		fmt.Printf("%s: manifest %d", st.List, st.Seq)
		if st.ManifestTime != "" {
			fmt.Printf(" of %s", st.ManifestTime)
		}
		fmt.Printf(" (%s)\n", from)
		if len(st.Follow) > 0 {
			fmt.Printf("  %s\n", st.Follow)
		}
	}
	return nil
}

// followedLists returns the local names of cfg's [[follow]] lists and of
// every list of a that has a follower's state (swarm/follow.json), sorted.
func followedLists(a *archive.Archive, cfg *config.Config) ([]string, error) {
	seen := map[string]bool{}
	for _, f := range cfg.Follows {
		seen[f.LocalName()] = true
	}
	all, err := a.Names()
	if err != nil {
		return nil, err
	}
	for _, name := range all {
		if _, err := os.Stat(filepath.Join(a.Dir(), "lists", name, "swarm", "follow.json")); err == nil {
			seen[name] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// followStatusOnDisk reads l's newest applied manifest (swarm/manifest,
// verified against list.pub) and the follower's state (swarm/follow.json).
func followStatusOnDisk(l *archive.List) (followStatus, error) {
	st := followStatus{List: l.Name(), Key: hex.EncodeToString(l.PublicKey())}
	dir := filepath.Join(l.Dir(), "swarm")
	b, err := os.ReadFile(filepath.Join(dir, "manifest"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return st, err
	default:
		m, err := swarm.ParseManifest(b, l.PublicKey())
		if err != nil {
			return st, fmt.Errorf("%s: %w", filepath.Join(dir, "manifest"), err)
		}
		st.Seq = m.Seq
		st.ManifestTime = time.Unix(m.Time, 0).UTC().Format(time.RFC3339)
	}
	b, err = os.ReadFile(filepath.Join(dir, "follow.json"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return st, err
	case !json.Valid(b):
		return st, fmt.Errorf("%s: not JSON", filepath.Join(dir, "follow.json"))
	default:
		st.Follow = json.RawMessage(b)
	}
	return st, nil
}

// liveFollowStatus asks the node serving HTTP at base for l's status
// (GET /lists/NAME/status); it is used only when it is about this list
// (same key) and has the follower's state (`follow`). A mirror has no
// list.key, so no status token: the public answer is enough here.
func liveFollowStatus(ctx context.Context, base string, l *archive.List) (followStatus, bool) {
	if base == "" {
		return followStatus{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/lists/"+l.Name()+"/status", nil)
	if err != nil {
		return followStatus{}, false
	}
	if tok, err := swarm.StatusToken(l); err == nil {
		req.Header.Set(swarm.StatusTokenHeader, tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return followStatus{}, false
	}
	defer resp.Body.Close()
	var live struct {
		Key          string          `json:"key"`
		Seq          int64           `json:"seq"`
		ManifestTime string          `json:"manifest_time"`
		Follow       json.RawMessage `json:"follow"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&live) != nil {
		return followStatus{}, false
	}
	if live.Key != hex.EncodeToString(l.PublicKey()) || len(live.Follow) == 0 || string(live.Follow) == "null" {
		return followStatus{}, false
	}
	return followStatus{List: l.Name(), Key: live.Key, Seq: live.Seq, ManifestTime: live.ManifestTime,
		Live: true, Follow: live.Follow}, true
}

package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"mailswarm/archive"
	"mailswarm/swarm"
)

// runKeygen creates a list with a new ed25519 key (list.key, mode 0600,
// never served; list.pub, the identity mirrors follow) and prints the
// public key, then on a line of its own the follow string mirrors copy
// (mailswarm:LIST:KEY@HTTP-BASE, the base from --config: its web seed or
// HTTP listener). The key line stays first for scripts. A list that
// already has a key keeps it: its UIDVALIDITY and every signed manifest
// depend on it.
func runKeygen(ctx context.Context, args []string) error {
	fs := newFlags("keygen")
	data := fs.String("data", "", "data directory (created when missing)")
	list := fs.String("list", "", "list name")
	address := fs.String("address", "", "the list's posting address")
	cfgPath := fs.String("config", "", "the configuration serve runs with (for the follow string's HTTP base)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if err := required("data", *data); err != nil {
		return err
	}
	if err := required("list", *list); err != nil {
		return err
	}
	a, err := openArchive(*data)
	if err != nil {
		return err
	}
	defer a.Close()
	if l, err := a.List(*list); err == nil {
		return fmt.Errorf("list %s already has a key (%x); a list keeps its key for life", *list, []byte(l.PublicKey()))
	}
	l, err := a.Create(*list, *address)
	if err != nil {
		return err
	}
	fmt.Printf("%x\n", []byte(l.PublicKey()))
	fmt.Println(followString(l.Name(), l.PublicKey(), cfg.WebSeedBase()))
	return nil
}

// runSwarm runs `swarm publish` and `swarm status`.
func runSwarm(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: swarm publish|status --data DIR --list NAME", errUsage)
	}
	switch args[0] {
	case "publish":
		return runSwarmPublish(ctx, args[1:])
	case "status":
		return runSwarmStatus(ctx, args[1:])
	}
	return fmt.Errorf("%w: unknown swarm command %q (want publish or status)", errUsage, args[0])
}

// runSwarmPublish cuts and seals everything due now: a slice of the open
// day's new mail, day packs of closed days, bundles of closed months.
func runSwarmPublish(ctx context.Context, args []string) error {
	fs := newFlags("swarm publish")
	asJSON := fs.Bool("json", false, "print what was published as JSON")
	l, a, err := listArgs(fs, args)
	if err != nil {
		return err
	}
	defer a.Close()
	o, err := swarm.NewOrigin(l, nil)
	if err != nil {
		return err
	}
	// Step by step (a long history: a few hundred days a step, each
	// signed); an interrupt stops after the step under way.
	days := 0
	res, err := o.PublishContext(ctx, time.Now(), func(step swarm.PublishResult, more bool) error {
		days += len(step.Days)
		if more && step.Manifest != nil {
			fmt.Fprintf(os.Stderr, "%s: manifest %d: %d day packs so far\n", l.Name(), step.Manifest.Seq, days)
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil && res.Manifest != nil {
			return fmt.Errorf("interrupted after manifest %d (run again to go on): %w", res.Manifest.Seq, err)
		}
		return err
	}
	var seq int64
	if res.Manifest != nil {
		seq = res.Manifest.Seq
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(struct {
			Seq     int64    `json:"seq"`
			Changed bool     `json:"changed"`
			Slices  []string `json:"slices"`
			Days    []string `json:"days"`
			Bundles []string `json:"bundles"`
			Retired []string `json:"retired"`
		}{seq, res.Changed, nonNil(res.Slices), nonNil(res.Days), nonNil(res.Bundles), nonNil(res.Retired)})
	}
	if !res.Changed {
		fmt.Printf("%s: nothing new (manifest %d)\n", l.Name(), seq)
		return nil
	}
	fmt.Printf("%s: manifest %d: %d slices, %d day packs, %d bundles, %d slices retired\n",
		l.Name(), seq, len(res.Slices), len(res.Days), len(res.Bundles), len(res.Retired))
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// runSwarmStatus prints every slice, day pack and bundle of a list with its
// path, size, sha256, infohash and torrent URL. When the node serving the
// list answers on HTTP, its live peers and bytes up are included.
func runSwarmStatus(ctx context.Context, args []string) error {
	fs := newFlags("swarm status")
	cfgPath := fs.String("config", "", "the configuration serve runs with (for its HTTP address)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	l, a, err := listArgs(fs, args)
	if err != nil {
		return err
	}
	defer a.Close()
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	base := cfg.WebSeedBase()
	st, err := swarm.StatusOf(l, base)
	if err != nil {
		return err
	}
	if live, ok := liveStatus(ctx, base, l); ok {
		st = live
	}
	follow := followString(l.Name(), l.PublicKey(), base)
	st.FollowString = follow
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Printf("%s: manifest %d, %d packs, %d bundles", st.List, st.Seq, len(st.Packs), len(st.Bundles))
	if st.Seeding {
		fmt.Printf(", seeding on %s: %d peers, %d bytes up", st.Listen, st.Peers, st.BytesUp)
	}
	fmt.Println()
	fmt.Printf("follow: %s\n", follow)
	if st.Tracker != "" {
		fmt.Printf("tracker: %s\n", st.Tracker)
	}
	if st.TrackerUDP != "" {
		fmt.Printf("tracker: %s\n", st.TrackerUDP)
	}
	for _, it := range append(st.Packs, st.Bundles...) {
		fmt.Printf("%-6s %-40s %10d %s %s\n", it.Kind, it.Name, it.Size, it.InfoHash, it.Path)
	}
	return nil
}

// liveStatus asks the node serving HTTP at base for list's status; it is
// used only when it is about this very list (same key and directory). The
// request carries the list's status token, without which the node leaves
// out its paths (and so the answer is not used): reading list.key is what
// sets the operator apart from strangers.
func liveStatus(ctx context.Context, base string, l *archive.List) (swarm.Status, bool) {
	var st swarm.Status
	if base == "" {
		return st, false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/lists/"+l.Name()+"/status", nil)
	if err != nil {
		return st, false
	}
	tok, err := swarm.StatusToken(l)
	if err != nil {
		return st, false
	}
	req.Header.Set(swarm.StatusTokenHeader, tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return st, false
	}
	want, _ := filepath.Abs(filepath.Join(l.Dir(), "swarm"))
	got, _ := filepath.Abs(st.Dir)
	if st.Key != hex.EncodeToString(l.PublicKey()) || got != want {
		return swarm.Status{}, false
	}
	return st, true
}

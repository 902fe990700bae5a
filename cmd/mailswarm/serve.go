package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"mailswarm/archive"
	"mailswarm/config"
	"mailswarm/imapd"
	"mailswarm/smtpin"
	"mailswarm/swarm"
)

// shutdownGrace is how long serve waits for open SMTP transactions after a
// signal before it closes them.
const shutdownGrace = 30 * time.Second

// runServe runs the archive: the committers of every list and the SMTP (and,
// when configured, LMTP) listeners. Without --config it runs on the embedded
// default: data in ./mailswarm-data, SMTP on 127.0.0.1:2525, IMAP on
// 127.0.0.1:1143, HTTP on 127.0.0.1:8080, BitTorrent on 127.0.0.1 at a
// free port, one list demo for demo@localhost. The swarm publishes every
// list whose key is here: at start, then every slice interval; and it
// follows (mirrors, read-only) every [[follow]] list.
//
// Its steps: serveConfig, openLists, bindListeners, newParts, start, and
// once ctx ends (SIGTERM, SIGINT) shutdown. It binds every listener before
// it serves any, so that once one port answers all do, and a port it
// cannot have ends it with an error naming that listener before anything
// was served; every error path stops what was started.
func runServe(ctx context.Context, args []string) error {
	cfg, err := serveConfig(args)
	if err != nil {
		return err
	}
	a, err := openLists(cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	if ctx.Err() != nil {
		return nil // signalled while opening: nothing runs yet
	}
	b, err := bindListeners(cfg, a)
	if err != nil {
		return err
	}
	p, err := newParts(cfg, a, b)
	if err != nil {
		return err
	}
	p.start()
	slog.Info("serving", "data", cfg.Data, "lists", len(cfg.Lists))
	<-ctx.Done()
	slog.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	return p.shutdown(sctx)
}

// serveConfig parses serve's flags and returns the configuration they name.
func serveConfig(args []string) (*config.Config, error) {
	fs := newFlags("serve")
	cfgPath := fs.String("config", "", "TOML configuration file (default: the embedded default)")
	data := fs.String("data", "", "data directory (overrides the configuration)")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return nil, err
	}
	if *data != "" {
		cfg.Data = *data
	}
	return cfg, nil
}

// openLists opens the archive at cfg.Data with every configured list,
// creating the lists it does not have yet.
func openLists(cfg *config.Config) (*archive.Archive, error) {
	a, err := archive.Open(&archive.Options{Dir: cfg.Data, MaxMessageSize: cfg.MaxMessageSize})
	if err != nil {
		return nil, err
	}
	for _, l := range cfg.Lists {
		addr := ""
		if len(l.Addresses) > 0 {
			addr = l.Addresses[0]
		}
		if _, err := a.OpenOrCreate(l.Name, addr); err != nil {
			a.Close()
			return nil, err
		}
	}
	return a, nil
}

// bound holds serve's sockets, every one bound before any is served: the
// TCP listeners (nil when off) and the swarm node, whose BitTorrent client
// binds its port when it is created and which runs only once the rest is
// bound too.
type bound struct {
	smtp, lmtp, imap, imaps, http net.Listener
	node                          *swarm.Node
}

// bindListeners binds every listener of cfg and creates the swarm node. On
// error it closes what it bound and names the listener that failed and its
// address.
func bindListeners(cfg *config.Config, a *archive.Archive) (*bound, error) {
	b := &bound{}
	for _, l := range []struct {
		name string
		l    config.Listener
		ln   *net.Listener
	}{
		{"smtp", cfg.SMTP, &b.smtp},
		{"lmtp", cfg.LMTP, &b.lmtp},
		{"imap", cfg.IMAP, &b.imap},
		{"imaps", cfg.IMAPS, &b.imaps},
		{"http", cfg.HTTP, &b.http},
	} {
		if l.l.Listen == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.l.Listen)
		if err != nil {
			b.close()
			return nil, fmt.Errorf("%s listener %s: %w", l.name, l.l.Listen, err)
		}
		*l.ln = ln
	}
	follows, err := followSpecs(cfg)
	if err != nil {
		b.close()
		return nil, err
	}
	bt := cfg.BitTorrent
	node, err := swarm.NewNode(a, &swarm.Options{
		Listen:        bt.Listen,
		DHT:           bt.DHT,
		DHTBootstrap:  bt.DHTBootstrap,
		Trackers:      bt.Trackers,
		WebSeedBase:   cfg.WebSeedBase(),
		UploadRate:    bt.UploadLimit,
		SliceInterval: bt.SliceInterval,
		Now:           swarmClock(),
		HTTP: swarm.HTTPLimits{
			MaxConns:              cfg.HTTPLimits.MaxConns,
			MaxConnsPerClient:     cfg.HTTPLimits.MaxConnsPerClient,
			MaxLongPolls:          cfg.HTTPLimits.MaxLongPolls,
			MaxLongPollsPerClient: cfg.HTTPLimits.MaxLongPollsPerClient,
		},
		Peers:   swarm.PeerLimits{MaxConns: bt.MaxConns, MaxConnsPerClient: bt.MaxConnsPerClient},
		Tracker: swarm.TrackerOptions{Off: bt.TrackerOff, Interval: bt.TrackerInterval},
		Follow:  follows, // [[follow]]: mirrored lists, created as mirrors by the node
		Logger:  slog.Default().With("part", "swarm"),
	})
	if err != nil {
		b.close()
		// Most failures here are the BitTorrent port (taken, unusable);
		// the address is named either way.
		return nil, fmt.Errorf("bittorrent node (listen %s): %w", bt.Listen, err)
	}
	b.node = node
	return b, nil
}

// close closes every socket of b that is open.
func (b *bound) close() {
	for _, ln := range []net.Listener{b.smtp, b.lmtp, b.imap, b.imaps, b.http} {
		if ln != nil {
			ln.Close()
		}
	}
	if b.node != nil {
		b.node.Close()
	}
}

// parts are serve's parts: the servers on the bound listeners, the
// swarm node, the archive's committers. newParts builds them, start runs
// them, shutdown stops them.
type parts struct {
	a      *archive.Archive
	lists  []config.List
	node   *swarm.Node
	httpLn net.Listener // nil when HTTP is off
	smtp   []*smtpin.Server
	imap   *imapd.Server
	serves []served

	stopArchive context.CancelFunc
	stopSwarm   func(context.Context)
	wg          sync.WaitGroup
	runErr      error // a.Run's, once wg is done
}

// served is one listener and the server that will serve it.
type served struct {
	name  string
	ln    net.Listener
	serve func(net.Listener) error
}

// newParts builds the servers on b's listeners: what can fail once the
// ports are bound (TLS certificates, the IMAP server) fails here, before
// anything is served. On error it closes b and what it built.
func newParts(cfg *config.Config, a *archive.Archive, b *bound) (p *parts, err error) {
	p = &parts{a: a, lists: cfg.Lists, node: b.node, httpLn: b.http}
	defer func() {
		if err != nil {
			if p.imap != nil {
				p.imap.Close()
			}
			b.close()
		}
	}()
	users := userHashes(cfg)
	for _, lc := range []struct {
		name string
		l    config.Listener
		ln   net.Listener
		lmtp bool
	}{{"smtp", cfg.SMTP, b.smtp, false}, {"lmtp", cfg.LMTP, b.lmtp, true}} {
		if lc.ln == nil {
			continue
		}
		srv, err := newSMTP(cfg, a, users, lc.name, lc.l, lc.lmtp)
		if err != nil {
			return nil, err
		}
		p.smtp = append(p.smtp, srv)
		p.serves = append(p.serves, served{lc.name, lc.ln, srv.Serve})
	}
	if b.imap != nil || b.imaps != nil {
		if p.imap, err = newIMAP(cfg, a, users); err != nil {
			return nil, err
		}
		if b.imap != nil {
			p.serves = append(p.serves, served{"imap", b.imap, p.imap.Serve})
		}
		if b.imaps != nil {
			p.serves = append(p.serves, served{"imaps", b.imaps, p.imap.ServeTLS})
		}
	}
	if p.httpLn != nil {
		// The connection caps count TCP connections: under TLS, which
		// wraps them.
		p.httpLn = b.node.HTTPListener(p.httpLn)
	}
	if p.httpLn != nil && cfg.HTTP.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.HTTP.TLSCert, cfg.HTTP.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("http tls: %w", err)
		}
		p.httpLn = tls.NewListener(p.httpLn, &tls.Config{Certificates: []tls.Certificate{cert}})
	}
	return p, nil
}

// start runs the archive's committers, then serves every listener and
// runs the swarm.
func (p *parts) start() {
	runCtx, stopArchive := context.WithCancel(context.Background())
	p.stopArchive = stopArchive
	p.wg.Go(func() { p.runErr = p.a.Run(runCtx) })
	for _, s := range p.serves {
		p.wg.Go(func() {
			if err := s.serve(s.ln); err != nil {
				slog.Error("listener stopped", "listener", s.name, "err", err)
			}
		})
		slog.Info("listening", "listener", s.name, "addr", s.ln.Addr().String())
	}
	p.stopSwarm = startSwarm(p.node, p.httpLn)
}

// shutdown stops the parts, the swarm first and the committers last (a
// final drain of the spool), and returns the committers' error. Open SMTP
// transactions get until ctx ends.
func (p *parts) shutdown(ctx context.Context) error {
	p.stopSwarm(ctx)
	if p.imap != nil {
		if err := p.imap.Shutdown(ctx); err != nil {
			slog.Warn("imap shutdown", "err", err)
		}
	}
	for _, srv := range p.smtp {
		if err := srv.Shutdown(ctx); err != nil {
			slog.Warn("shutdown", "err", err)
		}
	}
	p.stopArchive() // final drain
	p.wg.Wait()
	for _, lc := range p.lists {
		if l, err := p.a.List(lc.Name); err == nil {
			st := l.SpoolStats()
			slog.Info("spool", "list", lc.Name, "appends", st.Appends, "fsyncs", st.Fsyncs)
		}
	}
	return p.runErr
}

// userHashes maps each configured IMAP/SMTP user to its password hash; nil
// when there are none.
func userHashes(cfg *config.Config) map[string]string {
	var users map[string]string
	for _, u := range cfg.Users {
		if users == nil {
			users = map[string]string{}
		}
		users[u.Name] = u.PasswordHash
	}
	return users
}

// newSMTP returns the SMTP (or LMTP) server of listener l.
func newSMTP(cfg *config.Config, a *archive.Archive, users map[string]string, name string, l config.Listener, lmtp bool) (*smtpin.Server, error) {
	opts := &smtpin.Options{
		Lists:      smtpLists(cfg), // [[follow]] addresses too: refused at RCPT as mirrors
		ReadOnly:   readOnlyLists(cfg),
		Postmaster: cfg.Postmaster,
		MaxSize:    cfg.MaxMessageSize,
		Networks:   cfg.Networks,
		Users:      users,
		LMTP:       lmtp,
		// 451 for storage trouble, 554 5.6.0 for mail that cannot be
		// archived (empty, over the size limit).
		IsTempFail: func(err error) bool { return errors.Is(err, archive.ErrTempFail) },
		IsRejected: func(err error) bool { return errors.Is(err, archive.ErrRejected) },
		Logger:     slog.Default().With("listener", name),
	}
	if l.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(l.TLSCert, l.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("%s tls: %w", name, err)
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	return smtpin.New(deliverer{a}, opts), nil
}

// newIMAP returns the server of the IMAP (STARTTLS when it has a
// certificate) and IMAPS listeners.
func newIMAP(cfg *config.Config, a *archive.Archive, users map[string]string) (*imapd.Server, error) {
	opts := &imapd.Options{Users: users, RequireLogin: cfg.IMAPRequireLogin, Anonymous: cfg.IMAPAnonymous,
		MaxConns: cfg.IMAPLimits.MaxConns, MaxPreAuthPerClient: cfg.IMAPLimits.MaxPreAuthPerClient,
		LoginTimeout: cfg.IMAPLimits.LoginTimeout,
		Logger:       slog.Default().With("listener", "imap")}
	for _, l := range []config.Listener{cfg.IMAP, cfg.IMAPS} {
		if l.Listen != "" && l.TLSCert != "" && opts.TLS == nil {
			cert, err := tls.LoadX509KeyPair(l.TLSCert, l.TLSKey)
			if err != nil {
				return nil, fmt.Errorf("imap tls: %w", err)
			}
			opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		}
	}
	return imapd.New(a, opts)
}

// startSwarm runs the swarm node (publishing and seeding every list this
// archive holds the key of) and, when httpLn is not nil, the HTTP server
// of its manifests, torrents and packs on httpLn. stop ends both (once;
// later calls do nothing): the publishing loop first, then HTTP, then the
// client.
func startSwarm(node *swarm.Node, httpLn net.Listener) (stop func(context.Context)) {
	slog.Info("listening", "listener", "bittorrent", "addr", node.Addr().String())
	var srv *http.Server
	var wg sync.WaitGroup
	// Requests run under ctx: stopping ends the manifest long-polls too.
	ctx, cancel := context.WithCancel(context.Background())
	if httpLn != nil {
		srv = node.HTTPServer(ctx) // timeouts and write deadlines: swarm.HTTPLimits
		wg.Go(func() {
			if err := srv.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				slog.Error("listener stopped", "listener", "http", "err", err)
			}
		})
		slog.Info("listening", "listener", "http", "addr", httpLn.Addr().String())
	}
	wg.Go(func() {
		if err := node.Run(ctx); err != nil {
			slog.Error("swarm stopped", "err", err)
		}
	})
	var once sync.Once
	return func(sctx context.Context) {
		once.Do(func() {
			cancel()
			if srv != nil {
				if err := srv.Shutdown(sctx); err != nil {
					srv.Close()
				}
			}
			wg.Wait()
			node.Close()
		})
	}
}

// loadConfig returns the configuration at path, or the embedded default.
// An invalid file is a usage error (exit 2) listing every problem.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return cfg, nil
}

// deliverer hands SMTP deliveries to the archive's spool.
type deliverer struct{ a *archive.Archive }

func (d deliverer) Deliver(ctx context.Context, list string, raw []byte) error {
	l, err := d.a.List(list)
	if err != nil {
		return err
	}
	return l.Accept(ctx, raw)
}

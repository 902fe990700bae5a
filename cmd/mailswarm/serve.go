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
// list whose key is here: at start, then every slice interval.
func runServe(ctx context.Context, args []string) error {
	fs := newFlags("serve")
	cfgPath := fs.String("config", "", "TOML configuration file (default: the embedded default)")
	data := fs.String("data", "", "data directory (overrides the configuration)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *data != "" {
		cfg.Data = *data
	}
	a, err := archive.Open(&archive.Options{Dir: cfg.Data, MaxMessageSize: cfg.MaxMessageSize})
	if err != nil {
		return err
	}
	defer a.Close()
	for _, l := range cfg.Lists {
		addr := ""
		if len(l.Addresses) > 0 {
			addr = l.Addresses[0]
		}
		if _, err := a.OpenOrCreate(l.Name, addr); err != nil {
			return err
		}
	}

	runCtx, stopArchive := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = a.Run(runCtx) })
	defer func() { stopArchive(); wg.Wait() }()

	var users map[string]string
	for _, u := range cfg.Users {
		if users == nil {
			users = map[string]string{}
		}
		users[u.Name] = u.PasswordHash
	}
	var servers []*smtpin.Server
	for _, lc := range []struct {
		name string
		l    config.Listener
		lmtp bool
	}{{"smtp", cfg.SMTP, false}, {"lmtp", cfg.LMTP, true}} {
		if lc.l.Listen == "" {
			continue
		}
		opts := &smtpin.Options{
			Lists:    cfg.ListAddresses(),
			MaxSize:  cfg.MaxMessageSize,
			Networks: cfg.Networks,
			Users:    users,
			LMTP:     lc.lmtp,
			// 451 for storage trouble, 554 5.6.0 for mail that cannot be
			// archived (empty, over the size limit).
			IsTempFail: func(err error) bool { return errors.Is(err, archive.ErrTempFail) },
			IsRejected: func(err error) bool { return errors.Is(err, archive.ErrRejected) },
			Logger:     slog.Default().With("listener", lc.name),
		}
		if lc.l.TLSCert != "" {
			cert, err := tls.LoadX509KeyPair(lc.l.TLSCert, lc.l.TLSKey)
			if err != nil {
				return fmt.Errorf("%s tls: %w", lc.name, err)
			}
			opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		}
		srv := smtpin.New(deliverer{a}, opts)
		ln, err := net.Listen("tcp", lc.l.Listen)
		if err != nil {
			return fmt.Errorf("%s: %w", lc.name, err)
		}
		servers = append(servers, srv)
		wg.Go(func() {
			if err := srv.Serve(ln); err != nil {
				slog.Error("listener stopped", "listener", lc.name, "err", err)
			}
		})
		slog.Info("listening", "listener", lc.name, "addr", ln.Addr().String())
	}
	imapSrv, err := startIMAP(cfg, a, users, &wg)
	if err != nil {
		return err
	}
	stopSwarm, err := startSwarm(cfg, a)
	if err != nil {
		if imapSrv != nil {
			imapSrv.Close()
		}
		return err
	}
	defer stopSwarm(context.Background())
	slog.Info("serving", "data", cfg.Data, "lists", len(cfg.Lists))
	<-ctx.Done()
	slog.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	stopSwarm(sctx)
	if imapSrv != nil {
		if err := imapSrv.Shutdown(sctx); err != nil {
			slog.Warn("imap shutdown", "err", err)
		}
	}
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			slog.Warn("shutdown", "err", err)
		}
	}
	stopArchive() // final drain
	wg.Wait()
	for _, lc := range cfg.Lists {
		if l, err := a.List(lc.Name); err == nil {
			st := l.SpoolStats()
			slog.Info("spool", "list", lc.Name, "appends", st.Appends, "fsyncs", st.Fsyncs)
		}
	}
	return runErr
}

// startIMAP starts the IMAP (STARTTLS when it has a certificate) and IMAPS
// listeners; nil when both are off.
func startIMAP(cfg *config.Config, a *archive.Archive, users map[string]string, wg *sync.WaitGroup) (*imapd.Server, error) {
	if cfg.IMAP.Listen == "" && cfg.IMAPS.Listen == "" {
		return nil, nil
	}
	opts := &imapd.Options{Users: users, Anonymous: cfg.IMAPAnonymous, Logger: slog.Default().With("listener", "imap")}
	for _, l := range []config.Listener{cfg.IMAP, cfg.IMAPS} {
		if l.Listen != "" && l.TLSCert != "" && opts.TLS == nil {
			cert, err := tls.LoadX509KeyPair(l.TLSCert, l.TLSKey)
			if err != nil {
				return nil, fmt.Errorf("imap tls: %w", err)
			}
			opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		}
	}
	srv, err := imapd.New(a, opts)
	if err != nil {
		return nil, err
	}
	for _, lc := range []struct {
		name string
		l    config.Listener
		tls  bool
	}{{"imap", cfg.IMAP, false}, {"imaps", cfg.IMAPS, true}} {
		if lc.l.Listen == "" {
			continue
		}
		ln, err := net.Listen("tcp", lc.l.Listen)
		if err != nil {
			srv.Close()
			return nil, fmt.Errorf("%s: %w", lc.name, err)
		}
		serve := srv.Serve
		if lc.tls {
			serve = srv.ServeTLS
		}
		wg.Go(func() {
			if err := serve(ln); err != nil {
				slog.Error("listener stopped", "listener", lc.name, "err", err)
			}
		})
		slog.Info("listening", "listener", lc.name, "addr", ln.Addr().String())
	}
	return srv, nil
}

// startSwarm starts the swarm node (publishing and seeding every list this
// archive holds the key of) and the HTTP listener that serves its
// manifests, torrents and packs. stop ends both (once; later calls do
// nothing): the publishing loop first, then HTTP, then the client.
func startSwarm(cfg *config.Config, a *archive.Archive) (stop func(context.Context), err error) {
	bt := cfg.BitTorrent
	node, err := swarm.NewNode(a, &swarm.Options{
		Listen:        bt.Listen,
		DHT:           bt.DHT,
		DHTBootstrap:  bt.DHTBootstrap,
		Trackers:      bt.Trackers,
		WebSeedBase:   cfg.WebSeedBase(),
		UploadRate:    bt.UploadLimit,
		SliceInterval: bt.SliceInterval,
		Logger:        slog.Default().With("part", "swarm"),
	})
	if err != nil {
		return nil, err
	}
	slog.Info("listening", "listener", "bittorrent", "addr", node.Addr().String())
	var srv *http.Server
	var wg sync.WaitGroup
	// Requests run under ctx: stopping ends the manifest long-polls too.
	ctx, cancel := context.WithCancel(context.Background())
	if cfg.HTTP.Listen != "" {
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			cancel()
			node.Close()
			return nil, fmt.Errorf("http: %w", err)
		}
		srv = &http.Server{Handler: node.Handler(), ReadHeaderTimeout: 10 * time.Second,
			BaseContext: func(net.Listener) context.Context { return ctx },
			ErrorLog:    slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn)}
		if cfg.HTTP.TLSCert != "" {
			cert, err := tls.LoadX509KeyPair(cfg.HTTP.TLSCert, cfg.HTTP.TLSKey)
			if err != nil {
				ln.Close()
				cancel()
				node.Close()
				return nil, fmt.Errorf("http tls: %w", err)
			}
			ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
		}
		wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				slog.Error("listener stopped", "listener", "http", "err", err)
			}
		})
		slog.Info("listening", "listener", "http", "addr", ln.Addr().String())
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
	}, nil
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

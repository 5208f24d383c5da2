package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/postoffice/postoffice/auth"
	"github.com/postoffice/postoffice/imapd"
	"github.com/postoffice/postoffice/internal/config"
	"github.com/postoffice/postoffice/internal/metrics"
	"github.com/postoffice/postoffice/pop3d"
	"github.com/postoffice/postoffice/store"
)

// errUsage marks command-line mistakes (exit status 2); flag has printed
// the details.
var errUsage = errors.New("usage error")

// daemon is one run of postofficed. Its fields are the process's edges, so
// tests can run it in-process.
type daemon struct {
	args      []string
	lookupEnv func(string) (string, bool)
	stderr    io.Writer
	// hup delivers SIGHUP: re-read the TLS certificate.
	hup <-chan os.Signal
	// ready, if set, is called once every listener is bound, with the
	// bound address of each ("imap", "imaps", "pop3", "pop3s", "http").
	ready func(addrs map[string]net.Addr)
	// reloaded, if set, is called after each SIGHUP with the result.
	reloaded func(err error)
}

// listener is one configured listen address.
type listener struct {
	name string // config key
	addr string
	ln   net.Listener
}

// run starts the servers and blocks until ctx is cancelled (SIGTERM,
// SIGINT) or a server fails, then shuts down gracefully.
func (d *daemon) run(ctx context.Context) error {
	cfg, rest, err := config.Loader{
		Program:   "postofficed",
		LookupEnv: d.lookupEnv,
		Output:    d.stderr,
		Usage:     d.usage,
	}.Load(d.args)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		if isFlagError(err) {
			return errUsage
		}
		return err
	}
	if len(rest) > 0 {
		fmt.Fprintf(d.stderr, "postofficed: unexpected argument %q\n", rest[0])
		return errUsage
	}
	log := newLogger(cfg, d.stderr)
	index := "sqlite (embedded)"
	if cfg.DatabaseURL != "" {
		index = cfg.RedactedDatabaseURL()
	}
	if cfg.DatabaseURLHasPassword() {
		log.Warn("the db URL contains a password; prefer db-password-file or POSTOFFICE_DB_PASSWORD (command lines are visible to other users)")
	}
	log.Info("starting postofficed", "config", cfg.Source, "data", cfg.DataDir, "index", index, "maildir", cfg.MaildirTemplate)

	if err := checkProxy(cfg); err != nil {
		return err
	}
	reg := metrics.NewRegistry()
	ms := metrics.NewServer(reg)
	so, err := storeOptions(cfg, d.lookupEnv, log, ms)
	if err != nil {
		return err
	}
	openCtx, cancel := context.WithTimeout(ctx, time.Minute)
	st, err := store.Open(openCtx, so)
	cancel()
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	}()
	verifier, err := auth.New(authOptions(cfg, st, log.With("component", "auth")))
	if err != nil {
		return err
	}
	cert, err := loadCertificate(log, cfg.DataDir, cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return err
	}

	lns, err := listenAll(cfg)
	if err != nil {
		return err
	}
	for i := range lns {
		lns[i].ln = wrapListener(cfg, lns[i].name, lns[i].ln, ms, log)
	}
	var (
		imapSrv *imapd.Server
		pop3Srv *pop3d.Server
		httpSrv *http.Server
	)
	closeAll := func() {
		for _, l := range lns {
			l.ln.Close()
		}
	}
	if imapSrv, err = imapd.New(imapOptions(cfg, st, verifier, cert, log, ms.Proto("imap"))); err != nil {
		closeAll()
		return err
	}
	if pop3Srv, err = pop3d.New(pop3Options(cfg, st, verifier, cert, log, ms.Proto("pop3"))); err != nil {
		closeAll()
		return err
	}

	ms.Panics.Func(imapSrv.Panics, "imap")
	ms.Panics.Func(pop3Srv.Panics, "pop3")

	var wg sync.WaitGroup
	errc := make(chan error, len(lns))
	addrs := map[string]net.Addr{}
	for _, l := range lns {
		addrs[l.name] = l.ln.Addr()
		log.Info("listening", "listener", l.name, "addr", l.ln.Addr().String())
		var serve func() error
		switch l.name {
		case "imap":
			serve = func() error { return imapSrv.Serve(l.ln) }
		case "imaps":
			serve = func() error { return imapSrv.ServeTLS(l.ln) }
		case "pop3":
			serve = func() error { return pop3Srv.Serve(l.ln) }
		case "pop3s":
			serve = func() error { return pop3Srv.Serve(tls.NewListener(l.ln, cert.TLSConfig())) }
		case "http":
			mux := http.NewServeMux()
			mux.Handle("/healthz", &health{ping: st.Ping, maildirRoot: maildirRoot(cfg.DataDir, cfg.MaildirTemplate), log: log.With("component", "http")})
			mux.Handle("GET /metrics", reg)
			httpSrv = &http.Server{
				Handler:           mux,
				ReadHeaderTimeout: 10 * time.Second,
				ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
			}
			serve = func() error { return httpSrv.Serve(l.ln) }
		}
		wg.Go(func() {
			err := serve()
			if errors.Is(err, imapd.ErrServerClosed) || errors.Is(err, pop3d.ErrServerClosed) || errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			if err != nil {
				err = fmt.Errorf("%s listener %s: %w", l.name, l.addr, err)
			}
			errc <- err
		})
	}
	if len(lns) == 0 {
		log.Warn("every listener is switched off; nothing to serve")
	}
	if d.ready != nil {
		d.ready(addrs)
	}
	log.Info("ready")

	var runErr error
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down", "reason", context.Cause(ctx))
			break wait
		case err := <-errc:
			if err != nil {
				log.Error("listener failed; shutting down", "err", err)
				runErr = err
				break wait
			}
		case <-d.hup:
			err := cert.Reload()
			if err != nil {
				log.Error("SIGHUP: TLS certificate not reloaded; keeping the old one", "err", err)
			} else {
				leaf, _ := cert.Leaf()
				log.Info("SIGHUP: TLS certificate reloaded", "cert", cert.certFile, "not_after", leaf.NotAfter, "sha256", fingerprint(leaf.Raw))
			}
			if d.reloaded != nil {
				d.reloaded(err)
			}
		}
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	var swg sync.WaitGroup
	shutdown := func(name string, sd func(context.Context) error, cl func() error) {
		swg.Go(func() {
			if err := sd(sctx); err != nil {
				log.Warn("graceful shutdown incomplete; closing", "server", name, "err", err)
				if err := cl(); err != nil {
					log.Debug("close", "server", name, "err", err)
				}
			}
		})
	}
	shutdown("imap", imapSrv.Shutdown, imapSrv.Close)
	shutdown("pop3", pop3Srv.Shutdown, pop3Srv.Close)
	if httpSrv != nil {
		shutdown("http", httpSrv.Shutdown, httpSrv.Close)
	}
	swg.Wait()
	closeAll() // listeners the servers have not taken over yet
	wg.Wait()
	log.Info("stopped")
	return runErr
}

// listenAll binds every configured listener, or none.
func listenAll(cfg *config.Config) ([]listener, error) {
	var lns []listener
	for _, l := range []listener{
		{name: "imap", addr: cfg.IMAP},
		{name: "imaps", addr: cfg.IMAPS},
		{name: "pop3", addr: cfg.POP3},
		{name: "pop3s", addr: cfg.POP3S},
		{name: "http", addr: cfg.HTTP},
	} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, o := range lns {
				o.ln.Close()
			}
			return nil, fmt.Errorf("%s: %w", l.name, err)
		}
		l.ln = ln
		lns = append(lns, l)
	}
	return lns, nil
}

// isFlagError reports whether err came from flag parsing (flag has
// printed it with the usage).
func isFlagError(err error) bool {
	var ue *config.UsageError
	return errors.As(err, &ue)
}

func (d *daemon) usage(fs *flag.FlagSet) {
	fmt.Fprintf(fs.Output(), `Usage: postofficed [flags]

postofficed serves per-user Maildirs over IMAP and POP3. Settings come from
defaults, the config file, POSTOFFICE_* environment variables and flags, in
increasing priority; see docs/config.md. An empty listen address switches
that listener off.

Flags:
`)
	fs.PrintDefaults()
}

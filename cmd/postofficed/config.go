package main

import (
	"net"
	"net/netip"
	"strings"

	"context"
	"errors"
	"fmt"
	"github.com/postoffice/postoffice/internal/metrics"
	"github.com/postoffice/postoffice/internal/proxyproto"
	"io"
	"log/slog"

	"github.com/postoffice/postoffice/auth"
	"github.com/postoffice/postoffice/imapd"
	"github.com/postoffice/postoffice/internal/config"
	"github.com/postoffice/postoffice/pop3d"
	"github.com/postoffice/postoffice/store"
)

// newLogger builds the process logger from log-level and log-format.
func newLogger(c *config.Config, w io.Writer) *slog.Logger {
	ho := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// storeOptions turns the configuration into store.Options. The database
// URL may carry a password from db-password-file or POSTOFFICE_DB_PASSWORD:
// never log the result's DatabaseURL.
func storeOptions(c *config.Config, lookupEnv func(string) (string, bool), log *slog.Logger, ms *metrics.Server) (store.Options, error) {
	dbURL, err := c.DatabaseURLWithPassword(lookupEnv)
	if err != nil {
		return store.Options{}, err
	}
	return store.Options{
		DataDir:          c.DataDir,
		DatabaseURL:      dbURL,
		MaildirTemplate:  c.MaildirTemplate,
		PollInterval:     c.PollInterval,
		Logger:           log,
		OnSync:           ms.IndexSync.ObserveDuration,
		OnNotify:         ms.NotificationLag.ObserveDuration,
		ListCacheEntries: zeroOff(c.ListCacheEntries),
	}, nil
}

// checkProxy refuses a PROXY protocol switch without trusted networks: it
// would make the listener close every connection.
func checkProxy(c *config.Config) error {
	if (c.ProxyIMAP || c.ProxyIMAPS || c.ProxyPOP3 || c.ProxyPOP3S) && len(c.ProxyProtocolNets) == 0 {
		return errors.New("a proxy-* listener switch is on but proxy-protocol-nets is empty")
	}
	return nil
}

// wrapListener adds, from the socket up: the PROXY protocol (when switched
// on for the listener), then connection and byte counting. TLS, where the
// listener has it, goes on top of both.
func wrapListener(c *config.Config, name string, ln net.Listener, ms *metrics.Server, log *slog.Logger) net.Listener {
	if name == "http" {
		return ln
	}
	proxy := map[string]bool{"imap": c.ProxyIMAP, "imaps": c.ProxyIMAPS, "pop3": c.ProxyPOP3, "pop3s": c.ProxyPOP3S}[name]
	if proxy {
		ln = &proxyproto.Listener{Listener: ln, Trusted: c.ProxyProtocolNets, Required: true, Logger: log.With("listener", name)}
	}
	proto := "imap"
	if strings.HasPrefix(name, "pop3") {
		proto = "pop3"
	}
	return ms.Proto(proto).Listener(ln)
}

// passwordStore is the part of *store.Store that auth needs.
type passwordStore interface {
	PasswordHash(ctx context.Context, name string) (string, bool, error)
	SetPassword(ctx context.Context, name, hash string) error
}

// authOptions adapts the store to auth's Lookup and Rehash.
func authOptions(c *config.Config, st passwordStore, log *slog.Logger) auth.Options {
	return auth.Options{
		Lookup: func(ctx context.Context, name string) (string, bool, bool, error) {
			hash, disabled, err := st.PasswordHash(ctx, name)
			if errors.Is(err, store.ErrNoUser) {
				return "", false, false, nil
			}
			if err != nil {
				return "", false, false, fmt.Errorf("look up password of %q: %w", name, err)
			}
			return hash, disabled, true, nil
		},
		Rehash:   st.SetPassword,
		Argon2:   c.Argon2(),
		CacheTTL: c.AuthCacheTTL,
		Logger:   log,
	}
}

// zeroOff maps the config's "0 means unlimited / off" to the packages'
// "negative means unlimited / off, zero means the default".
func zeroOff(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

func imapOptions(c *config.Config, st *store.Store, v *auth.Verifier, tc *certificate, log *slog.Logger, m *metrics.Proto) imapd.Options {
	return imapd.Options{
		Store:             st,
		Auth:              countingVerifier{v, m},
		ObserveCommand:    m.Command,
		TLSConfig:         tc.TLSConfig(),
		PlaintextAuthNets: c.PlaintextAuthNets,
		SpecialFolders:    c.SpecialFolderMap(),
		MaxConnsPerIP:     zeroOff(c.MaxConnsPerIP),
		MaxConnsPerUser:   zeroOff(c.MaxConnsPerUser),
		FetchCacheBytes:   zeroOff(c.IMAPFetchCacheMB) << 20,
		Logger:            log,
	}
}

func pop3Options(c *config.Config, st *store.Store, v *auth.Verifier, tc *certificate, log *slog.Logger, m *metrics.Proto) pop3d.Options {
	return pop3d.Options{
		Store:             st,
		Auth:              countingVerifier{v, m},
		TLSConfig:         tc.TLSConfig(),
		PlaintextAuthNets: c.PlaintextAuthNets,
		Hostname:          c.Hostname,
		NoFlagUpdates:     c.POP3NoFlagUpdates,
		Logger:            log,
		ObserveCommand:    m.Command,
	}
}

// countingVerifier counts login results per protocol.
type countingVerifier struct {
	v *auth.Verifier
	m *metrics.Proto
}

func (cv countingVerifier) Verify(ctx context.Context, name, password string, remote netip.Addr) error {
	err := cv.v.Verify(ctx, name, password, remote)
	switch {
	case err == nil:
		cv.m.Login(metrics.LoginOK)
	case errors.Is(err, auth.ErrThrottled):
		cv.m.Login(metrics.LoginThrottled)
	case errors.Is(err, auth.ErrInvalidCredentials):
		cv.m.Login(metrics.LoginFailed)
	}
	return err
}

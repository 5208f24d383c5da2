package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/postoffice/postoffice/internal/metrics"
)

// health answers GET /healthz: 200 when the index database answers a ping
// and the Maildir root is writable, 503 otherwise. The body is JSON with
// one word per check; details go to the log, not to the client.
type health struct {
	ping        func(ctx context.Context) error
	maildirRoot string
	log         *slog.Logger
}

// maildirRoot is the directory every user's Maildir lives under: the
// template's fixed leading directories, relative ones under dataDir.
func maildirRoot(dataDir, template string) string {
	prefix := template
	if i := strings.IndexByte(prefix, '%'); i >= 0 {
		prefix = prefix[:i]
	}
	// Keep only whole directories: "/srv/mail/%d" -> "/srv/mail",
	// "mail-%u" -> "".
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		prefix = prefix[:i+1]
	} else {
		prefix = ""
	}
	if !filepath.IsAbs(prefix) {
		prefix = filepath.Join(dataDir, prefix)
	}
	return filepath.Clean(prefix)
}

func (h *health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/healthz" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	res := map[string]string{"status": "ok", "db": "ok", "maildir": "ok"}
	code := http.StatusOK
	if err := h.ping(ctx); err != nil {
		h.log.Error("health check: index database", "err", err)
		res["db"], res["status"], code = "unreachable", "fail", http.StatusServiceUnavailable
	}
	if err := metrics.MaildirWritable(h.maildirRoot); err != nil {
		h.log.Error("health check: maildir root not writable", "dir", h.maildirRoot, "err", err)
		res["maildir"], res["status"], code = "not writable", "fail", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(res)
}

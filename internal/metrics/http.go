package metrics

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"
)

// HealthTimeout bounds one run of the health function.
const HealthTimeout = 5 * time.Second

// Handler serves GET /metrics (reg in the text format) and GET /healthz:
// 200 "ok" when health returns nil, 503 with the error text otherwise.
// health gets the request's context with HealthTimeout; nil health always
// reports ok. Other paths are 404, other methods 405. The endpoint is for
// operators: bind it to an internal address.
func Handler(reg *Registry, health func(ctx context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", reg) // GET patterns also match HEAD
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		var err error
		if health != nil {
			ctx, cancel := context.WithTimeout(r.Context(), HealthTimeout)
			err = health(ctx)
			cancel()
		}
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "%v\n", err)
			return
		}
		fmt.Fprint(w, "ok\n")
	})
	return mux
}

// MaildirWritable checks that files can be created in dir, the Maildir
// root: it creates and removes a temporary dot-file there (dot-files are
// ignored by Maildir readers).
func MaildirWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".healthz-*")
	if err != nil {
		return fmt.Errorf("maildir root %s not writable: %w", dir, err)
	}
	name := f.Name()
	err = f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("maildir root %s: %w", dir, err)
	}
	return nil
}

// Package metrics is a small Prometheus registry: counters, gauges and
// histograms with fixed label names, written in the text exposition
// format 0.0.4 (the Registry is an http.Handler for /metrics), the Maildir
// writability check of /healthz, and the
// metric set postofficed exports (Server).
//
// Usage: register a family once, resolve the series for a label-value
// combination once (With), keep it, and update it on the hot path:
//
//	logins := reg.Counter("postoffice_logins_total", "Logins.", "proto", "result")
//	imapOK := logins.With("imap", "ok") // cache this
//	imapOK.Inc()                        // one atomic add, no allocation
//
// Boundary: no external dependencies and no package of ours; it knows
// nothing about IMAP, POP3 or the store. Protocol servers and the store
// either take a *Server (or a func hook) in their Options, or expose
// counters that the daemon reads at scrape time (CounterVec.Func).
//
// Concurrency: every method is safe for concurrent use. Updates are
// lock-free atomics. With takes a read lock (a write lock the first time
// a label set is seen) and does not allocate when the series exists.
// Scrapes take a consistent view of each value but not of a whole
// histogram: a scrape racing an Observe may show a count one higher than
// the buckets sum, which Prometheus tolerates.
//
// Client input must never create series: callers map client-chosen
// strings (command names) onto a fixed set before calling With. As a safety net a family holds at most MaxSeries
// series; further label sets share one series whose values are all
// "overflow".
package metrics

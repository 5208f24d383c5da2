// Package proxyproto accepts the PROXY protocol, versions 1 (text) and 2
// (binary), as specified in HAProxy's proxy-protocol.txt, so that a TCP
// load balancer in front of postofficed can pass on the real client
// address for logs, connection limits and login throttling.
//
// A Listener wraps the raw TCP listener. Peers inside Listener.Trusted
// (the balancers) must send a header (or may, when Required is false);
// Accept returns their connections with RemoteAddr set to the client
// address from the header. Peers outside Trusted are passed through
// untouched with their real address: no header is parsed for them, so a
// header sent by an untrusted peer is just bytes that the IMAP or POP3
// parser (or the TLS handshake) rejects. Implicit-TLS servers wrap this
// listener, not the other way round: tls.NewListener(proxyListener, cfg).
//
// Boundary: the package knows net, netip and the PROXY protocol; nothing
// about IMAP, POP3 or the store. It imports no package of ours.
//
// Concurrency: the first Accept starts one goroutine that accepts from
// the wrapped listener. Each connection from a trusted peer gets its own
// goroutine that reads the header under a deadline (Listener.Timeout), so
// a slow or silent balancer connection never delays Accept for the
// others. Close stops the accept goroutine, closes connections whose
// header is still being read and waits for every goroutine it started.
// A header is at most 107 bytes (v1) or 16+1024 bytes (v2, TLVs are
// skipped); bytes the peer sent after the header are kept and returned by
// the connection's first Reads.
package proxyproto

package metrics

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DurationBuckets are the histogram bounds, in seconds, for command
// latency, index sync and notification lag: 0.5 ms to 10 s.
var DurationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// LoginResult is the result label of postoffice_logins_total.
type LoginResult string

// The login results.
const (
	LoginOK        LoginResult = "ok"
	LoginFailed    LoginResult = "failed"    // auth.ErrInvalidCredentials
	LoginThrottled LoginResult = "throttled" // auth.ErrThrottled
)

// Server is the metric set of postofficed. Build it with NewServer; a
// nil *Server is valid and records nothing (see Proto).
type Server struct {
	// Connections is postoffice_connections_open{proto}: connections open now.
	Connections *GaugeVec
	// ConnectionsTotal is postoffice_connections_total{proto}: connections accepted.
	ConnectionsTotal *CounterVec
	// Logins is postoffice_logins_total{proto,result}, result = ok|failed|throttled.
	Logins *CounterVec
	// Commands is postoffice_commands_total{proto,command}.
	Commands *CounterVec
	// CommandDuration is postoffice_command_duration_seconds{proto,command}.
	CommandDuration *HistogramVec
	// BytesSent is postoffice_bytes_sent_total{proto}: bytes written to
	// client sockets, TLS records included.
	BytesSent *CounterVec
	// IndexSync is postoffice_index_sync_duration_seconds: one store
	// sync of a mailbox with its directory.
	IndexSync *Histogram
	// NotificationLag is postoffice_notification_lag_seconds: from a
	// change's commit to this host learning of it.
	NotificationLag *Histogram
	// Panics is postoffice_panics_total{proto}: recovered panics in
	// connection goroutines.
	Panics *CounterVec

	mu     sync.Mutex
	protos map[string]*Proto // guarded by mu
}

// NewServer registers the postofficed metric set in reg.
func NewServer(reg *Registry) *Server {
	return &Server{
		Connections:      reg.Gauge("postoffice_connections_open", "Client connections open now.", "proto"),
		ConnectionsTotal: reg.Counter("postoffice_connections_total", "Client connections accepted.", "proto"),
		Logins:           reg.Counter("postoffice_logins_total", "Login attempts by result (ok, failed, throttled).", "proto", "result"),
		Commands:         reg.Counter("postoffice_commands_total", "Commands executed.", "proto", "command"),
		CommandDuration:  reg.Histogram("postoffice_command_duration_seconds", "Command execution time.", DurationBuckets, "proto", "command"),
		BytesSent:        reg.Counter("postoffice_bytes_sent_total", "Bytes written to client connections, TLS included.", "proto"),
		IndexSync:        reg.Histogram("postoffice_index_sync_duration_seconds", "Time to sync a mailbox's index with its Maildir.", DurationBuckets).With(),
		NotificationLag:  reg.Histogram("postoffice_notification_lag_seconds", "Time from a committed change to this host receiving its notification.", DurationBuckets).With(),
		Panics:           reg.Counter("postoffice_panics_total", "Panics recovered in connection goroutines.", "proto"),
		protos:           map[string]*Proto{},
	}
}

// maxCommands bounds a Proto's cache of command series.
const maxCommands = 256

// Proto is the metric set of one protocol ("imap", "pop3") with its
// series resolved. A nil *Proto is valid: every method does nothing, so
// servers can call them unconditionally.
type Proto struct {
	s                                 *Server
	name                              string
	conns                             *Gauge
	connsTotal, bytes, panics         *Counter
	loginOK, loginFailed, loginThrott *Counter

	mu   sync.Mutex                           // serialises cache updates
	cmds atomic.Pointer[map[string]cmdSeries] // copy-on-write
}

type cmdSeries struct {
	count *Counter
	dur   *Histogram
}

// Proto returns the metrics of protocol name, creating its series once.
// It returns nil when s is nil.
func (s *Server) Proto(name string) *Proto {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.protos[name]; p != nil {
		return p
	}
	p := &Proto{
		s:           s,
		name:        name,
		conns:       s.Connections.With(name),
		connsTotal:  s.ConnectionsTotal.With(name),
		bytes:       s.BytesSent.With(name),
		panics:      s.Panics.With(name),
		loginOK:     s.Logins.With(name, string(LoginOK)),
		loginFailed: s.Logins.With(name, string(LoginFailed)),
		loginThrott: s.Logins.With(name, string(LoginThrottled)),
	}
	m := map[string]cmdSeries{}
	p.cmds.Store(&m)
	s.protos[name] = p
	return p
}

// ConnOpened counts an accepted connection. Not needed when the listener
// is wrapped with Listener.
func (p *Proto) ConnOpened() {
	if p == nil {
		return
	}
	p.connsTotal.Inc()
	p.conns.Inc()
}

// ConnClosed counts a closed connection; call it once per ConnOpened.
func (p *Proto) ConnClosed() {
	if p == nil {
		return
	}
	p.conns.Dec()
}

// Login counts a login attempt.
func (p *Proto) Login(r LoginResult) {
	if p == nil {
		return
	}
	switch r {
	case LoginOK:
		p.loginOK.Inc()
	case LoginThrottled:
		p.loginThrott.Inc()
	default:
		p.loginFailed.Inc()
	}
}

// Command counts one command and its duration. name must come from the
// server's own command table (upper case), never verbatim from the
// client: map unknown commands to "UNKNOWN". It does not allocate once
// the command has been seen.
func (p *Proto) Command(name string, d time.Duration) {
	if p == nil {
		return
	}
	cs, ok := (*p.cmds.Load())[name]
	if !ok {
		cs = p.addCommand(name)
	}
	cs.count.Inc()
	cs.dur.Observe(d.Seconds())
}

// Since counts one command that started at start; for defer:
//
//	defer s.metrics.Since("FETCH", time.Now())
func (p *Proto) Since(name string, start time.Time) {
	if p == nil {
		return
	}
	p.Command(name, time.Since(start))
}

func (p *Proto) addCommand(name string) cmdSeries {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.cmds.Load()
	if cs, ok := old[name]; ok {
		return cs
	}
	cs := cmdSeries{count: p.s.Commands.With(p.name, name), dur: p.s.CommandDuration.With(p.name, name)}
	if len(old) >= maxCommands {
		return cs // resolved through the family each time; not cached
	}
	m := make(map[string]cmdSeries, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[name] = cs
	p.cmds.Store(&m)
	return cs
}

// BytesSent counts bytes written to a client. Not needed when the
// listener is wrapped with Listener.
func (p *Proto) BytesSent(n int) {
	if p == nil || n <= 0 {
		return
	}
	p.bytes.Add(uint64(n))
}

// Panic counts a recovered panic.
func (p *Proto) Panic() {
	if p == nil {
		return
	}
	p.panics.Inc()
}

// Listener wraps ln so that every accepted connection is counted in
// connections_total and connections_open (until its Close), and every
// byte written to it in bytes_sent. Wrap the raw (or PROXY protocol)
// listener, below TLS: tls.NewListener(p.Listener(ln), cfg). A nil p
// returns ln unchanged.
func (p *Proto) Listener(ln net.Listener) net.Listener {
	if p == nil {
		return ln
	}
	return &countingListener{Listener: ln, p: p}
}

type countingListener struct {
	net.Listener
	p *Proto
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.p.ConnOpened()
	return &countingConn{Conn: c, p: l.p}, nil
}

// countingConn counts written bytes and its own Close.
type countingConn struct {
	net.Conn
	p      *Proto
	closed atomic.Bool
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.p.BytesSent(n)
	return n, err
}

func (c *countingConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.p.ConnClosed()
	}
	return c.Conn.Close()
}

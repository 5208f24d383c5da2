package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// config holds the load run's settings (flags).
type config struct {
	proto        string
	addr         string
	server       string // label in the output
	users        int
	userPrefix   string
	password     string
	conns        int
	duration     time.Duration
	ops          int64
	serverPID    int
	procDir      string
	jsonOut      bool
	maildir      string // template with %u, for deliveries
	bigUser      string
	seed         uint64
	dialParallel int
	timeout      time.Duration
	label        string // overrides the workload name in the output
	settle       time.Duration
}

func (c *config) user(i int) string { return fmt.Sprintf("%s%d", c.userPrefix, i%c.users+1) }

// nthUser is the k-th user worker i logs in as. While conns <= users the
// workers take disjoint sets of users (i, i+conns, i+2·conns, ...), so two
// POP3 sessions never want the same maildrop lock.
func (c *config) nthUser(i, k int) string {
	if c.conns >= c.users {
		return c.user(i)
	}
	n := (c.users - i + c.conns - 1) / c.conns
	return fmt.Sprintf("%s%d", c.userPrefix, i+(k%n)*c.conns+1)
}

var workloads = map[string]struct {
	proto string
	run   func(ctx context.Context, cfg *config) result
}{
	"pop3-retr":    {"pop3", runPOP3Retr},
	"imap-headers": {"imap", runIMAPHeaders},
	"imap-body":    {"imap", runIMAPBody},
	"append":       {"imap", runAppend},
	"login":        {"imap", runLogin},
	"pop3-login":   {"pop3", runPOP3Login},
	"mixed":        {"imap", runMixed},
	"select-big":   {"imap", runSelectBig},
	"idle":         {"imap", runIdle},
}

func usage() {
	fmt.Fprint(os.Stderr, `Usage:
  poload [flags] WORKLOAD...     drive an IMAP/POP3 server on loopback
  poload corpus [flags]          write a benchmark Maildir corpus
  poload hash [flags]            print an argon2id hash in Dovecot's format
  poload report FILE...          print a comparison table from --json output

Workloads: pop3-retr pop3-login imap-headers imap-body append login mixed
select-big idle. Ops are messages for pop3-retr/imap-headers/imap-body,
commands for mixed, sessions for login, SELECTs for select-big.

Flags:
`)
	flag.PrintDefaults()
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "corpus":
			os.Exit(corpusMain(os.Args[2:]))
		case "hash":
			os.Exit(hashMain(os.Args[2:]))
		case "report":
			os.Exit(reportMain(os.Args[2:]))
		}
	}
	cfg := &config{}
	flag.StringVar(&cfg.proto, "proto", "", "imap or pop3: default workload when none is named, and a check that the named ones fit --addr")
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:143", "server address (IMAP or POP3, per workload)")
	flag.StringVar(&cfg.server, "server", "server", "server label in the output")
	flag.IntVar(&cfg.users, "users", 50, "users bench1..benchN")
	flag.StringVar(&cfg.userPrefix, "user-prefix", "bench", "user name prefix")
	flag.StringVar(&cfg.password, "password", "benchpw", "password of every user")
	flag.IntVar(&cfg.conns, "conns", 10, "concurrent connections")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time per workload")
	flag.Int64Var(&cfg.ops, "ops", 0, "stop after this many ops instead of --duration")
	flag.IntVar(&cfg.serverPID, "server-pid", 0, "server PID: CPU and PSS are read for its whole process tree")
	flag.StringVar(&cfg.procDir, "proc", "/proc", "procfs mount")
	flag.BoolVar(&cfg.jsonOut, "json", false, "print one JSON object per workload on stdout (and the text line on stderr)")
	flag.StringVar(&cfg.maildir, "maildir", "", "Maildir path template with %u (mixed and idle deliver into new/)")
	flag.StringVar(&cfg.bigUser, "big-user", "big", "user owning the big mailbox (select-big)")
	flag.Uint64Var(&cfg.seed, "seed", 1, "random seed (message choice, appended messages)")
	flag.IntVar(&cfg.dialParallel, "dial-parallel", 16, "connections set up at once")
	flag.DurationVar(&cfg.timeout, "timeout", 60*time.Second, "idle: how long to wait for EXISTS after the delivery")
	flag.StringVar(&cfg.label, "workload-name", "", "name the (single) workload this way in the output, e.g. select-big-first")
	flag.DurationVar(&cfg.settle, "settle", 2*time.Second, "idle: pause before each memory sample")
	flag.Usage = usage
	flag.Parse()
	names := flag.Args()
	if len(names) == 0 {
		switch cfg.proto {
		case "pop3":
			names = []string{"pop3-retr"}
		case "imap":
			names = []string{"imap-headers"}
		default:
			usage()
			os.Exit(2)
		}
	}
	for _, n := range names {
		w, ok := workloads[n]
		if !ok {
			fmt.Fprintf(os.Stderr, "poload: unknown workload %q\n", n)
			os.Exit(2)
		}
		if cfg.proto != "" && cfg.proto != w.proto {
			fmt.Fprintf(os.Stderr, "poload: workload %s is %s, not --proto %s\n", n, w.proto, cfg.proto)
			os.Exit(2)
		}
	}
	if cfg.users < 1 || cfg.conns < 1 || cfg.dialParallel < 1 {
		fmt.Fprintln(os.Stderr, "poload: --users, --conns and --dial-parallel must be positive")
		os.Exit(2)
	}
	raiseNoFile()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	status := 0
	for _, n := range names {
		r := workloads[n].run(ctx, cfg)
		if cfg.label != "" {
			r.Workload = cfg.label
		}
		if err := printResult(cfg, r); err != nil {
			fmt.Fprintln(os.Stderr, "poload:", err)
			return
		}
		if r.Ops == 0 || r.Errors > 0 {
			status = 1
		}
	}
	os.Exit(status)
}

// raiseNoFile lifts the open-file soft limit to the hard limit (idle runs
// hold thousands of connections).
func raiseNoFile() {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}

func printResult(cfg *config, r result) error {
	if cfg.jsonOut {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, formatResult(r)) // for the person watching
		_, err = fmt.Printf("%s\n", b)
		return err
	}
	_, err := fmt.Println(formatResult(r))
	return err
}

// formatResult is the one-line human form.
func formatResult(r result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %-14s conns=%d %s=%d %s/s=%.1f", r.Workload, r.Server, r.Conns, r.OpUnit, r.Ops, r.OpUnit, r.OpsPerS)
	if r.MBPerS > 0 {
		fmt.Fprintf(&b, " MB/s=%.1f", r.MBPerS)
	}
	if r.CPUSeconds >= 0 {
		fmt.Fprintf(&b, " cpu=%.2fs cpu/1000=%.3fs pss=%.1fMB (max %.1fMB, %d procs)", r.CPUSeconds, r.CPUPer1000, r.PSSEndMB, r.PSSMaxMB, r.Procs)
	}
	for _, k := range sortedKeys(r.Extra) {
		fmt.Fprintf(&b, " %s=%.1f", k, r.Extra[k])
	}
	if r.Errors > 0 {
		fmt.Fprintf(&b, " errors=%d (first: %s)", r.Errors, r.FirstError)
	}
	return b.String()
}

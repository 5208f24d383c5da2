package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/postoffice/postoffice/internal/config"
	"github.com/postoffice/postoffice/store"
)

// Exit statuses.
const (
	exitError = 1 // the command failed
	exitUsage = 2 // bad command line
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	c := &cli{
		stdin:     os.Stdin,
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		lookupEnv: os.LookupEnv,
		tty:       isTerminal(os.Stdin),
		ttyErr:    isTerminal(os.Stderr),
		readPassword: func() ([]byte, error) {
			return term.ReadPassword(int(os.Stdin.Fd()))
		},
	}
	code := c.main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// cli is one run of the admin command. Its fields are the process's edges,
// so tests can run it in-process.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
	tty            bool // stdin is a terminal: prompt for passwords
	ttyErr         bool // stderr is a terminal: draw progress bars
	readPassword   func() ([]byte, error)

	cfg *config.Config
	log *slog.Logger
}

// usageError is a command-line mistake: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// command is one subcommand. setup registers its flags on fs and returns
// the function that runs it with the positional arguments.
type command struct {
	path    string // "user add"
	args    string // synopsis of arguments and flags
	help    string
	minArgs int
	maxArgs int // -1: unlimited
	noStore bool
	setup   func(fs *flag.FlagSet) func(ctx context.Context, c *cli, st *store.Store, args []string) error
}

// commands lists every subcommand; see users.go and mailboxes.go.
func commands() []command {
	return append(userCommands(), mailboxCommands()...)
}

// globalFlags are the settings the CLI takes on its command line; the
// rest come from the config file or the environment.
var globalFlags = []string{"data", "db", "db-password-file", "maildir", "log-level", "log-format"}

func (c *cli) main(ctx context.Context, args []string) int {
	err := c.run(ctx, args)
	var ue *usageError
	var ce *config.UsageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ce):
		return exitUsage // flag printed it
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "postoffice: %v\nRun 'postoffice help' for usage.\n", err)
		return exitUsage
	default:
		fmt.Fprintf(c.stderr, "postoffice: %v\n", err)
		return exitError
	}
}

func (c *cli) run(ctx context.Context, args []string) error {
	cfg, rest, err := config.Loader{
		Program:   "postoffice",
		Flags:     globalFlags,
		LookupEnv: c.lookupEnv,
		Output:    c.stderr,
		Usage:     func(fs *flag.FlagSet) { c.usage(fs) },
	}.Load(args)
	if err != nil {
		return err
	}
	c.cfg = cfg
	if cfg.DatabaseURLHasPassword() {
		fmt.Fprintln(c.stderr, "postoffice: warning: the db URL contains a password; prefer db-password-file or POSTOFFICE_DB_PASSWORD")
	}
	level := cfg.LogLevel
	if level == slog.LevelInfo {
		level = slog.LevelWarn // the store's info logs are noise here
	}
	ho := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		c.log = slog.New(slog.NewJSONHandler(c.stderr, ho))
	} else {
		c.log = slog.New(slog.NewTextHandler(c.stderr, ho))
	}
	if len(rest) == 0 || rest[0] == "help" {
		c.usage(nil)
		if len(rest) == 0 {
			return usagef("no command given")
		}
		return nil
	}
	cmd, argv, err := findCommand(rest)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("postoffice "+cmd.path, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	runFn := cmd.setup(fs)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: postoffice [global flags] %s %s\n\n%s\n", cmd.path, cmd.args, cmd.help)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, argv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &config.UsageError{Err: err}
	}
	if len(pos) < cmd.minArgs || (cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs) {
		return usagef("usage: postoffice %s %s", cmd.path, cmd.args)
	}
	var st *store.Store
	if !cmd.noStore {
		if st, err = c.openStore(ctx); err != nil {
			return err
		}
		defer st.Close()
	}
	return runFn(ctx, c, st, pos)
}

// findCommand matches the longest command path at the start of args.
func findCommand(args []string) (command, []string, error) {
	var best command
	n := 0
	for _, cmd := range commands() {
		words := strings.Fields(cmd.path)
		if len(words) <= len(args) && len(words) > n && strings.Join(args[:len(words)], " ") == cmd.path {
			best, n = cmd, len(words)
		}
	}
	if n == 0 {
		var group []string
		for _, cmd := range commands() {
			if strings.HasPrefix(cmd.path, args[0]+" ") {
				group = append(group, strings.TrimPrefix(cmd.path, args[0]+" "))
			}
		}
		if len(group) > 0 {
			if len(args) == 1 {
				return command{}, nil, usagef("%s: missing subcommand (%s)", args[0], strings.Join(group, ", "))
			}
			return command{}, nil, usagef("%s: unknown subcommand %q (%s)", args[0], args[1], strings.Join(group, ", "))
		}
		return command{}, nil, usagef("unknown command %q", args[0])
	}
	return best, args[n:], nil
}

// parseInterspersed parses flags anywhere among the arguments, as in
// "user add alice --password-stdin". "--" ends flag parsing.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos, tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	return append(pos, tail...), nil
}

// openStore opens the index the configuration names. Open applies pending
// migrations.
func (c *cli) openStore(ctx context.Context) (*store.Store, error) {
	so := store.Options{
		DataDir:         c.cfg.DataDir,
		MaildirTemplate: c.cfg.MaildirTemplate,
		PollInterval:    c.cfg.PollInterval,
		Logger:          c.log,
	}
	var err error
	if so.DatabaseURL, err = c.cfg.DatabaseURLWithPassword(c.lookupEnv); err != nil {
		return nil, err
	}
	where := "embedded index in " + c.cfg.DataDir
	if so.DatabaseURL != "" {
		where = "database " + c.cfg.RedactedDatabaseURL()
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := store.Open(octx, so)
	if err != nil {
		return nil, fmt.Errorf("cannot open the %s: %w", where, err)
	}
	return st, nil
}

func (c *cli) usage(fs *flag.FlagSet) {
	w := c.stderr
	fmt.Fprint(w, `Usage: postoffice [global flags] COMMAND [ARGS]

Administers postoffice users and mailboxes, on the embedded index in the
data directory or on PostgreSQL (--db). Settings also come from the config
file (DATA/postoffice.conf or --config) and POSTOFFICE_* variables.

Commands:
`)
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %-16s %s\n", cmd.path, cmd.args)
		fmt.Fprintf(w, "  %-16s   %s\n", "", cmd.help)
	}
	fmt.Fprint(w, "\nGlobal flags:\n")
	if fs == nil {
		fs = flag.NewFlagSet("postoffice", flag.ContinueOnError)
		fs.SetOutput(w)
		fs.String("config", "", "config file (default: DATA/postoffice.conf if present; env POSTOFFICE_CONFIG)")
		for _, name := range globalFlags {
			k, _ := config.Lookup(name)
			fs.String(k.Name, k.Default, k.Help+" (env "+k.Env()+")")
		}
	}
	fs.PrintDefaults()
	fmt.Fprint(w, "\nExit status: 0 success, 1 failure, 2 usage error.\n")
}

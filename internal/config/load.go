package config

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Loader fills a Config from defaults, a file, the environment and flags.
type Loader struct {
	// Program names the flag set in usage and errors.
	Program string
	// Flags are the keys offered as command-line flags; nil: every key.
	// --config is always offered.
	Flags []string
	// LookupEnv reads the environment; nil: os.LookupEnv. A variable that
	// is set but empty sets the key to "" (switching a listener off).
	LookupEnv func(string) (string, bool)
	// Output receives flag usage and errors; nil: os.Stderr.
	Output io.Writer
	// Usage, when set, replaces the flag set's usage message.
	Usage func(fs *flag.FlagSet)
}

// ErrHelp is returned by Load when -h or --help was given; usage has
// been printed.
var ErrHelp = flag.ErrHelp

// UsageError is a command-line mistake; the flag package has already
// printed it with the usage text.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

type setting struct{ key, value string }

// Load parses args (without the program name). Flag parsing stops at the
// first non-flag argument; the rest is returned. The config file is --config,
// else POSTOFFICE_CONFIG, else postoffice.conf in the data directory (from
// flags, environment or default) when it exists.
func (l Loader) Load(args []string) (*Config, []string, error) {
	lookupEnv := l.LookupEnv
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	out := l.Output
	if out == nil {
		out = os.Stderr
	}
	fs := flag.NewFlagSet(l.Program, flag.ContinueOnError)
	fs.SetOutput(out)
	if l.Usage != nil {
		fs.Usage = func() { l.Usage(fs) }
	}
	var flags []setting
	configFile := ""
	fs.Func("config", "config file (default: DATA/postoffice.conf if present; env POSTOFFICE_CONFIG)", func(v string) error {
		configFile = v
		return nil
	})
	offered := map[string]bool{}
	for _, name := range l.Flags {
		offered[name] = true
	}
	for _, k := range Keys() {
		if l.Flags != nil && !offered[k.Name] {
			continue
		}
		delete(offered, k.Name)
		help := k.Help
		if k.Default != "" {
			help += fmt.Sprintf(" (default %q)", k.Default)
		}
		help += " (env " + k.Env() + ")"
		set := func(v string) error {
			// Check now for a precise error; apply after file and env.
			c := Default()
			if err := k.set(&c, v); err != nil {
				return err
			}
			flags = append(flags, setting{k.Name, v})
			return nil
		}
		if k.Default == "false" || k.Default == "true" {
			fs.BoolFunc(k.Name, help, set) // --name alone means true
		} else {
			fs.Func(k.Name, help, set)
		}
	}
	for name := range offered {
		panic("config: Loader.Flags names unknown key " + name) // programmer error
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		return nil, nil, &UsageError{err}
	}

	c := Default()
	var envs []setting
	for _, k := range Keys() {
		if v, ok := lookupEnv(k.Env()); ok {
			envs = append(envs, setting{k.Name, v})
		}
	}
	if configFile == "" {
		configFile, _ = lookupEnv("POSTOFFICE_CONFIG")
	}
	if configFile == "" {
		// Locate the default file with the data directory as flags and
		// environment give it.
		data := c.DataDir
		for _, s := range append(envs, flags...) {
			if s.key == "data" {
				data = s.value
			}
		}
		if p := DefaultFile(data); fileExists(p) {
			configFile = p
		}
	}
	if configFile != "" {
		f, err := os.Open(configFile)
		if err != nil {
			return nil, nil, fmt.Errorf("config file: %w", err)
		}
		err = c.ReadFile(f, configFile)
		f.Close()
		if err != nil {
			return nil, nil, err
		}
		c.Source = configFile
	}
	for _, s := range envs {
		if err := c.Set(s.key, s.value); err != nil {
			k, _ := Lookup(s.key)
			return nil, nil, fmt.Errorf("environment %s: %w", k.Env(), err)
		}
	}
	for _, s := range flags {
		if err := c.Set(s.key, s.value); err != nil {
			return nil, nil, fmt.Errorf("flag --%w", err)
		}
	}
	if err := c.Check(); err != nil {
		return nil, nil, err
	}
	return &c, fs.Args(), nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// ReadFile applies the settings of a config file read from r; name is used
// in error messages. Lines are "key = value"; blank lines and lines whose
// first non-blank character is '#' are ignored. A value may be in double
// quotes (Go syntax) to keep '#' or surrounding spaces; otherwise a " #"
// starts a comment. A key may appear once.
func (c *Config) ReadFile(r io.Reader, name string) error {
	sc := bufio.NewScanner(r)
	seen := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want key = value", name, n)
		}
		key = strings.TrimSpace(key)
		value = strings.TrimSpace(value)
		if strings.HasPrefix(value, `"`) {
			q, err := strconv.QuotedPrefix(value)
			if err != nil {
				return fmt.Errorf("%s:%d: bad quoted value", name, n)
			}
			rest := strings.TrimSpace(value[len(q):])
			if rest != "" && rest[0] != '#' {
				return fmt.Errorf("%s:%d: text after quoted value", name, n)
			}
			value, _ = strconv.Unquote(q)
		} else if i := strings.Index(value, " #"); i >= 0 {
			value = strings.TrimSpace(value[:i])
		}
		k, known := Lookup(key)
		if !known {
			return fmt.Errorf("%s:%d: unknown setting %q", name, n, key)
		}
		if prev, dup := seen[k.Name]; dup {
			return fmt.Errorf("%s:%d: %s already set on line %d", name, n, k.Name, prev)
		}
		seen[k.Name] = n
		if err := k.set(c, value); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", name, n, k.Name, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// WriteExample writes a config file with every key commented out at its
// default, with its help text.
func WriteExample(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# postoffice configuration (postofficed and postoffice read it).")
	fmt.Fprintln(bw, "# Every line shows the default. Environment variables POSTOFFICE_<KEY>")
	fmt.Fprintln(bw, "# and command-line flags --<key> override this file.")
	for _, k := range Keys() {
		fmt.Fprintf(bw, "\n# %s\n# %s = %s\n", k.Help, k.Name, strconv.Quote(k.Default))
	}
	return bw.Flush()
}

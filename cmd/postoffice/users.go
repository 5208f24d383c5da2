package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/postoffice/postoffice/auth"
	"github.com/postoffice/postoffice/store"
)

type runFunc = func(ctx context.Context, c *cli, st *store.Store, args []string) error

func userCommands() []command {
	return []command{
		{path: "user add", args: "NAME [--password-stdin] [--quota SIZE] [--quota-messages N] [--maildir-path DIR]",
			help:    "Create a user. The password is prompted for twice, or read from the first line of stdin.",
			minArgs: 1, maxArgs: 1, setup: setupUserAdd},
		{path: "user passwd", args: "NAME [--password-stdin]",
			help: "Set a user's password.", minArgs: 1, maxArgs: 1, setup: setupUserPasswd},
		{path: "user del", args: "NAME [--purge-mail]",
			help: "Delete a user from the index; --purge-mail also removes the Maildir.", minArgs: 1, maxArgs: 1, setup: setupUserDel},
		{path: "user disable", args: "NAME", help: "Refuse the user's logins.", minArgs: 1, maxArgs: 1, setup: setupSetDisabled(true)},
		{path: "user enable", args: "NAME", help: "Allow the user's logins again.", minArgs: 1, maxArgs: 1, setup: setupSetDisabled(false)},
		{path: "user show", args: "NAME", help: "Show a user's settings and usage.", minArgs: 1, maxArgs: 1, setup: setupUserShow},
		{path: "user list", args: "[--json]", help: "List users with usage, quota, state and last login.", maxArgs: 0, setup: setupUserList},
	}
}

// readPasswordFor gets a new password: the first line of stdin with
// --password-stdin, else typed twice on the terminal.
func (c *cli) readNewPassword(fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(io.LimitReader(c.stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("empty password on stdin")
		}
		return pw, nil
	}
	if !c.tty {
		return "", usagef("stdin is not a terminal: use --password-stdin")
	}
	fmt.Fprint(c.stderr, "New password: ")
	p1, err := c.readPassword()
	fmt.Fprintln(c.stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if len(p1) == 0 {
		return "", errors.New("empty password")
	}
	fmt.Fprint(c.stderr, "Retype password: ")
	p2, err := c.readPassword()
	fmt.Fprintln(c.stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if !bytes.Equal(p1, p2) {
		return "", errors.New("passwords do not match")
	}
	return string(p1), nil
}

func (c *cli) hash(pw string) (string, error) {
	h, err := auth.Hash(pw, c.cfg.Argon2())
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// noUser turns store.ErrNoUser into a clear message.
func noUser(name string, err error) error {
	if errors.Is(err, store.ErrNoUser) {
		return fmt.Errorf("no such user %q", name)
	}
	return err
}

// sizeFlag is a flag.Value for storage sizes.
type sizeFlag struct {
	n   int64
	set bool
}

func (f *sizeFlag) String() string { return "" }
func (f *sizeFlag) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	f.n, f.set = n, true
	return nil
}

// countFlag is a flag.Value for message counts (>= 0).
type countFlag struct {
	n   int64
	set bool
}

func (f *countFlag) String() string { return "" }
func (f *countFlag) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("want a number >= 0, got %q", s)
	}
	f.n, f.set = n, true
	return nil
}

func setupUserAdd(fs *flag.FlagSet) runFunc {
	stdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	var quota sizeFlag
	var msgs countFlag
	fs.Var(&quota, "quota", "storage quota, e.g. 2G, 500M, 1024K or bytes; 0: unlimited")
	fs.Var(&msgs, "quota-messages", "message count quota; 0: unlimited")
	maildir := fs.String("maildir-path", "", "Maildir of this user instead of the path template")
	return func(ctx context.Context, c *cli, st *store.Store, args []string) error {
		name := args[0]
		if err := checkUserName(name); err != nil {
			return err
		}
		if _, err := st.User(ctx, name); err == nil {
			return fmt.Errorf("user %q already exists", name)
		} else if !errors.Is(err, store.ErrNoUser) {
			return err
		}
		pw, err := c.readNewPassword(*stdin)
		if err != nil {
			return err
		}
		h, err := c.hash(pw)
		if err != nil {
			return err
		}
		u, err := st.CreateUser(ctx, store.User{
			Name: name, PasswordHash: h, QuotaBytes: quota.n, QuotaMessages: msgs.n, MaildirOverride: *maildir,
		})
		if errors.Is(err, store.ErrUserExists) {
			return fmt.Errorf("user %q already exists", name)
		}
		if err != nil {
			return fmt.Errorf("create user %q: %w", name, err)
		}
		fmt.Fprintf(c.stdout, "created user %s (Maildir %s)\n", u.Name, st.MaildirPath(u))
		return nil
	}
}

// checkUserName rejects, before a password is asked for, names the store
// would refuse (store.ValidUserName) and names awkward on a command line or
// in a login prompt (a leading "-", a double quote).
func checkUserName(name string) error {
	if err := store.ValidUserName(name); err != nil || strings.HasPrefix(name, "-") || strings.ContainsRune(name, '"') {
		return usagef("bad user name %q: 1 to 255 bytes of UTF-8, no spaces, control characters, /, \\, \", %%, * or leading dot", name)
	}
	return nil
}

func setupUserPasswd(fs *flag.FlagSet) runFunc {
	stdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	return func(ctx context.Context, c *cli, st *store.Store, args []string) error {
		name := args[0]
		if _, err := st.User(ctx, name); err != nil {
			return noUser(name, err)
		}
		pw, err := c.readNewPassword(*stdin)
		if err != nil {
			return err
		}
		h, err := c.hash(pw)
		if err != nil {
			return err
		}
		if err := st.SetPassword(ctx, name, h); err != nil {
			return noUser(name, err)
		}
		fmt.Fprintf(c.stdout, "password of %s changed\n", name)
		return nil
	}
}

func setupUserDel(fs *flag.FlagSet) runFunc {
	purge := fs.Bool("purge-mail", false, "also remove the user's Maildir")
	return func(ctx context.Context, c *cli, st *store.Store, args []string) error {
		name := args[0]
		if err := st.DeleteUser(ctx, name, *purge); err != nil {
			return noUser(name, err)
		}
		if *purge {
			fmt.Fprintf(c.stdout, "deleted user %s and their mail\n", name)
		} else {
			fmt.Fprintf(c.stdout, "deleted user %s (Maildir kept)\n", name)
		}
		return nil
	}
}

func setupSetDisabled(disabled bool) func(fs *flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		return func(ctx context.Context, c *cli, st *store.Store, args []string) error {
			name := args[0]
			if err := st.SetDisabled(ctx, name, disabled); err != nil {
				return noUser(name, err)
			}
			state := "enabled"
			if disabled {
				state = "disabled"
			}
			fmt.Fprintf(c.stdout, "user %s %s\n", name, state)
			return nil
		}
	}
}

// quotaUse renders usage against quota, e.g. "12% of 2.0G".
func quotaUse(u *store.User) string {
	var parts []string
	if u.QuotaBytes > 0 {
		parts = append(parts, fmt.Sprintf("%d%% of %s", u.UsedBytes*100/u.QuotaBytes, formatSize(u.QuotaBytes)))
	}
	if u.QuotaMessages > 0 {
		parts = append(parts, fmt.Sprintf("%d%% of %d msgs", u.UsedMessages*100/u.QuotaMessages, u.QuotaMessages))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// hashScheme names a password hash's scheme without revealing the hash.
func hashScheme(h string) string {
	if strings.HasPrefix(h, "{") {
		if i := strings.IndexByte(h, '}'); i > 0 {
			return h[1:i]
		}
	}
	if strings.HasPrefix(h, "$") {
		if i := strings.IndexByte(h[1:], '$'); i > 0 {
			return "crypt $" + h[1:i+1] + "$"
		}
	}
	if h == "" {
		return "none"
	}
	return "unknown"
}

func setupUserShow(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *cli, st *store.Store, args []string) error {
		name := args[0]
		u, err := st.User(ctx, name)
		if err != nil {
			return noUser(name, err)
		}
		w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(w, "name:\t%s\n", u.Name)
		fmt.Fprintf(w, "id:\t%d\n", u.ID)
		fmt.Fprintf(w, "disabled:\t%v\n", u.Disabled)
		fmt.Fprintf(w, "password:\t%s\n", hashScheme(u.PasswordHash))
		fmt.Fprintf(w, "maildir:\t%s\n", st.MaildirPath(u))
		fmt.Fprintf(w, "messages:\t%d\n", u.UsedMessages)
		fmt.Fprintf(w, "size:\t%s\n", formatSize(u.UsedBytes))
		fmt.Fprintf(w, "quota:\t%s\n", quotaLimit(u))
		fmt.Fprintf(w, "quota use:\t%s\n", quotaUse(u))
		fmt.Fprintf(w, "created:\t%s\n", formatTime(u.CreatedAt))
		fmt.Fprintf(w, "last login:\t%s\n", formatTime(u.LastLoginAt))
		return w.Flush()
	}
}

func quotaLimit(u *store.User) string {
	b, m := "unlimited", "unlimited"
	if u.QuotaBytes > 0 {
		b = formatSize(u.QuotaBytes)
	}
	if u.QuotaMessages > 0 {
		m = fmt.Sprint(u.QuotaMessages)
	}
	return fmt.Sprintf("%s storage, %s messages", b, m)
}

// userJSON is one entry of user list --json.
type userJSON struct {
	Name          string     `json:"name"`
	Disabled      bool       `json:"disabled"`
	Messages      int64      `json:"messages"`
	Bytes         int64      `json:"bytes"`
	QuotaBytes    int64      `json:"quota_bytes"`    // 0: unlimited
	QuotaMessages int64      `json:"quota_messages"` // 0: unlimited
	Maildir       string     `json:"maildir"`
	CreatedAt     time.Time  `json:"created_at"`
	LastLoginAt   *time.Time `json:"last_login_at"` // null: never
}

func setupUserList(fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, "print a JSON array")
	return func(ctx context.Context, c *cli, st *store.Store, args []string) error {
		users, err := st.Users(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			out := make([]userJSON, 0, len(users))
			for i := range users {
				u := &users[i]
				j := userJSON{Name: u.Name, Disabled: u.Disabled, Messages: u.UsedMessages, Bytes: u.UsedBytes,
					QuotaBytes: u.QuotaBytes, QuotaMessages: u.QuotaMessages, Maildir: st.MaildirPath(u), CreatedAt: u.CreatedAt}
				if !u.LastLoginAt.IsZero() {
					t := u.LastLoginAt
					j.LastLoginAt = &t
				}
				out = append(out, j)
			}
			enc := json.NewEncoder(c.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		}
		w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tMESSAGES\tSIZE\tQUOTA USE\tDISABLED\tLAST LOGIN")
		for i := range users {
			u := &users[i]
			dis := "no"
			if u.Disabled {
				dis = "yes"
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", u.Name, u.UsedMessages, formatSize(u.UsedBytes), quotaUse(u), dis, formatTime(u.LastLoginAt))
		}
		return w.Flush()
	}
}

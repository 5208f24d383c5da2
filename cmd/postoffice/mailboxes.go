package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/postoffice/postoffice/internal/config"
	"github.com/postoffice/postoffice/store"
)

func mailboxCommands() []command {
	return []command{
		{path: "mailbox list", args: "USER", help: "List a user's mailboxes with message counts and sizes.",
			minArgs: 1, maxArgs: 1, setup: setupMailboxList},
		{path: "mailbox create", args: "USER NAME... [--special-use \\Sent]", help: "Create mailboxes (and missing parents); names use '.' as the hierarchy delimiter.",
			minArgs: 2, maxArgs: -1, setup: setupMailboxCreate},
		{path: "mailbox delete", args: "USER NAME...", help: "Delete mailboxes and their messages.",
			minArgs: 2, maxArgs: -1, setup: setupMailboxDelete},
		{path: "mailbox rename", args: "USER FROM TO", help: "Rename a mailbox; children follow.",
			minArgs: 3, maxArgs: 3, setup: setupMailboxRename},
		{path: "quota set", args: "USER SIZE [--messages N]", help: "Set a user's storage quota (2G, 500M, 1024K, bytes; 0: unlimited) and optionally the message quota.",
			minArgs: 2, maxArgs: 2, setup: setupQuotaSet},
		{path: "migrate", args: "", help: "Apply pending index schema migrations.", maxArgs: 0, setup: setupMigrate},
		{path: "reindex", args: "USER... | --all", help: "Rescan users' Maildirs and bring the index in line with them.",
			maxArgs: -1, setup: setupReindex},
		{path: "config example", args: "", help: "Print a config file with every setting at its default.",
			maxArgs: 0, noStore: true, setup: setupConfigExample},
	}
}

// mailboxError turns store sentinels into clear messages.
func mailboxError(user, name string, err error) error {
	switch {
	case errors.Is(err, store.ErrNoUser):
		return fmt.Errorf("no such user %q", user)
	case errors.Is(err, store.ErrNoMailbox):
		return fmt.Errorf("%s: no mailbox %q", user, name)
	case errors.Is(err, store.ErrMailboxExists):
		return fmt.Errorf("%s: mailbox %q already exists", user, name)
	case errors.Is(err, store.ErrBadMailboxName):
		return fmt.Errorf("%s: bad mailbox name %q", user, name)
	case errors.Is(err, store.ErrMailboxHasChild):
		return fmt.Errorf("%s: mailbox %q has children; delete them first", user, name)
	case errors.Is(err, store.ErrCannot):
		return fmt.Errorf("%s: not permitted on mailbox %q", user, name)
	}
	return fmt.Errorf("%s: mailbox %q: %w", user, name, err)
}

func lookupUser(ctx context.Context, st *store.Store, name string) (*store.User, error) {
	u, err := st.User(ctx, name)
	if err != nil {
		return nil, noUser(name, err)
	}
	return u, nil
}

func setupMailboxList(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *cli, st *store.Store, args []string) error {
		u, err := lookupUser(ctx, st, args[0])
		if err != nil {
			return err
		}
		boxes, err := st.Mailboxes(ctx, u.ID)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tMESSAGES\tUNSEEN\tSIZE\tSPECIAL-USE\tSUBSCRIBED")
		for _, b := range boxes {
			s, err := st.Status(ctx, u.ID, b.Name)
			if errors.Is(err, store.ErrNoMailbox) {
				continue // removed meanwhile
			}
			if err != nil {
				return mailboxError(u.Name, b.Name, err)
			}
			use, sub := s.SpecialUse, "no"
			if use == "" {
				use = "-"
			}
			if s.Subscribed {
				sub = "yes"
			}
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\n", s.Name, s.Messages, s.Unseen, formatSize(s.Size), use, sub)
		}
		return w.Flush()
	}
}

func setupMailboxCreate(fs *flag.FlagSet) runFunc {
	use := fs.String("special-use", "", `special-use attribute of the new mailboxes, e.g. \Sent`)
	return func(ctx context.Context, c *cli, st *store.Store, args []string) error {
		if *use != "" && !strings.HasPrefix(*use, `\`) {
			return usagef(`--special-use: want an attribute like \Sent, got %q`, *use)
		}
		u, err := lookupUser(ctx, st, args[0])
		if err != nil {
			return err
		}
		for _, name := range args[1:] {
			if _, err := st.CreateMailbox(ctx, u.ID, name, *use); err != nil {
				return mailboxError(u.Name, name, err)
			}
			fmt.Fprintf(c.stdout, "created mailbox %s of %s\n", name, u.Name)
		}
		return nil
	}
}

func setupMailboxDelete(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *cli, st *store.Store, args []string) error {
		u, err := lookupUser(ctx, st, args[0])
		if err != nil {
			return err
		}
		for _, name := range args[1:] {
			if err := st.DeleteMailbox(ctx, u.ID, name); err != nil {
				return mailboxError(u.Name, name, err)
			}
			fmt.Fprintf(c.stdout, "deleted mailbox %s of %s\n", name, u.Name)
		}
		return nil
	}
}

func setupMailboxRename(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *cli, st *store.Store, args []string) error {
		u, err := lookupUser(ctx, st, args[0])
		if err != nil {
			return err
		}
		from, to := args[1], args[2]
		if err := st.RenameMailbox(ctx, u.ID, from, to); err != nil {
			if errors.Is(err, store.ErrMailboxExists) || errors.Is(err, store.ErrBadMailboxName) {
				return mailboxError(u.Name, to, err)
			}
			return mailboxError(u.Name, from, err)
		}
		fmt.Fprintf(c.stdout, "renamed mailbox %s of %s to %s\n", from, u.Name, to)
		return nil
	}
}

func setupQuotaSet(fs *flag.FlagSet) runFunc {
	var msgs countFlag
	fs.Var(&msgs, "messages", "message count quota; 0: unlimited (default: unchanged)")
	return func(ctx context.Context, c *cli, st *store.Store, args []string) error {
		size, err := parseSize(args[1])
		if err != nil {
			return usagef("%v", err)
		}
		u, err := lookupUser(ctx, st, args[0])
		if err != nil {
			return err
		}
		m := u.QuotaMessages
		if msgs.set {
			m = msgs.n
		}
		if err := st.SetQuota(ctx, u.Name, size, m); err != nil {
			return noUser(u.Name, err)
		}
		u.QuotaBytes, u.QuotaMessages = size, m
		fmt.Fprintf(c.stdout, "quota of %s: %s\n", u.Name, quotaLimit(u))
		return nil
	}
}

func setupMigrate(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *cli, st *store.Store, args []string) error {
		// Opening the store already migrated; this reports and re-checks.
		n, err := st.Migrate(ctx)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		fmt.Fprintf(c.stdout, "index schema (%s) is up to date", st.Backend())
		if n > 0 {
			fmt.Fprintf(c.stdout, "; applied %d migrations", n)
		}
		fmt.Fprintln(c.stdout)
		return nil
	}
}

func setupConfigExample(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *cli, _ *store.Store, args []string) error {
		return config.WriteExample(c.stdout)
	}
}

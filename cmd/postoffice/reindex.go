package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/postoffice/postoffice/store"
)

func setupReindex(fs *flag.FlagSet) runFunc {
	all := fs.Bool("all", false, "reindex every user")
	return func(ctx context.Context, c *cli, st *store.Store, args []string) error {
		if *all == (len(args) > 0) {
			return usagef("reindex: name users or give --all, not both")
		}
		var users []store.User
		if *all {
			var err error
			if users, err = st.Users(ctx); err != nil {
				return err
			}
		} else {
			for _, name := range args {
				u, err := lookupUser(ctx, st, name)
				if err != nil {
					return err
				}
				users = append(users, *u)
			}
		}
		// Listing mailboxes adopts folders created on disk by other tools.
		type job struct {
			user *store.User
			box  store.Mailbox
		}
		var jobs []job
		for i := range users {
			boxes, err := st.Mailboxes(ctx, users[i].ID)
			if err != nil {
				return fmt.Errorf("%s: list mailboxes: %w", users[i].Name, err)
			}
			for _, b := range boxes {
				jobs = append(jobs, job{&users[i], b})
			}
		}
		bar := newProgress(c.stderr, c.ttyErr, len(jobs))
		var msgs, failed int
		for i, j := range jobs {
			bar.update(i, j.user.Name+"/"+j.box.Name)
			if err := st.Rescan(ctx, j.box.ID); err != nil {
				if ctx.Err() != nil {
					bar.done()
					return ctx.Err()
				}
				if errors.Is(err, store.ErrNoMailbox) {
					continue
				}
				bar.clear()
				fmt.Fprintf(c.stderr, "postoffice: %s/%s: %v\n", j.user.Name, j.box.Name, err)
				failed++
				continue
			}
			s, err := st.Status(ctx, j.user.ID, j.box.Name)
			if err == nil {
				msgs += int(s.Messages)
			}
		}
		bar.update(len(jobs), "")
		bar.done()
		fmt.Fprintf(c.stdout, "reindexed %d users, %d mailboxes, %d messages\n", len(users), len(jobs)-failed, msgs)
		if failed > 0 {
			return fmt.Errorf("%d mailboxes failed", failed)
		}
		return nil
	}
}

// progress draws a one-line progress bar on a terminal and nothing
// elsewhere.
type progress struct {
	w     io.Writer
	on    bool
	total int
	width int // of the last line, to clear it
}

func newProgress(w io.Writer, terminal bool, total int) *progress {
	return &progress{w: w, on: terminal && total > 0, total: total}
}

func (p *progress) update(done int, label string) {
	if !p.on {
		return
	}
	const barLen = 30
	filled := barLen * done / p.total
	if r := []rune(label); len(r) > 40 {
		label = "…" + string(r[len(r)-39:])
	}
	line := fmt.Sprintf("[%s%s] %d/%d %s", strings.Repeat("#", filled), strings.Repeat(".", barLen-filled), done, p.total, label)
	pad := ""
	if n := len([]rune(line)); n < p.width {
		pad = strings.Repeat(" ", p.width-n)
	}
	p.width = len([]rune(line))
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
}

// clear erases the bar so a message can be printed.
func (p *progress) clear() {
	if p.on && p.width > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
		p.width = 0
	}
}

func (p *progress) done() {
	if p.on {
		fmt.Fprintln(p.w)
	}
}

package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Corpus generation: deterministic (fixed seed) messages with LF line
// endings, as an MTA writes them into a Maildir.

const (
	minMsgSize = 1 << 10
	maxMsgSize = 200 << 10
	// corpusEpoch is the first message's delivery time; each message is a
	// little later than the previous one.
	corpusEpoch = 1767225600 // 2026-01-01T00:00:00Z
	corpusHost  = "bench.example"
	corpusPID   = 4242
)

var words = strings.Fields(`the of and to in is that for it as was with be by on not he this are or
his from at which but have an they you were her she there been one all we their has would when if
so no will can more about said up out them some could what into than its time only other new
meeting report invoice quarterly budget shipping order delivery account password project release
server mailbox attachment schedule review draft summary customer support ticket update please thanks
regards tomorrow friday monday office lunch conference agenda minutes deadline estimate contract`)

var utf8Words = []string{"Grüße", "Überweisung", "déjà", "résumé", "naïve", "Straße", "café", "Ångström", "日本語", "привет", "€100", "façade"}

var names = []string{"Alice Martin", "Bob Schulz", "Carol Dubois", "Dave Smith", "Eve Müller", "Frank O'Neil",
	"Grace Hopper", "Heidi Jäger", "Ivan Petrov", "Judy Chen", "Mallory Brown", "Olivia Núñez", "Peggy Ward", "Trent Lee"}

// gen produces messages from one seeded random source.
type gen struct {
	r *rand.Rand
	n int // messages made so far (Message-ID, boundaries)
}

func newGen(seed uint64) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// size draws a message size: log-normal around 6 KB with a long tail,
// clamped to [minMsgSize, limit].
func (g *gen) size(limit int) int {
	s := int(math.Exp(math.Log(6000) + 1.2*g.r.NormFloat64()))
	return max(minMsgSize, min(s, limit))
}

func (g *gen) word() string {
	if g.r.IntN(40) == 0 {
		return utf8Words[g.r.IntN(len(utf8Words))]
	}
	return words[g.r.IntN(len(words))]
}

func (g *gen) asciiWord() string { return words[g.r.IntN(len(words))] }

// sentence returns a few words, ASCII only when ascii is set.
func (g *gen) sentence(n int, ascii bool) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		if ascii {
			b.WriteString(g.asciiWord())
		} else {
			b.WriteString(g.word())
		}
	}
	return b.String()
}

// encodedWord returns s as an RFC 2047 encoded-word when it is not ASCII
// (and sometimes when it is, as some clients do).
func (g *gen) encodedWord(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii && g.r.IntN(5) != 0 {
		return s
	}
	return "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?="
}

func (g *gen) addr() (display, email string) {
	n := names[g.r.IntN(len(names))]
	local := strings.ToLower(strings.Fields(n)[0])
	return n, fmt.Sprintf("%s%d@%s", local, g.r.IntN(50), []string{"example.com", "example.org", "mail.example.net"}[g.r.IntN(3)])
}

func (g *gen) addrHeader() string {
	d, e := g.addr()
	return fmt.Sprintf("%s <%s>", g.encodedWord(d), e)
}

// textBody appends LF-terminated lines of text to b until it holds about n
// bytes.
func (g *gen) textBody(b *bytes.Buffer, n int, ascii bool) {
	end := b.Len() + n
	line := 0
	for b.Len() < end {
		s := g.sentence(4+g.r.IntN(9), ascii)
		b.WriteString(s)
		line += len(s)
		if line > 60 || g.r.IntN(4) == 0 {
			b.WriteByte('\n')
			line = 0
			if g.r.IntN(8) == 0 {
				b.WriteByte('\n')
			}
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteByte('\n')
}

func (g *gen) htmlBody(b *bytes.Buffer, n int) {
	end := b.Len() + n
	b.WriteString("<html><head><meta charset=\"utf-8\"></head><body>\n")
	for b.Len() < end {
		fmt.Fprintf(b, "<p style=\"margin:0 0 8px 0\">%s <b>%s</b> %s</p>\n",
			g.sentence(3+g.r.IntN(6), true), g.asciiWord(), g.sentence(2+g.r.IntN(6), true))
	}
	b.WriteString("</body></html>\n")
}

// attachment appends about n bytes of base64 (76-column lines) of random
// binary data.
func (g *gen) attachment(b *bytes.Buffer, n int) {
	raw := make([]byte, max(n*57/77, 3)) // 57 bytes make a 76-column line + LF
	for i := range raw {
		raw[i] = byte(g.r.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteByte('\n')
		enc = enc[76:]
	}
	b.WriteString(enc)
	b.WriteByte('\n')
}

// message returns one message of roughly target bytes (LF line endings)
// and its date.
func (g *gen) message(target int, date time.Time) []byte {
	g.n++
	var b bytes.Buffer
	b.Grow(target + 2048)
	_, from := g.addr()
	fmt.Fprintf(&b, "Return-Path: <%s>\n", from)
	fmt.Fprintf(&b, "Received: from mx%d.example.net (mx%d.example.net [192.0.2.%d])\n\tby %s (Postfix) with ESMTPS id %X\n\tfor <bench@%s>; %s\n",
		g.r.IntN(9), g.r.IntN(9), g.r.IntN(250)+1, corpusHost, g.r.Uint64(), corpusHost, date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Date: %s\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "From: %s\n", g.addrHeader())
	fmt.Fprintf(&b, "To: %s\n", g.addrHeader())
	if g.r.IntN(3) == 0 {
		fmt.Fprintf(&b, "Cc: %s, %s\n", g.addrHeader(), g.addrHeader())
	}
	subj := g.sentence(3+g.r.IntN(6), false)
	if g.r.IntN(4) == 0 {
		subj = "Re: " + subj
	}
	fmt.Fprintf(&b, "Subject: %s\n", g.encodedWord(subj))
	fmt.Fprintf(&b, "Message-ID: <%d.%x@%s>\n", g.n, g.r.Uint64(), corpusHost)
	if g.r.IntN(4) == 0 {
		fmt.Fprintf(&b, "In-Reply-To: <%d.%x@%s>\n", g.r.IntN(g.n), g.r.Uint64(), corpusHost)
	}
	b.WriteString("MIME-Version: 1.0\n")
	hdr := b.Len()
	body := max(target-hdr-200, 200)
	bnd := fmt.Sprintf("=_bnd_%d_%x", g.n, g.r.Uint32())
	switch k := g.r.IntN(100); {
	case k < 35 && body < 64<<10: // text/plain
		b.WriteString("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n")
		g.textBody(&b, body, false)
	case k < 50 && body < 64<<10: // text/html
		b.WriteString("Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\n")
		g.htmlBody(&b, body)
	case k < 75 && body < 64<<10: // multipart/alternative
		fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"\n\nThis is a multi-part message in MIME format.\n\n", bnd)
		fmt.Fprintf(&b, "--%s\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n", bnd)
		g.textBody(&b, body*2/5, false)
		fmt.Fprintf(&b, "--%s\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\n", bnd)
		g.htmlBody(&b, body*3/5)
		fmt.Fprintf(&b, "--%s--\n", bnd)
	default: // multipart/mixed: text (or alternative) + base64 attachments
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\n\n", bnd)
		text := min(body/5+200, 4000)
		fmt.Fprintf(&b, "--%s\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n", bnd)
		g.textBody(&b, text, false)
		natt := 1 + g.r.IntN(2)
		left := max(body-text, 100)
		for i := range natt {
			n := left / (natt - i)
			left -= n
			name := []string{"report.pdf", "photo.jpg", "invoice.pdf", "data.xlsx", "Übersicht.pdf"}[g.r.IntN(5)]
			ct := map[string]string{".pdf": "application/pdf", ".jpg": "image/jpeg", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}[name[max(len(name)-4, 0):]]
			if ct == "" {
				ct = "application/octet-stream"
			}
			fmt.Fprintf(&b, "--%s\nContent-Type: %s; name=\"%s\"\nContent-Disposition: attachment; filename=\"%s\"\nContent-Transfer-Encoding: base64\n\n",
				bnd, ct, g.encodedWord(name), g.encodedWord(name))
			g.attachment(&b, max(n-150, 64))
		}
		fmt.Fprintf(&b, "--%s--\n", bnd)
	}
	// Short headers can leave a small message under the minimum: pad with
	// a footer (after a MIME message's last boundary that is the epilogue,
	// which readers ignore).
	for b.Len() < minMsgSize {
		b.WriteString("You received this message as part of a benchmark mailing.\n")
	}
	return b.Bytes()
}

// crlfSize is the message's size with CRLF line endings (what IMAP calls
// RFC822.SIZE): each bare LF becomes CRLF.
func crlfSize(msg []byte) int {
	n := len(msg)
	for i, c := range msg {
		if c == '\n' && (i == 0 || msg[i-1] != '\r') {
			n++
		}
	}
	return n
}

// maildirName is a Dovecot-style file name for cur/:
// <time>.M<usec>P<pid>.<host>,S=<size>,W=<crlfsize>:2,<flags>.
func maildirName(t time.Time, seq int, msg []byte, flags string) string {
	return fmt.Sprintf("%d.M%dP%d.%s,S=%d,W=%d:2,%s", t.Unix(), seq, corpusPID, corpusHost, len(msg), crlfSize(msg), flags)
}

// corpusOptions say what to generate.
type corpusOptions struct {
	Dir      string // root: Dir/<user>/Maildir
	Seed     uint64
	Users    int // bench1..benchN
	Messages int // per bench user
	BigUser  string
	BigCount int
}

// makeMaildir creates a Maildir (cur, new, tmp) and, for folders, the
// Maildir++ marker file.
func makeMaildir(dir string, folder bool) error {
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	if folder {
		return os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o600)
	}
	return nil
}

// fileJob is one message file for the writer pool.
type fileJob struct {
	path string
	data []byte
	t    time.Time
}

// writeFiles writes jobs with a few goroutines (file creation is latency
// bound) and returns the first error.
func writeFiles(jobs <-chan fileJob, workers int) error {
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				err := os.WriteFile(j.path, j.data, 0o600)
				if err == nil {
					err = os.Chtimes(j.path, j.t, j.t)
				}
				if err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// writeMailbox queues count messages for dir/cur with sizes up to limit.
func writeMailbox(g *gen, dir string, count, limit int, jobs chan<- fileJob) (bytesWritten int64) {
	for i := range count {
		t := time.Unix(corpusEpoch+int64(i)*97, 0).UTC()
		msg := g.message(g.size(limit), t)
		flags := ""
		switch k := g.r.IntN(100); {
		case k < 10:
			flags = "FS"
		case k < 70:
			flags = "S"
		}
		jobs <- fileJob{path: filepath.Join(dir, "cur", maildirName(t, i+1, msg, flags)), data: msg, t: t}
		bytesWritten += int64(len(msg))
	}
	return bytesWritten
}

// generateCorpus writes the whole tree. Each user's messages come from a
// generator seeded by (Seed, user index), so a user's mailbox does not
// depend on how many users there are.
func generateCorpus(o corpusOptions) (int64, error) {
	var total int64
	jobs := make(chan fileJob, 64)
	werr := make(chan error, 1)
	go func() { werr <- writeFiles(jobs, 16) }()
	user := func(name string, idx uint64, count, limit int) error {
		md := filepath.Join(o.Dir, name, "Maildir")
		if err := makeMaildir(md, false); err != nil {
			return err
		}
		for _, f := range []string{".Sent", ".Trash", ".Drafts", ".Junk"} {
			if err := makeMaildir(filepath.Join(md, f), true); err != nil {
				return err
			}
		}
		if err := os.WriteFile(filepath.Join(md, "subscriptions"), []byte("Sent\nTrash\nDrafts\nJunk\n"), 0o600); err != nil {
			return err
		}
		total += writeMailbox(newGen(o.Seed*1_000_003+idx), md, count, limit, jobs)
		return nil
	}
	var err error
	for i := 1; i <= o.Users && err == nil; i++ {
		if e := user(fmt.Sprintf("bench%d", i), uint64(i), o.Messages, maxMsgSize); e != nil {
			err = fmt.Errorf("corpus: bench%d: %w", i, e)
		}
	}
	if err == nil && o.BigUser != "" && o.BigCount > 0 {
		// The big mailbox is about SELECT and index cost, not bytes: cap
		// message sizes at 32 KB to keep the tree small.
		if e := user(o.BigUser, 0, o.BigCount, 32<<10); e != nil {
			err = fmt.Errorf("corpus: %s: %w", o.BigUser, e)
		}
	}
	close(jobs)
	if e := <-werr; err == nil && e != nil {
		err = fmt.Errorf("corpus: %w", e)
	}
	return total, err
}

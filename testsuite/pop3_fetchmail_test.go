package testsuite

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-maildir"
)

// fetchmailMessages are the messages the fetchmail tests serve: CRLF and
// LF files, dot-stuffing, a file without a final newline, 8-bit text, long
// lines and a large body.
func fetchmailMessages() []string {
	var big strings.Builder
	big.WriteString("From: big@example.org\r\nSubject: big\r\n\r\n")
	for i := 0; big.Len() < 300<<10; i++ {
		if i%7 == 0 {
			big.WriteString(".")
		}
		fmt.Fprintf(&big, "%06d %s\r\n", i, strings.Repeat("x", i%900))
	}
	return []string{
		"From: a@example.org\r\nSubject: one\r\n\r\nHello\r\n.\r\n..\r\n.dot\r\n",
		"From: b@example.org\nSubject: two, LF only\n\nline 1\n.line 2\n",
		"From: c@example.org\r\nSubject: =?utf-8?q?drei?=\r\n\r\nGr\xc3\xbc\xc3\x9fe, 8bit\r\nno final newline",
		big.String(),
	}
}

// asDelivered is what fetchmail hands its MDA: LF line ends, a final LF.
func asDelivered(msg string) string {
	s := strings.ReplaceAll(msg, "\r\n", "\n")
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}

// fetchmailRun is one fetchmail setup: rc file, UID file and MDA output dir.
type fetchmailRun struct {
	bin, dir, rc, outDir string
}

func newFetchmail(t *testing.T, ps *pop3Server, implicitTLS bool) *fetchmailRun {
	t.Helper()
	bin := needTool(t, "fetchmail")
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	mda := filepath.Join(dir, "mda.sh")
	script := "#!/bin/sh\nf=$(mktemp " + out + "/msg.XXXXXXXX) && cat > \"$f\"\n"
	if err := os.WriteFile(mda, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	addr := ps.addr
	// Without TLS, fetchmail would still try STLS (sslproto '' stops that).
	tlsOpts := " sslproto ''"
	if implicitTLS {
		addr = ps.tlsAddr
		tlsOpts = fmt.Sprintf(" ssl sslcertck sslcertfile %q", ps.certPEM)
	}
	_, port, _ := net.SplitHostPort(addr)
	rc := fmt.Sprintf(`set no syslog
set invisible
poll 127.0.0.1 proto pop3 service %s auth password uidl timeout 30
  user "alice" there with password "secret" is "alice" here
  keep%s
  mda %q
`, port, tlsOpts, mda)
	rcPath := filepath.Join(dir, "fetchmailrc")
	if err := os.WriteFile(rcPath, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	return &fetchmailRun{bin: bin, dir: dir, rc: rcPath, outDir: out}
}

// run runs fetchmail once and returns the messages its MDA wrote in this run.
func (f *fetchmailRun) run(t *testing.T) []string {
	t.Helper()
	before, _ := filepath.Glob(filepath.Join(f.outDir, "msg.*"))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.bin, "-f", f.rc,
		"--idfile", filepath.Join(f.dir, "fetchids"),
		"--pidfile", filepath.Join(f.dir, "fetchmail.pid"),
		"--nodetach", "-v")
	cmd.Env = append(os.Environ(), "HOME="+f.dir, "FETCHMAILHOME="+f.dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	// Exit 0: mail was fetched; 1: there was no mail.
	if code := cmd.ProcessState.ExitCode(); code != 0 && code != 1 {
		t.Fatalf("fetchmail: %v (exit %d)\n%s", err, code, out.String())
	}
	t.Logf("fetchmail output:\n%s", out.String())
	after, _ := filepath.Glob(filepath.Join(f.outDir, "msg.*"))
	var got []string
	for _, p := range after {
		if slices.Contains(before, p) {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	slices.Sort(got)
	return got
}

// deliverNew delivers msg into the Maildir's new/ with go-maildir, as an
// MTA would.
func deliverNew(t *testing.T, dir, msg string) {
	t.Helper()
	d, err := maildir.NewDelivery(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write([]byte(msg)); err != nil {
		d.Abort()
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPOP3_fetchmail runs Debian's fetchmail with keep and UIDL tracking
// against pop3d, over POP3 and over POP3S (implicit TLS, certificate
// checked): the first run fetches everything byte-intact, the second
// nothing, and a new delivery is fetched exactly once. keep leaves the
// store untouched.
func TestPOP3_fetchmail(t *testing.T) {
	for _, implicitTLS := range []bool{false, true} {
		name := map[bool]string{false: "pop3", true: "pop3s"}[implicitTLS]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := NewStore(t, SQLite)
			MustUser(t, st, "alice", "secret")
			msgs := fetchmailMessages()
			for _, m := range msgs[:2] {
				appendMsg(t, st, "alice", m)
			}
			md := Maildir(t, st, "alice")
			for _, m := range msgs[2:] {
				deliverNew(t, md, m)
			}
			ps := startPOP3(t, st, pop3Config{tls: implicitTLS})
			fm := newFetchmail(t, ps, implicitTLS)

			var want []string
			for _, m := range msgs {
				want = append(want, asDelivered(m))
			}
			slices.Sort(want)
			got := fm.run(t)
			if len(got) != len(want) {
				t.Fatalf("first run fetched %d messages, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("message %d not intact:\n got %q\nwant %q", i, abbrev(got[i]), abbrev(want[i]))
				}
			}

			if got := fm.run(t); len(got) != 0 {
				t.Fatalf("second run fetched %d messages, want 0", len(got))
			}

			fresh := "From: d@example.org\r\nSubject: fresh\r\n\r\nnew mail\r\n"
			deliverNew(t, md, fresh)
			if got := fm.run(t); len(got) != 1 || got[0] != asDelivered(fresh) {
				t.Fatalf("third run fetched %q, want the new message once", got)
			}
			if got := fm.run(t); len(got) != 0 {
				t.Fatalf("fourth run fetched %d messages, want 0", len(got))
			}
			// keep: everything is still on the server.
			if n := len(inboxUIDs(t, st, "alice")); n != len(msgs)+1 {
				t.Fatalf("%d messages in the store, want %d", n, len(msgs)+1)
			}
		})
	}
}

func abbrev(s string) string {
	if len(s) > 200 {
		return s[:100] + "..." + s[len(s)-100:]
	}
	return s
}

package testsuite

import (
	"os/exec"
	"strings"
	"testing"
)

// imaplibFirstSync walks a desktop client's first sync with Python's
// imaplib: CAPABILITY, LOGIN, LIST with special-use attributes, SELECT, the
// message list (UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE
// BODYSTRUCTURE)), a body fetch, APPEND to Sent, a flag, MOVE to Trash and
// EXPUNGE. Each step asserts; the script prints "SYNC OK" at the end.
const imaplibFirstSync = `
import imaplib, re, sys, time
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
want_sizes = [int(x) for x in sys.argv[5].split(",")]

def ok(r, what):
    typ, data = r
    assert typ == "OK", "%s: %s %r" % (what, typ, data)
    return data

M = imaplib.IMAP4(host, port)
caps = ok(M.capability(), "CAPABILITY")[0].decode().upper().split()
assert "IMAP4REV1" in caps, caps
ok(M.login(user, pw), "LOGIN")
caps = ok(M.capability(), "CAPABILITY")[0].decode().upper().split()
for c in ("IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "ESEARCH"):
    assert c in caps, (c, caps)

special = {}
for line in ok(M.list('""', "*"), "LIST"):
    m = re.match(r'\((.*?)\) "(.)" (.*)', line.decode())
    assert m, line
    name = m.group(3).strip('"')
    for attr in m.group(1).split():
        if attr in ("\\Sent", "\\Trash", "\\Drafts", "\\Junk", "\\Archive"):
            special[attr] = name
assert "\\Sent" in special and "\\Trash" in special, special

n = int(ok(M.select("INBOX"), "SELECT")[0])
assert n == len(want_sizes), (n, want_sizes)

data = ok(M.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)"), "UID FETCH list")
items = [d if isinstance(d, bytes) else d[0] + d[1] for d in data if d != b")"]
assert len(items) == n, items
uids = []
for i, it in enumerate(items):
    s = it.decode("latin-1")
    uid = int(re.search(r"UID (\d+)", s).group(1))
    size = int(re.search(r"RFC822\.SIZE (\d+)", s).group(1))
    assert size == want_sizes[i], (i, size, want_sizes[i])
    assert "ENVELOPE (" in s and "BODYSTRUCTURE (" in s, s
    uids.append(uid)
assert 'BODYSTRUCTURE (("text" "plain"' in items[1].decode("latin-1"), items[1]
assert '"mixed"' in items[1].decode("latin-1") and '"attachment"' in items[1].decode("latin-1"), items[1]
assert 'BODYSTRUCTURE ("text" "plain"' in items[2].decode("latin-1"), items[2]

data = ok(M.uid("FETCH", str(uids[0]), "(BODY.PEEK[])"), "body fetch")
body = data[0][1]
assert len(body) == want_sizes[0], (len(body), want_sizes[0])
assert body.startswith(b"From: "), body[:40]
data = ok(M.uid("FETCH", str(uids[0]), "(FLAGS)"), "flags after peek")
assert b"\\Seen" not in data[0], data

msg = b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: sent by imaplib\r\n\r\nhello\r\n"
data = ok(M.append(special["\\Sent"], "(\\Seen)", imaplib.Time2Internaldate(time.time()), msg), "APPEND Sent")
assert b"APPENDUID" in data[0], data

data = ok(M.uid("STORE", str(uids[1]), "+FLAGS", "(\\Flagged)"), "flag")
assert b"\\Flagged" in data[0], data

typ, data = M.uid("MOVE", str(uids[1]), special["\\Trash"])
assert typ == "OK", (typ, data)
exp = M.untagged_responses.pop("EXPUNGE", [])
assert exp == [b"2"], exp

ok(M.uid("STORE", str(uids[0]), "+FLAGS.SILENT", "(\\Deleted)"), "delete")
data = ok(M.expunge(), "EXPUNGE")
assert data == [b"1"], data
n = int(ok(M.select("INBOX"), "reselect")[0])
assert n == len(want_sizes) - 2, n

n = int(ok(M.select(special["\\Trash"]), "select Trash")[0])
assert n == 1, n
data = ok(M.fetch("1", "(FLAGS)"), "Trash flags")
assert b"\\Flagged" in data[0], data
n = int(ok(M.select(special["\\Sent"], readonly=True), "examine Sent")[0])
assert n == 1, n
M.logout()
print("SYNC OK")
`

func TestIMAPImaplib_firstSync(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	Backends(t, func(t *testing.T, backend string) {
		st := NewStore(t, backend)
		MustUser(t, st, "alice", "secret")
		msgs := []string{
			selMsg(1),
			"From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: with attachment\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--zz\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--zz--\r\n",
			"From: carol@example.com\nTo: alice@example.org\nSubject: lf only\n\nline\n",
		}
		var sizes []string
		for _, m := range msgs {
			appendMsg(t, st, "alice", m)
			sizes = append(sizes, selItoa(len(strings.ReplaceAll(strings.ReplaceAll(m, "\r\n", "\n"), "\n", "\r\n"))))
		}
		addr := startSelIMAP(t, st)
		host, port, _ := strings.Cut(addr, ":")
		out, err := exec.Command("python3", "-c", imaplibFirstSync, host, port, "alice", "secret", strings.Join(sizes, ",")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SYNC OK") {
			t.Fatalf("imaplib first sync: %v\n%s", err, out)
		}
	})
}

func selItoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

#!/usr/bin/env bash
# make-fixture.sh - rebuild testsuite/testdata/dovecot: a Maildir that Dovecot
# itself wrote for user alice, and EXPECTED.json, what Dovecot reports for it.
#
# Run as root from anywhere:  bash testsuite/testdata/dovecot/make-fixture.sh
# Needs /work/shared/peers/dovecot-peer.sh (Dovecot on 127.0.0.1:11143, users
# alice/alicepw) and python3. It wipes alice's Maildir on the peer, so don't run
# it while someone else uses alice. STOP_PEER=1 stops the peer afterwards
# (it is shared, so by default it is left running; alice is logged out before
# the copy, and Dovecot has written everything by then).
#
# What it does:
#  1. creates folders Sent, Archive, Archive.2024 and Entwürfe (sent as
#     modified UTF-7 "Entw&APw-rfe"), subscribes INBOX, Sent, Entwürfe and
#     Archive.2024;
#  2. APPENDs messages with fixed INTERNALDATEs and flags (\Seen \Answered
#     \Flagged \Deleted \Draft, keywords $Label1 and Work);
#  3. drops three files into INBOX/new like an MTA would (LF only without
#     ,S=, LF with 8-bit body, CRLF), lets Dovecot pick them up, sets flags;
#  4. expunges one message per folder in INBOX and Archive.2024 (UID gaps);
#  5. writes EXPECTED.json from Dovecot's own answers (LIST, STATUS, UID
#     FETCH FLAGS RFC822.SIZE INTERNALDATE ENVELOPE);
#  6. copies alice's Maildir here without Dovecot's binary index, cache and
#     log files (dovecot.index*, dovecot.list.index*, dovecot.mailbox.log).
#
# Note: git does not keep empty directories, so the copied tree may lack
# empty cur/, new/ and tmp/ directories; tests create them after copying.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
peer=${PEER_SCRIPT:-/work/shared/peers/dovecot-peer.sh}
PEER_DIR=${PEER_DIR:-${TMPDIR:-/tmp}/dovecot-peer}
PEER_MAIL=${PEER_MAIL:-$PEER_DIR/mail}
export PEER_DIR PEER_MAIL

bash "$peer" start
bash "$peer" reset-mail alice

python3 - "$PEER_MAIL/alice/Maildir" "$here/EXPECTED.json" <<'PY'
import imaplib, json, os, pwd, re, sys, time

maildir, expected = sys.argv[1], sys.argv[2]
M = imaplib.IMAP4('127.0.0.1', int(os.environ.get('IMAP_PORT', '11143')))
M.login('alice', 'alicepw')

def ok(r):
    typ, data = r
    if typ != 'OK':
        raise SystemExit('IMAP error: %r' % (data,))
    return data

def mutf7(s):
    # RFC 3501 5.1.3 modified UTF-7, for the one non-ASCII name we use
    out, buf = '', ''
    def flush():
        nonlocal out, buf
        if buf:
            import base64
            b = base64.b64encode(buf.encode('utf-16-be')).decode().rstrip('=').replace('/', ',')
            out += '&' + b + '-'
            buf = ''
    for ch in s:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out += '&-' if ch == '&' else ch
        else:
            buf += ch
    flush()
    return out

folders = ['Sent', 'Archive', 'Archive.2024', 'Entwürfe']
for f in folders:
    ok(M.create(mutf7(f)))
for f in ['INBOX', 'Sent', 'Entwürfe', 'Archive.2024']:
    ok(M.subscribe(mutf7(f)))

def msg(subject, body, extra=''):
    return ('From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\n'
            'Subject: %s\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n'
            'Message-ID: <%s@example.org>\r\n%s\r\n%s' % (
                subject, re.sub(r'[^A-Za-z0-9]', '-', subject), extra, body)).encode()

def date(n):
    return imaplib.Time2Internaldate(1700000000 + n * 3600)

appends = {
    'INBOX': [
        (r'(\Seen)', msg('inbox 1 seen', 'first\r\n')),
        (r'(\Seen \Answered)', msg('inbox 2 answered, expunged later', 'second\r\n')),
        (r'(\Flagged $Label1)', msg('inbox 3 flagged label1', 'third\r\n')),
        (r'(\Deleted)', msg('inbox 4 deleted not expunged', 'fourth\r\n')),
        (r'(\Draft \Seen Work)', msg('inbox 5 draft seen work', 'fifth\r\nwith two lines\r\n')),
    ],
    'Sent': [
        (r'(\Seen)', msg('sent 1', 'hello bob\r\n')),
        (r'(\Seen \Answered)', msg('sent 2 mime', '--b\r\nContent-Type: text/plain\r\n\r\npart\r\n--b--\r\n',
                                  'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n')),
    ],
    'Archive': [
        ('()', msg('archive 1 no flags', 'old\r\n')),
    ],
    'Archive.2024': [
        (r'(\Seen)', msg('archive 2024 1, expunged later', 'gone\r\n')),
        (r'(\Seen \Flagged $Label1)', msg('archive 2024 2 flagged label1', 'kept\r\n')),
        (r'(\Seen Work $Label1)', msg('archive 2024 3 two keywords', 'kept too\r\n')),
    ],
    'Entwürfe': [
        (r'(\Draft)', msg('=?UTF-8?Q?Entw=C3=BCrfe_1?=', 'Gr\xfc\xdfe\r\n'.encode('latin-1').decode('latin-1'),
                          'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n')),
    ],
}
n = 0
for folder, msgs in appends.items():
    for flags, body in msgs:
        n += 1
        if isinstance(body, str):
            body = body.encode('latin-1')
        ok(M.append(mutf7(folder), flags, date(n), body))

# Deliveries by an "MTA": files in INBOX/new, as Postfix/procmail write them.
vm = pwd.getpwnam('vmail')
deliveries = [
    ('1700100001.M1P100.mx1', b'From: Carol <carol@example.org>\nTo: alice@example.org\nSubject: delivered LF only\n\nline one\nline two\n'),
    ('1700100002.M2P100.mx1', 'From: Dave <dave@example.org>\nTo: alice@example.org\nSubject: delivered LF 8bit\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGrüße aus Köln\n'.encode()),
    ('1700100003.M3P100.mx1', b'From: Erin <erin@example.org>\r\nTo: alice@example.org\r\nSubject: delivered CRLF\r\n\r\nalready crlf\r\n'),
]
for i, (name, data) in enumerate(deliveries):
    tmp = os.path.join(maildir, 'tmp', name)
    with open(tmp, 'wb') as fh:
        fh.write(data)
    t = 1700100000 + i
    os.utime(tmp, (t, t))
    os.chown(tmp, vm.pw_uid, vm.pw_gid)
    os.rename(tmp, os.path.join(maildir, 'new', name))

ok(M.select('INBOX'))
# Flags on two of the delivered messages (UIDs 6, 7 are the first two).
ok(M.uid('STORE', '7', '+FLAGS', r'(\Seen $Label1)'))
ok(M.uid('STORE', '8', '+FLAGS', r'(\Answered)'))
ok(M.uid('STORE', '2', '+FLAGS', r'(\Deleted)'))
ok(M.uid('EXPUNGE', '2'))  # UIDPLUS: only this one; UID 4 stays \Deleted
ok(M.unselect())  # not CLOSE: that would expunge UID 4
ok(M.select(mutf7('Archive.2024')))
ok(M.uid('STORE', '1', '+FLAGS', r'(\Deleted)'))
ok(M.expunge())
ok(M.close())

def parse_list(line):
    m = re.match(rb'\((.*?)\) "(.)" (.*)$', line)
    name = m.group(3)
    if name.startswith(b'"'):
        name = name[1:-1]
    return m.group(1).decode(), name.decode()

def mutf7_decode(s):
    import base64
    out, i = '', 0
    while i < len(s):
        if s[i] == '&':
            j = s.index('-', i)
            if j == i + 1:
                out += '&'
            else:
                b = s[i+1:j].replace(',', '/')
                b += '=' * (-len(b) % 4)
                out += base64.b64decode(b).decode('utf-16-be')
            i = j + 1
        else:
            out += s[i]
            i += 1
    return out

subscribed = set(mutf7_decode(parse_list(l)[1]) for l in ok(M.lsub('""', '*')) if l)
result = {'user': 'alice', 'password': 'alicepw', 'delimiter': '.', 'folders': []}
for line in ok(M.list('""', '*')):
    attrs, name = parse_list(line)
    uname = mutf7_decode(name)
    st = ok(M.status(name, '(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)'))[0].decode()
    nums = dict(re.findall(r'(MESSAGES|UIDNEXT|UIDVALIDITY|UNSEEN) (\d+)', st))
    ok(M.select(name, readonly=True))
    msgs = []
    data = ok(M.uid('FETCH', '1:*', '(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])')) if int(nums['MESSAGES']) else []
    for item in data:
        if not isinstance(item, tuple):
            continue
        head = item[0].decode()
        uid = int(re.search(r'UID (\d+)', head).group(1))
        size = int(re.search(r'RFC822\.SIZE (\d+)', head).group(1))
        flags = re.search(r'FLAGS \((.*?)\)', head).group(1).split()
        idate = re.search(r'INTERNALDATE "(.*?)"', head).group(1)
        subj = item[1].decode('utf-8', 'replace').split(':', 1)[1].strip()
        msgs.append({
            'uid': uid,
            'flags': sorted(f for f in flags if f.startswith('\\') and f != '\\Recent'),
            'keywords': sorted(f for f in flags if not f.startswith('\\')),
            'rfc822_size': size,
            'internaldate': idate,
            'subject': subj,
        })
    # The file of each message on disk, by its key in dovecot-uidlist.
    ok(M.close())
    fdir = maildir if uname == 'INBOX' else os.path.join(maildir, '.' + name)
    keys = {}
    with open(os.path.join(fdir, 'dovecot-uidlist')) as fh:
        for l in fh.read().splitlines()[1:]:
            u, rest = l.split(' ', 1)
            keys[int(u)] = rest[rest.index(':') + 1:].split(':')[0]
    for m in msgs:
        key = keys[m['uid']]
        for sub in ('cur', 'new'):
            for fn in os.listdir(os.path.join(fdir, sub)):
                if fn.split(':')[0] == key:
                    m['file'] = sub + '/' + fn
        m['key'] = key
    result['folders'].append({
        'name': uname,
        'attributes': attrs.split(),
        'subscribed': uname in subscribed,
        'uidvalidity': int(nums['UIDVALIDITY']),
        'uidnext': int(nums['UIDNEXT']),
        'messages': msgs,
    })
M.logout()
order = {'INBOX': 0}
result['folders'].sort(key=lambda f: (order.get(f['name'], 1), f['name']))
with open(expected, 'w') as fh:
    json.dump(result, fh, indent=2, ensure_ascii=False)
    fh.write('\n')
PY

dst=$here/alice/Maildir
rm -rf "$here/alice"
mkdir -p "$dst"
(cd "$PEER_MAIL/alice/Maildir" && tar cf - --exclude='dovecot.index*' --exclude='dovecot.list.index*' --exclude='dovecot.mailbox.log' .) | (cd "$dst" && tar xf - --no-same-owner)
chmod -R u+rwX,go+rX,go-w "$here/alice"
if [ "${STOP_PEER:-0}" = 1 ]; then bash "$peer" stop; fi
echo "fixture written to $here"
find "$here/alice" | sort

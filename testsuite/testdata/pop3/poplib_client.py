#!/usr/bin/env python3
"""POP3 client for pop3_poplib_test.go, using Python's poplib.

usage: poplib_client.py MODE HOST PORT USER PASSWORD [CAFILE]
MODE: plain (USER/PASS), stls (STLS then USER/PASS), ssl (POP3S),
      sasl (AUTH PLAIN via the utf8/capa path: poplib has no AUTH helper,
      so it sends the command itself with _shortcmd).

Prints one JSON object: capabilities, stat, list, uidl, each message
(base64 of the exact bytes poplib returns, lines joined with CRLF), top of
message 1, and the results of DELE 1 and QUIT.
"""
import base64
import json
import poplib
import ssl
import sys


def main():
    mode, host, port, user, password = sys.argv[1:6]
    cafile = sys.argv[6] if len(sys.argv) > 6 else None
    port = int(port)
    ctx = None
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.check_hostname = True
    if mode == "ssl":
        p = poplib.POP3_SSL(host, port, context=ctx, timeout=20)
    else:
        p = poplib.POP3(host, port, timeout=20)
    out = {"welcome": p.getwelcome().decode()}
    if mode == "stls":
        out["capa_before_tls"] = sorted(p.capa().keys())
        p.stls(context=ctx)
    out["capa"] = {k: v for k, v in p.capa().items()}
    if mode == "sasl":
        ir = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        out["auth"] = p._shortcmd("AUTH PLAIN " + ir).decode()
    else:
        p.user(user)
        out["auth"] = p.pass_(password).decode()
    out["stat"] = list(p.stat())
    resp, lines, _ = p.list()
    out["list"] = [l.decode() for l in lines]
    resp, lines, _ = p.uidl()
    out["uidl"] = [l.decode() for l in lines]
    msgs = []
    for i in range(1, out["stat"][0] + 1):
        resp, lines, octets = p.retr(i)
        msgs.append(base64.b64encode(b"\r\n".join(lines) + b"\r\n").decode())
    out["messages"] = msgs
    if out["stat"][0] > 0:
        resp, lines, _ = p.top(1, 0)
        out["top1"] = base64.b64encode(b"\r\n".join(lines) + b"\r\n").decode()
        out["dele"] = p.dele(1).decode()
    out["quit"] = p.quit().decode()
    print(json.dumps(out))


if __name__ == "__main__":
    main()

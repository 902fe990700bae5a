#!/usr/bin/env python3
"""Fetch every message of one IMAP mailbox to files, one per message.

Logs in (LOGIN, default anonymous/anonymous), SELECTs the mailbox
read-only, finds the highest UID, then runs UID FETCH lo:hi (UID BODY.PEEK[])
in chunks and writes each message, exactly as the server sent it, to
OUT/<UID zero-padded to 10 digits>.eml. Prints the count on stdout; exits 1
if it got fewer messages than the mailbox's EXISTS count.

usage: imap_fetch_all.py --port PORT --mailbox NAME --out DIR
                         [--host 127.0.0.1] [--user U] [--password P]
                         [--chunk 500]
Stdlib only (part of mailswarm's internal/peertest).
"""
import argparse
import imaplib
import os
import re
import sys

UID_RE = re.compile(rb"UID (\d+)")


def quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mailbox", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--user", default="anonymous")
    ap.add_argument("--password", default="anonymous")
    ap.add_argument("--chunk", type=int, default=500)
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args()

    os.makedirs(a.out, exist_ok=True)
    m = imaplib.IMAP4(a.host, a.port, timeout=a.timeout)
    m.login(a.user, a.password)
    typ, data = m.select(quote(a.mailbox), readonly=True)
    if typ != "OK":
        sys.exit("select %s: %s %r" % (a.mailbox, typ, data))
    exists = int(data[0])
    got = 0
    if exists > 0:
        typ, data = m.fetch(str(exists), "(UID)")
        mo = UID_RE.search(data[0] if isinstance(data[0], bytes) else data[0][0])
        if typ != "OK" or not mo:
            sys.exit("fetch UID of message %d: %s %r" % (exists, typ, data))
        maxuid = int(mo.group(1))
        lo = 1
        while lo <= maxuid:
            hi = min(lo + a.chunk - 1, maxuid)
            typ, data = m.uid("FETCH", "%d:%d" % (lo, hi), "(UID BODY.PEEK[])")
            if typ != "OK":
                sys.exit("UID FETCH %d:%d: %s %r" % (lo, hi, typ, data))
            got += save(data, a.out)
            lo = hi + 1
    m.logout()
    print(got)
    if got < exists:
        sys.exit("fetched %d messages, mailbox EXISTS %d" % (got, exists))


def save(data, out):
    """Write the literals of one FETCH response list; return how many."""
    n = 0
    for i, item in enumerate(data):
        if not isinstance(item, tuple):
            continue
        head, body = item
        mo = UID_RE.search(head)
        if not mo and i + 1 < len(data) and isinstance(data[i + 1], bytes):
            mo = UID_RE.search(data[i + 1])  # UID after the literal
        if not mo:
            sys.exit("no UID in FETCH response %r" % head)
        with open(os.path.join(out, "%010d.eml" % int(mo.group(1))), "wb") as f:
            f.write(body)
        n += 1
    return n


if __name__ == "__main__":
    main()

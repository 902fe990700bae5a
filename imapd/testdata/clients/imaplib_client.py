#!/usr/bin/env python3
"""Drive mailswarm's imapd with Python's imaplib for TestPythonImaplib.

Three connections to one mailbox (imapd/clients_test.go checks what this
prints against the archive):

  1. as USER: LIST, SELECT, FETCH n (RFC822), FETCH m (BODY.PEEK[]),
     UID SEARCH BODY/SUBJECT, UID STORE u +FLAGS (\\Flagged), LOGOUT;
  2. as USER again: SELECT, UID FETCH (FLAGS) of the three messages:
     flags are kept per user across connections;
  3. as OTHER: the same UID FETCH (FLAGS): another user's flags are his own.

Prints one JSON object on stdout; any command that does not answer OK
exits 1 with the server's answer on stderr.

usage: imaplib_client.py --port PORT --mailbox NAME --user U --other V
                         --rfc822-seq N --peek-seq M --flag-uid U
                         --body WORD --subject WORD
Stdlib only.
"""
import argparse
import base64
import imaplib
import json
import re
import sys


def ok(what, typ, data):
    if typ != "OK":
        sys.exit("%s: %s %r" % (what, typ, data))
    return data


def literal(data, item):
    """The literal of a FETCH response carrying item (e.g. b"RFC822")."""
    for part in data:
        if isinstance(part, tuple) and item in part[0].upper():
            return part[1]
    sys.exit("no %r in FETCH response %r" % (item, data))


def logout(m):
    typ, data = m.logout()
    if typ != "BYE":  # imaplib returns the untagged BYE of a good LOGOUT
        sys.exit("LOGOUT: %s %r" % (typ, data))


def flags_by_uid(m, uids):
    data = ok("UID FETCH FLAGS", *m.uid("FETCH", ",".join(map(str, uids)), "(UID FLAGS)"))
    out = {}
    for line in data:
        if isinstance(line, tuple):
            line = line[0]
        mo = re.search(rb"UID (\d+)", line)
        fl = re.search(rb"FLAGS \(([^)]*)\)", line)
        if not mo or not fl:
            sys.exit("unparsable FETCH response %r" % (line,))
        out[mo.group(1).decode()] = fl.group(1).decode().split()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mailbox", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--other", required=True)
    ap.add_argument("--rfc822-seq", type=int, required=True)
    ap.add_argument("--peek-seq", type=int, required=True)
    ap.add_argument("--flag-uid", type=int, required=True)
    ap.add_argument("--body", required=True)
    ap.add_argument("--subject", required=True)
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()
    res = {}

    m = imaplib.IMAP4(a.host, a.port, timeout=a.timeout)
    ok("LOGIN", *m.login(a.user, "any password"))
    res["list"] = [x.decode() for x in ok("LIST", *m.list()) if x is not None]
    res["exists"] = int(ok("SELECT", *m.select(a.mailbox))[0])
    data = ok("FETCH RFC822", *m.fetch(str(a.rfc822_seq), "(UID RFC822)"))
    res["rfc822"] = base64.b64encode(literal(data, b"RFC822")).decode()
    res["rfc822_uid"] = int(re.search(rb"UID (\d+)", data[0][0]).group(1))
    data = ok("FETCH BODY.PEEK[]", *m.fetch(str(a.peek_seq), "(UID BODY.PEEK[])"))
    res["peek"] = base64.b64encode(literal(data, b"BODY[]")).decode()
    res["peek_uid"] = int(re.search(rb"UID (\d+)", data[0][0]).group(1))
    res["search_body"] = [int(x) for x in ok("UID SEARCH BODY", *m.uid("SEARCH", "BODY", a.body))[0].split()]
    res["search_subject"] = [int(x) for x in ok("UID SEARCH SUBJECT", *m.uid("SEARCH", "SUBJECT", a.subject))[0].split()]
    ok("UID STORE", *m.uid("STORE", str(a.flag_uid), "+FLAGS", "(\\Flagged)"))
    logout(m)

    uids = [res["rfc822_uid"], res["peek_uid"], a.flag_uid]
    for key, user in (("flags_again", a.user), ("flags_other", a.other)):
        m = imaplib.IMAP4(a.host, a.port, timeout=a.timeout)
        ok("LOGIN", *m.login(user, "any password"))
        ok("SELECT", *m.select(a.mailbox))
        res[key] = flags_by_uid(m, uids)
        logout(m)

    json.dump(res, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

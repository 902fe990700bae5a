#!/usr/bin/python3
"""libtorrent (python3-libtorrent, Debian 2.0.8) downloads every torrent of a directory at once
from given loopback peers and web seeds: the libtorrent side of `go run ./bench mirror`.

usage: lt_mirror.py --torrents DIR --out DIR --peer 127.x.y.z:P [--peer ...]
                    [--web-seed URL ...] [--timeout N]

Default settings (lt.default_settings()) but for loopback only: DHT, LSD, UPnP, NAT-PMP, uTP
and PEX off, listening on 127.0.0.1; every torrent is added unpaused and not auto-managed
(all download at once), each peer is dialled for each torrent and each --web-seed is added to
each torrent (the .torrent's own url-list stays). Prints, once every torrent is complete:
  downloaded BYTES bytes of N torrents in SECONDSs = R MiB/s
timed from the first torrent added to the last complete. Bounded by --timeout.
"""
import argparse
import os
import sys
import time

import libtorrent as lt


def parse_peer(s):
    host, port = s.rsplit(":", 1)
    if not host.startswith("127."):
        sys.exit("refusing non-loopback peer %s" % s)
    return host, int(port)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--torrents", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--peer", action="append", default=[])
    p.add_argument("--web-seed", action="append", default=[])
    p.add_argument("--timeout", type=float, default=600)
    a = p.parse_args()
    for w in a.web_seed:
        if not (w.startswith("http://127.") or w.startswith("https://127.")):
            sys.exit("refusing non-loopback web seed %s" % w)
    peers = [parse_peer(s) for s in a.peer]
    s = lt.default_settings()
    s.update({
        "listen_interfaces": "127.0.0.1:0",
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
    })
    ses = lt.session(s)
    names = sorted(f for f in os.listdir(a.torrents) if f.endswith(".torrent"))
    if not names:
        sys.exit("no .torrent files in %s" % a.torrents)
    t0 = time.time()
    deadline = t0 + a.timeout
    hs = []
    for n in names:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(os.path.join(a.torrents, n))
        atp.save_path = a.out
        atp.flags |= lt.torrent_flags.disable_pex | lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
        atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
        h = ses.add_torrent(atp)
        for w in a.web_seed:
            h.add_url_seed(w)
        for pe in peers:
            h.connect_peer(pe)
        hs.append(h)
    last_connect = time.time()
    while time.time() < deadline:
        sts = [h.status() for h in hs]
        if all(st.is_seeding for st in sts):
            break
        if time.time() - last_connect > 2:
            for h, st in zip(hs, sts):
                if not st.is_seeding and st.num_peers < len(peers):
                    for pe in peers:
                        h.connect_peer(pe)
            last_connect = time.time()
        for al in ses.pop_alerts():
            if al.category() & lt.alert.category_t.error_notification:
                print("alert:", al.message(), file=sys.stderr)
        time.sleep(0.05)
    else:
        sts = [h.status() for h in hs]
        sys.exit("timeout: %d of %d torrents complete, %d/%d bytes" % (
            sum(st.is_seeding for st in sts), len(hs), sum(st.total_wanted_done for st in sts),
            sum(st.total_wanted for st in sts)))
    el = time.time() - t0
    n = sum(h.status().total_wanted for h in hs)
    for h in hs:
        h.flush_cache()
    print("downloaded %d bytes of %d torrents in %.3fs = %.1f MiB/s" % (n, len(hs), el, n / el / 2**20),
          flush=True)


if __name__ == "__main__":
    main()

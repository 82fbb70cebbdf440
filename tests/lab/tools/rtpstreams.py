#!/usr/bin/python3
"""A phone's extra RTP streams (video, slides): SIPp streams audio only.

  rtpstreams.py --bind IP --stream LPORT:DST_IP:DST_PORT[:PT] [...]
                --duration S --out FILE.json
                [--stop-file PATH:LPORT[,LPORT...]] [--end-file PATH]

Each --stream binds IP:LPORT and sends RTP (version 2, 12-byte header,
sequence +1 and timestamp +1800 per packet, one SSRC per stream, payload
type PT, default 96) every 20 ms to DST_IP:DST_PORT from that same socket
(symmetric RTP, so a relay latches on it), and counts what arrives on it.
--stop-file: once PATH exists, stop sending on those ports (a stream the
phone removed by re-INVITE) but keep counting. --end-file: once PATH
exists (the call's BYE), stop sending altogether. Bounded: exits after
--duration seconds whatever happens. Destinations must be lab addresses
(10/8, 192.168/16, 203.0.113/24). Writes, at exit:

  {"streams": {"6010": {"dst": "10.10.0.10:30004", "sent": N,
                        "received": M, "sources": {"ip:port": M},
                        "stopped_at": T or null}}, "started": T0}

times are time.time() values (comparable with pcap timestamps).
"""
import argparse
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import time

LAB_NETS = [ipaddress.ip_network(n) for n in
            ("10.0.0.0/8", "192.168.0.0/16", "203.0.113.0/24")]
PTIME = 0.020


class Stream:
    def __init__(self, bind_ip, spec):
        parts = spec.split(":")
        if len(parts) not in (3, 4):
            raise SystemExit("bad --stream %r" % spec)
        self.lport = int(parts[0])
        self.dst = (parts[1], int(parts[2]))
        self.pt = int(parts[3]) if len(parts) == 4 else 96
        ip = ipaddress.ip_address(self.dst[0])
        if not any(ip in n for n in LAB_NETS):
            raise SystemExit("refusing to send outside the lab: %s" % ip)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind_ip, self.lport))
        self.sock.setblocking(False)
        self.ssrc = 0x51de0000 | self.lport
        self.seq = 0
        self.sent = 0
        self.received = 0
        self.sources = {}
        self.sending = True
        self.stopped_at = None

    def send(self):
        hdr = struct.pack("!BBHII", 0x80, self.pt & 0x7F, self.seq & 0xFFFF,
                          (self.seq * 1800) & 0xFFFFFFFF, self.ssrc)
        try:
            self.sock.sendto(hdr + b"\x00" * 160, self.dst)
            self.sent += 1
        except OSError:
            pass            # ICMP unreachable from an earlier send: go on
        self.seq += 1

    def drain(self):
        while True:
            try:
                data, src = self.sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue    # a queued ICMP error: read on
            if len(data) >= 12 and data[0] & 0xC0 == 0x80:
                self.received += 1
                key = "%s:%d" % src
                self.sources[key] = self.sources.get(key, 0) + 1

    def stop(self):
        if self.sending:
            self.sending = False
            self.stopped_at = time.time()


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--stream", action="append", required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stop-file", action="append", default=[])
    ap.add_argument("--end-file")
    a = ap.parse_args(argv)
    streams = [Stream(a.bind, s) for s in a.stream]
    by_port = {s.lport: s for s in streams}
    stops = []
    for spec in a.stop_file:
        path, ports = spec.rsplit(":", 1)
        stops.append((path, [by_port[int(p)] for p in ports.split(",")]))
    started = time.time()
    t0 = time.monotonic()
    end = t0 + a.duration
    tick = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = t0 + tick * PTIME
        if now >= due:
            for path, sts in stops:
                if os.path.exists(path):
                    for s in sts:
                        s.stop()
            if a.end_file and os.path.exists(a.end_file):
                for s in streams:
                    s.stop()
            for s in streams:
                if s.sending:
                    s.send()
            tick += 1
            continue
        r, _, _ = select.select([s.sock for s in streams], [], [],
                                min(due, end) - now)
        for sock in r:
            for s in streams:
                if s.sock is sock:
                    s.drain()
    for s in streams:
        s.drain()
    out = {"started": started, "streams": {
        str(s.lport): {"dst": "%s:%d" % s.dst, "pt": s.pt, "sent": s.sent,
                       "received": s.received, "sources": s.sources,
                       "stopped_at": s.stopped_at} for s in streams}}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

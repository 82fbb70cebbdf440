#!/usr/bin/python3
"""Tiny UDP reachability probe (the lab has no ping).

  udpprobe.py echo PORT SECONDS      echo every datagram back, for SECONDS
  udpprobe.py send HOST PORT TIMEOUT [SPORT [PAYLOAD]]
                                     send one datagram (from SPORT, default
                                     any), expect it echoed; prints the
                                     echoer's view of our source address,
                                     exit 0 if answered, 1 if not
The echo reply carries "seen-from IP:PORT" so NAT tests can read the mapping.
"""
import socket
import sys
import time


def echo(port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return 0
        s.settimeout(left)
        try:
            data, peer = s.recvfrom(2048)
        except socket.timeout:
            return 0
        s.sendto(b"seen-from %s:%d " % (peer[0].encode(), peer[1]) + data,
                 peer)


def send(host, port, timeout, sport=0, payload=b"probe"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sport:
        s.bind(("0.0.0.0", sport))
    s.settimeout(timeout / 3.0)
    for _ in range(3):
        s.sendto(payload, (host, port))
        try:
            data, _ = s.recvfrom(2048)
        except socket.timeout:
            continue
        print(data.decode(errors="replace").split(" ")[1])
        return 0
    print("no answer from %s:%d" % (host, port))
    return 1


if __name__ == "__main__":
    if sys.argv[1] == "echo":
        sys.exit(echo(int(sys.argv[2]), float(sys.argv[3])))
    sys.exit(send(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]),
                  int(sys.argv[5]) if len(sys.argv) > 5 else 0,
                  sys.argv[6].encode().replace(b"\\r\\n", b"\r\n")
                  if len(sys.argv) > 6 else b"probe"))

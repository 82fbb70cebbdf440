#!/usr/bin/python3
"""Stand in for an idle phone's SIP stack: answer every OPTIONS (the
registrar's NAT keepalives) on LOCAL_IP:PORT with 200 OK, ignore anything
else; one line per OPTIONS on stdout ("options <unix time> from ip:port").

  sipanswer.py LOCAL_IP PORT SECONDS

Bounded: exits after SECONDS. The SIPp callee takes the port over later
(stop this first).
"""
import socket
import sys
import time


def answer(req):
    lines = req.split("\r\n")
    keep = [l for l in lines[1:] if l.split(":", 1)[0].strip().lower()
            in ("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq")]
    return ("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) +
            "\r\nContent-Length: 0\r\n\r\n")


def main(argv):
    ip, port, seconds = argv[0], int(argv[1]), float(argv[2])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    print("ready", flush=True)
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return 0
        s.settimeout(left)
        try:
            data, peer = s.recvfrom(65535)
        except socket.timeout:
            return 0
        text = data.decode(errors="replace")
        if text.startswith("OPTIONS "):
            s.sendto(answer(text).encode(), peer)
            print("options %.3f from %s:%d" % (time.time(), peer[0], peer[1]),
                  flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

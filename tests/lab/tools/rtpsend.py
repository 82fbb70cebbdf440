#!/usr/bin/python3
"""Send RTP (version 2) packets from a fixed local port, as a phone's video
stream would (SIPp streams audio only).

  rtpsend.py LOCAL_IP LOCAL_PORT DST_IP DST_PORT [COUNT [PPS [PT]]]

Sends COUNT packets (default 150) at PPS per second (default 50) with
payload type PT (default 96), from LOCAL_IP:LOCAL_PORT to DST_IP:DST_PORT,
and drains whatever arrives on that socket meanwhile (so the kernel does
not answer the far end's stream with ICMP port unreachable). Bounded:
COUNT/PPS seconds plus 1 s. Prints "sent N received M".
"""
import select
import socket
import struct
import sys
import time


def main(argv):
    lip, lport, dip, dport = argv[0], int(argv[1]), argv[2], int(argv[3])
    count = int(argv[4]) if len(argv) > 4 else 150
    pps = float(argv[5]) if len(argv) > 5 else 50.0
    pt = int(argv[6]) if len(argv) > 6 else 96
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((lip, lport))
    ssrc = 0x1abe0000 | (lport & 0xffff)
    received = 0
    start = time.monotonic()
    for seq in range(count):
        hdr = struct.pack("!BBHII", 0x80, pt & 0x7f, seq & 0xffff,
                          (seq * 3000) & 0xffffffff, ssrc)
        s.sendto(hdr + b"\x00" * 120, (dip, dport))
        due = start + (seq + 1) / pps
        while True:
            left = due - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([s], [], [], left)
            if r:
                s.recv(2048)
                received += 1
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        r, _, _ = select.select([s], [], [], end - time.monotonic())
        if r:
            s.recv(2048)
            received += 1
    print("sent %d received %d" % (count, received), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Minimal pcap reader and RTP counter (no scapy).

pcap format: a 24-byte global header (magic, version, snaplen, linktype),
then records of a 16-byte header (ts_sec, ts_frac, incl_len, orig_len)
followed by incl_len bytes. We handle both byte orders, micro- and
nanosecond magics, and link types Ethernet (1) and Linux cooked (113, 276).
"""

import socket
import struct
from collections import namedtuple

# ts: capture time in seconds (float, with the fraction)
Udp = namedtuple("Udp", "ts src sport dst dport payload")

MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",     # microseconds
    b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">",     # nanoseconds
}


def read_udp(path):
    """Yield every IPv4/UDP datagram in the capture as Udp tuples."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    endian = MAGICS.get(data[:4])
    if endian is None:
        raise ValueError("%s: not a pcap file" % path)
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    frac_div = 1e9 if data[:4] in (b"\x4d\x3c\xb2\xa1",
                                   b"\xa1\xb2\x3c\x4d") else 1e6
    off = 24
    while off + 16 <= len(data):
        ts, frac, incl, _orig = struct.unpack(endian + "IIII",
                                               data[off:off + 16])
        off += 16
        pkt = data[off:off + incl]
        off += incl
        if linktype == 1:                       # Ethernet
            if len(pkt) < 14:
                continue
            etype = struct.unpack("!H", pkt[12:14])[0]
            ip = pkt[14:]
            if etype == 0x8100 and len(pkt) >= 18:   # one VLAN tag
                etype = struct.unpack("!H", pkt[16:18])[0]
                ip = pkt[18:]
        elif linktype == 113:                   # Linux cooked v1
            etype = struct.unpack("!H", pkt[14:16])[0]
            ip = pkt[16:]
        elif linktype == 276:                   # Linux cooked v2
            etype = struct.unpack("!H", pkt[0:2])[0]
            ip = pkt[20:]
        elif linktype == 101:                   # raw IP
            etype, ip = 0x0800, pkt
        else:
            continue
        if etype != 0x0800 or len(ip) < 20 or ip[0] >> 4 != 4:
            continue
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 17 or len(ip) < ihl + 8:
            continue
        frag = struct.unpack("!H", ip[6:8])[0]
        if frag & 0x1FFF:                       # non-first fragment
            continue
        src = socket.inet_ntoa(ip[12:16])
        dst = socket.inet_ntoa(ip[16:20])
        sport, dport, ulen = struct.unpack("!HHH", ip[ihl:ihl + 6])
        payload = ip[ihl + 8:ihl + ulen] if ulen >= 8 else b""
        yield Udp(ts + frac / frac_div, src, sport, dst, dport, payload)


def is_rtp(payload):
    """RTP version 2, not RTCP (payload types 200-204 sit in byte 1)."""
    if len(payload) < 12:
        return False
    if payload[0] & 0xC0 != 0x80:
        return False
    return not 200 <= payload[1] <= 204


def rtp_packets(path, dst=None, dport=None):
    """The RTP datagrams in a capture, optionally only to dst[:dport]."""
    return [u for u in read_udp(path)
            if is_rtp(u.payload)
            and (dst is None or u.dst == dst)
            and (dport is None or u.dport == dport)]


def rtp_summary(path, dst=None, dport=None):
    """{(src, sport, dst, dport): count} of RTP flows, for diagnostics."""
    flows = {}
    for u in rtp_packets(path, dst, dport):
        key = (u.src, u.sport, u.dst, u.dport)
        flows[key] = flows.get(key, 0) + 1
    return flows

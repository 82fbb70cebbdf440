"""NAT site building blocks for later scenarios (no pinhole here): each
topology.Site nat= kind must behave as its name says, checked with UDP
probes from two public hosts (mapping and filtering), plus a port forward,
per-namespace conntrack timeouts and the kernel SIP ALG rewrite."""

import time

import pytest

import labnet
import sipp
import topology
from probes import echo_server, send

LAN = "192.168.1.0/24"
RTR = "192.168.1.1"
PHONE_IP = "192.168.1.10"
SPORT = 7000
SITES = {
    # kind: (site name, WAN address)
    "full-cone": ("fc", "203.0.113.11"),
    "restricted": ("rc", "203.0.113.12"),
    "port-restricted": ("prc", "203.0.113.13"),
    "symmetric": ("sym", "203.0.113.14"),
    "alg": ("alg", "203.0.113.15"),
}
SHORT_TIMEOUT = {"net.netfilter.nf_conntrack_udp_timeout": 2,
                 "net.netfilter.nf_conntrack_udp_timeout_stream": 2}


def _sites():
    sites = []
    for kind, (name, wan) in SITES.items():
        sites.append(topology.Site(
            name=name, wan_ip=wan, lan=LAN, router_ip=RTR,
            hosts={name + "-phone": PHONE_IP}, nat=kind,
            nat_host=name + "-phone"))
    sites.append(topology.Site(
        name="short", wan_ip="203.0.113.17", lan=LAN, router_ip=RTR,
        hosts={"short-phone": PHONE_IP}, nat="port-restricted",
        router_sysctls=SHORT_TIMEOUT))
    sites.append(topology.Site(                    # server behind its NAT
        name="nsrv", wan_ip="203.0.113.16", lan="192.168.50.0/24",
        router_ip="192.168.50.1", hosts={"nsrv-host": "192.168.50.10"},
        nat="port-restricted",
        forwards=[("udp", 5060, "nsrv-host", 5060),
                  ("udp", "30000-30010", "nsrv-host", None)]))
    return sites


@pytest.fixture(scope="module")
def nat_topo(tmp_path_factory):
    lab = labnet.Lab(str(tmp_path_factory.mktemp("nat")))
    try:
        t = topology.build(lab, {"pub1": "203.0.113.31",
                                 "pub2": "203.0.113.32",
                                 "pub3": "203.0.113.33"}, _sites())
    except Exception:
        lab.close()
        raise
    yield t
    lab.close()


def _outbound(topo, phone, dst):
    """Phone sends from SPORT to dst:9999; returns the mapped ip:port."""
    echo = echo_server(topo[dst], 9999)
    try:
        ok, seen = send(topo[phone], topo.ip(dst), 9999, sport=SPORT)
    finally:
        echo.stop(grace=1)
    assert ok, "%s could not reach %s: %s" % (phone, dst, seen)
    return seen


def _inbound(topo, phone, src, wan, port, sport=0):
    """Can src reach phone through wan:port (phone echoes on SPORT)?"""
    echo = echo_server(topo[phone], SPORT)
    try:
        ok, _ = send(topo[src], wan, port, sport=sport, timeout=0.9)
    finally:
        echo.stop(grace=1)
    return ok


# kind: (source port kept, same mapping towards a 2nd peer, inbound from
#        an IP never contacted, inbound from a contacted IP but another port)
EXPECT = {
    "full-cone": (True, True, True, True),
    "restricted": (True, True, False, True),
    "port-restricted": (True, True, False, False),
    "symmetric": (False, False, False, False),
    "alg": (True, True, False, False),
}


@pytest.mark.parametrize("kind", list(SITES))
def test_nat_behaviour(nat_topo, kind):
    name, wan = SITES[kind]
    phone = name + "-phone"
    keeps_port, same_map, from_other, from_other_port = EXPECT[kind]
    m1 = _outbound(nat_topo, phone, "pub1")
    m2 = _outbound(nat_topo, phone, "pub2")
    ip1, port1 = m1.split(":")
    assert ip1 == wan, "mapped address %s, expected the WAN %s" % (m1, wan)
    assert (port1 == str(SPORT)) == keeps_port, "mapping %s" % m1
    assert (m1 == m2) == same_map, "mappings %s vs %s" % (m1, m2)
    # pub3 was never contacted by the phone
    assert _inbound(nat_topo, phone, "pub3", wan, int(port1)) == from_other
    assert _inbound(nat_topo, phone, "pub1", wan, int(port1),
                    sport=9998) == from_other_port
    # the contacted peer itself always gets through (reply direction)
    assert _inbound(nat_topo, phone, "pub1", wan, int(port1), sport=9999)


def test_conntrack_timeout_is_per_site(nat_topo):
    rtr = nat_topo["short-rtr"]
    r = rtr.run(["sysctl", "-n", "net.netfilter.nf_conntrack_udp_timeout"])
    assert r.stdout.strip() == "2"
    other = nat_topo["prc-rtr"].run(
        ["sysctl", "-n", "net.netfilter.nf_conntrack_udp_timeout"])
    assert other.stdout.strip() != "2"
    mapped = _outbound(nat_topo, "short-phone", "pub1")
    time.sleep(3.5)                                   # mapping expires
    assert not _inbound(nat_topo, "short-phone", "pub1", "203.0.113.17",
                        int(mapped.split(":")[1]), sport=9999), \
        "mapping outlived its 2 s conntrack timeout"


def test_port_forward_to_server_behind_nat(nat_topo):
    echo = echo_server(nat_topo["nsrv-host"], 5060)
    try:
        ok, seen = send(nat_topo["pub1"], "203.0.113.16", 5060, sport=5061)
    finally:
        echo.stop(grace=1)
    assert ok, "port forward 203.0.113.16:5060 -> 192.168.50.10 failed"
    assert seen == "203.0.113.31:5061", "server saw %s" % seen
    echo = echo_server(nat_topo["nsrv-host"], 30005)
    try:
        ok, seen = send(nat_topo["pub2"], "203.0.113.16", 30005)
    finally:
        echo.stop(grace=1)
    assert ok, "port range forward 203.0.113.16:30000-30010 failed"


def test_sip_alg_rewrites_contact(nat_topo, tmp_path):
    phone = nat_topo["alg-phone"]
    register = (
        "REGISTER sip:example.com SIP/2.0\\r\\n"
        "Via: SIP/2.0/UDP %s:5060;branch=z9hG4bKalgtest1\\r\\n"
        "From: <sip:alice@example.com>;tag=a1\\r\\n"
        "To: <sip:alice@example.com>\\r\\n"
        "Call-ID: algtest1\\r\\nCSeq: 1 REGISTER\\r\\n"
        "Contact: <sip:alice@%s:5060>\\r\\n"
        "Max-Forwards: 70\\r\\nExpires: 60\\r\\nContent-Length: 0\\r\\n\\r\\n"
        % (PHONE_IP, PHONE_IP))
    cap = sipp.Capture(nat_topo["pub1"], str(tmp_path), "alg",
                       filt="udp port 5060", snaplen=2048).start()
    echo = echo_server(nat_topo["pub1"], 5060)
    try:
        send(phone, "203.0.113.31", 5060, sport=5060, payload=register)
    finally:
        echo.stop(grace=1)
        cap.stop()
    import pcap
    arrived = [u.payload.decode(errors="replace")
               for u in pcap.read_udp(cap.path)
               if u.dst == "203.0.113.31" and u.dport == 5060]
    assert arrived, "REGISTER never reached pub1"
    msg = arrived[0]
    assert "Contact: <sip:alice@203.0.113.15:5060>" in msg, msg
    assert PHONE_IP not in msg, "ALG left the private address:\n" + msg

"""Relayed media through the daemon on loopback: a phone whose Contact and
SDP name a private address it is not sending from (a NAT'ed phone) calls a
public phone; the proxy fixes the Contact, rewrites both SDPs toward the
relay, the relay latches on the real sources, and RTP arrives at both
phones. BYE releases the ports."""
import json
import re
import socket
import time
import urllib.request

import pytest

from conftest import run_daemon
from sipclient import UA, ack_non2xx, digest, recv_request, sdp_body


@pytest.fixture
def nat_daemon(request):
    # loopback is NOT the intranet here: the phones count as remote
    yield from run_daemon(
        request, "pinhole-relay-", ("alice", "bob"), intranet="10.99.0.0/16",
        extra="[media]\nrtp_port_min = 42000\nrtp_port_max = 42199\n")


sdp = sdp_body


def sdp_addr_port(body):
    c = re.search(r"c=IN IP4 (\S+)", body).group(1)
    m = re.search(r"m=audio (\d+)", body).group(1)
    return c, int(m)


def rtp(seq):
    return bytes([0x80, 0x00]) + seq.to_bytes(2, "big") + b"\0" * 8 + b"\xff" * 160


recv_req = recv_request


def test_nated_caller_relayed_both_ways(nat_daemon):
    d = nat_daemon
    alice = UA(d.port, "alice")
    bob = UA(d.port, "bob")
    r = alice.register(contact="<sip:alice@192.168.1.5:5060>")
    assert r.status == 200
    assert bob.register().status == 200
    regs = {x["aor"]: x for x in json.loads(d.cli("show", "registrations", "--json").stdout)}
    assert regs["alice@example.com"]["verdict"] == "behind-nat"
    assert regs["bob@example.com"]["verdict"] == "public"

    ra = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ra.bind(("127.0.0.1", 0))
    rb = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rb.bind(("127.0.0.1", 0))
    for s in (ra, rb):
        s.settimeout(0.01)

    body = sdp("192.168.1.5", 4000)     # what a NAT'ed phone says
    ruri = "sip:bob@example.com"
    hdrs = "Content-Type: application/sdp\r\nContact: <sip:alice@192.168.1.5:5060>\r\n"
    alice.send(alice.request("INVITE", ruri, hdrs, body=body))
    ch = alice.final()
    assert ch.status == 407
    ack_non2xx(alice, ch, ruri)
    cred = digest(ch.get("Proxy-Authenticate"), "INVITE", ruri, "alice", "password1")
    alice.send(alice.request("INVITE", ruri, f"Proxy-Authorization: {cred}\r\n" + hdrs,
                             body=body))

    inv = recv_req(bob, "INVITE")
    # Contact fixed to where alice really is; SDP points at the relay
    assert f"127.0.0.1:{alice.port}" in inv.get("Contact"), inv.get("Contact")
    c, port_b = sdp_addr_port(inv.body)
    assert c == "127.0.0.1" and 42000 <= port_b <= 42199, inv.body
    assert "192.168.1.5" not in inv.body.split("o=")[1].split("\r\n", 1)[1]

    vias = inv.all("Via")
    answer_body = sdp("127.0.0.1", rb.getsockname()[1])
    bob.send("SIP/2.0 200 OK\r\n" + "".join(f"Via: {v}\r\n" for v in vias) +
             "".join(f"Record-Route: {v}\r\n" for v in inv.all("Record-Route")) +
             f"From: {inv.get('From')}\r\nTo: {inv.get('To')};tag=bobtag\r\n"
             f"Call-ID: {inv.get('Call-ID')}\r\nCSeq: {inv.get('CSeq')}\r\n"
             f"Contact: <sip:bob@127.0.0.1:{bob.port}>\r\n"
             f"Content-Type: application/sdp\r\nContent-Length: {len(answer_body)}\r\n\r\n"
             + answer_body)
    ok = alice.final()
    assert ok.status == 200
    c, port_a = sdp_addr_port(ok.body)
    assert c == "127.0.0.1" and 42000 <= port_a <= 42199 and port_a != port_b
    assert int(ok.get("Content-Length")) == len(ok.body.encode())

    # media both ways, each phone sending to the port it was given
    got_a = got_b = 0
    for i in range(150):
        ra.sendto(rtp(i), ("127.0.0.1", port_a))
        rb.sendto(rtp(i), ("127.0.0.1", port_b))
        for s in (ra, rb):
            try:
                while True:
                    data = s.recv(2048)
                    if data[0] & 0xc0 == 0x80:
                        if s is ra:
                            got_a += 1
                        else:
                            got_b += 1
            except socket.timeout:
                pass
    assert got_a >= 100 and got_b >= 100, (got_a, got_b)

    calls = json.loads(urllib.request.urlopen(
        f"http://127.0.0.1:{d.admin_port}/api/calls").read())
    media = [c for c in calls if c.get("streams")]
    assert media and media[0]["streams"][0]["a"]["latched"]
    assert media[0]["streams"][0]["b"]["rx_packets"] >= 100

    # BYE from alice through the Route set ends the media session
    rr = list(reversed(ok.all("Record-Route")))
    alice.send(f"BYE sip:bob@127.0.0.1:{bob.port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{alice.port};branch=z9hG4bKbye9;rport\r\n"
               + "".join(f"Route: {v}\r\n" for v in rr) +
               f"From: {ok.get('From')}\r\nTo: {ok.get('To')}\r\n"
               f"Call-ID: {ok.get('Call-ID')}\r\nCSeq: {alice.cseq + 1} BYE\r\n"
               "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    bye = recv_req(bob, "BYE")
    assert bye
    metrics = urllib.request.urlopen(
        f"http://127.0.0.1:{d.admin_port}/metrics").read().decode()
    assert re.search(r"^pinhole_relay_sessions 0$", metrics, re.M), metrics


def set_keepalive(d, seconds):
    conf = open(d.conf).read().replace("[nat]\n", f"[nat]\nkeepalive_interval = {seconds}\n", 1)
    open(d.conf, "w").write(conf)
    d.stop()
    d.start()


def test_keepalive_pings_nated_binding(nat_daemon):
    """A NAT'ed binding gets OPTIONS pings on the socket it registered
    from; answered ones are recorded, unanswered ones make it unreachable."""
    d = nat_daemon
    set_keepalive(d, 1)
    alice = UA(d.port, "alice")
    assert alice.register(contact="<sip:alice@192.168.1.5:5060>").status == 200
    ping = recv_req(alice, "OPTIONS", timeout=5)
    assert "192.168.1.5" in ping.first  # addressed to the phone's contact
    vias = ping.all("Via")
    alice.send("SIP/2.0 200 OK\r\n" + "".join(f"Via: {v}\r\n" for v in vias) +
               f"From: {ping.get('From')}\r\nTo: {ping.get('To')};tag=p\r\n"
               f"Call-ID: {ping.get('Call-ID')}\r\nCSeq: {ping.get('CSeq')}\r\n"
               "Content-Length: 0\r\n\r\n")
    time.sleep(0.3)
    b = [x for x in json.loads(d.cli("show", "registrations", "--json").stdout)
         if x["aor"] == "alice@example.com"][0]
    assert b["last_keepalive"] and b["reachable"]
    # now stay silent: after three missed pings the binding is unreachable
    end = time.time() + 8
    while time.time() < end:
        b = [x for x in json.loads(d.cli("show", "registrations", "--json").stdout)
             if x["aor"] == "alice@example.com"][0]
        if not b["reachable"]:
            break
        time.sleep(0.5)
    assert not b["reachable"] and b["keepalive_failures"] >= 3
    codes = [a["code"] for a in json.loads(urllib.request.urlopen(
        f"http://127.0.0.1:{d.admin_port}/api/alarms").read())]
    assert "keepalive-unanswered" in codes


def test_public_binding_not_pinged(nat_daemon):
    d = nat_daemon
    set_keepalive(d, 1)
    bob = UA(d.port, "bob")
    assert bob.register().status == 200
    with pytest.raises(socket.timeout):
        recv_req(bob, "OPTIONS", timeout=3)


def call_setup(d):
    """NAT'ed alice calls public bob; returns the pieces of the dialog."""
    alice = UA(d.port, "alice")
    bob = UA(d.port, "bob")
    assert alice.register(contact="<sip:alice@192.168.1.5:5060>").status == 200
    assert bob.register().status == 200
    ruri = "sip:bob@example.com"
    hdrs = "Content-Type: application/sdp\r\nContact: <sip:alice@192.168.1.5:5060>\r\n"
    body = sdp("192.168.1.5", 4000)
    alice.send(alice.request("INVITE", ruri, hdrs, body=body))
    ch = alice.final()
    ack_non2xx(alice, ch, ruri)
    cred = digest(ch.get("Proxy-Authenticate"), "INVITE", ruri, "alice", "password1")
    alice.send(alice.request("INVITE", ruri, f"Proxy-Authorization: {cred}\r\n" + hdrs,
                             body=body))
    inv = recv_req(bob, "INVITE")
    ans = sdp("127.0.0.1", 5000)
    bob.send("SIP/2.0 200 OK\r\n" + "".join(f"Via: {v}\r\n" for v in inv.all("Via")) +
             "".join(f"Record-Route: {v}\r\n" for v in inv.all("Record-Route")) +
             f"From: {inv.get('From')}\r\nTo: {inv.get('To')};tag=bobtag\r\n"
             f"Call-ID: {inv.get('Call-ID')}\r\nCSeq: {inv.get('CSeq')}\r\n"
             f"Contact: <sip:bob@127.0.0.1:{bob.port}>\r\n"
             f"Content-Type: application/sdp\r\nContent-Length: {len(ans)}\r\n\r\n" + ans)
    ok = alice.final()
    assert ok.status == 200
    return alice, bob, inv, ok


def test_reinvite_from_callee_adds_video_and_holds(nat_daemon):
    """The callee re-INVITEs through the dialog's Route set toward the
    NAT'ed caller's fixed Contact: the request reaches alice on her
    pinhole, audio keeps its relay ports, video gets new ones, and a hold
    (sendonly) keeps the relay in place."""
    d = nat_daemon
    alice, bob, inv, ok = call_setup(d)
    _, port_b_audio = sdp_addr_port(inv.body)
    _, port_a_audio = sdp_addr_port(ok.body)
    contact = re.search(r"<([^>]*)>", inv.get("Contact")).group(1)
    routes = inv.all("Record-Route")
    offer = (sdp("127.0.0.1", 5000) + "a=sendonly\r\n"
             "m=video 5002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n")
    bob.send(f"INVITE {contact} SIP/2.0\r\n"
             f"Via: SIP/2.0/UDP 127.0.0.1:{bob.port};branch=z9hG4bKre1;rport\r\n"
             + "".join(f"Route: {v}\r\n" for v in routes) +
             f"From: {ok.get('To')}\r\nTo: {ok.get('From')}\r\n"
             f"Call-ID: {ok.get('Call-ID')}\r\nCSeq: 10 INVITE\r\n"
             f"Contact: <sip:bob@127.0.0.1:{bob.port}>\r\nMax-Forwards: 70\r\n"
             f"Content-Type: application/sdp\r\nContent-Length: {len(offer)}\r\n\r\n" + offer)
    re_inv = recv_req(alice, "INVITE")
    ports = [int(p) for p in re.findall(r"m=\w+ (\d+)", re_inv.body)]
    assert ports[0] == port_a_audio, (ports, port_a_audio)
    assert 42000 <= ports[1] <= 42199 and ports[1] not in (port_a_audio, port_b_audio)
    assert "a=sendonly" in re_inv.body
    ans = (sdp("192.168.1.5", 4000) + "a=recvonly\r\n"
           "m=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n")
    alice.send("SIP/2.0 200 OK\r\n" + "".join(f"Via: {v}\r\n" for v in re_inv.all("Via")) +
               f"From: {re_inv.get('From')}\r\nTo: {re_inv.get('To')}\r\n"
               f"Call-ID: {re_inv.get('Call-ID')}\r\nCSeq: {re_inv.get('CSeq')}\r\n"
               "Contact: <sip:alice@192.168.1.5:5060>\r\n"
               f"Content-Type: application/sdp\r\nContent-Length: {len(ans)}\r\n\r\n" + ans)
    r = bob.final()
    assert r.status == 200
    ports_b = [int(p) for p in re.findall(r"m=\w+ (\d+)", r.body)]
    assert ports_b[0] == port_b_audio and 42000 <= ports_b[1] <= 42199
    assert "192.168.1.5" not in r.body.split("s=-")[1]
    assert f"127.0.0.1:{alice.port}" in r.get("Contact")
    calls = json.loads(urllib.request.urlopen(
        f"http://127.0.0.1:{d.admin_port}/api/calls").read())
    media = [c for c in calls if c.get("streams")]
    assert len(media) == 1 and len(media[0]["streams"]) == 2


def test_failed_call_releases_ports(nat_daemon):
    d = nat_daemon
    alice = UA(d.port, "alice")
    bob = UA(d.port, "bob")
    assert alice.register(contact="<sip:alice@192.168.1.5:5060>").status == 200
    assert bob.register().status == 200
    ruri = "sip:bob@example.com"
    hdrs = "Content-Type: application/sdp\r\nContact: <sip:alice@192.168.1.5:5060>\r\n"
    r = alice.transact("INVITE", ruri, hdrs, body=sdp("192.168.1.5", 4000), auth=False)
    ack_non2xx(alice, r, ruri)
    cred = digest(r.get("Proxy-Authenticate"), "INVITE", ruri, "alice", "password1")
    alice.send(alice.request("INVITE", ruri, f"Proxy-Authorization: {cred}\r\n" + hdrs,
                             body=sdp("192.168.1.5", 4000)))
    inv = recv_req(bob, "INVITE")
    bob.send("SIP/2.0 486 Busy Here\r\n" + "".join(f"Via: {v}\r\n" for v in inv.all("Via")) +
             f"From: {inv.get('From')}\r\nTo: {inv.get('To')};tag=busy\r\n"
             f"Call-ID: {inv.get('Call-ID')}\r\nCSeq: {inv.get('CSeq')}\r\n"
             "Content-Length: 0\r\n\r\n")
    assert alice.final().status == 486
    metrics = urllib.request.urlopen(
        f"http://127.0.0.1:{d.admin_port}/metrics").read().decode()
    assert re.search(r"^pinhole_relay_sessions 0$", metrics, re.M)

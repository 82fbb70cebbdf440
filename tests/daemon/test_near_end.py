"""The server behind its own NAT, on loopback: with a static public_ip or
one learned by STUN (a small STUN responder on loopback), pinhole
advertises the public address to the outside and its private address to
the intranet, follows a change of the STUN answer with an alarm, and
refuses the outside while no public address is known.

Loopback stands in for both sides: 127.0.0.2 is "the intranet", 127.0.0.1
"the outside". Nothing is ever sent to the advertised public addresses:
they are TEST-NET addresses that only appear in headers and SDP here."""
import json
import re
import socket
import struct
import tempfile
import threading
import time
import urllib.request

import pytest

from conftest import Daemon
from sipclient import UA, ack_non2xx, digest, recv_request, sdp_body

PUBLIC = "198.51.100.10"


class StunResponder:
    """Answers RFC 5389 Binding requests with a settable XOR-MAPPED-ADDRESS."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.mapped = None      # None = stay silent
        self.requests = 0
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            try:
                data, src = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            if len(data) < 20 or data[:2] != b"\x00\x01":
                continue
            self.requests += 1
            if not self.mapped:
                continue
            ip, port = self.mapped
            xport = port ^ 0x2112
            xip = struct.unpack("!I", socket.inet_aton(ip))[0] ^ 0x2112A442
            attr = struct.pack("!HHBBHI", 0x0020, 8, 0, 1, xport, xip)
            resp = struct.pack("!HHI", 0x0101, len(attr), 0x2112A442) + data[8:20] + attr
            self.sock.sendto(resp, src)

    def close(self):
        self.stop = True
        self.t.join()
        self.sock.close()


def make_daemon(extra_nat):
    tmp = tempfile.mkdtemp(prefix="pinhole-near-")
    d = Daemon(tmp)
    conf = open(d.conf).read().replace(
        "intranet_subnets = 127.0.0.0/8",
        "intranet_subnets = 127.0.0.2/32\nbehind_nat = yes\n" + extra_nat)
    conf += "[media]\nrtp_port_min = 42200\nrtp_port_max = 42399\n"
    open(d.conf, "w").write(conf)
    return d




class LanUA(UA):
    """A UA bound to 127.0.0.2 (the intranet)."""

    def __init__(self, port, user):
        super().__init__(port, user)
        self.sock.close()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.2", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(2)

    def request(self, *a, **kw):
        return super().request(*a, **kw).replace("127.0.0.1:", "127.0.0.2:")


sdp = sdp_body


recv_req = recv_request


def api(d, path):
    return json.loads(urllib.request.urlopen(
        f"http://127.0.0.1:{d.admin_port}{path}").read())


@pytest.fixture
def static_daemon(request):
    d = make_daemon(f"public_ip = {PUBLIC}\n")
    d.start()
    for u in ("alice", "bob"):
        d.cli("user", "add", u, "password1")
    yield d
    d.finish(request)


def test_two_faces_and_relay_across_the_local_nat(static_daemon):
    d = static_daemon
    remote = UA(d.port, "alice")          # outside
    lan = LanUA(d.port, "bob")            # intranet
    assert remote.register().status == 200
    assert lan.register(contact=f"<sip:bob@127.0.0.2:{lan.port}>").status == 200
    regs = {x["aor"]: x for x in json.loads(d.cli("show", "registrations", "--json").stdout)}
    assert regs["bob@example.com"]["verdict"] == "local"

    ruri = "sip:bob@example.com"
    hdrs = f"Content-Type: application/sdp\r\nContact: <sip:alice@127.0.0.1:{remote.port}>\r\n"
    r = remote.transact("INVITE", ruri, hdrs, body=sdp("127.0.0.1", 6000), auth=False)
    assert r.status == 407
    ack_non2xx(remote, r, ruri)
    cred = digest(r.get("Proxy-Authenticate"), "INVITE", ruri, "alice", "password1")
    remote.send(remote.request("INVITE", ruri, f"Proxy-Authorization: {cred}\r\n" + hdrs,
                               body=sdp("127.0.0.1", 6000)))
    inv = recv_req(lan, "INVITE")
    # toward the LAN: our private address; toward the outside: the public one
    assert inv.all("Via")[0].startswith(f"SIP/2.0/UDP 127.0.0.1:{d.port}")
    rr = inv.all("Record-Route")
    assert len(rr) == 2 and f"127.0.0.1:{d.port}" in rr[0] and f"{PUBLIC}:{d.port}" in rr[1], rr
    # the LAN phone is told to send media to the relay's private address
    assert "c=IN IP4 127.0.0.1" in inv.body
    port_b = int(re.search(r"m=audio (\d+)", inv.body).group(1))
    assert 42200 <= port_b <= 42399

    ans = sdp("127.0.0.2", 7000)
    lan.send("SIP/2.0 200 OK\r\n" + "".join(f"Via: {v}\r\n" for v in inv.all("Via")) +
             "".join(f"Record-Route: {v}\r\n" for v in rr) +
             f"From: {inv.get('From')}\r\nTo: {inv.get('To')};tag=lan\r\n"
             f"Call-ID: {inv.get('Call-ID')}\r\nCSeq: {inv.get('CSeq')}\r\n"
             f"Contact: <sip:bob@127.0.0.2:{lan.port}>\r\n"
             f"Content-Type: application/sdp\r\nContent-Length: {len(ans)}\r\n\r\n" + ans)
    ok = remote.final()
    assert ok.status == 200
    # the outside is told the public address, never a private one
    assert f"c=IN IP4 {PUBLIC}" in ok.body and "127.0.0.2" not in ok.body.split("s=-")[1]
    assert api(d, "/api/status")["near_end_nat"]["public_ip"] == PUBLIC

    # The remote phone writes its route set (both of our entries) on ONE
    # Route line, as SIPp and many phones do: ACK and BYE must still pass.
    route = ", ".join(reversed(ok.all("Record-Route")))
    for method, cseq in (("ACK", remote.cseq), ("BYE", remote.cseq + 1)):
        remote.send(f"{method} sip:bob@127.0.0.2:{lan.port} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{remote.port};branch=z9hG4bK{method}1;rport\r\n"
                    f"Route: {route}\r\n"
                    f"From: {ok.get('From')}\r\nTo: {ok.get('To')}\r\n"
                    f"Call-ID: {ok.get('Call-ID')}\r\nCSeq: {cseq} {method}\r\n"
                    "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        got = recv_req(lan, method)
        assert not got.all("Route"), got.all("Route")


@pytest.fixture
def stun_daemon(request):
    stun = StunResponder()
    d = make_daemon(f"stun_server = 127.0.0.1:{stun.port}\nstun_refresh = 5\n")
    d.start()
    for u in ("alice", "bob"):
        d.cli("user", "add", u, "password1")
    yield d, stun
    d.finish(request)
    stun.close()


def wait_for(pred, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    return pred()


def test_stun_silent_raises_alarm(stun_daemon):
    d, stun = stun_daemon
    assert wait_for(lambda: "stun-failed" in [a["code"] for a in api(d, "/api/alarms")],
                    timeout=15)
    assert api(d, "/api/status")["near_end_nat"]["public_ip"] is None


def test_stun_learn_refuse_until_known_and_follow_change(stun_daemon):
    d, stun = stun_daemon
    # STUN is silent: the outside is refused, not answered with 127.0.0.1
    remote = UA(d.port, "alice")
    remote.send(remote.request("REGISTER", "sip:example.com",
                               f"Contact: <sip:alice@127.0.0.1:{remote.port}>\r\n",
                               to="<sip:alice@example.com>"))
    r = remote.final()
    assert r.status == 503 and "Public Address Unknown" in r.first
    assert wait_for(lambda: stun.requests >= 1)
    # the intranet keeps working meanwhile
    lan = LanUA(d.port, "bob")
    assert lan.register(contact=f"<sip:bob@127.0.0.2:{lan.port}>").status == 200

    stun.mapped = ("198.51.100.20", d.port)
    assert wait_for(lambda: api(d, "/api/status")["near_end_nat"]["public_ip"]
                    == "198.51.100.20", timeout=15)
    assert remote.register().status == 200

    # the local NAT's WAN address changes: followed, with an alarm
    stun.mapped = ("198.51.100.21", d.port)
    assert wait_for(lambda: api(d, "/api/status")["near_end_nat"]["public_ip"]
                    == "198.51.100.21", timeout=15)
    alarms = api(d, "/api/alarms")
    codes = [a["code"] for a in alarms]
    assert "public-address-changed" in codes
    changed = [a for a in alarms if a["code"] == "public-address-changed"][0]
    assert "198.51.100.20" in changed["text"] and "198.51.100.21" in changed["text"]
    # new requests to the outside carry the new address
    lan.send(lan.request("OPTIONS", "sip:alice@example.com", to="<sip:alice@example.com>"))
    ch = lan.final()
    assert ch.status == 407
    cred = digest(ch.get("Proxy-Authenticate"), "OPTIONS", "sip:alice@example.com",
                  "bob", "password1")
    lan.send(lan.request("OPTIONS", "sip:alice@example.com",
                         f"Proxy-Authorization: {cred}\r\n", to="<sip:alice@example.com>"))
    ping = recv_req(remote, "OPTIONS", timeout=5)
    assert "198.51.100.21" in ping.all("Via")[0], ping.all("Via")


def _selftest(d, start):
    req = urllib.request.Request(
        f"http://127.0.0.1:{d.admin_port}/api/selftest",
        method="POST" if start else "GET")
    return json.loads(urllib.request.urlopen(req).read())


def _selftest_done(d):
    deadline = time.time() + 10
    r = _selftest(d, True)
    while r["state"] == "running" and time.time() < deadline:
        time.sleep(0.2)
        r = _selftest(d, False)
    return r


def test_selftest_without_stun_server_says_untested(static_daemon):
    r = _selftest_done(static_daemon)
    assert r["state"] == "done", r
    assert r["sip_reachable"] is None and r["rtp_reachable"] is None, r
    assert "no [nat] stun_server" in r["note"], r


def test_selftest_with_a_stun_server_without_rfc5780(request):
    """A STUN server that gives no OTHER-ADDRESS cannot answer from
    elsewhere: the self-test says so instead of guessing."""
    stun = StunResponder()
    stun.mapped = (PUBLIC, 5060)
    d = make_daemon(f"stun_server = 127.0.0.1:{stun.port}\n")
    d.start()
    try:
        r = _selftest_done(d)
        assert r["state"] == "done" and r["rfc5780"] is False, r
        assert r["sip_reachable"] is None, r
        assert "does not support RFC 5780" in r["note"], r
    finally:
        d.finish(request)
        stun.close()

"""Alarms provoked for real on loopback: wrong passwords, a scanner, a
phone behind a SIP ALG / using STUN (nonat-suspect), one-way media on a
relayed call; each must appear in /api/alarms with its fix, and in
`pinhole show alarms`."""
import os
import re
import json
import socket
import time
import urllib.request

from sipclient import UA, ack_non2xx, digest, recv_request, sdp_body
from test_relay import nat_daemon  # noqa: F401  (fixture)


def alarms(d):
    return json.loads(urllib.request.urlopen(
        f"http://127.0.0.1:{d.admin_port}/api/alarms").read())


def wait_alarm(d, code, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        found = [a for a in alarms(d) if a["code"] == code]
        if found:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"no {code} alarm; have {[a['code'] for a in alarms(d)]}")


def test_wrong_password_and_scanner(daemon):
    daemon.cli("user", "add", "alice", "password1")
    for _ in range(5):
        ua = UA(daemon.port, "alice", password="nope")
        ua.register()
        ua.close()
    a = wait_alarm(daemon, "auth-wrong-password", 5)
    assert a["subject"] == "alice" and "password" in a["text"]
    for i in range(5):
        ua = UA(daemon.port, f"ghost{i}", password="x")
        ua.register()
        ua.close()
    a = wait_alarm(daemon, "auth-scanner", 5)
    assert a["subject"] == "127.0.0.1" and "firewall" in a["text"]
    out = daemon.cli("show", "alarms").stdout
    assert "auth-scanner" in out and "auth-wrong-password" in out


def test_alg_or_stun_phone_is_suspect(nat_daemon):
    d = nat_daemon
    ua = UA(d.port, "alice")
    # Contact and Via say exactly where it comes from (an ALG rewrote them),
    # but the Call-ID still carries the phone's private address
    ua.call_id = "a84b4c76e66710@192.168.1.5"
    assert ua.register().status == 200
    b = [x for x in json.loads(d.cli("show", "registrations", "--json").stdout)
         if x["aor"] == "alice@example.com"][0]
    assert b["verdict"] == "nonat-suspect", b
    assert "192.168.1.5" in b["nat_reason"]
    a = wait_alarm(d, "nonat-suspect", 5)
    assert "ALG" in a["text"] and "STUN" in a["text"]


def test_one_way_media_alarm(nat_daemon):
    """Only the callee's RTP reaches the relay: the caller is silent."""
    d = nat_daemon
    alice, bob = UA(d.port, "alice"), UA(d.port, "bob")
    assert alice.register(contact="<sip:alice@192.168.1.5:5060>").status == 200
    assert bob.register().status == 200
    ruri = "sip:bob@example.com"
    hdrs = "Content-Type: application/sdp\r\nContact: <sip:alice@192.168.1.5:5060>\r\n"
    alice.send(alice.request("INVITE", ruri, hdrs, body=sdp_body("192.168.1.5", 4000)))
    ch = alice.final()
    ack_non2xx(alice, ch, ruri)
    cred = digest(ch.get("Proxy-Authenticate"), "INVITE", ruri, "alice", "password1")
    alice.send(alice.request("INVITE", ruri, f"Proxy-Authorization: {cred}\r\n" + hdrs,
                             body=sdp_body("192.168.1.5", 4000)))
    inv = recv_request(bob, "INVITE")
    import re
    port_b = int(re.search(r"m=audio (\d+)", inv.body).group(1))
    ans = sdp_body("127.0.0.1", 5000)
    bob.send("SIP/2.0 200 OK\r\n" + "".join(f"Via: {v}\r\n" for v in inv.all("Via")) +
             "".join(f"Record-Route: {v}\r\n" for v in inv.all("Record-Route")) +
             f"From: {inv.get('From')}\r\nTo: {inv.get('To')};tag=b\r\n"
             f"Call-ID: {inv.get('Call-ID')}\r\nCSeq: {inv.get('CSeq')}\r\n"
             f"Contact: <sip:bob@127.0.0.1:{bob.port}>\r\n"
             f"Content-Type: application/sdp\r\nContent-Length: {len(ans)}\r\n\r\n" + ans)
    assert alice.final().status == 200
    rb = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rb.bind(("127.0.0.1", 0))
    end = time.time() + 16
    found = None
    while time.time() < end and not found:
        for i in range(10):
            rb.sendto(bytes([0x80, 0]) + i.to_bytes(2, "big") + b"\0" * 168,
                      ("127.0.0.1", port_b))
        time.sleep(0.2)
        found = [a for a in alarms(d) if a["code"] == "one-way-media"]
    rb.close()
    assert found, [a["code"] for a in alarms(d)]
    assert "caller" in found[0]["text"] and f"127.0.0.1:{alice.port}" in found[0]["text"]


def test_doctor_reports_findings(nat_daemon):
    """`pinhole doctor` names the suspect phone with the fix, and says
    what it did not check."""
    d = nat_daemon
    ua = UA(d.port, "alice")
    ua.call_id = "doctor-1@192.168.1.5"
    assert ua.register().status == 200
    bob = UA(d.port, "bob")
    assert bob.register().status == 200
    out = d.cli("doctor", check=False).stdout
    assert "alice@example.com" in out and "SIP ALG" in out
    assert "1 public" in out and "1 suspect" in out
    assert "not run by this version" in out
    assert "nonat-suspect" in out          # the alarm is listed too


def test_doctor_finds_nodes_sharing_the_store_with_clashing_ranges(request):
    """Two nodes on one store file (HA on one host): each records its SIP
    address and RTP range; the doctor of the second names the first and
    the overlap, with the fix; no clash once the ranges are apart."""
    import tempfile
    from conftest import Daemon
    a = Daemon(tempfile.mkdtemp(prefix="pinhole-ha-a-"),
               extra="[media]\nrtp_port_min = 42400\nrtp_port_max = 42499\n")
    with open(a.conf) as f:
        text = f.read()
    with open(a.conf, "w") as f:
        f.write(text.replace("[store]\n", "[store]\nnode_id = alpha\n"))
    a.start()
    try:
        b = Daemon(tempfile.mkdtemp(prefix="pinhole-ha-b-"),
                   extra="[media]\nrtp_port_min = 42450\n"
                         "rtp_port_max = 42549\n")
        with open(b.conf) as f:
            text = f.read()
        store_a = os.path.join(a.tmp, "pinhole.db")
        with open(b.conf, "w") as f:
            f.write(re.sub(r"path = .*pinhole\.db",
                           "path = %s\nnode_id = beta" % store_a, text))
        b.start()
        try:
            out = b.cli("doctor", check=False).stdout
            assert "node alpha: SIP 127.0.0.1:%d, RTP 42400-42499" % a.port \
                in out, out
            assert "! node alpha's RTP range 42400-42499 overlaps ours " \
                "(beta) 42450-42549" in out, out
            # apart: no finding
            with open(b.conf) as f:
                text = f.read()
            with open(b.conf, "w") as f:
                f.write(text.replace("rtp_port_min = 42450",
                                     "rtp_port_min = 42500"))
            assert b.cli("reload").returncode == 0
            out = b.cli("doctor", check=False).stdout
            assert "ok no clash with the 1 other node(s)" in out, out
        finally:
            b.finish(request)
    finally:
        a.finish(request)

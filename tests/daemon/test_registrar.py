"""Registrar behaviour (RFC 3261 section 10, RFC 3327) against the running
daemon on loopback, with a small Python UA doing real digest auth."""
import json
import re
import socket
import time

import pytest

from sipclient import UA


@pytest.fixture
def users(daemon):
    for u in ("alice", "bob", "carol"):
        daemon.cli("user", "add", u, "password1")
    return daemon


def contacts(resp):
    out = {}
    for v in resp.all("Contact"):
        for c in v.split(","):
            m = re.match(r"\s*<([^>]*)>(.*)", c)
            if m:
                e = re.search(r"expires=(\d+)", m.group(2))
                out[m.group(1)] = int(e.group(1)) if e else None
    return out


def regs(daemon):
    return json.loads(daemon.cli("show", "registrations", "--json").stdout)


def test_register_challenge_then_ok(users):
    ua = UA(users.port, "alice")
    ua.send(ua.request("REGISTER", "sip:example.com",
                       f"Contact: <sip:alice@127.0.0.1:{ua.port}>\r\n",
                       to="<sip:alice@example.com>"))
    r = ua.final()
    assert r.status == 401
    algs = " ".join(r.all("WWW-Authenticate"))
    assert "MD5" in algs and "SHA-256" in algs
    r = ua.register()
    assert r.status == 200, r
    assert f"sip:alice@127.0.0.1:{ua.port}" in contacts(r)
    b = [x for x in regs(users) if x["aor"] == "alice@example.com"]
    assert len(b) == 1 and b[0]["transport"] == "udp"
    assert b[0]["public"] == f"127.0.0.1:{ua.port}"
    assert b[0]["verdict"] == "local"


def test_wrong_password_refused(users):
    ua = UA(users.port, "alice", password="wrong")
    r = ua.register()
    assert r.status in (401, 403)
    assert not [x for x in regs(users) if x["aor"] == "alice@example.com"]


def test_sha256_digest(users):
    ua = UA(users.port, "bob")
    ua.send(ua.request("REGISTER", "sip:example.com",
                       f"Contact: <sip:bob@127.0.0.1:{ua.port}>\r\n",
                       to="<sip:bob@example.com>"))
    r = ua.final()
    ch = [c for c in r.all("WWW-Authenticate") if "SHA-256" in c][0]
    from sipclient import digest
    cred = digest(ch, "REGISTER", "sip:example.com", "bob", "password1")
    ua.send(ua.request("REGISTER", "sip:example.com",
                       f"Contact: <sip:bob@127.0.0.1:{ua.port}>\r\n"
                       f"Authorization: {cred}\r\n", to="<sip:bob@example.com>"))
    assert ua.final().status == 200


def test_user_must_match_to(users):
    ua = UA(users.port, "alice")
    r = ua.transact("REGISTER", "sip:example.com",
                    f"Contact: <sip:x@127.0.0.1:{ua.port}>\r\n",
                    to="<sip:bob@example.com>")
    assert r.status == 403


def test_interval_too_brief_and_max(users):
    ua = UA(users.port, "alice")
    r = ua.register(expires=10)
    assert r.status == 423 and r.get("Min-Expires") == "60"
    r = ua.register(expires=999999)
    assert r.status == 200
    assert list(contacts(r).values())[0] <= 3600


def test_several_contacts_q_refresh_remove(users):
    ua = UA(users.port, "carol")
    c1 = f"sip:carol@127.0.0.1:{ua.port}"
    c2 = "sip:carol@127.0.0.1:1"
    r = ua.register(contact=f"<{c1}>;q=0.5, <{c2}>;q=1.0")
    assert r.status == 200
    assert set(contacts(r)) == {c1, c2}
    # refresh one: both still listed
    r = ua.register(contact=f"<{c1}>", expires=120)
    assert set(contacts(r)) == {c1, c2} and contacts(r)[c1] <= 120
    # remove one
    r = ua.register(contact=f"<{c2}>", expires=0)
    assert set(contacts(r)) == {c1}
    # query (no Contact): lists the bindings
    r = ua.transact("REGISTER", "sip:example.com", "", to="<sip:carol@example.com>")
    assert r.status == 200 and set(contacts(r)) == {c1}
    # remove all
    r = ua.register(contact="*", expires=0)
    assert r.status == 200 and contacts(r) == {}
    assert not [x for x in regs(users) if x["aor"] == "carol@example.com"]


def test_star_needs_expires_zero(users):
    ua = UA(users.port, "carol")
    r = ua.register(contact="*", expires=60)
    assert r.status == 400


def test_out_of_order_cseq(users):
    ua = UA(users.port, "alice")
    assert ua.register().status == 200
    # same Call-ID, lower CSeq than the stored one: refused
    r = ua.transact("REGISTER", "sip:example.com",
                    f"Contact: <sip:alice@127.0.0.1:{ua.port}>\r\n",
                    to="<sip:alice@example.com>", cseq=1, auth=False)
    assert r.status in (401, 500)
    if r.status == 401:
        from sipclient import digest
        ch = r.get("WWW-Authenticate")
        cred = digest(ch, "REGISTER", "sip:example.com", "alice", "password1")
        ua.send(ua.request("REGISTER", "sip:example.com",
                           f"Contact: <sip:alice@127.0.0.1:{ua.port}>\r\n"
                           f"Authorization: {cred}\r\n",
                           to="<sip:alice@example.com>", cseq=1))
        assert ua.final().status == 500


def test_path_is_stored_and_echoed(users):
    ua = UA(users.port, "bob")
    r = ua.register(extra="Path: <sip:edge.example.net;lr>\r\nSupported: path\r\n")
    assert r.status == 200
    assert "edge.example.net" in (r.get("Path") or "")
    b = [x for x in regs(users) if x["aor"] == "bob@example.com"][0]
    assert "edge.example.net" in b.get("path", "")


def test_tcp_binding_and_delivery_on_same_connection(users):
    """A phone registered over TCP gets requests on that connection."""
    alice = UA(users.port, "alice", transport="tcp")
    assert alice.register().status == 200
    b = [x for x in regs(users) if x["aor"] == "alice@example.com"][0]
    assert b["transport"] == "tcp"
    bob = UA(users.port, "bob")
    bob.send(bob.request("MESSAGE", "sip:alice@example.com",
                         "Content-Type: text/plain\r\n", body="hi",
                         to="<sip:alice@example.com>"))
    # bob gets 407, answers it
    r = bob.final()
    assert r.status == 407
    from sipclient import digest
    cred = digest(r.get("Proxy-Authenticate"), "MESSAGE", "sip:alice@example.com",
                  "bob", "password1")
    bob.send(bob.request("MESSAGE", "sip:alice@example.com",
                         f"Proxy-Authorization: {cred}\r\nContent-Type: text/plain\r\n",
                         body="hi", to="<sip:alice@example.com>"))
    m = alice.recv(3)
    assert m.method == "MESSAGE" and m.body == "hi"
    assert m.get("Proxy-Authorization") is None
    vias = m.all("Via")
    assert vias[0].startswith("SIP/2.0/TCP") and "branch=z9hG4bKph" in vias[0]
    # alice answers 200 on the same connection; bob gets it
    resp = ("SIP/2.0 200 OK\r\n" + "".join(f"Via: {v}\r\n" for v in vias) +
            f"From: {m.get('From')}\r\nTo: {m.get('To')};tag=a1\r\n"
            f"Call-ID: {m.get('Call-ID')}\r\nCSeq: {m.get('CSeq')}\r\n"
            "Content-Length: 0\r\n\r\n")
    alice.send(resp)
    assert bob.final().status == 200


def test_bindings_survive_restart(users):
    ua = UA(users.port, "alice")
    assert ua.register().status == 200
    time.sleep(0.5)  # batched store write
    users.stop()
    users.start()
    b = [x for x in regs(users) if x["aor"] == "alice@example.com"]
    assert b and b[0]["contact"] == f"sip:alice@127.0.0.1:{ua.port}"


def test_unknown_user_404_unregistered_480(users):
    ua = UA(users.port, "bob")
    r = ua.transact("MESSAGE", "sip:nosuch@example.com", to="<sip:nosuch@example.com>")
    assert r.status == 404
    r = ua.transact("MESSAGE", "sip:carol@example.com", to="<sip:carol@example.com>")
    assert r.status == 480


def test_no_open_relay(users):
    """Anonymous callers reach local users only; nobody reaches a foreign
    domain through us."""
    ua = UA(users.port, "bob")
    r = ua.transact("MESSAGE", "sip:someone@elsewhere.example",
                    to="<sip:someone@elsewhere.example>")
    assert r.status == 403
    r = ua.transact("INVITE", "sip:someone@192.0.2.7", to="<sip:someone@192.0.2.7>")
    assert r.status == 403


def test_options_to_server(daemon):
    assert daemon.options_ok()


def test_metrics_by_verdict(users):
    import urllib.request
    ua = UA(users.port, "alice")
    assert ua.register().status == 200
    text = urllib.request.urlopen(
        f"http://127.0.0.1:{users.admin_port}/metrics").read().decode()
    assert 'pinhole_registrations{verdict="local"} 1' in text
    assert 'pinhole_requests_total{method="REGISTER"} 2' in text
    assert "pinhole_alarms_raised_total" in text

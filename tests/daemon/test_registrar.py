"""Registrar behaviour (RFC 3261 section 10, RFC 3327) against the running
daemon on loopback, with a small Python UA doing real digest auth."""
import json
import re
import socket
import time

import pytest

from conftest import run_daemon
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


# -- one private Contact in two homes --------------------------------------
#
# Two phones of alice, each behind its own NAT, both sending the common
# default Contact sip:alice@192.168.1.10:5060. On loopback the homes are
# 127.0.0.2 and 127.0.0.3 (their "public" IPs); the daemon's intranet
# excludes loopback, so a Contact that is not the source means behind-nat.

PRIVATE = "sip:alice@192.168.1.10:5060"


@pytest.fixture
def homes(request):
    yield from run_daemon(request, "pinhole-homes-", ("alice", "bob"),
                          intranet="10.99.0.0/16")


def home_ua(daemon, ip, like=None):
    """alice's phone in the home whose public IP is ip; like: the phone it
    is, after its NAT picked a new port (same Call-ID, next CSeq)."""
    ua = UA(daemon.port, "alice")
    ua.sock.close()
    ua.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ua.sock.bind((ip, 0))
    ua.port = ua.sock.getsockname()[1]
    if like:
        ua.call_id, ua.cseq = like.call_id, like.cseq
    return ua


def alice_bindings(daemon):
    return sorted((x for x in regs(daemon) if x["aor"] == "alice@example.com"),
                  key=lambda x: x["public"])


def contact_values(resp):
    return [c for v in resp.all("Contact") for c in v.split(",")]


def reply_to(ua, req, status, reason):
    ua.send(f"SIP/2.0 {status} {reason}\r\n" +
            "".join(f"Via: {v}\r\n" for v in req.all("Via")) +
            f"From: {req.get('From')}\r\nTo: {req.get('To')};tag={ua.port}\r\n"
            f"Call-ID: {req.get('Call-ID')}\r\nCSeq: {req.get('CSeq')}\r\n"
            "Content-Length: 0\r\n\r\n")


def call_alice(daemon, phones):
    """bob calls alice: every phone in phones gets the INVITE and answers
    486; bob gets the 486."""
    from sipclient import ack_non2xx, digest, recv_request
    bob = UA(daemon.port, "bob")
    ruri = "sip:alice@example.com"
    bob.send(bob.request("INVITE", ruri, "Contact: <sip:bob@127.0.0.1>\r\n"))
    ch = bob.final()
    assert ch.status == 407
    ack_non2xx(bob, ch, ruri)
    cred = digest(ch.get("Proxy-Authenticate"), "INVITE", ruri, "bob",
                  "password1")
    bob.send(bob.request("INVITE", ruri, f"Proxy-Authorization: {cred}\r\n"
                         "Contact: <sip:bob@127.0.0.1>\r\n"))
    invites = [recv_request(p, "INVITE") for p in phones]
    for p, inv in zip(phones, invites):
        assert inv.first.startswith(f"INVITE {PRIVATE} "), inv.first
        reply_to(p, inv, 486, "Busy Here")
    assert bob.final().status == 486
    bob.close()


def register_two_homes(daemon):
    """alice's phones in home A (127.0.0.2) and home B (127.0.0.3), both
    registered with the same private Contact; returns them and B's 200."""
    a = home_ua(daemon, "127.0.0.2")
    b = home_ua(daemon, "127.0.0.3")
    assert a.register(contact=f"<{PRIVATE}>").status == 200
    r = b.register(contact=f"<{PRIVATE}>")
    assert r.status == 200
    return a, b, r


def test_same_private_contact_two_homes_both_ring(homes):
    a, b, r = register_two_homes(homes)
    # home B's phone sees its own binding only once (not A's expiry)
    assert len(contact_values(r)) == 1, r.all("Contact")
    got = alice_bindings(homes)
    assert [x["public"] for x in got] == [f"127.0.0.2:{a.port}",
                                          f"127.0.0.3:{b.port}"]
    assert all(x["contact"] == PRIVATE and x["verdict"] == "behind-nat"
               for x in got), got
    call_alice(homes, [a, b])


def test_new_nat_port_refreshes_its_own_binding(homes):
    a, b, _ = register_two_homes(homes)
    before_b = alice_bindings(homes)[1]
    # home A's NAT maps the phone to a new port: same phone, same IP
    a2 = home_ua(homes, "127.0.0.2", like=a)
    assert a2.register(contact=f"<{PRIVATE}>").status == 200
    got = alice_bindings(homes)
    assert len(got) == 2, got
    assert got[0]["public"] == f"127.0.0.2:{a2.port}"
    assert got[0]["call_id"] == a.call_id and got[0]["cseq"] == a2.cseq
    assert got[1]["public"] == before_b["public"]
    assert got[1]["cseq"] == before_b["cseq"]
    call_alice(homes, [a2, b])


def test_unregister_from_one_home_keeps_the_other(homes):
    a, b, _ = register_two_homes(homes)
    # Expires: 0 for the shared Contact from home B: B's binding only
    r = b.register(contact=f"<{PRIVATE}>", expires=0)
    assert r.status == 200
    assert [x["public"] for x in alice_bindings(homes)] == \
        [f"127.0.0.2:{a.port}"]
    # A's phone is still listed to A
    assert contact_values(a.register(contact=f"<{PRIVATE}>"))
    # Contact: * from home B: B's bindings only
    assert b.register(contact=f"<{PRIVATE}>").status == 200
    assert len(alice_bindings(homes)) == 2
    assert b.register(contact="*", expires=0).status == 200
    assert [x["public"] for x in alice_bindings(homes)] == \
        [f"127.0.0.2:{a.port}"]
    call_alice(homes, [a])


def test_two_homes_survive_restart(homes):
    a, b, _ = register_two_homes(homes)
    time.sleep(0.5)  # batched store write
    homes.stop()
    homes.start()
    got = alice_bindings(homes)
    assert [x["public"] for x in got] == [f"127.0.0.2:{a.port}",
                                          f"127.0.0.3:{b.port}"], got
    call_alice(homes, [a, b])
    # a refresh after the restart finds its own restored binding
    assert a.register(contact=f"<{PRIVATE}>").status == 200
    assert len(alice_bindings(homes)) == 2
    # and an unregister deletes its row: gone after another restart
    assert b.register(contact=f"<{PRIVATE}>", expires=0).status == 200
    time.sleep(0.5)
    homes.stop()
    homes.start()
    assert [x["public"] for x in alice_bindings(homes)] == \
        [f"127.0.0.2:{a.port}"]


def test_same_contact_on_the_lan_is_one_binding(users):
    """Contacts that are not NAT'ed keep RFC 3261 identity: the URI alone
    (a phone that moved to another address updates its binding)."""
    a = home_ua(users, "127.0.0.2")
    contact = "<sip:alice@127.0.0.9:5060>"
    assert a.register(contact=contact).status == 200
    b = home_ua(users, "127.0.0.3", like=a)
    assert b.register(contact=contact).status == 200
    got = alice_bindings(users)
    assert len(got) == 1 and got[0]["public"] == f"127.0.0.3:{b.port}", got

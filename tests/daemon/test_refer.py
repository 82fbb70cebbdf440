"""The REFER policy (src/proxy/refer.c) on loopback: a REFER whose
Refer-To names a private address outside intranet_subnets, a foreign
domain or an odd scheme is answered 403 with the rule in the reason
phrase and never reaches the phone; our domain, an intranet address and a
[routes] gateway are forwarded; `[features] refer_policy = allow` forwards
everything. The daemon's intranet is 127.0.0.0/8."""
import tempfile

import pytest

from conftest import Daemon
from sipclient import UA, digest, recv_request
from test_proxy import answer

GATEWAY = "198.51.100.7"


def _pbx(request, extra=""):
    d = Daemon(tempfile.mkdtemp(prefix="pinhole-test-"),
               extra="[routes]\n9 = sip:%s:5060\n%s" % (GATEWAY, extra))
    d.start()
    request.addfinalizer(lambda: d.finish(request))
    for u in ("alice", "bob"):
        d.cli("user", "add", u, "password1")
    d.alice, d.bob = UA(d.port, "alice"), UA(d.port, "bob")
    assert d.alice.register().status == 200
    assert d.bob.register().status == 200
    return d


@pytest.fixture
def pbx(request):
    return _pbx(request)


@pytest.fixture
def permissive(request):
    return _pbx(request, "[features]\nrefer_policy = allow\n")


def refer_reaches_bob(d, target, in_dialog=False):
    """alice REFERs bob to target; bob answers 202 if the REFER reaches
    him. Out of dialog alice authenticates (407 first); in dialog the
    REFER carries a To tag and our Route. Returns (final response at
    alice, the REFER bob got or None)."""
    hdrs = "Refer-To: <%s>\r\nContact: <sip:alice@127.0.0.1:%d>\r\n" % (
        target, d.alice.port)
    if in_dialog:
        hdrs += "Route: <sip:127.0.0.1:%d;lr>\r\n" % d.port
        d.alice.send(d.alice.request(
            "REFER", "sip:bob@127.0.0.1:%d" % d.bob.port, hdrs,
            to="<sip:bob@example.com>;tag=bobtag"))
    else:
        ruri = "sip:bob@example.com"
        d.alice.send(d.alice.request("REFER", ruri, hdrs))
        r = d.alice.final()
        if r.status != 407:
            return r, None
        cred = digest(r.get("Proxy-Authenticate"), "REFER", ruri, "alice",
                      "password1")
        d.alice.send(d.alice.request(
            "REFER", ruri, hdrs + "Proxy-Authorization: %s\r\n" % cred))
    try:
        got = recv_request(d.bob, "REFER", timeout=1.0)
    except Exception:
        got = None
    if got is not None:
        answer(d.bob, got, 202, "Accepted", tag="bobtag")
    return d.alice.final(), got


REFUSED = [
    pytest.param("sip:carol@192.168.7.7", False,
                 "Refer-To Private Address Outside Intranet",
                 id="private-out-of-dialog"),
    pytest.param("sip:carol@10.1.2.3:5060", True,
                 "Refer-To Private Address Outside Intranet",
                 id="private-in-dialog"),
    pytest.param("sip:carol@evil.example.net", False,
                 "Refer-To Foreign Domain", id="foreign-domain"),
    pytest.param("sip:carol@203.0.113.99", True, "Refer-To Foreign Domain",
                 id="foreign-public-address-in-dialog"),
    pytest.param("http://192.168.1.1/admin", False,
                 "Refer-To Scheme Not Allowed", id="http-scheme"),
]


@pytest.mark.parametrize("target,in_dialog,reason", REFUSED)
def test_refer_refused(pbx, target, in_dialog, reason):
    r, got = refer_reaches_bob(pbx, target, in_dialog)
    assert got is None, "the REFER reached the phone: %s" % got.raw
    assert r.first == "SIP/2.0 403 " + reason, r.first


FORWARDED = [
    pytest.param("sip:carol@example.com", False, id="our-domain"),
    pytest.param("sip:carol@example.com?Replaces=abc%40h%3Bto-tag%3D1%3B"
                 "from-tag%3D2", True, id="our-domain-with-replaces"),
    pytest.param("sip:lanphone@127.0.0.5:5060", True, id="intranet-address"),
    pytest.param("sip:9123@%s" % GATEWAY, False, id="gateway"),
    pytest.param("tel:+15551234", True, id="tel"),
]


@pytest.mark.parametrize("target,in_dialog", FORWARDED)
def test_refer_forwarded(pbx, target, in_dialog):
    r, got = refer_reaches_bob(pbx, target, in_dialog)
    assert got is not None, "REFER to %s not forwarded: %s" % (target, r)
    assert got.get("Refer-To") == "<%s>" % target
    assert r.status == 202, r


def test_unauthenticated_refer_is_challenged_before_the_policy(pbx):
    """An out-of-dialog REFER is authorised first: without credentials it
    gets 407 whatever it names (a stranger learns nothing of the policy);
    the policy's 403 comes after the challenge is met (test_refer_refused)."""
    d = pbx
    d.alice.send(d.alice.request(
        "REFER", "sip:bob@example.com",
        "Refer-To: <sip:carol@192.168.7.7>\r\n"
        "Contact: <sip:alice@127.0.0.1:%d>\r\n" % d.alice.port))
    r = d.alice.final()
    assert r.status == 407, r.first


def test_refer_counters_in_metrics(pbx):
    import urllib.request
    refer_reaches_bob(pbx, "sip:carol@example.com", False)
    r, got = refer_reaches_bob(pbx, "sip:carol@192.168.7.7", True)
    assert got is None and r.status == 403, r.first
    m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" %
                               pbx.admin_port, timeout=3).read().decode()
    import re
    fwd = int(re.search(r'pinhole_refer_total\{result="forwarded"\} (\d+)',
                        m).group(1))
    rej = int(re.search(r'pinhole_refer_total\{result="rejected"\} (\d+)',
                        m).group(1))
    # the policy looks at an out-of-dialog REFER once, after its sender
    # passed the 407 challenge
    assert fwd == 1 and rej == 1, m


def test_refer_without_refer_to_is_400(pbx):
    d = pbx
    d.alice.send(d.alice.request(
        "REFER", "sip:bob@127.0.0.1:%d" % d.bob.port,
        "Route: <sip:127.0.0.1:%d;lr>\r\n" % d.port,
        to="<sip:bob@example.com>;tag=bobtag"))
    r = d.alice.final()
    assert r.first == "SIP/2.0 400 Missing Refer-To", r.first


def test_policy_allow_forwards_everything(permissive):
    r, got = refer_reaches_bob(permissive, "sip:carol@192.168.7.7", True)
    assert got is not None and r.status == 202, r


def test_config_rejects_unknown_policy(tmp_path):
    d = Daemon(str(tmp_path), extra="[features]\nrefer_policy = maybe\n")
    res = d.cli("check", check=False)
    assert res.returncode != 0
    assert "refer_policy" in res.stdout + res.stderr

"""Call pickup through real NATs (issue 5): alice calls bob, bob's phone
rings, carol dials *78bob (directed) or *8 (group pickup, bob and carol in
hunt group 600) and talks to alice.

pinhole sends carol's INVITE to alice's Contact through the flow alice's
INVITE came on (alice is behind the symmetric NAT: no other address would
reach her), with a Replaces header for alice's early dialog with bob.
alice's SIPp takes that INVITE as an out-of-call request
(pickup_answer.xml: answers, talks, takes carol's BYE) while its main
scenario (pickup_caller.xml) CANCELs the original INVITE, which bob's
ringing phone (uas_ring.xml) must receive.

Phones: alice sym-phone (symmetric NAT, WAN 203.0.113.24), bob prc-phone
(port-restricted, .23), carol rc-phone (address-restricted, .22), each at
192.168.1.10 in its home LAN; pinhole and its relay on srv 10.10.0.10.

Asserted: the Replaces alice got names her own call exactly (Call-ID,
to-tag = her From tag, from-tag = bob's 180 To tag, early-only); she
CANCELled her first INVITE after answering carol and before carol's BYE;
bob got the CANCEL (uas_ring.xml fails otherwise); carol's call completed (200,
ACK, 3 s of RTP, BYE answered by alice); >= 50 RTP packets reached each
of alice and carol, every one from the relay; /api/calls showed the
picked-up call's relay session with packets from both parties.
"""

import re
import time

import pytest

import labenv
import labnet
import pinhole as pinhole_mod
import topology

RELAY_IP = "10.10.0.10"            # srv: pinhole's relay
LAN = "192.168.1.0/24"
PHONE_IP = "192.168.1.10"
SYM, PRC, RC = "sym-phone", "prc-phone", "rc-phone"
WAN = {SYM: "203.0.113.24", PRC: "203.0.113.23", RC: "203.0.113.22"}


def _home(name, wan, kind):
    return topology.Site(name=name, wan_ip=wan, lan=LAN,
                         router_ip="192.168.1.1",
                         hosts={name + "-phone": PHONE_IP}, nat=kind,
                         nat_host=name + "-phone")


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    """Overrides conftest's topo for this module."""
    lab = labnet.Lab(str(tmp_path_factory.mktemp("pickup")))
    try:
        homes = [_home("sym", WAN[SYM], "symmetric"),
                 _home("prc", WAN[PRC], "port-restricted"),
                 _home("rc", WAN[RC], "restricted")]
        t = topology.build(lab, dict(topology.PUBLIC),
                           [topology.OFFICE] + homes)
    except Exception:
        lab.close()
        raise
    yield t
    lab.close()


@pytest.fixture
def pinhole(topo, workdir, lab_report, _test_procs):
    """conftest's pinhole with keepalives every 60 s, so that no OPTIONS
    lands on a SIPp phone during the test (alice's out-of-call scenario
    expects an INVITE)."""
    ph = pinhole_mod.Pinhole(topo["srv"], workdir, overrides={
        "nat": {"keepalive_interval": "60"}})
    lab_report.add("pinhole", ph.report)
    for user, password in labenv.USERS.items():
        ph.user_add(user, password)
    ph.start()
    yield ph
    failure = ph.stop_after_test(topo.lab.closed)
    if failure:
        pytest.fail(failure)


def _behind_nat(pinhole, user, host):
    [b] = pinhole.bindings_for(user)
    assert b["verdict"] == "behind-nat" and \
        str(b["public"]).startswith(WAN[host] + ":"), b


def _messages(run, direction):
    """Messages a SIPp run sent or received ("sent" / "received"), as
    text, in order."""
    parts = re.split(r"^-{20,}.*$", run.messages(), flags=re.M)
    return [p for p in parts if "message %s" % direction in p]


def _order(run):
    """First lines of every message of a SIPp run, in order, each prefixed
    with "sent " or "received "."""
    out = []
    for p in re.split(r"^-{20,}.*$", run.messages(), flags=re.M):
        lines = [l.strip() for l in p.splitlines() if l.strip()]
        if len(lines) > 1 and re.search(r"message (sent|received)", lines[0]):
            d = "sent" if "sent" in lines[0] else "received"
            out.append("%s %s" % (d, lines[1]))
    return out


def _index(order, pattern):
    hits = [i for i, line in enumerate(order) if re.match(pattern, line)]
    assert hits, "no %r in %s" % (pattern, order)
    return hits[0]


def _first(msgs, first_line_re):
    for m in msgs:
        lines = [l.strip() for l in m.splitlines() if l.strip()]
        if len(lines) > 1 and re.match(first_line_re, lines[1]):
            return m
    return None


def _header(msg, name):
    m = re.search(r"^\s*%s\s*:\s*(.*?)\s*$" % re.escape(name), msg,
                  flags=re.M | re.I)
    return m.group(1) if m else None


def _tag(value):
    m = re.search(r";\s*tag=([^;>\s]+)", value or "")
    return m.group(1) if m else None


def _wait_ringing(pinhole, timeout=8.0):
    """Until /api/calls shows a call with a branch that got a 180."""
    end = time.time() + timeout
    while time.time() < end:
        for c in pinhole.api("/api/calls"):
            if any(l.get("status") == 180 for l in c.get("legs") or []):
                return c
        time.sleep(0.2)
    raise AssertionError("no call rang within %.0f s: %s" % (
        timeout, pinhole.api("/api/calls")))


def _relayed(env, caps, host, minimum=labenv.MIN_RTP):
    """>= minimum RTP packets reached host's media port, all from the
    relay. Returns the count."""
    env.stop_captures(caps)
    pk = caps[host].packets_to(env.topo.ip(host), labenv.MEDIA_PORT)
    srcs = sorted({u.src for u in pk})
    assert len(pk) >= minimum, ("%d RTP packets reached %s (need %d); from "
                                "%s" % (len(pk), host, minimum, srcs))
    assert srcs == [RELAY_IP], ("%s got RTP not (only) from the relay: %s"
                                % (host, srcs))
    return len(pk)


@pytest.mark.parametrize("code", ["*78bob", "*8"],
                         ids=["directed", "group"])
def test_pickup_through_nat(env, pinhole, code):
    if code == "*8":
        pinhole.cli("group", "set", "600", "members=bob,carol",
                    "mode=parallel")
    env.register(SYM, "alice")
    env.register(PRC, "bob")
    env.register(RC, "carol")
    _behind_nat(pinhole, "alice", SYM)
    _behind_nat(pinhole, "bob", PRC)
    _behind_nat(pinhole, "carol", RC)

    ringing = env.uas(PRC, "bob", scenario="uas_ring.xml", timeout=40)
    caps = env.capture(SYM, RC)
    alice = env.sipp(SYM, "pickup_caller.xml", "uac-alice-to-bob",
                     remote=env.proxy, media_port=labenv.MEDIA_PORT,
                     service="bob", auth=("alice", labenv.USERS["alice"]),
                     auth_uri=labenv.auth_uri("sip:bob@%s" % labenv.DOMAIN),
                     pause_ms=1500, timeout=40, ooc="pickup_answer.xml",
                     keys={"domain": labenv.DOMAIN, "user": "alice"})
    alice.start(wait_bound=False)
    _wait_ringing(pinhole)

    # carol picks up: an ordinary caller run (uac.xml) to the code
    _, seen = env.call_watched(RC, code, "carol", duration_ms=3000,
                               timeout=30)
    env.wait_ok(alice, ringing)

    # the Replaces alice got names her early dialog with bob, oriented as
    # she sees it (RFC 3891 section 3)
    sent, got = _messages(alice, "sent"), _messages(alice, "received")
    invite = _first(sent, r"INVITE sip:bob@")
    r180 = _first(got, r"SIP/2\.0 180")
    pick = _first(got, r"INVITE sip:alice@")
    assert invite and r180 and pick, "alice's log lacks a message"
    expected = "%s;to-tag=%s;from-tag=%s;early-only" % (
        _header(invite, "Call-ID"), _tag(_header(invite, "From")),
        _tag(_header(r180, "To")))
    assert _header(pick, "Replaces") == expected, pick
    assert _header(pick, "From").startswith("<sip:carol@"), pick
    assert "CANCEL" in "".join(_messages(ringing, "received"))
    # alice answered carol, then CANCELled her first INVITE while talking
    order = _order(alice)
    assert _index(order, r"received INVITE sip:alice@") < \
        _index(order, r"sent CANCEL ") < _index(order, r"received BYE "), \
        order

    _relayed(env, caps, SYM)
    _relayed(env, caps, RC)
    env.assert_relay_streams(seen)
    log = pinhole.report()
    assert "pickup: carol picks up the call" in log, log[-3000:]

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

import pytest

import labenv
import labnet
import sipp
import topology

RELAY_IP = "10.10.0.10"            # srv: pinhole's relay
SYM, PRC, RC = "sym-phone", "prc-phone", "rc-phone"
WAN = {SYM: "203.0.113.24", PRC: "203.0.113.23", RC: "203.0.113.22"}


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    """Overrides conftest's topo for this module."""
    yield from labnet.module_topology(
        str(tmp_path_factory.mktemp("pickup")),
        lambda lab: topology.build(lab, dict(topology.PUBLIC),
                                   [topology.OFFICE] + topology.nat_homes()))


@pytest.fixture
def pinhole(own_pinhole):
    """conftest's pinhole with keepalives every 60 s, so that no OPTIONS
    lands on a SIPp phone during the test (alice's out-of-call scenario
    expects an INVITE)."""
    return own_pinhole(overrides={"nat": {"keepalive_interval": "60"}})


def _behind_nat(pinhole, user, host):
    [b] = pinhole.bindings_for(user)
    assert b["verdict"] == "behind-nat" and \
        str(b["public"]).startswith(WAN[host] + ":"), b


def _messages(run, direction):
    """Messages a SIPp run sent or received ("sent" / "received"), as
    text, in order."""
    parts = re.split(r"^-{20,}.*$", run.messages(), flags=re.M)
    return [p for p in parts if "message %s" % direction in p]


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
    pinhole.wait_ringing()

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
        sipp.header(invite, "Call-ID"),
        sipp.tag(sipp.header(invite, "From")),
        sipp.tag(sipp.header(r180, "To")))
    assert sipp.header(pick, "Replaces") == expected, pick
    assert sipp.header(pick, "From").startswith("<sip:carol@"), pick
    assert "CANCEL" in "".join(_messages(ringing, "received"))
    # alice answered carol, then CANCELled her first INVITE while talking
    order = sipp.order(alice)
    assert _index(order, r"received INVITE sip:alice@") < \
        _index(order, r"sent CANCEL ") < _index(order, r"received BYE "), \
        order

    _relayed(env, caps, SYM)
    _relayed(env, caps, RC)
    env.assert_relay_streams(seen)
    log = pinhole.report()
    assert "pickup: carol picks up the call" in log, log[-3000:]

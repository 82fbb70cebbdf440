"""Telephony features with pinhole behind the office's own NAT (issue 5).

The near-end topology of test_near_end.py (near_end_lab): the office
router (WAN 203.0.113.1) masquerades the office LAN and forwards UDP+TCP
5060 and UDP 30000-30100 (the relay's range) to the server 10.10.0.10;
pinhole runs with [nat] behind_nat = yes, public_ip = 203.0.113.1. Remote
phones use the WAN address as their proxy: alice on prc-phone
(port-restricted NAT), bob on sym-phone (symmetric NAT); dave is the LAN
phone (10.10.0.21, proxy 10.10.0.10). This module adds the LAN feature
server fs (10.10.0.60, voicemail 8500 through [routes] "85").

So every call below crosses two NATs at least: the phone's own and the
office's, whose port forwards are the only way in.

  a. sequential hunt group: the first remote member (symmetric) rings
     out its ring_time and gets CANCEL, the second (port-restricted)
     answers the LAN caller
  b. blind transfer: a remote phone REFERs the other remote phone to the
     LAN phone; the transferee's new call to it is relayed both ways
  c. MESSAGE to a remote phone, from the LAN and from another remote
     phone
  d. directed pickup (*78bob) by the LAN phone of a call ringing at a
     remote phone, placed by another remote phone
  e. a remote phone calls the LAN voicemail number

"Relayed" here is near_end_lab's check(): >= 50 RTP packets at each
talking phone, every one from the face pinhole shows it (the office WAN
address to remote phones, 10.10.0.10 to LAN phones), the relay session in
/api/calls carrying media from both sides; for a and e also the
Record-Route / top Via / SDP faces of the callee's INVITE.
"""

import dataclasses
import re
import time

import pytest

import labenv
import labnet
import near_end_lab as ne
import topology
from near_end_lab import Call

FS, FS_IP = "fs", "10.10.0.60"
VOICEMAIL = "8500"
SECOND_PORT, SECOND_MEDIA = 5062, 6020     # a phone's second SIPp
PRC, SYM, LAN = "prc-phone", "sym-phone", "lanphone"   # alice, bob, dave


def _office():
    site = ne.office_site()
    return dataclasses.replace(site, hosts=dict(site.hosts, fs=FS_IP))


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    """Overrides conftest's topo: the near-end office (plus fs) and the
    remote NAT sites."""
    yield from labnet.module_topology(
        str(tmp_path_factory.mktemp("featne")),
        lambda lab: topology.build(lab, {}, [_office()] + ne.remote_sites()),
        tag="nf-")


@pytest.fixture(autouse=True)
def _fresh_conntrack(topo):
    """Each test starts with an empty conntrack table at the office router
    (a previous test's DNAT entries would rewrite ports in the next)."""
    yield
    if not topo.lab.closed:
        ne.flush_conntrack(topo["office-rtr"])


@pytest.fixture
def pinhole(own_pinhole):
    """pinhole behind the office NAT with the static public address, the
    voicemail route, keepalives every 60 s (none lands on a SIPp callee)
    and the near-end users."""
    over = ne.pinhole_overrides({"public_ip": ne.OFFICE_WAN,
                                 "keepalive_interval": "60"})
    over["routes"]["85"] = "sip:%s:5060" % FS_IP
    return own_pinhole(overrides=over, users=ne.USERS)


class FeatEnv(ne.NearEndEnv):
    """NearEndEnv whose place() also answers the LAN feature server's
    numbers (a SIPp UAS on fs, nothing to register)."""

    def _callee(self, call):
        if call.dst != FS:
            return super()._callee(call)
        return self.sipp(FS, call.callee_scenario, "uas-" + call.target,
                         media_port=labenv.MEDIA_PORT, pause_ms=300,
                         timeout=call.duration_ms // 1000 + 20,
                         keys={"user": call.target}).start()

    def uac(self, host, target, scenario, port=labenv.SIP_PORT,
            media_port=labenv.MEDIA_PORT, duration_ms=3000, timeout=25,
            ooc=None, keys=None):
        """A caller run (not started) from host as its PHONE_USER, to
        sip:target@domain through host's proxy (WAN or private face)."""
        user = ne.PHONE_USER[host]
        k = {"domain": ne.DOMAIN, "user": user}
        k.update(keys or {})
        return self.sipp(host, scenario, "uac-%s-to-%s" % (user, target),
                         remote=self.proxy_for(host), port=port,
                         media_port=media_port, service=target,
                         auth=(user, ne.USERS[user]), pause_ms=duration_ms,
                         timeout=timeout, ooc=ooc,
                         auth_uri=labenv.auth_uri("sip:%s@%s" % (
                             target, ne.DOMAIN)), keys=k)


@pytest.fixture
def env(topo, workdir, lab_report, pinhole):
    return FeatEnv(topo, workdir, lab_report, pinhole)


# -- helpers -----------------------------------------------------------------

def _received(run, first_line_re):
    return [m for m in ne.received_messages(run)
            if re.match(first_line_re, ne.first_line(m))]


def _sent(run, first_line_re):
    out = []
    for block in re.split(r"^-{10,}.*$", run.messages(), flags=re.M):
        m = re.search(r"message sent \(\d+ bytes\):\s*\n", block)
        if m:
            msg = block[m.end():].strip("\r\n")
            if re.match(first_line_re, ne.first_line(msg)):
                out.append(msg)
    return out


def _hdr(msg, name):
    vals = ne.header_values(msg, name)
    return vals[0] if vals else None


def _tag(value):
    m = re.search(r";\s*tag=([^;>\s]+)", value or "")
    return m.group(1) if m else None


def _relayed_at(env, caps, host, port=labenv.MEDIA_PORT,
                minimum=labenv.MIN_RTP):
    """>= minimum RTP packets reached host:port, every one from the face
    pinhole's relay shows host."""
    env.stop_captures(caps)
    pk = caps[host].packets_to(env.topo.ip(host), port)
    srcs = sorted({u.src for u in pk})
    face = env.face_for(host)
    assert len(pk) >= minimum and srcs == [face], (
        "%d RTP packets reached %s:%d from %s (need >= %d, all from the "
        "relay's face %s)" % (len(pk), host, port, srcs, minimum, face))
    return len(pk)


def _relayed_call(env, caps, run, seen, *talkers):
    """The call SIPp run placed was relayed both ways: _relayed_at each
    talker, (host,) or (host, media port), and the relay session of that
    call (in seen, from env.watch_relay) had media from both parties."""
    for talker in talkers:
        _relayed_at(env, caps, *talker)
    env.assert_relay_streams({k: v for k, v in seen.items()
                              if k == ne.call_id_of(run)})


def _call_with(env, c, callee, others=()):
    """Place Call c whose callee run is already listening (callee), with
    other runs (e.g. a ringing first hunt member) ending by themselves;
    then near_end_lab's check() of c and the others' outcome."""
    c.callee = callee
    caps = env.capture(c.src, c.dst)
    c.caller = env._caller(c).start(wait_bound=False)
    seen = env.watch_relay(c.caller)
    c.caller.wait()
    c.call_id = ne.call_id_of(c.caller)
    c.session = seen.get(c.call_id)
    callee.wait()
    for r in others:
        r.wait()
    env.stop_captures(caps)
    for h in (c.src, c.dst):
        c.rtp[h] = env.rtp_at(caps, h)
        c.sources[h] = env.media_sources(caps, h)
    problems = env.check(c)
    problems += ["%s: SIPp exit %s" % (r.name, r.rc) for r in others
                 if r.rc != 0]
    assert not problems, "\n".join(problems)
    return seen


# -- a: sequential hunt group --------------------------------------------------

def test_hunt_group_sequential(env, pinhole):
    """group 600 = bob (symmetric NAT), alice (port-restricted),
    sequential, ring_time=2: dave's call from the LAN rings bob for 2 s
    (CANCEL reaches him through both NATs: uas_ring.xml), then alice, who
    answers; relayed two-way media dave <-> alice."""
    pinhole.cli("group", "set", "600", "members=bob,alice",
                "mode=sequential", "ring_time=2")
    env.register_all([LAN, SYM, PRC])
    first = env.uas(SYM, "bob", scenario="uas_ring.xml")
    second = env.uas(PRC, "alice")
    t0 = time.monotonic()
    _call_with(env, Call(LAN, "600", PRC), second, others=[first])
    assert time.monotonic() - t0 >= 2, "alice rang before bob's ring time"
    assert "CANCEL" in "".join(ne.received_messages(first))


# -- b: blind transfer to a LAN phone -------------------------------------------

def test_blind_transfer_to_lan_phone(env, pinhole):
    """alice (port-restricted) calls bob (symmetric); bob REFERs her to
    sip:dave@example.com, the LAN phone. The REFER reaches alice through
    both NATs (202); her NOTIFYs 100 Trying / 200 OK (sipfrag) reach bob,
    who hangs up; her second line (port 5062, media 6020) calls dave
    through the office NAT: relayed both ways (alice hears the WAN face,
    dave the private one)."""
    env.register_all([PRC, SYM, LAN])
    bob = env.uas(SYM, "bob", scenario="feat_xfer_transferor.xml",
                  keys={"domain": ne.DOMAIN,
                        "refer_to": "sip:dave@%s" % ne.DOMAIN})
    dave = env.uas(LAN, "dave")
    caps = env.capture(PRC, LAN)
    alice = env.uac(PRC, "bob", "feat_xfer_transferee.xml",
                    duration_ms=6000, timeout=30).start(wait_bound=False)
    got = labnet.wait_until(lambda: _received(alice, r"REFER "),
                            timeout=8, interval=0.1)
    assert got, "the REFER did not reach alice (see sipp %s)" % alice.name
    assert "sip:dave@%s" % ne.DOMAIN in _hdr(got[0], "Refer-To"), got[0]
    second = env.uac(PRC, "dave", "ne_uac_rr2.xml", port=SECOND_PORT,
                     media_port=SECOND_MEDIA, timeout=15)
    seen = env.watch_relay(second.start(wait_bound=False))
    assert second.wait() == 0, "alice's call to dave failed (see sipp %s)" \
        % second.name
    env.wait_ok(dave, alice, bob)
    _relayed_call(env, caps, second, seen, (PRC, SECOND_MEDIA), (LAN,))


# -- c: MESSAGE ------------------------------------------------------------------

@pytest.mark.parametrize("sender", [LAN, PRC],
                         ids=["from-lan", "from-port-restricted"])
def test_message_to_remote_phone(env, pinhole, sender):
    """A MESSAGE to bob, behind the symmetric NAT, from the LAN phone or
    from alice (port-restricted): the body arrives (feat_message_uas.xml
    checks it), the 200 gets back."""
    env.register_all([sender, SYM])
    rx = env.uas(SYM, "bob", scenario="feat_message_uas.xml", timeout=10)
    rc = env.uac(sender, "bob", "feat_message_uac.xml", timeout=10).run()
    assert rc == 0, "MESSAGE from %s: SIPp exit %s" % (sender, rc)
    env.wait_ok(rx)
    [msg] = _received(rx, r"MESSAGE ")
    assert ne.top_via_host(msg) == ne.OFFICE_WAN, msg


# -- d: directed pickup ---------------------------------------------------------------

def test_directed_pickup_by_lan_phone(env, pinhole):
    """alice (port-restricted) calls bob (symmetric), bob's phone rings;
    dave on the LAN dials *78bob. pinhole sends dave's INVITE to alice's
    Contact through her flow (through the office NAT's forward and her
    NAT), with Replaces naming her early dialog exactly; she answers it
    (pickup_answer.xml) and CANCELs her first INVITE, which reaches bob's
    ringing phone; relayed two-way media dave <-> alice."""
    env.register_all([PRC, SYM, LAN])
    ringing = env.uas(SYM, "bob", scenario="uas_ring.xml", timeout=40)
    caps = env.capture(PRC, LAN)
    alice = env.uac(PRC, "bob", "pickup_caller.xml", duration_ms=1500,
                    timeout=40, ooc="pickup_answer.xml")
    alice.start(wait_bound=False)
    pinhole.wait_ringing()
    picker = env.uac(LAN, "*78bob", "ne_uac_rr2.xml", timeout=30)
    seen = env.watch_relay(picker.start(wait_bound=False))
    assert picker.wait() == 0, "dave's pickup failed (see sipp %s)" % \
        picker.name
    env.wait_ok(alice, ringing)

    invite = _sent(alice, r"INVITE sip:bob@")[-1]
    r180 = _received(alice, r"SIP/2\.0 180")[-1]
    [pick] = _received(alice, r"INVITE sip:alice@")
    want = "%s;to-tag=%s;from-tag=%s;early-only" % (
        _hdr(invite, "Call-ID"), _tag(_hdr(invite, "From")),
        _tag(_hdr(r180, "To")))
    assert _hdr(pick, "Replaces") == want, pick
    assert _hdr(pick, "From").startswith("<sip:dave@"), pick
    assert ne.rr_hosts(pick) == [ne.OFFICE_WAN, ne.SRV], pick
    assert "CANCEL" in "".join(ne.received_messages(ringing))
    _relayed_call(env, caps, picker, seen, (PRC,), (LAN,))


# -- e: the LAN voicemail ---------------------------------------------------------------

@pytest.mark.parametrize("host", [SYM, PRC],
                         ids=["from-symmetric", "from-port-restricted"])
def test_voicemail_on_lan_feature_server(env, pinhole, host):
    """A remote phone dials 8500, routed to the LAN feature server (SIPp
    UAS streaming RTP): two-way media through the relay, each side shown
    its own face in SDP, Via and Record-Route (near_end_lab's check)."""
    env.register_all([host])
    env.round([Call(host, VOICEMAIL, FS)])

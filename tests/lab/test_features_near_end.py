"""Telephony features with pinhole behind the office's own NAT (issue 5).

The near-end topology of test_near_end.py (near_end_lab): the office
router (WAN 203.0.113.1) masquerades the office LAN and forwards UDP+TCP
5060 and UDP 30000-30100 (the relay's range) to the server 10.10.0.10;
pinhole runs with [nat] behind_nat = yes, public_ip = 203.0.113.1. Remote
phones use the WAN address as their proxy: alice on prc-phone
(port-restricted NAT), bob on sym-phone (symmetric NAT); dave is the LAN
phone (10.10.0.21, proxy 10.10.0.10). This module adds the LAN feature
server fs (10.10.0.60, BLF extension 8201 through [routes] "82",
voicemail 8500 through "85", conference 8600 through "86", music on
hold / park 8700 through "87") and uses prc2-phone (port-restricted NAT)
as a user's second device or gina's phone.

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
  f. simultaneous ring: a user's two remote devices ring, the symmetric
     one answers, the other gets CANCEL
  g. forward on busy: a remote phone answers 486, the call from the LAN
     goes on to a remote user behind the symmetric NAT
  h. MWI: a remote phone subscribes to the LAN voicemail server; its
     solicited and unsolicited NOTIFYs reach the phone
  i. paging: the LAN paging server pages two remote phones at once
     (Call-Info answer-after=0)
  j. music on hold: the LAN server holds a remote caller and keeps the
     music flowing to it
  k. attended transfer: a remote phone holds the other, consults the LAN
     phone, REFERs with Replaces; the transferee's INVITE with Replaces
     reaches the LAN phone intact and is relayed both ways
  l. BLF: a remote phone subscribes to Event: dialog of an extension on
     the LAN BLF server; solicited and unsolicited NOTIFYs reach it
  m. a remote phone calls the LAN conference number
  n. call park: a remote phone REFERs the other to the park number on
     the LAN server; the new call is relayed both ways
  o. 3xx: a remote phone answers 302 to another remote user, pinhole
     follows it
  p. forward always: a remote phone's call to the LAN user goes to a
     remote user behind the symmetric NAT
  q. video added by a re-INVITE from the symmetric-NAT phone: both
     streams relayed

"Relayed" here is near_end_lab's check(): >= 50 RTP packets at each
talking phone, every one from the face pinhole shows it (the office WAN
address to remote phones, 10.10.0.10 to LAN phones), the relay session in
/api/calls carrying media from both sides; for a, e, f, g, m, o and p
also the Record-Route / top Via / SDP faces of the callee's INVITE.
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
    feature server's routes (BLF, voicemail, conference, music on hold), keepalives every 60 s (none lands on a SIPp callee)
    and the near-end users."""
    over = ne.pinhole_overrides({"public_ip": ne.OFFICE_WAN,
                                 "keepalive_interval": "60"})
    # BLF 8201, voicemail, conference, music on hold / park
    for prefix in ("82", "85", "86", "87"):
        over["routes"][prefix] = "sip:%s:5060" % FS_IP
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


# -- the second round: the public-server features, now behind the NAT --------
# (issue 5) The features test_features_nat.py proves with pinhole on a
# public address, here with pinhole behind the office NAT: each has a
# phone behind the symmetric NAT, and counts relayed RTP where people talk.
# prc2-phone (port-restricted, gina's in near_end_lab) is carol's second
# device.
# The attended transfer reuses test_features_nat's scenarios and its
# attended_transfer_setup (the target's SIPp takes two calls).

import urllib.parse                # noqa: E402

import pcap                        # noqa: E402
import sipp                        # noqa: E402
from test_features_nat import attended_transfer_setup   # noqa: E402

PRC2 = "prc2-phone"
MOH = "8700"                       # music on hold on fs ([routes] 87)


def _rr_and_via(msg, want_rr):
    """A request pinhole forwarded carries exactly the Record-Route hosts
    want_rr (the receiver's face first) and that face as its top Via."""
    return ne.rr_hosts(msg) == want_rr and \
        ne.top_via_host(msg) == want_rr[0]


# -- f: simultaneous ring of two remote devices -----------------------------

def test_simultaneous_ring_two_remote_devices(env, pinhole):
    """carol has two devices, behind the symmetric NAT (sym-phone) and a
    port-restricted one (prc2-phone), both 192.168.1.10:5060 in their
    homes; alice (port-restricted) calls her through the office NAT: both
    ring, the symmetric one answers with relayed two-way media (faces
    checked), the other gets the CANCEL through both NATs
    (uas_ring.xml)."""
    env.register_all([PRC])
    env.register_as(SYM, "carol")
    env.register_as(PRC2, "carol")
    publics = sorted(str(b["public"]).split(":")[0]
                     for b in pinhole.bindings_for("carol"))
    assert publics == ["203.0.113.24", "203.0.113.26"], publics
    answer = env.uas(SYM, "carol", answer_ms=1000)
    ring = env.uas(PRC2, "carol", scenario="uas_ring.xml")
    _call_with(env, Call(PRC, "carol", SYM), answer, others=[ring])
    [inv] = _received(ring, r"INVITE ")
    assert _rr_and_via(inv, [ne.OFFICE_WAN]), inv
    assert _received(ring, r"CANCEL ")


# -- g: forward on busy to a remote user ------------------------------------

def test_forward_busy_to_remote_user(env, pinhole):
    """alice (port-restricted) answers 486; forward_busy=bob sends dave's
    call from the LAN to bob behind the symmetric NAT, who answers:
    relayed two-way media dave <-> bob, double Record-Route and faces
    (check()); the 486 never reaches dave (his scenario would fail)."""
    pinhole.cli("user", "set", "alice", "forward_busy=bob")
    env.register_all([LAN, PRC, SYM])
    busy = env.uas(PRC, "alice", scenario="feat_uas_busy.xml")
    bob = env.uas(SYM, "bob")
    _call_with(env, Call(LAN, "alice", SYM), bob, others=[busy])


# -- h: MWI ------------------------------------------------------------------

def test_mwi_from_lan_voicemail(env, pinhole):
    """bob (symmetric NAT) subscribes to message-summary at 8500, the
    voicemail server on the office LAN: the SUBSCRIBE reaches fs
    Record-Routed [private face, WAN face]; the solicited NOTIFY
    (Messages-Waiting: no) and an unsolicited one 3 s later (yes), in
    dialog from fs, reach bob through the office NAT's forward and his
    NAT (top Via the WAN face); their 200s get back
    (feat_mwi_subscribe/server.xml)."""
    env.register_all([SYM])
    vm = env.sipp(FS, "feat_mwi_server.xml", "mwi-server", pause_ms=3000,
                  timeout=20, keys={"user": VOICEMAIL}).start()
    sub = env.uac(SYM, VOICEMAIL, "feat_mwi_subscribe.xml", timeout=20)
    assert sub.run() == 0, "bob's subscription failed (see sipp %s)" % \
        sub.name
    env.wait_ok(vm)
    [subscribe] = _received(vm, r"SUBSCRIBE ")
    assert _rr_and_via(subscribe, [ne.SRV, ne.OFFICE_WAN]), subscribe
    notifies = _received(sub, r"NOTIFY ")
    assert len(notifies) == 2, notifies
    for n, waiting in zip(notifies, ("no", "yes")):
        assert ne.top_via_host(n) == ne.OFFICE_WAN, n
        assert "Messages-Waiting: %s" % waiting in n, n


# -- i: paging ----------------------------------------------------------------

def test_paging_two_remote_phones(env, pinhole):
    """The LAN paging server (fs, trusted by address as a [routes] peer)
    pages bob (symmetric NAT) and alice (port-restricted) at once with
    Call-Info answer-after=0 (checked by feat_uas_autoanswer.xml): each
    INVITE reaches its phone through the office NAT (WAN face, double
    Record-Route), both answer, and the page is relayed both ways: >= 50
    RTP packets at each phone from the WAN face and at each of fs's two
    media ports from the private face."""
    env.register_all([SYM, PRC])
    hosts = (SYM, PRC)
    phones = [env.uas(h, ne.PHONE_USER[h],
                      scenario="feat_uas_autoanswer.xml") for h in hosts]
    caps = env.capture(FS, *hosts)
    pagers = []
    for i, h in enumerate(hosts):
        user = ne.PHONE_USER[h]
        pagers.append(env.sipp(
            FS, "feat_page_uac.xml", "page-" + user,
            remote=env.proxy_for(FS), port=labenv.SIP_PORT + 2 * i,
            media_port=labenv.MEDIA_PORT + 20 * i, service=user,
            pause_ms=3000, timeout=20,
            keys={"domain": ne.DOMAIN, "user": "page"}).start(
                wait_bound=False))
    seen = env.watch_relay(pagers[-1])
    env.wait_ok(*pagers)
    env.wait_ok(*phones)
    for phone in phones:
        [inv] = _received(phone, r"INVITE ")
        assert _rr_and_via(inv, [ne.OFFICE_WAN, ne.SRV]), inv
    for i, h in enumerate(hosts):
        _relayed_call(env, caps, pagers[i], seen, (h,),
                      (FS, labenv.MEDIA_PORT + 20 * i))


# -- j: music on hold ---------------------------------------------------------

def test_music_on_hold_from_lan_server(env, pinhole):
    """bob (symmetric NAT) calls 8700, the music-on-hold server on the
    office LAN; they talk (>= 25 packets of bob's audio at fs, from the
    private face) until fs holds him with a re-INVITE a=sendonly along
    the route set, through the office NAT's forward and his NAT (answered
    a=recvonly: he stops sending) and keeps streaming: >= 50 RTP packets
    reach bob from the WAN face after the re-INVITE arrived."""
    env.register_all([SYM])
    moh = env.uas(FS, MOH, scenario="feat_moh_server.xml")
    caps = env.capture(SYM, FS, snaplen=2048)
    bob = env.uac(SYM, MOH, "feat_uac_held.xml").start(wait_bound=False)
    seen = env.watch_relay(bob)
    assert bob.wait() == 0, "bob's call to 8700 failed (see sipp %s)" % \
        bob.name
    env.wait_ok(moh)
    env.stop_captures(caps)
    [hold] = _received(bob, r"INVITE ")
    assert "a=sendonly" in hold and ne.top_via_host(hold) == ne.OFFICE_WAN, \
        hold
    phone_ip = env.topo.ip(SYM)
    holds = [u.ts for u in pcap.read_udp(caps[SYM].path)
             if u.dst == phone_ip and u.dport == labenv.SIP_PORT and
             u.payload.startswith(b"INVITE ") and b"a=sendonly" in u.payload]
    assert holds, "the hold re-INVITE is not in bob's capture"
    pk = caps[SYM].packets_to(phone_ip, labenv.MEDIA_PORT)
    after = [u for u in pk if u.ts > holds[0] + 0.1]
    assert len(after) >= labenv.MIN_RTP, (
        "music after the hold: %d packets (of %d)" % (len(after), len(pk)))
    assert {u.src for u in after} == {ne.OFFICE_WAN}, {u.src for u in after}
    _relayed_at(env, caps, FS, minimum=labenv.MIN_RTP // 2)
    env.assert_relay_streams(seen, minimum=labenv.MIN_RTP // 2)


# -- k: attended transfer -----------------------------------------------------

def test_attended_transfer_to_lan_phone(env, pinhole):
    """Attended transfer (RFC 5589 section 7) across the office NAT: bob
    (symmetric) calls alice (port-restricted), who holds him (re-INVITE
    a=sendonly through both NATs, answered a=recvonly), calls dave on the
    LAN from her second line (feat2_att_consult.xml, port 5062: Call-ID
    and From tag fixed up front so her first line can name that dialog),
    then REFERs bob with Refer-To: <sip:dave@example.com?Replaces=...>.
    bob's second line (5062, media 6020) INVITEs dave with the unescaped
    Replaces through the office NAT; dave (one SIPp taking both calls,
    feat2_att_target.xml) gets it equal to his dialog with alice as he
    sees it (Call-ID, to-tag = his tag, from-tag = alice's), Record-Routed
    [private face, WAN face], answers, then BYEs alice's second line;
    the sipfrag NOTIFYs reach alice. Relayed two-way RTP bob <-> dave:
    >= 50 packets at bob's 6020 from the WAN face, >= 50 at dave from the
    private face and the new call's relay port."""
    env.register_all([SYM, PRC, LAN])
    consult_call_id, alice_tag, refer_to, dave = attended_transfer_setup(
        env, LAN, "dave", ne.DOMAIN, env.topo.ip(PRC))
    alice = env.uas(PRC, "alice", scenario="feat2_att_transferor.xml",
                    answer_ms=3000, timeout=40,
                    keys={"domain": ne.DOMAIN, "refer_to": refer_to})
    caps = env.capture(SYM, LAN)
    bob = env.uac(SYM, "alice", "feat2_att_transferee.xml",
                  duration_ms=5000, timeout=40).start(wait_bound=False)
    held = labnet.wait_until(lambda: _received(bob, r"INVITE "),
                             timeout=8, interval=0.1)
    assert held, "alice's hold re-INVITE did not reach bob (see sipp %s)" \
        % bob.name
    consult = env.sipp(PRC, "feat2_att_consult.xml", "uac-alice-to-dave",
                       remote=env.proxy_for(PRC), port=SECOND_PORT,
                       media_port=SECOND_MEDIA, service="dave",
                       auth=("alice", ne.USERS["alice"]), timeout=40,
                       auth_uri=labenv.auth_uri("sip:dave@%s" % ne.DOMAIN),
                       cid_str=consult_call_id,
                       keys={"domain": ne.DOMAIN, "user": "alice",
                             "from_tag": alice_tag}).start(wait_bound=False)

    got = labnet.wait_until(lambda: _received(bob, r"REFER "),
                            timeout=10, interval=0.1)
    assert got, "the REFER did not reach bob (see sipp %s)" % bob.name
    m = re.match(r"<([^>]*)>", _hdr(got[0], "Refer-To") or "")
    assert m and m.group(1) == refer_to, (
        "Refer-To at bob %r, alice sent %r" % (m and m.group(1), refer_to))
    target, _, headers = m.group(1).partition("?")
    second = env.uac(SYM, "dave", "feat2_att_replacing.xml",
                     port=SECOND_PORT, media_port=SECOND_MEDIA,
                     timeout=20, keys={"replaces": urllib.parse.parse_qs(
                         headers)["Replaces"][0]})
    seen = env.watch_relay(second.start(wait_bound=False))
    assert second.wait() == 0, "bob's INVITE with Replaces failed " \
        "(see sipp %s)" % second.name
    env.wait_ok(dave, consult, bob, alice)

    # dave got the Replaces intact: his dialog with alice as he sees it
    invites = _received(dave, r"INVITE ")
    consult_invite = [p for p in invites if _hdr(p, "Replaces") is None]
    replacing = [p for p in invites if _hdr(p, "Replaces") is not None]
    ok200 = [p for p in _sent(dave, r"SIP/2\.0 200 ")
             if _hdr(p, "Call-ID") == consult_call_id and
             _hdr(p, "CSeq").endswith("INVITE")]
    assert consult_invite and replacing and ok200, sipp.order(dave)
    want = "%s;to-tag=%s;from-tag=%s" % (
        _hdr(consult_invite[0], "Call-ID"), _tag(_hdr(ok200[0], "To")),
        _tag(_hdr(consult_invite[0], "From")))
    assert _hdr(replacing[0], "Replaces") == want, (
        "Replaces at dave %r, his dialog with alice is %r" % (
            _hdr(replacing[0], "Replaces"), want))
    assert _hdr(replacing[0], "From").startswith("<sip:bob@"), replacing[0]
    assert _rr_and_via(replacing[0], [ne.SRV, ne.OFFICE_WAN]), replacing[0]
    # ... and ended that dialog (BYE to alice) once it was replaced
    order = sipp.order(dave)
    rep = [i for i, l in enumerate(order)
           if l.startswith("received INVITE ") and consult_call_id not in l]
    bye = [i for i, l in enumerate(order)
           if l.startswith("sent BYE ") and l.endswith(consult_call_id)]
    assert rep and bye and rep[0] < bye[0], order

    # two-way media bob <-> dave through the relay
    port = int(re.search(r"^m=audio (\d+)", replacing[0], re.M).group(1))
    from_new = [u for u in caps[LAN].packets_to(env.topo.ip(LAN),
                                                labenv.MEDIA_PORT)
                if u.src == ne.SRV and u.sport == port]
    assert len(from_new) >= labenv.MIN_RTP, (
        "%d RTP packets of the new call (relay port %d) reached dave" % (
            len(from_new), port))
    _relayed_call(env, caps, second, seen, (SYM, SECOND_MEDIA))


# -- the third round: the rest of the public-server features -----------------
# (issue 5) BLF, conference, park, 3xx, forward always and video added by
# re-INVITE, with pinhole behind the office NAT. fs also answers the BLF
# extension 8201 ([routes] 82) and the conference 8600 ([routes] 86);
# scenarios, numbers and the video helpers come from test_features_nat.py
# and test_nat_scenarios.py.

import os                          # noqa: E402

from test_features_nat import BLF_EXTENSION, CONFERENCE   # noqa: E402
from test_nat_scenarios import (VIDEO_PORT, _sdp_target,  # noqa: E402
                                video_exchange)


# -- l: busy-lamp field ---------------------------------------------------------

def test_blf_from_lan_server(env, pinhole):
    """bob (symmetric NAT) subscribes to Event: dialog of 8201, served by
    the BLF server on the office LAN (fs, [routes] 82): the SUBSCRIBE
    reaches fs Record-Routed [private face, WAN face]; the solicited
    NOTIFY (dialog-info+xml version 0) and an unsolicited one 3 s later
    (version 1, state early), in dialog from fs, reach bob through the
    office NAT's forward and his NAT (top Via the WAN face); their 200s
    get back (feat2_blf_subscribe/server.xml)."""
    env.register_all([SYM])
    blf = env.sipp(FS, "feat2_blf_server.xml", "blf-server", pause_ms=3000,
                   timeout=20, keys={"user": BLF_EXTENSION}).start()
    sub = env.uac(SYM, BLF_EXTENSION, "feat2_blf_subscribe.xml", timeout=20)
    assert sub.run() == 0, "bob's BLF subscription failed (see sipp %s)" % \
        sub.name
    env.wait_ok(blf)
    [subscribe] = _received(blf, r"SUBSCRIBE ")
    assert _rr_and_via(subscribe, [ne.SRV, ne.OFFICE_WAN]), subscribe
    notifies = _received(sub, r"NOTIFY ")
    assert len(notifies) == 2, notifies
    entity = 'entity="sip:%s@%s"' % (BLF_EXTENSION, ne.DOMAIN)
    for n in notifies:
        assert ne.top_via_host(n) == ne.OFFICE_WAN, n
        assert entity in n and "<dialog-info" in n, n
        assert _hdr(n, "Event") == "dialog", n
    assert "<state>early</state>" in notifies[1], notifies[1]


# -- m: conference ----------------------------------------------------------------

def test_conference_on_lan_feature_server(env, pinhole):
    """bob (symmetric NAT) dials the conference 8600 on the LAN feature
    server ([routes] 86): env.round() - two-way media through the relay,
    faces in SDP, Via and Record-Route [private face, WAN face]."""
    env.register_all([SYM])
    env.round([Call(SYM, CONFERENCE, FS)])


# -- n: call park -------------------------------------------------------------------

def test_park_remote_caller_on_lan_server(env, pinhole):
    """Call park: bob (symmetric) calls alice (port-restricted), who
    REFERs him to sip:8700@example.com, the park number on the LAN
    server. The REFER reaches bob through both NATs (202), his NOTIFYs
    100 Trying / 200 OK (sipfrag) reach alice, who hangs up; bob's second
    line (5062, media 6020) calls 8700 through the office NAT
    (ne_uac_rr2.xml): relayed both ways (bob hears the WAN face, fs the
    private one), fs's INVITE Record-Routed [private face, WAN face]."""
    env.register_all([SYM, PRC])
    alice = env.uas(PRC, "alice", scenario="feat_xfer_transferor.xml",
                    keys={"domain": ne.DOMAIN,
                          "refer_to": "sip:%s@%s" % (MOH, ne.DOMAIN)})
    park = env.uas(FS, MOH)
    caps = env.capture(SYM, FS)
    bob = env.uac(SYM, "alice", "feat_xfer_transferee.xml",
                  duration_ms=6000, timeout=30).start(wait_bound=False)
    got = labnet.wait_until(lambda: _received(bob, r"REFER "),
                            timeout=8, interval=0.1)
    assert got, "the REFER did not reach bob (see sipp %s)" % bob.name
    assert "sip:%s@%s" % (MOH, ne.DOMAIN) in _hdr(got[0], "Refer-To"), got[0]
    second = env.uac(SYM, MOH, "ne_uac_rr2.xml", port=SECOND_PORT,
                     media_port=SECOND_MEDIA, timeout=15)
    seen = env.watch_relay(second.start(wait_bound=False))
    assert second.wait() == 0, "bob's call to the park number failed " \
        "(see sipp %s)" % second.name
    env.wait_ok(park, bob, alice)
    [inv] = _received(park, r"INVITE ")
    assert _rr_and_via(inv, [ne.SRV, ne.OFFICE_WAN]), inv
    _relayed_call(env, caps, second, seen, (SYM, SECOND_MEDIA), (FS,))


# -- o: 3xx recursion ------------------------------------------------------------------

def test_redirect_followed_to_remote_user(env, pinhole):
    """alice (port-restricted) answers 302 with Contact
    sip:bob@example.com; pinhole follows it itself and rings bob behind
    the symmetric NAT, who answers gina (prc2-phone, port-restricted):
    check() of gina -> bob (Record-Route = WAN face, faces, relayed); the
    302 never reaches gina (her scenario would fail on it) and alice's
    phone gets its ACK (feat_uas_redirect.xml)."""
    env.register_all([PRC2, PRC, SYM])
    moved = env.uas(PRC, "alice", scenario="feat_uas_redirect.xml",
                    keys={"target": "bob", "domain": ne.DOMAIN})
    bob = env.uas(SYM, "bob")
    _call_with(env, Call(PRC2, "alice", SYM), bob, others=[moved])


# -- p: forward always ------------------------------------------------------------------

def test_forward_always_to_remote_user(env, pinhole):
    """forward_always=bob: alice's (port-restricted) call to dave, whose
    phone is on the office LAN and never rings, goes straight to bob
    behind the symmetric NAT: check() of alice -> bob (Record-Route = WAN
    face, faces, relayed); no INVITE reaches the LAN phone."""
    pinhole.cli("user", "set", "dave", "forward_always=bob")
    env.register_all([LAN, PRC, SYM])
    lan = env.capture(LAN, snaplen=2048)
    bob = env.uas(SYM, "bob")
    _call_with(env, Call(PRC, "dave", SYM), bob)
    env.stop_captures(lan)
    invites = [u for u in pcap.read_udp(lan[LAN].path)
               if u.payload.startswith(b"INVITE ")]
    assert not invites, "dave's own phone was rung despite forward_always"


# -- q: video added by re-INVITE -------------------------------------------------------

def test_reinvite_adds_video_from_symmetric(env, pinhole, topo):
    """bob (symmetric NAT) calls alice (port-restricted) and re-INVITEs
    adding m=video (uac_video.xml / uas_video.xml): the offer at alice
    and the answer at bob name the relay's WAN face for video; video
    sent by each phone from its SDP port to the relay port it was given
    arrives at the other (>= 50 of 150, all from the WAN face), the audio
    too, and the call's relay session in /api/calls carries both streams
    from both sides."""
    env.register_all([SYM, PRC])
    keys = {"video_port": VIDEO_PORT}
    uas = env.uas(PRC, "alice", scenario="uas_video.xml", keys=keys,
                  timeout=30)
    caps = env.capture(SYM, PRC)
    run = env.uac(SYM, "alice", "uac_video.xml", duration_ms=4500,
                  keys=keys, timeout=30).start(wait_bound=False)

    def video(r):
        return [m for m in ne.received_messages(r) if "m=video" in m]

    def targets():
        offer, answer = video(uas), video(run)
        if offer and answer:
            return (_sdp_target(answer[-1], "video"),
                    _sdp_target(offer[-1], "video"))
        return None
    found = labnet.wait_until(targets, timeout=8, interval=0.1)
    rc, seen = video_exchange(env, topo, (SYM, PRC), found, run)
    assert found, "no m=video in the re-INVITE at alice and in its 200 " \
        "at bob (see the SIPp traces)"
    assert rc == 0, "bob's SIPp exit %s (see sipp %s)" % (rc, run.name)
    env.wait_ok(uas)
    assert found[0][0] == ne.OFFICE_WAN and found[1][0] == ne.OFFICE_WAN, (
        "video not offered/answered through the relay's WAN face: %s" % (
            found,))
    _relayed_at(env, caps, SYM)
    _relayed_at(env, caps, PRC)
    for h in (SYM, PRC):
        _relayed_at(env, caps, h, port=VIDEO_PORT)
    sess = env.assert_relay_streams(
        {k: v for k, v in seen.items() if k == ne.call_id_of(run)},
        nstreams=2)
    assert len(sess["streams"]) == 2, sess

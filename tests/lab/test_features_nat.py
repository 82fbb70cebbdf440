"""Telephony features through real NATs (issue 5): simultaneous ring,
sequential hunt group, forwarding on busy and unconditional, 3xx
recursion, MESSAGE,
MWI (SUBSCRIBE/NOTIFY with a LAN voicemail server), the LAN feature server
(voicemail, conference, paging, music on hold), blind transfer and call
park (REFER/NOTIFY), and the REFER policy refusing a transfer to a
private address outside the intranet.

Every phone is SIPp behind a lab nftables NAT; every scenario has at least
one phone behind the symmetric NAT. Calls count RTP where it lands
(tcpdump at the phones that end up talking, >= 50 packets each way, all
from pinhole's relay address); signalling is checked by the SIPp
scenarios themselves (each fails on a missing or unexpected message).

Topology (own module fixture): the office (srv = pinhole, fs = the LAN
feature server 10.10.0.60 reached through [routes] "8", gw), and three
home sites, each LAN 192.168.1.0/24 with its phone at 192.168.1.10:
sym-phone (symmetric, WAN 203.0.113.24), prc-phone (port-restricted,
.23), rc-phone (address-restricted, .22).

Feature numbers on fs: 8500 voicemail, 8600 conference, 8700 music on
hold / park.
"""

import re
import time

import pytest

import labenv
import labnet
import sipp
import topology

RELAY_IP = "10.10.0.10"            # srv: pinhole's relay
FS = "fs"                          # LAN feature server
FS_IP = "10.10.0.60"
PHONE_IP = "192.168.1.10"
SYM, PRC, RC = "sym-phone", "prc-phone", "rc-phone"
WAN = {SYM: "203.0.113.24", PRC: "203.0.113.23", RC: "203.0.113.22"}
VOICEMAIL, CONFERENCE, MOH = "8500", "8600", "8700"
SECOND_PORT, SECOND_MEDIA = 5062, 6020     # a phone's second SIPp
DEVICE2_PORT = 5064                        # a user's second device

OFFICE = topology.Site(
    name="office", wan_ip="203.0.113.1", lan="10.10.0.0/24",
    router_ip="10.10.0.1", hosts=dict(topology.OFFICE.hosts, fs=FS_IP))


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    """Overrides conftest's topo for this module."""
    yield from labnet.module_topology(
        str(tmp_path_factory.mktemp("featnat")),
        lambda lab: topology.build(lab, dict(topology.PUBLIC),
                                   [OFFICE] + topology.nat_homes()))


@pytest.fixture
def pinhole(own_pinhole):
    """conftest's pinhole plus the feature server route; keepalives every
    60 s so none lands on a SIPp callee during a test (a UAS takes an
    out-of-dialog OPTIONS for a new call)."""
    return own_pinhole(overrides={
        "routes": {"9": "sip:10.10.0.50:5060",
                   "8": "sip:%s:5060" % FS_IP},
        "nat": {"keepalive_interval": "60"}})


# -- helpers --------------------------------------------------------------------

def _behind_nat(pinhole, user, host):
    bs = [b for b in pinhole.bindings_for(user)
          if str(b.get("public", "")).startswith(WAN[host] + ":")]
    assert bs and bs[0]["verdict"] == "behind-nat", (
        "%s's binding from %s: %s" % (user, host, pinhole.bindings_for(user)))


def _relayed(env, caps, host, port=labenv.MEDIA_PORT,
             minimum=labenv.MIN_RTP):
    """>= minimum RTP packets reached host:port, every one from the
    relay. Returns the count."""
    env.stop_captures(caps)
    pk = caps[host].packets_to(env.topo.ip(host), port)
    srcs = sorted({u.src for u in pk})
    assert len(pk) >= minimum, ("%d RTP packets reached %s:%d (need %d); "
                                "from %s" % (len(pk), host, port, minimum,
                                             srcs))
    assert srcs == [RELAY_IP], ("%s:%d got RTP not (only) from the relay: "
                                "%s" % (host, port, srcs))
    return len(pk)


def _call(env, caller_host, caller, target, callee_runs, talkers,
          duration_ms=3000, **kw):
    """caller_host calls target as caller while callee_runs answer/ring;
    asserts the call, that every callee run ended well, relayed two-way
    RTP at the talkers, and packets from both parties in /api/calls."""
    caps = env.capture(*talkers)
    _, seen = env.call_watched(caller_host, target, caller,
                               duration_ms=duration_ms, **kw)
    env.wait_ok(*callee_runs)
    for h in talkers:
        _relayed(env, caps, h)
    env.assert_relay_streams(seen)
    return caps, seen


def _received(run, first_line_re):
    """Messages a SIPp run received whose first line matches."""
    parts = re.split(r"^-{20,}.*$", run.messages(), flags=re.M)
    out = []
    for p in parts:
        if "message received" not in p:
            continue
        lines = [l.strip() for l in p.splitlines() if l.strip()]
        # lines[0] is "UDP message received [N] bytes :"
        if len(lines) > 1 and re.match(first_line_re, lines[1]):
            out.append(p)
    return out


def _alice_calls_bob(env, scenario, duration_ms, timeout):
    """alice (symmetric NAT) calls bob with a transferee scenario, in the
    background; returns her run."""
    alice = env.caller(SYM, "bob", "alice", duration_ms=duration_ms,
                       scenario=scenario, timeout=timeout)
    alice.start(wait_bound=False)
    return alice


def _reaches_alice(alice, first_line_re, what, timeout=8):
    """Waits until alice's run received a message whose first line
    matches (what: its name in the failure); returns those messages."""
    got = labnet.wait_until(lambda: _received(alice, first_line_re),
                            timeout=timeout, interval=0.1)
    assert got, "%s did not reach alice (see sipp %s)" % (what, alice.name)
    return got


# -- 1: simultaneous ring ----------------------------------------------------------

def test_simultaneous_ring_two_devices(env, pinhole):
    """alice has two devices, behind the symmetric and the port-restricted
    NAT; carol (restricted NAT) calls her: both ring, the symmetric one
    answers with two-way media, the other gets CANCEL (uas_ring.xml).
    The second device uses port 5064: with the same private ip:port in
    both homes the second REGISTER replaces the first (see
    test_same_private_contact_in_two_homes)."""
    env.register(SYM, "alice")
    env.register(PRC, "alice", port=DEVICE2_PORT)
    _behind_nat(pinhole, "alice", SYM)
    _behind_nat(pinhole, "alice", PRC)
    env.register(RC, "carol")
    answer = env.uas(SYM, "alice", answer_ms=1000)
    ring = env.uas(PRC, "alice", scenario="uas_ring.xml", port=DEVICE2_PORT)
    _call(env, RC, "carol", "alice", [answer, ring], (RC, SYM))


def test_same_private_contact_in_two_homes(env, pinhole):
    """Two homes, the same default phone address 192.168.1.10:5060, one
    user: both devices must stay registered (and ring)."""
    env.register(SYM, "alice")
    env.register(PRC, "alice")
    publics = sorted(str(b["public"]).split(":")[0]
                     for b in pinhole.bindings_for("alice"))
    assert publics == sorted([WAN[PRC], WAN[SYM]]), publics


def test_simultaneous_ring_also_ring(env, pinhole):
    """also_ring: bob's own phone (symmetric NAT) and alice (port-
    restricted) ring together; alice answers, bob's phone gets CANCEL."""
    pinhole.cli("user", "set", "bob", "also_ring=alice")
    env.register(SYM, "bob")
    env.register(PRC, "alice")
    env.register(RC, "carol")
    ring = env.uas(SYM, "bob", scenario="uas_ring.xml")
    answer = env.uas(PRC, "alice", answer_ms=1000)
    _call(env, RC, "carol", "bob", [answer, ring], (RC, PRC))


# -- 2: sequential hunt group ---------------------------------------------------------

def test_hunt_group_sequential(env, pinhole):
    """group 600: alice (symmetric NAT) rings for ring_time=2 s without
    answering and gets CANCEL; then bob (port-restricted) rings and
    answers; carol (restricted) talks to bob."""
    pinhole.cli("group", "set", "600", "members=alice,bob",
                "mode=sequential", "ring_time=2")
    env.register(SYM, "alice")
    env.register(PRC, "bob")
    env.register(RC, "carol")
    first = env.uas(SYM, "alice", scenario="uas_ring.xml")
    second = env.uas(PRC, "bob")
    t0 = time.monotonic()
    _call(env, RC, "carol", "600", [first, second], (RC, PRC))
    assert time.monotonic() - t0 >= 2, "bob rang before alice's ring time"


# -- 3: forwarding ----------------------------------------------------------------------

def test_forward_busy_to_remote(env, pinhole):
    """alice (symmetric NAT) answers 486; forward_busy=bob sends the call
    to bob behind the port-restricted NAT; carol talks to bob."""
    pinhole.cli("user", "set", "alice", "forward_busy=bob")
    env.register(SYM, "alice")
    env.register(PRC, "bob")
    env.register(RC, "carol")
    busy = env.uas(SYM, "alice", scenario="feat_uas_busy.xml")
    bob = env.uas(PRC, "bob")
    _call(env, RC, "carol", "alice", [busy, bob], (RC, PRC))


def test_forward_always_to_remote(env, pinhole):
    """forward_always=bob: a call to alice (registered on the LAN, never
    rung) goes straight to bob behind the symmetric NAT."""
    pinhole.cli("user", "set", "alice", "forward_always=bob")
    env.register("lanphone", "alice")
    alice = env.capture("lanphone", snaplen=2048)
    env.register(SYM, "bob")
    env.register(PRC, "carol")
    bob = env.uas(SYM, "bob")
    _call(env, PRC, "carol", "alice", [bob], (PRC, SYM))
    env.stop_captures(alice)
    import pcap
    invites = [u for u in pcap.read_udp(alice["lanphone"].path)
               if u.payload.startswith(b"INVITE ")]
    assert not invites, "alice's own phone was rung despite forward_always"


def test_redirect_followed_to_remote(env, pinhole):
    """alice (symmetric NAT) answers 302 with Contact sip:bob@example.com;
    pinhole follows the redirect itself and rings bob (port-restricted);
    carol talks to bob. The 302 never reaches carol (her scenario would
    fail on it)."""
    env.register(SYM, "alice")
    env.register(PRC, "bob")
    env.register(RC, "carol")
    moved = env.uas(SYM, "alice", scenario="feat_uas_redirect.xml",
                    keys={"target": "bob", "domain": labenv.DOMAIN})
    bob = env.uas(PRC, "bob")
    _call(env, RC, "carol", "alice", [moved, bob], (RC, PRC))


# -- 4: MESSAGE -------------------------------------------------------------------------

def test_message_through_nat(env, pinhole):
    """carol (port-restricted NAT) sends MESSAGE to alice, whose device is
    behind the symmetric NAT: it arrives (body checked) and the 200 comes
    back; a MESSAGE to bob, registered nowhere, is answered 480."""
    env.register(SYM, "alice")
    env.register(PRC, "carol")
    _behind_nat(pinhole, "alice", SYM)
    rx = env.uas(SYM, "alice", scenario="feat_message_uas.xml", timeout=10)
    env.call(PRC, "alice", "carol", scenario="feat_message_uac.xml",
             timeout=10)
    env.wait_ok(rx)
    env.call(PRC, "bob", "carol", scenario="feat_message_offline.xml",
             timeout=10)


# -- 5: MWI -----------------------------------------------------------------------------

def test_mwi_subscribe_notify(env, pinhole):
    """alice (symmetric NAT) subscribes to message-summary at the voicemail
    server on the LAN (8500 via [routes]); the solicited NOTIFY and an
    unsolicited one 3 s later, both in-dialog from the server, reach her
    through the NAT and their 200s get back."""
    env.register(SYM, "alice")
    _behind_nat(pinhole, "alice", SYM)
    vm = env.sipp(FS, "feat_mwi_server.xml", "mwi-server",
                  pause_ms=3000, timeout=20, keys={"user": VOICEMAIL})
    vm.start()
    env.call(SYM, VOICEMAIL, "alice", scenario="feat_mwi_subscribe.xml",
             timeout=20)
    env.wait_ok(vm)


# -- 6: the LAN feature server ---------------------------------------------------------------

@pytest.mark.parametrize("number,host", [
    pytest.param(VOICEMAIL, SYM, id="voicemail-from-symmetric"),
    pytest.param(CONFERENCE, PRC, id="conference-from-port-restricted"),
])
def test_feature_server_call(env, pinhole, number, host):
    """A NAT'ed phone calls a feature number routed to the LAN media
    server (SIPp UAS streaming RTP): two-way media through the relay."""
    env.register(host, "alice")
    _behind_nat(pinhole, "alice", host)
    server = env.uas(FS, number)
    _call(env, host, "alice", number, [server], (host, FS))


def test_paging_two_remote_phones(env, pinhole):
    """The LAN paging server INVITEs alice (symmetric NAT) and bob
    (port-restricted) with Call-Info answer-after=0 (checked by the
    phones' scenario); both answer at once and receive the page's audio
    through the relay."""
    env.register(SYM, "alice")
    env.register(PRC, "bob")
    phones = [env.uas(h, u, scenario="feat_uas_autoanswer.xml")
              for h, u in ((SYM, "alice"), (PRC, "bob"))]
    caps = env.capture(SYM, PRC)
    pagers = []
    for i, user in enumerate(("alice", "bob")):
        pagers.append(env.sipp(
            FS, "feat_page_uac.xml", "page-%s" % user, remote=env.proxy,
            port=5060 + 2 * i, media_port=6000 + 20 * i, service=user,
            pause_ms=3000, timeout=20,
            keys={"domain": labenv.DOMAIN, "user": "page"}).start(
                wait_bound=False))
    env.wait_ok(*pagers)
    env.wait_ok(*phones)
    for h in (SYM, PRC):
        _relayed(env, caps, h)


def test_music_on_hold(env, pinhole):
    """alice (symmetric NAT) calls the LAN music-on-hold server (8700),
    which holds her with a re-INVITE a=sendonly through her NAT (answered
    a=recvonly, she stops sending) and keeps streaming: >= 50 RTP packets
    reach her from the relay after the re-INVITE arrived."""
    env.register(SYM, "alice")
    moh = env.uas(FS, MOH, scenario="feat_moh_server.xml")
    caps = env.capture(SYM, snaplen=2048)
    env.call(SYM, MOH, "alice", scenario="feat_uac_held.xml",
             duration_ms=3000)
    env.wait_ok(moh)
    env.stop_captures(caps)
    import pcap
    holds = [u.ts for u in pcap.read_udp(caps[SYM].path)
             if u.dport == labenv.SIP_PORT and
             u.payload.startswith(b"INVITE ") and b"a=sendonly" in u.payload]
    assert holds, "the hold re-INVITE did not reach the phone"
    pk = caps[SYM].packets_to(PHONE_IP, labenv.MEDIA_PORT)
    after = [u for u in pk if u.ts > holds[0] + 0.1]
    assert len(after) >= labenv.MIN_RTP, (
        "music after the hold: %d packets (of %d)" % (len(after), len(pk)))
    assert {u.src for u in after} == {RELAY_IP}, {u.src for u in after}


# -- 7: blind transfer and call park ----------------------------------------------------------

@pytest.mark.parametrize("to", ["carol", "park"])
def test_blind_transfer(env, pinhole, topo, to):
    """alice (symmetric NAT) calls bob (port-restricted); bob REFERs her
    to carol (restricted NAT) or to the park number 8700 on the LAN
    server. The REFER reaches alice through her NAT (202); her NOTIFY
    100 Trying reaches bob; alice's phone calls the Refer-To target
    through pinhole (a second SIPp on the same phone, port 5062: SIPp
    keeps one Call-ID per scenario), the target answers, two-way media
    alice <-> target through the relay; her NOTIFY 200 OK reaches bob,
    who hangs up."""
    target = "carol" if to == "carol" else MOH
    target_host = RC if to == "carol" else FS
    env.register(SYM, "alice")
    env.register(PRC, "bob")
    if to == "carol":
        env.register(RC, "carol")
    bob = env.uas(PRC, "bob", scenario="feat_xfer_transferor.xml",
                  keys={"domain": labenv.DOMAIN,
                        "refer_to": "sip:%s@%s" % (target, labenv.DOMAIN)})
    c = env.uas(target_host, target)
    caps = env.capture(SYM, target_host)
    alice = _alice_calls_bob(env, "feat_xfer_transferee.xml",
                             duration_ms=6000, timeout=30)
    got = _reaches_alice(alice, r"REFER ", "the REFER")
    refer_to = re.search(r"^Refer-To:\s*(.*)$", got[0], re.M)
    assert refer_to and target in refer_to.group(1), got[0]
    second = env.sipp(SYM, "uac.xml", "uac-alice-to-" + target,
                      remote=env.proxy, port=SECOND_PORT,
                      media_port=SECOND_MEDIA, service=target,
                      auth=("alice", labenv.USERS["alice"]), pause_ms=3000,
                      timeout=15,
                      auth_uri=labenv.auth_uri("sip:%s@%s" % (
                          target, labenv.DOMAIN)),
                      keys={"domain": labenv.DOMAIN, "user": "alice"})
    seen = env.watch_relay(second.start(wait_bound=False))
    assert second.wait() == 0, "alice's call to the Refer-To target failed"
    env.wait_ok(c, alice, bob)
    _relayed(env, caps, SYM, port=SECOND_MEDIA)
    _relayed(env, caps, target_host)
    env.assert_relay_streams(seen)


# -- 8: REFER policy through NAT --------------------------------------------------------------

def test_refer_to_private_address_refused(env, pinhole):
    """bob (port-restricted) tries to transfer alice (symmetric NAT) to
    sip:x@192.168.1.1 - an address in the phones' home LAN, outside
    intranet_subnets: pinhole answers 403 "Refer-To Private Address
    Outside Intranet", the REFER never reaches alice, and the call goes
    on (media both ways, alice's BYE answered)."""
    env.register(SYM, "alice")
    env.register(PRC, "bob")
    bob = env.uas(PRC, "bob", scenario="feat_xfer_refused.xml",
                  keys={"domain": labenv.DOMAIN,
                        "refer_to": "sip:admin@192.168.1.1"})
    caps, _ = _call(env, SYM, "alice", "bob", [bob], (SYM, PRC))
    got = _received(bob, r"SIP/2.0 403 ")
    assert got and "403 Refer-To Private Address Outside Intranet" in \
        got[0], got
    assert "REFER sip" not in env_messages_of(env, SYM), \
        "the refused REFER reached alice"


def env_messages_of(env, host):
    """The SIP traces of every SIPp run this test made at host."""
    import glob
    import os
    out = []
    for p in glob.glob(os.path.join(env.workdir, "*-%s.messages.log" % host)):
        with open(p, errors="replace") as f:
            out.append(f.read())
    return "\n".join(out)


# -- 9: attended transfer (REFER with Replaces) -------------------------------------------
# (issue 5, remaining proof) A phone on two calls at once is one SIPp UAS
# taking two calls; SIPp keeps one Call-ID per scenario, so each other
# line of a phone is its own SIPp on SECOND_PORT, as in the blind transfer.

import os                          # noqa: E402
import urllib.parse                # noqa: E402


class _TwoCalls(sipp.Sipp):
    """A SIPp UAS that takes two calls (-m 2 -l 2) and is good only when
    both succeeded: a phone with a second call coming in."""

    def argv(self):
        a = super().argv()
        a[a.index("-m") + 1] = "2"
        a[a.index("-l") + 1] = "2"
        return a

    def wait(self, extra=10):
        rc = super().wait(extra)
        if rc == sipp.KILLED_EARLY and self.successful_calls() == 2:
            self.rc = rc = 0
        return rc


def attended_transfer_setup(env, target_host, target_user, domain, ip):
    """The dialog a transferor's consultation call will have with the
    target, fixed up front (SIPp -cid_str and tag keys; a real phone knows
    it when it writes the REFER), and the target's SIPp (two calls: the
    consultation and the replacing INVITE), started. Returns (call_id,
    transferor_tag, refer_to, target run)."""
    salt = os.urandom(4).hex()
    call_id = "consult-%s@%s" % (salt, ip)
    transferor_tag, target_tag = "t-" + salt, "x-" + salt
    replaces = "%s;to-tag=%s;from-tag=%s" % (call_id, target_tag,
                                             transferor_tag)
    refer_to = "sip:%s@%s?Replaces=%s" % (
        target_user, domain, urllib.parse.quote(replaces, safe=""))
    target = _TwoCalls(env.topo[target_host], env.workdir,
                       "feat2_att_target.xml",
                       env._name("uas-" + target_user, target_host),
                       timeout=40, keys={"user": target_user,
                                         "to_tag": target_tag})
    env.report.add("sipp " + target.name, target.report)
    target.start()
    return call_id, transferor_tag, refer_to, target


def _sent(run, first_line_re):
    """Messages a SIPp run sent whose first line matches."""
    parts = re.split(r"^-{20,}.*$", run.messages(), flags=re.M)
    out = []
    for p in parts:
        lines = [l.strip() for l in p.splitlines() if l.strip()]
        if len(lines) > 1 and "message sent" in lines[0] and \
                re.match(first_line_re, lines[1]):
            out.append(p)
    return out


def test_attended_transfer(env, pinhole):
    """Attended transfer (RFC 5589 section 7) with every party NAT'ed:
    alice (symmetric) calls bob (port-restricted), who holds her
    (re-INVITE a=sendonly through her NAT, answered a=recvonly), calls
    carol (restricted) on his second line, then REFERs alice with
    Refer-To: <sip:carol@example.com?Replaces=<B-C Call-ID>%3Bto-tag%3D
    <carol's tag>%3Bfrom-tag%3D<bob's tag>>. alice's second line INVITEs
    carol with that Replaces header through pinhole and carol's NAT;
    carol accepts it and ends her dialog with bob (BYE); alice's NOTIFYs
    100 Trying / 200 OK (sipfrag) reach bob, who hangs up on alice.
    Asserted: the Replaces carol got is exactly her dialog with bob as she
    sees it (Call-ID, to-tag = her tag, from-tag = bob's); her BYE to bob
    left after that INVITE; two-way RTP alice <-> carol through the relay,
    counted at both phones (at carol: from the relay port of the new
    call only); the relay session carried both parties."""
    env.register(SYM, "alice")
    env.register(PRC, "bob")
    env.register(RC, "carol")
    for user, host in (("alice", SYM), ("bob", PRC), ("carol", RC)):
        _behind_nat(pinhole, user, host)
    # B's two lines are one phone: it knows the B-C dialog's Call-ID and
    # tags when it writes the REFER; here the harness fixes them up front
    # (SIPp's -cid_str and tag keys) and hands them to both scenarios.
    bc_call_id, bob_tag, refer_to, carol = attended_transfer_setup(
        env, RC, "carol", labenv.DOMAIN, PHONE_IP)
    bob = env.uas(PRC, "bob", scenario="feat2_att_transferor.xml",
                  answer_ms=3000, timeout=40,
                  keys={"domain": labenv.DOMAIN, "refer_to": refer_to})
    caps = env.capture(SYM, RC)
    alice = _alice_calls_bob(env, "feat2_att_transferee.xml",
                             duration_ms=5000, timeout=40)
    _reaches_alice(alice, r"INVITE ", "bob's hold re-INVITE")
    consult = env.sipp(PRC, "feat2_att_consult.xml", "uac-bob-to-carol",
                       remote=env.proxy, port=SECOND_PORT,
                       media_port=SECOND_MEDIA, service="carol",
                       auth=("bob", labenv.USERS["bob"]), timeout=40,
                       auth_uri=labenv.auth_uri("sip:carol@%s" %
                                                labenv.DOMAIN),
                       cid_str=bc_call_id,
                       keys={"domain": labenv.DOMAIN, "user": "bob",
                             "from_tag": bob_tag}).start(wait_bound=False)

    got = _reaches_alice(alice, r"REFER ", "the REFER", timeout=10)
    m = re.search(r"^Refer-To:\s*<([^>]*)>", got[0], re.M)
    assert m and m.group(1) == refer_to, (
        "Refer-To at alice %r, bob sent %r" % (m and m.group(1), refer_to))
    target, _, headers = m.group(1).partition("?")
    value = urllib.parse.parse_qs(headers)["Replaces"][0]
    second = env.sipp(SYM, "feat2_att_replacing.xml", "uac-alice-to-carol",
                      remote=env.proxy, port=SECOND_PORT,
                      media_port=SECOND_MEDIA, service="carol",
                      auth=("alice", labenv.USERS["alice"]), pause_ms=3000,
                      timeout=20,
                      auth_uri=labenv.auth_uri(target),
                      keys={"domain": labenv.DOMAIN, "user": "alice",
                            "replaces": value})
    seen = env.watch_relay(second.start(wait_bound=False))
    assert second.wait() == 0, "alice's INVITE with Replaces failed"
    env.wait_ok(carol, consult, alice, bob)

    # carol got the Replaces intact: her B-C dialog as she sees it
    consult_invite = [p for p in _received(carol, r"INVITE ")
                      if sipp.header(p, "Replaces") is None]
    replacing = [p for p in _received(carol, r"INVITE ")
                 if sipp.header(p, "Replaces") is not None]
    ok200 = [p for p in _sent(carol, r"SIP/2\.0 200 ")
             if sipp.header(p, "Call-ID") == bc_call_id and
             sipp.header(p, "CSeq").endswith("INVITE")]
    assert consult_invite and replacing and ok200, sipp.order(carol)
    want = "%s;to-tag=%s;from-tag=%s" % (
        sipp.header(consult_invite[0], "Call-ID"),
        sipp.tag(sipp.header(ok200[0], "To")),
        sipp.tag(sipp.header(consult_invite[0], "From")))
    assert sipp.header(replacing[0], "Replaces") == want, (
        "Replaces at carol %r, her dialog with bob is %r" % (
            sipp.header(replacing[0], "Replaces"), want))
    assert sipp.header(replacing[0], "From").startswith("<sip:alice@"), \
        replacing[0]
    # ... and ended that dialog (BYE to bob) once it was replaced
    order = sipp.order(carol)
    rep = [i for i, l in enumerate(order)
           if l.startswith("received INVITE ") and bc_call_id not in l]
    bye = [i for i, l in enumerate(order)
           if l.startswith("sent BYE ") and l.endswith(bc_call_id)]
    assert rep and bye and rep[0] < bye[0], order

    # two-way media alice <-> carol through the relay
    _relayed(env, caps, SYM, port=SECOND_MEDIA)
    port = int(re.search(r"^m=audio (\d+)", replacing[0], re.M).group(1))
    from_new = [u for u in caps[RC].packets_to(PHONE_IP, labenv.MEDIA_PORT)
                if u.src == RELAY_IP and u.sport == port]
    assert len(from_new) >= labenv.MIN_RTP, (
        "%d RTP packets of the new call (relay port %d) reached carol" % (
            len(from_new), port))
    new_call = _call_id_of(second)
    env.assert_relay_streams({k: v for k, v in seen.items()
                              if k == new_call})


def _call_id_of(run):
    m = re.search(r"^Call-ID:\s*(\S+)", run.messages(), re.M | re.I)
    return m.group(1) if m else None


# -- 10: busy-lamp field (dialog event package) -------------------------------------------

BLF_EXTENSION = "8201"       # served by the LAN BLF server (fs, [routes] 8)


def test_blf_dialog_subscribe_notify(env, pinhole):
    """Busy-lamp field (RFC 4235): alice (symmetric NAT) subscribes to
    Event: dialog of extension 8201, whose state the presence/BLF server
    on the office LAN (fs, through [routes] 8) keeps: SUBSCRIBE reaches fs,
    its 200 and the solicited NOTIFY (application/dialog-info+xml, version
    0, idle) reach alice through her NAT, and so does an unsolicited
    in-dialog NOTIFY 3 s later (version 1, a dialog in state early: the
    lamp blinks); alice's 200s get back (feat2_blf_subscribe/server.xml).
    (pinhole has no presence server of its own; a SUBSCRIBE to a
    registered user's AOR goes to that user's phones.)"""
    env.register(SYM, "alice")
    _behind_nat(pinhole, "alice", SYM)
    blf = env.sipp(FS, "feat2_blf_server.xml", "blf-server",
                   pause_ms=3000, timeout=20, keys={"user": BLF_EXTENSION})
    blf.start()
    sub = env.call(SYM, BLF_EXTENSION, "alice",
                   scenario="feat2_blf_subscribe.xml", timeout=20)
    env.wait_ok(blf)
    notifies = _received(sub, r"NOTIFY ")
    assert len(notifies) == 2, notifies
    entity = 'entity="sip:%s@%s"' % (BLF_EXTENSION, labenv.DOMAIN)
    for n in notifies:
        assert entity in n and "<dialog-info" in n, n
        assert sipp.header(n, "Event") == "dialog", n
    assert "<state>early</state>" in notifies[1], notifies[1]

"""Far-end NAT scenarios (issue 3): phones behind every kind of home NAT
call each other, the LAN phone, the LAN gateway and public phones through
pinhole; hold/resume and an added video stream keep the relay; keepalives
hold a short-lived NAT mapping open; SIP ALG and client-side STUN phones are
classified nonat-suspect and still get media.

Every call counts RTP where it lands (tcpdump at both phones, >= 50 packets
each way) and proves the relay: all RTP a phone got came from pinhole's
relay address, and /api/calls, sampled during the call, showed the session
with packets received from both parties.

Topology (own module fixture): the foundation office (srv, lanphone,
lanphone2, gw, plus srv2/srv3 for the keepalive test's own daemons, plain
routing, the server reachable publicly), pub1/pub2 on the internet, and one
home site per NAT kind, each LAN 192.168.1.0/24 with its phone at
192.168.1.10 (namespace "<site>-phone").
"""

import os
import re
import time

import pytest

import labenv
import labnet
import pinhole as pinhole_mod
import topology

PY = "/usr/bin/python3"
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools")
LAN = "192.168.1.0/24"
PHONE_IP = "192.168.1.10"
RELAY_IP = "10.10.0.10"            # srv: pinhole's relay
GW = "10.10.0.50"

# kind -> (site, WAN address); the phone is "<site>-phone"
KINDS = {
    "full-cone": ("fc", "203.0.113.21"),
    "restricted": ("rc", "203.0.113.22"),
    "port-restricted": ("prc", "203.0.113.23"),
    "symmetric": ("sym", "203.0.113.24"),
}
ALG = ("alg", "203.0.113.25")
STUN = ("stun", "203.0.113.28")           # port-restricted, STUN phone
SHORT_TIMEOUT = {"net.netfilter.nf_conntrack_udp_timeout": 20,
                 "net.netfilter.nf_conntrack_udp_timeout_stream": 20}
SHORT = ("short", "203.0.113.26")         # keepalives on (srv2)
SHORT0 = ("short0", "203.0.113.27")       # keepalives off (srv3)
# keepalive_interval of the keepalive test's pinhole: below the short sites'
# 20 s conntrack timeout (LAB_KA_INTERVAL=20 tries pinhole's default)
KA_INTERVAL = int(os.environ.get("LAB_KA_INTERVAL", "15"))
IDLE = 90             # seconds between registration and the call
OFFICE = topology.Site(
    name="office", wan_ip="203.0.113.1", lan="10.10.0.0/24",
    router_ip="10.10.0.1",
    hosts=dict(topology.OFFICE.hosts, srv2="10.10.0.11", srv3="10.10.0.12"))


def phone(kind):
    return KINDS[kind][0] + "-phone"


def _home(name, wan, kind, sysctls=None):
    return topology.Site(name=name, wan_ip=wan, lan=LAN,
                         router_ip="192.168.1.1",
                         hosts={name + "-phone": PHONE_IP}, nat=kind,
                         nat_host=name + "-phone",
                         router_sysctls=sysctls or {})


def _alg_usable(lab):
    """None if this kernel takes the SIP ALG ruleset (nft ct helper "sip"),
    else the reason (then the ALG site is left out and its test skipped)."""
    if not os.path.exists("/sys/module/nf_conntrack_sip"):
        return "kernel has no nf_conntrack_sip (SIP ALG)"
    probe = lab.add_router("algprobe")
    try:
        probe.nft(topology.nat_ruleset(_home(ALG[0], ALG[1], "alg")))
    except Exception as e:
        return "nft ct helper \"sip\" cannot be loaded: %s" % e
    return None


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    """Overrides conftest's topo for this module."""
    lab = labnet.Lab(str(tmp_path_factory.mktemp("natscen")))
    try:
        alg_reason = _alg_usable(lab)
        homes = [_home(s, w, k) for k, (s, w) in KINDS.items()]
        homes.append(_home(STUN[0], STUN[1], "port-restricted"))
        homes.append(_home(SHORT[0], SHORT[1], "port-restricted",
                           SHORT_TIMEOUT))
        homes.append(_home(SHORT0[0], SHORT0[1], "port-restricted",
                           SHORT_TIMEOUT))
        if alg_reason is None:
            homes.append(_home(ALG[0], ALG[1], "alg"))
        t = topology.build(lab, dict(topology.PUBLIC), [OFFICE] + homes)
        t.alg_reason = alg_reason
    except Exception:
        lab.close()
        raise
    yield t
    lab.close()


def _verdict(pinhole, user, expect, wan=None):
    [b] = pinhole.bindings_for(user)
    assert b["verdict"] == expect, "binding of %s: %s" % (user, b)
    if wan:
        assert str(b["public"]).startswith(wan + ":"), b
    return b


def _relayed_call(env, caller_host, caller, callee_host, callee,
                  target=None, duration_ms=3000, auth=True,
                  uas_scenario="uas.xml", uac_scenario="uac.xml",
                  uas_keys=None, uac_keys=None, uas=None):
    """callee_host answers (already registered unless it is the gateway),
    caller_host calls; asserts two-way RTP through the relay at both
    phones and relayed packets from both parties in /api/calls."""
    callee_run = uas or env.uas(callee_host, callee, scenario=uas_scenario,
                                keys=uas_keys)
    caps = env.capture(caller_host, callee_host)
    _, seen = env.call_watched(caller_host, target or callee, caller,
                               duration_ms=duration_ms, auth=auth,
                               scenario=uac_scenario, keys=uac_keys)
    env.wait_ok(callee_run)
    env.assert_relayed(caps, (caller_host, callee_host), RELAY_IP)
    env.assert_relay_streams(seen)
    return callee_run, caps, seen


# -- 1, 2, 4: remote NAT'ed phone calls another remote or a public phone ---

PAIRS = [
    pytest.param("sym-phone", "prc-phone", id="symmetric-to-port-restricted"),
    pytest.param("fc-phone", "rc-phone", id="full-cone-to-restricted"),
    pytest.param("prc-phone", "pub1", id="port-restricted-to-pub1"),
    pytest.param("rc-phone", "pub2", id="restricted-to-pub2"),
    pytest.param("sym-phone", "pub2", id="symmetric-to-pub2"),
]


@pytest.mark.parametrize("src,dst", PAIRS)
def test_remote_calls_remote_or_public(env, pinhole, src, dst):
    env.register(src, "alice")
    env.register(dst, "bob")
    wan = {phone(k): w for k, (_, w) in KINDS.items()}
    _verdict(pinhole, "alice", "behind-nat", wan[src])
    if dst in wan:
        _verdict(pinhole, "bob", "behind-nat", wan[dst])
    else:
        _verdict(pinhole, "bob", "public")
    _relayed_call(env, src, "alice", dst, "bob")


# -- 3: every NAT kind <-> LAN phone and LAN gateway -------------------------

DIRECTIONS = ["to-lanphone", "to-gateway", "from-lanphone", "from-gateway"]


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_nat_kind_and_lan(env, pinhole, kind, direction):
    nat = phone(kind)
    wan = KINDS[kind][1]
    if direction == "to-lanphone":
        env.register(nat, "alice")
        _verdict(pinhole, "alice", "behind-nat", wan)
        env.register("lanphone", "bob")
        _relayed_call(env, nat, "alice", "lanphone", "bob", duration_ms=2500)
    elif direction == "to-gateway":
        env.register(nat, "alice")
        _verdict(pinhole, "alice", "behind-nat", wan)
        _relayed_call(env, nat, "alice", "gw", "gateway", target="9123",
                      duration_ms=2500)
    elif direction == "from-lanphone":
        env.register("lanphone", "alice")
        env.register(nat, "bob")
        _verdict(pinhole, "bob", "behind-nat", wan)
        _relayed_call(env, "lanphone", "alice", nat, "bob", duration_ms=2500)
    else:
        # the gateway is trusted by its address: no registration, no auth
        env.register(nat, "bob")
        _verdict(pinhole, "bob", "behind-nat", wan)
        _relayed_call(env, "gw", "gateway", nat, "bob", auth=False,
                      duration_ms=2500)


# -- 5: hold and resume --------------------------------------------------------

def _sip_messages(cap, dst_ip, method_prefix):
    """(ts, text) of the SIP messages starting with method_prefix sent to
    dst_ip:5060 in a capture taken with a large snaplen."""
    import pcap
    out = []
    for u in pcap.read_udp(cap.path):
        if u.dst == dst_ip and u.dport == 5060:
            text = u.payload.decode(errors="replace")
            if text.startswith(method_prefix):
                out.append((u.ts, text))
    return out


def _received(run, needle):
    """SIP messages a SIPp run received (its -trace_msg log) holding
    needle, oldest first."""
    parts = re.split(r"^-{20,}.*$", run.messages(), flags=re.M)
    return [p for p in parts if "message received" in p and needle in p]


def test_hold_and_resume(env, pinhole):
    """A symmetric-NAT caller holds (re-INVITE a=sendonly) and resumes
    (re-INVITE a=sendrecv) a public callee: the offers reach the callee
    with their direction attribute and the relay address, the relay keeps
    the session's port, and RTP flows both ways after the resume."""
    caller, callee = "sym-phone", "pub1"
    env.register(caller, "alice")
    _verdict(pinhole, "alice", "behind-nat", KINDS["symmetric"][1])
    env.register(callee, "bob")
    uas = env.uas(callee, "bob", scenario="uas_hold.xml", timeout=30)
    caps = env.capture(caller, callee, snaplen=2048)
    _, seen = env.call_watched(caller, "bob", "alice", duration_ms=3000,
                               scenario="uac_hold.xml", timeout=30)
    env.wait_ok(uas)
    env.stop_captures(caps)
    invites = _sip_messages(caps[callee], env.topo.ip(callee), "INVITE ")
    hold = [(ts, m) for ts, m in invites if "a=sendonly" in m]
    resume = [(ts, m) for ts, m in invites
              if re.search(r"^CSeq: 4 INVITE", m, re.M)]
    assert hold and resume, ("callee did not get both re-INVITEs: %s"
                             % [m.split("\r\n")[0] for _, m in invites])
    ports = {re.search(r"^m=audio (\d+)", m, re.M).group(1)
             for _, m in invites}
    conns = {re.search(r"^c=IN IP4 (\S+)", m, re.M).group(1)
             for _, m in invites}
    assert conns == {RELAY_IP}, "offers to the callee not via the relay: %s" \
        % conns
    assert len(ports) == 1, ("the relay port changed across hold/resume: %s"
                             % ports)
    t_resume = resume[0][0]
    after = {}
    for h in (caller, callee):
        pk = caps[h].packets_to(env.topo.ip(h), labenv.MEDIA_PORT)
        after[h] = sum(1 for u in pk if u.ts > t_resume + 0.1)
    assert all(n >= labenv.MIN_RTP for n in after.values()), (
        "RTP after the resume (re-INVITE at %.3f): %s" % (t_resume, after))
    env.assert_relayed(caps, (caller, callee), RELAY_IP)
    env.assert_relay_streams(seen)


# -- 6: re-INVITE adding video -------------------------------------------------

VIDEO_PORT = 6010      # SIPp itself holds -mp .. -mp+3


def _sdp_target(msg, media):
    """(ip, port) a message's SDP gives for media ("audio"/"video")."""
    ip = re.search(r"^c=IN IP4 (\S+)", msg, re.M).group(1)
    port = int(re.search(r"^m=%s (\d+)" % media, msg, re.M).group(1))
    return ip, port


def video_exchange(env, topo, hosts, found, run):
    """Once both video targets are known (found: [(ip, port)] per host, or
    None), each host sends 150 video packets (rtpsend.py) there while the
    relay is watched and the caller's SIPp run ends. Returns (SIPp exit
    code, relay sessions seen)."""
    senders = []
    for host, (ip, port) in zip(hosts, found or ()):
        log = os.path.join(env.workdir, "video-%s.log" % host)
        env.report.add("video sender " + host,
                       lambda log=log: open(log).read())
        senders.append(topo[host].popen(
            [PY, os.path.join(TOOLS, "rtpsend.py"), topo.ip(host),
             str(VIDEO_PORT), ip, str(port), "150", "50"], log,
            name="rtpsend"))
    seen = env.watch_relay(run)
    rc = run.wait()
    for p in senders:
        try:
            p.wait(timeout=6)
        except Exception:
            p.stop()
    return rc, seen


def test_reinvite_adds_video(env, pinhole, topo):
    """A port-restricted-NAT caller re-INVITEs a public callee adding
    m=video: both streams relayed (the re-INVITE keeps the audio session
    and extends it), video packets sent by each side from the port in its
    own SDP to the relay port it was given arrive at the other side."""
    caller, callee = "prc-phone", "pub1"
    env.register(caller, "alice")
    _verdict(pinhole, "alice", "behind-nat", KINDS["port-restricted"][1])
    env.register(callee, "bob")
    keys = {"video_port": VIDEO_PORT}
    uas = env.uas(callee, "bob", scenario="uas_video.xml", keys=keys,
                  timeout=30)
    caps = env.capture(caller, callee)
    run = env.caller(caller, "bob", "alice", duration_ms=4500,
                     scenario="uac_video.xml", keys=keys, timeout=30)
    run.start(wait_bound=False)

    def targets():
        got_offer = _received(uas, "m=video")
        got_answer = _received(run, "m=video")
        if got_offer and got_answer:
            return (_sdp_target(got_answer[-1], "video"),
                    _sdp_target(got_offer[-1], "video"))
        return None
    found = labnet.wait_until(targets, timeout=8, interval=0.1)
    rc, seen = video_exchange(env, topo, (caller, callee), found, run)
    assert found, "no m=video in the re-INVITE at the callee and in its " \
        "200 at the caller (see the SIPp traces)"
    assert rc == 0, "caller SIPp exit %s (see sipp %s)" % (rc, run.name)
    env.wait_ok(uas)
    assert found[0][0] == RELAY_IP and found[1][0] == RELAY_IP, (
        "video not offered/answered through the relay: %s" % (found,))
    env.assert_relayed(caps, (caller, callee), RELAY_IP)
    video = {h: caps[h].rtp_to(topo.ip(h), VIDEO_PORT)
             for h in (caller, callee)}
    assert all(n >= labenv.MIN_RTP for n in video.values()), (
        "video packets arrived: %s (150 sent each way)" % video)
    sess = env.assert_relay_streams(seen, nstreams=2)
    assert len(sess["streams"]) == 2, sess


# -- 9: the NAT behaviour each phone's router shows, learnt from media -------

@pytest.mark.parametrize("kind,want", [("symmetric", "symmetric"),
                                       ("port-restricted", "cone"),
                                       ("full-cone", "cone")])
def test_observed_nat_behaviour(env, pinhole, kind, want):
    """Two calls in a row from the same phone (same private RTP port) reach
    two different relay ports; a symmetric NAT maps them to two public
    ports, a cone NAT keeps one. The registrations view says which."""
    src = phone(kind)
    env.register(src, "alice")
    env.register("pub1", "bob")
    [b] = pinhole.bindings_for("alice")
    assert b["nat_behaviour"] == "unknown", b
    for _ in range(2):
        _relayed_call(env, src, "alice", "pub1", "bob", duration_ms=1500)
    [b] = pinhole.bindings_for("alice")
    assert b["nat_behaviour"] == want, b
    assert PHONE_IP in b["nat_behaviour_why"], b
    [pub] = pinhole.bindings_for("bob")
    assert pub["nat_behaviour"] == "none", pub


# -- 8: SIP ALG router and a client-side-STUN phone ---------------------------

def _settled_binding(pinhole, user, timeout=6.0):
    """The binding once the active NAT check (<= 3.5 s) is over."""
    got = {}

    def settled():
        bs = pinhole.bindings_for(user)
        got["b"] = bs[0] if len(bs) == 1 else bs
        return len(bs) == 1 and (bs[0]["verdict"] != "public" or
                                 "answered" in bs[0].get("nat_reason", ""))
    labnet.wait_until(settled, timeout)
    return got["b"]


@pytest.mark.alarms("nonat-suspect")
@pytest.mark.parametrize("direction", ["called-by-pub1", "calls-pub1"])
@pytest.mark.parametrize("who", ["alg", "stun", "stun-clean"])
def test_alg_and_stun_phone(env, pinhole, topo, who, direction):
    """All look public at first sight (Via/Contact = the source address).
    alg, stun: a private address still shows elsewhere (Call-ID, SDP o=).
    stun-clean: nothing in the message betrays the NAT; pinhole's active
    check (OPTIONS from another port) is filtered by the phone's
    port-restricted NAT. Verdict nonat-suspect, media relayed both ways."""
    if who == "alg" and topo.alg_reason:
        pytest.skip("SIP ALG router unavailable: " + topo.alg_reason)
    site, wan = ALG if who == "alg" else STUN
    host = site + "-phone"
    stun_keys = {"pub_ip": wan, "pub_port": labenv.SIP_PORT}
    user = "bob" if direction == "called-by-pub1" else "alice"
    if who == "alg":
        env.register(host, user)
    else:
        clean = who == "stun-clean"
        env.register(host, user, keys=stun_keys,
                     scenario=("register_stun_clean.xml" if clean
                               else "register_stun.xml"),
                     cid_str="%u-%p@stun.invalid" if clean else None)
    b = _settled_binding(pinhole, user)
    if who == "alg" and PHONE_IP in str(b.get("contact")):
        pytest.skip("the ALG router did not rewrite the Contact (%s): the "
                    "kernel SIP helper is not active" % b.get("contact"))
    assert wan in str(b["contact"]), (
        "phone should present its public address in Contact: %s" % b)
    assert b["verdict"] == "nonat-suspect", b
    if who == "stun-clean":
        assert "another port" in b["nat_reason"], b
        assert any(a["code"] == "nonat-suspect" and user in a["subject"]
                   for a in pinhole.api("/api/alarms")), (
            "no nonat-suspect alarm after the active check")
    if direction == "called-by-pub1":
        env.register("pub1", "alice")
        if who == "alg":
            _relayed_call(env, "pub1", "alice", host, "bob")
        else:
            _relayed_call(env, "pub1", "alice", host, "bob",
                          uas_scenario="uas_stun.xml", uas_keys=stun_keys)
    else:
        env.register("pub1", "bob")
        if who == "alg":
            _relayed_call(env, host, "alice", "pub1", "bob")
        else:
            _relayed_call(env, host, "alice", "pub1", "bob",
                          uac_scenario="uac_stun.xml", uac_keys=stun_keys)


# -- 7: keepalives keep a short-lived NAT mapping open (runs last) -------------

class _IdlePhone:
    """A phone that registered with its own pinhole (srv2/srv3) at module
    start and idles behind a 20 s-conntrack-timeout NAT; its SIP socket is
    held by sipanswer.py (answers the keepalive OPTIONS) until the test."""

    def __init__(self, topo, workdir, report, server, site, interval):
        self.server, self.host = server, site + "-phone"
        self.wan = {"short": SHORT[1], "short0": SHORT0[1]}[site]
        os.makedirs(workdir, exist_ok=True)
        self.ph = pinhole_mod.Pinhole(
            topo[server], workdir,
            overrides={"nat": {"keepalive_interval": str(interval)}})
        for user, password in labenv.USERS.items():
            self.ph.user_add(user, password)
        self.ph.start()
        self.env = labenv.LabEnv(topo, workdir, report, server=server,
                                 pinhole=self.ph)
        self.env.register(self.host, "bob")
        self.registered = time.monotonic()
        self.binding = self.ph.bindings_for("bob")
        self.answer_log = os.path.join(workdir, "sipanswer.log")
        self.answerer = topo[self.host].popen(
            [PY, os.path.join(TOOLS, "sipanswer.py"), PHONE_IP,
             str(labenv.SIP_PORT), "900"], self.answer_log, name="sipanswer")
        assert labnet.wait_until(
            lambda: "ready" in open(self.answer_log).read(), 5)

    def options_times(self):
        with open(self.answer_log) as f:
            return [float(l.split()[1]) for l in f
                    if l.startswith("options ")]


class _Report:
    """Collects report items before a test exists; the test re-adds them."""

    def __init__(self):
        self.items = []

    def add(self, label, fn):
        self.items.append((label, fn))


@pytest.fixture(scope="module", autouse=True)
def idle_phones(topo, tmp_path_factory):
    """Autouse, module scope: the idle phones register before the module's
    first test, so their 90 s idle time overlaps the other scenarios."""
    base = str(tmp_path_factory.mktemp("keepalive"))
    report = _Report()
    phones = {}
    try:
        phones["on"] = _IdlePhone(topo, os.path.join(base, "on"), report,
                                  "srv2", "short", KA_INTERVAL)
        phones["off"] = _IdlePhone(topo, os.path.join(base, "off"), report,
                                   "srv3", "short0", 0)
    except Exception as e:
        phones["error"] = e
    yield phones, report
    # (their processes are stopped with the lab at the topo's teardown)


@pytest.mark.lab_timeout(220)   # idles 90 s, then waits for Timer B
def test_keepalives_keep_short_nat_mapping_open(topo, lab_report, _test_procs,
                                                idle_phones):
    """short-phone (router conntrack UDP timeout 20 s) registered with
    pinhole on srv2 (keepalive_interval 15) IDLE seconds ago and is then
    called from lanphone: keepalive OPTIONS kept the mapping open, the
    call and relayed two-way media work. Control, concurrently: short0-phone
    behind an identical router registered with srv3 (keepalive_interval 0)
    is unreachable after the same idle time (the INVITE never reaches it).
    The control costs no extra time (it idles alongside), so it always
    runs."""
    phones, early = idle_phones
    for label, fn in early.items:
        lab_report.add(label, fn)
    if "error" in phones:
        raise phones["error"]
    on, off = phones["on"], phones["off"]
    for p in (on, off):
        lab_report.add("pinhole " + p.server, p.ph.report)
        lab_report.add("sipanswer at " + p.host,
                       lambda p=p: open(p.answer_log).read())
        [b] = p.binding
        assert b["verdict"] == "behind-nat", b
        assert str(b["public"]).startswith(p.wan + ":"), b
    left = on.registered + IDLE - time.monotonic()
    if left > 0:
        time.sleep(left)
    got = on.options_times()
    assert len(got) >= IDLE // KA_INTERVAL - 1, (
        "only %d keepalive OPTIONS reached short-phone in %d s" % (
            len(got), IDLE))
    # No keepalive may land on the SIPp callee (its UAS scenario would take
    # an out-of-dialog OPTIONS for a new call): if the next one is due
    # within the call's ~6 s, let it pass first.
    if got[-1] + KA_INTERVAL - time.time() < 6:
        labnet.wait_until(lambda: len(on.options_times()) > len(got),
                          timeout=8, interval=0.2)
    for p in (on, off):
        p.answerer.stop(grace=1)
    assert off.options_times() == [], "srv3 sent keepalives with interval 0"
    [b] = on.ph.bindings_for("bob")
    assert b["keepalive_failures"] == 0 and b["reachable"] is not False, b

    # the control call first, in the background (it must fail)
    off.env.register("lanphone2", "alice")
    off_uas = off.env.uas(off.host, "bob", timeout=15)
    off_call = off.env.caller("lanphone2", "bob", "alice", duration_ms=1000,
                              timeout=10)
    off_call.start(wait_bound=False)
    # the real one
    on.env.register("lanphone", "alice")
    callee = on.env.uas(on.host, "bob")
    caps = on.env.capture("lanphone", on.host)
    _, seen = on.env.call_watched("lanphone", "bob", "alice",
                                  duration_ms=3000)
    on.env.wait_ok(callee)
    on.env.assert_relayed(caps, ("lanphone", on.host), "10.10.0.11")
    on.env.assert_relay_streams(seen)

    rc = off_call.wait()
    assert rc != 0, ("control: short0-phone was reached %d s after "
                     "registering without keepalives (mapping should have "
                     "expired after 20 s)" % IDLE)
    assert "INVITE" not in off_uas.messages(), (
        "control: an INVITE reached short0-phone through an expired mapping")
    off_uas.proc.stop()
    # ... and srv3 says why once its INVITE times out (Timer B, 32 s):
    # keepalives are off, the NAT forgot the mapping
    got = {}

    def alarmed():
        got["a"] = [a for a in off.ph.api("/api/alarms")
                    if a["code"] == "nat-phone-unreachable"]
        return got["a"]
    assert labnet.wait_until(alarmed, timeout=40, interval=1), (
        "srv3 raised no nat-phone-unreachable alarm: %s"
        % off.ph.api("/api/alarms"))
    assert "keepalive_interval = 0" in got["a"][0]["text"], got
    assert not [a for a in on.ph.api("/api/alarms")], (
        "srv2 (keepalives on) raised alarms: %s" % on.ph.api("/api/alarms"))

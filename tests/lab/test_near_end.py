"""Near-end NAT: pinhole behind the office router's own NAT.

The office router (WAN 203.0.113.1) masquerades the office LAN and forwards
UDP+TCP 5060 and UDP 30000-30100 (pinhole's RTP range) to the server
10.10.0.10. Remote phones use the WAN address as their proxy: one behind a
port-restricted NAT (prc-phone), one behind a symmetric NAT (sym-phone),
one public (pub1); a public gateway (pgw, SIPp UAS at 203.0.113.60, dialled
as 8xxx) and the LAN gateway (gw 10.10.0.50, 9xxx). A coturn STUN server
runs on 203.0.113.70:3478 when a scenario needs one.

  1. static public_ip: every remote phone calls the LAN phone, both
     gateways and the other remote phones (and the LAN phone calls them);
     two-way RTP counted at both phones, relayed as the design says, each
     side shown pinhole's right face (WAN address / private address) in
     SDP and Record-Route
  2. the same with the address learned by STUN (503 to the outside until
     it is known)
  3. the WAN address changes: followed within stun_refresh, alarm raised,
     phones re-register to the new address, new calls have two-way media
  4. the RTP range is not forwarded: calls connect, media is one-way, and
     which way depends on who speaks first (asserted precisely)
  +  a call crossing the office NAT whose caller writes its route set on
     one Route line (SIPp's [routes], many phones): in-dialog requests must
     pass pinhole (test_route_set_on_one_line)

Calls crossing the office NAT are Record-Routed twice by pinhole (private
face, public face). The scenario tests' callers write one Route header per
entry (scenarios/ne_uac_rr2*.xml) so that they test their own subject;
the comma-separated single-line form has its own test.

The topology is built once for the module; a test that re-addresses or
re-forwards the router restores it at teardown.
"""

import json
import re

import pytest

import labnet
import near_end_lab as ne
from near_end_lab import Call

STUN_REFRESH = 5


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    """Overrides conftest's topo: office behind NAT + remote sites."""
    yield from labnet.module_topology(
        str(tmp_path_factory.mktemp("nearend")), ne.build, tag="ne-")


@pytest.fixture(autouse=True)
def _office_restored(topo):
    """Whatever a test did to the office router, put it back, and let the
    next test start with an empty conntrack table there (stale DNAT and
    masquerade entries of one test would rewrite ports in the next)."""
    yield
    if not topo.lab.closed:
        site = topo.sites["office"]
        if site.wan_ip != ne.OFFICE_WAN or len(site.forwards) != 3:
            ne.set_office(topo, ne.OFFICE_WAN, rtp_forward=True)
        ne.flush_conntrack(topo["office-rtr"])


@pytest.fixture
def start_pinhole(own_pinhole):
    """start_pinhole({nat keys}) -> a running pinhole behind the office NAT
    (conftest's own_pinhole: own config/store in the test's folder,
    near-end USERS provisioned; stopped at teardown; a daemon that died
    during the test, or raised an undeclared alarm, fails it)."""
    def start(nat, **kw):
        return own_pinhole(overrides=ne.pinhole_overrides(nat, **kw),
                           users=ne.USERS)
    return start


@pytest.fixture
def make_env(topo, workdir, lab_report):
    return lambda ph: ne.NearEndEnv(topo, workdir, lab_report, ph)


@pytest.fixture
def stun(topo, workdir, lab_report, _test_procs):
    """A starter for the STUN server (stopped with the test's processes)."""
    procs = []

    def start(rfc5780=False):
        p = ne.start_stun(topo, workdir, rfc5780=rfc5780)
        procs.append(p)
        return p
    lab_report.add("stun server log",
                   lambda: "\n".join(p.log()[-4000:] for p in procs))
    return start


REMOTES = ["prc-phone", "sym-phone", "pub1"]


def full_matrix():
    """Every remote phone -> LAN phone, LAN gateway, public gateway; remote
    phones -> each other; the LAN phone -> every remote phone. Six rounds
    of parallel calls (each host in one call per round)."""
    lgw, pg = ne.LAN_GW_NUMBER, ne.PUBLIC_GW_NUMBER
    return [
        [Call("prc-phone", "dave", "lanphone"),
         Call("sym-phone", lgw, "gw"),
         # both ends public and outside: no reason to relay
         Call("pub1", pg, "pgw", relayed=False)],
        [Call("prc-phone", lgw, "gw"),
         Call("sym-phone", pg, "pgw"),
         Call("pub1", "dave", "lanphone")],
        [Call("prc-phone", pg, "pgw"),
         Call("sym-phone", "dave", "lanphone"),
         Call("pub1", lgw, "gw")],
        [Call("prc-phone", "bob", "sym-phone"),
         Call("lanphone", "carol", "pub1")],
        [Call("sym-phone", "carol", "pub1"),
         Call("lanphone", "alice", "prc-phone")],
        [Call("pub1", "alice", "prc-phone"),
         Call("lanphone", "bob", "sym-phone")],
    ]


def run_rounds(env, rounds):
    """Run every round, collect every broken call, fail once at the end
    (so one report shows all broken paths)."""
    problems = []
    for calls in rounds:
        env.place(calls)
        for c in calls:
            problems += ["%s: %s" % (c.label(), p) for p in env.check(c)]
    assert not problems, "%d problem(s):\n%s" % (len(problems),
                                                 "\n".join(problems))


def check_bindings(ph, wan_by_host, verdict_of_public=True):
    """Remote phones registered through the WAN address are classified as
    the far-end NAT says (public phones: only if verdict_of_public) and
    seen from their own public address; returns the bindings by user."""
    out = {}
    verdicts = {"port-restricted": "behind-nat", "symmetric": "behind-nat",
                None: "public"}
    problems = []
    for host, wan in wan_by_host.items():
        user = ne.PHONE_USER[host]
        bs = ph.bindings_for(user)
        out[user] = bs
        if len(bs) != 1:
            problems.append("%s: %d bindings %s" % (user, len(bs), bs))
            continue
        b = bs[0]
        want = verdicts[ne.NAT_OF[host]]
        if want == "public" and not verdict_of_public:
            pass
        elif b.get("verdict") != want:
            problems.append("%s at %s: verdict %s, expected %s: %s" % (
                user, host, b.get("verdict"), want, b))
        if not str(b.get("public", "")).startswith(wan + ":"):
            problems.append("%s at %s: public %s, expected %s:*" % (
                user, host, b.get("public"), wan))
    assert not problems, "\n".join(problems)
    return out


def remote_wans(topo, hosts):
    """host -> the address pinhole sees it from."""
    out = {}
    for h in hosts:
        site = [s for s in topo.sites.values() if h in s.hosts]
        out[h] = site[0].wan_ip if site else topo.ip(h)
    return out


def alarm_names(ph):
    """Alarm names known to the daemon: GET /api/alarms and the CLI's
    `show alarms --json` (both must list the same ones)."""
    api = ph.api("/api/alarms")
    cli = json.loads(ph.cli("show", "alarms", "--json").stdout)
    return _names(api), _names(cli), api, cli


def _names(doc):
    names = set()

    def walk(x):
        if isinstance(x, dict):
            for k in ("code", "name", "alarm"):
                if isinstance(x.get(k), str):
                    names.add(x[k])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(doc)
    return names


# -- 1 ----------------------------------------------------------------------
def test_static_public_ip(topo, start_pinhole, make_env):
    ph = start_pinhole({"public_ip": ne.OFFICE_WAN})
    st = ne.near_end(ph)
    assert st.get("public_ip") == ne.OFFICE_WAN and \
        st.get("source") == "config", st
    env = make_env(ph)
    env.register_all(REMOTES + ["lanphone"])
    check_bindings(ph, remote_wans(topo, REMOTES))
    run_rounds(env, full_matrix())


# -- 2 ----------------------------------------------------------------------
def test_public_ip_by_stun(topo, start_pinhole, make_env, stun):
    ph = start_pinhole({"stun_server": "%s:%d" % (ne.STUN_IP, ne.STUN_PORT),
                        "stun_refresh": str(STUN_REFRESH)})
    env = make_env(ph)
    # No STUN server yet: no public address, the outside is refused, the
    # intranet is served.
    st = ne.near_end(ph)
    assert st.get("public_ip") is None and st.get("source") == "unknown", st
    env.register_as("pub1", expect="503")
    env.register_as("lanphone")
    stun()
    waited, st = ne.wait_public_ip(ph, ne.OFFICE_WAN, timeout=20)
    assert waited is not None, (
        "pinhole did not learn %s by STUN within 20 s: %s" % (
            ne.OFFICE_WAN, st))
    assert st.get("source") == "stun", st
    # STUN went out of the SIP socket: the router kept port 5060, which is
    # the forwarded port
    assert st.get("stun_mapped_port") == 5060, st
    env.register_all(REMOTES)
    check_bindings(ph, remote_wans(topo, REMOTES))
    run_rounds(env, full_matrix())


# -- 3 ----------------------------------------------------------------------
@pytest.mark.alarms("public-address-changed")
def test_wan_address_change(topo, start_pinhole, make_env, stun):
    stun()
    ph = start_pinhole({"stun_server": "%s:%d" % (ne.STUN_IP, ne.STUN_PORT),
                        "stun_refresh": str(STUN_REFRESH)})
    env = make_env(ph)
    waited, st = ne.wait_public_ip(ph, ne.OFFICE_WAN, timeout=10)
    assert waited is not None, "no public address learned: %s" % st
    env.register_all(REMOTES + ["lanphone"])
    # before: calls work through the old address
    run_rounds(env, [[Call("prc-phone", "dave", "lanphone"),
                      Call("pub1", "bob", "sym-phone")]])
    api_names, cli_names, _, _ = alarm_names(ph)
    assert "public-address-changed" not in api_names | cli_names

    ne.set_office(topo, ne.NEW_WAN)
    waited, st = ne.wait_public_ip(ph, ne.NEW_WAN,
                                   timeout=STUN_REFRESH + 10)
    assert waited is not None, (
        "pinhole still advertises %s %d s after the WAN address became %s"
        % (st.get("public_ip"), STUN_REFRESH + 10, ne.NEW_WAN))
    assert waited <= STUN_REFRESH + 4, (
        "new address followed after %.1f s, stun_refresh is %d s" % (
            waited, STUN_REFRESH))
    assert st.get("source") == "stun" and st.get("address_changes", 0) >= 1, \
        st
    api_names, cli_names, api, cli = alarm_names(ph)
    assert "public-address-changed" in api_names, (
        "alarm missing from GET /api/alarms: %s" % json.dumps(api))
    assert "public-address-changed" in cli_names, (
        "alarm missing from show alarms --json: %s" % json.dumps(cli))

    # Phones come back through the new address (env.proxy_for follows
    # the office site's WAN address). The router still holds the DNAT
    # conntrack entries of the old address (only masquerade entries die
    # with it), whose reply tuples (srv:5060 -> phone) clash with the
    # phones' new flows: the kernel then rewrites their source port, so a
    # public phone may now look NAT'ed to pinhole (real routers do the
    # same); its verdict is not checked here, and every call below is
    # relayed whatever that verdict.
    env.register_all(REMOTES)
    check_bindings(ph, remote_wans(topo, REMOTES), verdict_of_public=False)
    run_rounds(env, [
        [Call("prc-phone", "dave", "lanphone"),
         Call("sym-phone", ne.PUBLIC_GW_NUMBER, "pgw"),
         Call("pub1", ne.LAN_GW_NUMBER, "gw")],
        [Call("lanphone", "carol", "pub1"),
         Call("prc-phone", "bob", "sym-phone")],
    ])


# -- 4 ----------------------------------------------------------------------
# Scenario 4 runs pinhole on relay ports no other test uses (and no
# router forwards), on top of the conntrack flush between tests: a relay
# port once remapped by the router (see the one-way test) stays remapped
# for every later peer while its entry lives (the kernel reuses a
# source's mapping), so the scenarios must not share relay ports.
MASKED_RTP = (30200, 30300)
ONE_WAY_RTP = (30400, 30500)
NATED_RTP = (30600, 30700)


def _no_rtp_forward(topo):
    ne.set_office(topo, ne.OFFICE_WAN, rtp_forward=False)
    rules = ne.office_ruleset(topo)
    assert "dport 5060" in rules and "%d-%d" % (ne.RTP_MIN, ne.RTP_MAX) \
        not in rules, rules


def _advertised_port(run):
    """The m=audio port of the SDP in the 200 OK a caller received."""
    for m in ne.received_messages(run):
        if ne.first_line(m).startswith("SIP/2.0 200"):
            ports = re.findall(r"^m=audio (\d+)", m, re.M)
            if ports:
                return int(ports[0])
    return None


def test_missing_rtp_forward_masked_when_lan_speaks_first(
        topo, start_pinhole, make_env):
    """Same missing forward, but the LAN phone speaks first: the relay's
    packet to the remote phone opens a masquerade mapping that keeps the
    relay port, and the remote phone's RTP to that port is let back in as
    the reply. Two-way media - so a detector must not conclude "forward
    present" from one working call."""
    _no_rtp_forward(topo)
    ph = start_pinhole({"public_ip": ne.OFFICE_WAN}, rtp_range=MASKED_RTP)
    env = make_env(ph)
    env.register_all(["pub5", "lanphone"])
    c = Call("pub5", "dave", "lanphone", duration_ms=3000,
             caller_scenario="ne_uac_rr2_late_rtp.xml")
    env.place([c])
    problems = env.check(c)
    assert not problems, "\n".join(problems)


@pytest.mark.alarms("one-way-media")
def test_missing_rtp_forward_one_way(topo, start_pinhole, make_env):
    """The third classic failure: SIP is forwarded, the RTP range is not.
    The call connects. The remote (public) phone speaks first, its RTP hits
    the router's WAN address on a port nothing forwards, and that flow's
    conntrack entry (remote:6000 -> WAN:relay port, to the router itself)
    then forces the relay's own packets to the remote phone onto another
    source port: the remote phone hears the LAN phone, the LAN phone hears
    nothing."""
    _no_rtp_forward(topo)
    ph = start_pinhole({"public_ip": ne.OFFICE_WAN}, rtp_range=ONE_WAY_RTP)
    env = make_env(ph)
    env.register_all(["pub4", "lanphone"])
    # long enough for the one-way diagnosis (8 s after the answer, seen
    # by the 5 s media sweep)
    c = Call("pub4", "dave", "lanphone", duration_ms=15000,
             callee_scenario="ne_uas_late_rtp.xml")
    env.place([c])
    assert c.caller.rc == 0 and c.callee.rc == 0, (
        "the call itself must connect and end (SIP is forwarded): caller "
        "%s, callee %s" % (c.caller.rc, c.callee.rc))
    at_lan, at_remote = c.rtp["lanphone"], c.rtp["pub4"]
    streams = (c.session or {}).get("streams") or []
    assert streams, "no relay session seen for %s: %s" % (c.call_id,
                                                          c.session)
    a, b = streams[0]["a"], streams[0]["b"]        # a = caller = pub4
    facts = ("RTP at the LAN phone %d, at the remote phone %d (sources %s); "
             "relay rx from remote %d, from LAN %d; relay port offered to "
             "the remote %s" % (at_lan, at_remote, c.sources["pub4"],
                                a["rx_packets"], b["rx_packets"],
                                _advertised_port(c.caller)))
    # precisely one way: the LAN side gets nothing at all, the remote side
    # gets the LAN phone's audio, relayed from the office WAN address
    assert at_lan == 0 and a["rx_packets"] == 0, "LAN phone heard " \
        "something although RTP is not forwarded: " + facts
    assert at_remote >= ne.MIN_RTP and b["rx_packets"] >= ne.MIN_RTP, (
        "remote phone should hear the LAN phone: " + facts)
    assert all(k.split(":")[0] == ne.OFFICE_WAN for k in c.sources["pub4"]), \
        facts
    # pinhole names the cause and the fix, in the API and in the doctor
    api_names, _, api, _ = alarm_names(ph)
    assert "one-way-media" in api_names, api
    [a] = [a for a in api if a["code"] == "one-way-media"]
    want = "forwards UDP %d-%d" % ONE_WAY_RTP
    assert want in a["text"] and "behind NAT" in a["text"], a
    doctor = ph.cli("doctor", check=False, timeout=40).stdout
    assert "one-way-media" in doctor, doctor


def test_missing_rtp_forward_nated_phone_hears_nothing(
        topo, start_pinhole, make_env):
    """The same missing forward with a remote phone behind a
    (port-restricted) NAT: pinhole never sends to a NAT'ed phone's private
    SDP address and waits to latch on its packets, which the office router
    drops. The call connects; nobody hears anything: the LAN phone's RTP
    reaches the relay and is dropped there (no destination), the remote
    phone gets nothing."""
    _no_rtp_forward(topo)
    ph = start_pinhole({"public_ip": ne.OFFICE_WAN}, rtp_range=NATED_RTP)
    env = make_env(ph)
    env.register_all(["prc2-phone", "lanphone"])
    c = Call("prc2-phone", "dave", "lanphone", duration_ms=3000)
    env.place([c])
    assert c.caller.rc == 0 and c.callee.rc == 0, (
        "the call itself must connect and end (SIP is forwarded): caller "
        "%s, callee %s" % (c.caller.rc, c.callee.rc))
    streams = (c.session or {}).get("streams") or []
    assert streams, "no relay session seen for %s: %s" % (c.call_id,
                                                          c.session)
    a, b = streams[0]["a"], streams[0]["b"]        # a = caller = remote
    facts = ("RTP at the LAN phone %d, at the remote phone %d; relay: "
             "remote side %s, LAN side %s" % (
                 c.rtp["lanphone"], c.rtp["prc2-phone"], a, b))
    assert c.rtp["lanphone"] == 0 and c.rtp["prc2-phone"] == 0, facts
    assert a["rx_packets"] == 0 and not a["latched"], facts
    # (rx_packets counts what the relay forwarded; the LAN phone's RTP
    # arrived and was dropped for want of a destination)
    assert b["latched"] and b["dropped"] >= ne.MIN_RTP, facts


# -- route set on one line ----------------------------------------------------
@pytest.mark.alarms("rtp-range-unreachable")
def test_doctor_reachability_self_test(topo, start_pinhole, stun):
    """pinhole doctor asks the daemon to test, through an RFC 5780 STUN
    server (coturn with two addresses), whether an answer from another
    address reaches the SIP port and the RTP range through the office NAT:
    both with the port forwards, the RTP range no longer once its forward
    is gone (the seed of one-way audio), with an alarm naming the fix."""
    stun(rfc5780=True)
    ph = start_pinhole({"stun_server": "%s:%d" % (ne.STUN_IP, ne.STUN_PORT)})
    waited, st = ne.wait_public_ip(ph, ne.OFFICE_WAN, timeout=10)
    assert waited is not None, "no public address learned: %s" % st
    out = ph.cli("doctor", check=False, timeout=40).stdout
    assert "ok SIP port 5060/udp is reachable" in out, out
    assert re.search(r"ok RTP range \(tested on port \d+/udp\) is "
                     r"reachable", out), out
    res = ph.api("/api/selftest")
    assert res["rfc5780"] and res["stun_other_address"].startswith(
        ne.STUN_IP2 + ":"), res

    _no_rtp_forward(topo)
    ne.flush_conntrack(topo["office-rtr"])
    out = ph.cli("doctor", check=False, timeout=40).stdout
    assert "ok SIP port 5060/udp is reachable" in out, out
    assert re.search(r"! RTP range \(tested on port \d+/udp\) is NOT "
                     r"reachable", out), out
    assert "forward the whole [media] range on the local NAT" in out, out
    api_names, cli_names, _, _ = alarm_names(ph)
    assert "rtp-range-unreachable" in api_names, api_names
    assert "sip-port-unreachable" not in api_names, api_names


def test_route_set_on_one_line(topo, start_pinhole, make_env):
    """Calls crossing the office NAT with the harness's uac.xml, whose ACK
    and BYE carry the route set as SIPp's [routes]: ONE Route header line
    "<first>, <second>" holding both of pinhole's Record-Route entries.
    pinhole must strip both of its own entries and forward the ACK and the
    BYE (in both directions: outside caller, LAN caller)."""
    ph = start_pinhole({"public_ip": ne.OFFICE_WAN})
    env = make_env(ph)
    env.register_all(["pub1", "prc-phone", "lanphone"])
    run_rounds(env, [[Call("pub1", "dave", "lanphone",
                           caller_scenario="uac.xml")],
                     [Call("lanphone", "alice", "prc-phone",
                           caller_scenario="uac.xml")]])

"""The lab itself, without pinhole: topology reachability, a broken link is
detected, and a direct SIPp call carries RTP both ways (so a later media
failure is pinhole's, not the harness's)."""

import os

import labenv
import labnet
from probes import probe

PY = "/usr/bin/python3"
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools")


PAIRS = [
    ("pub1", "srv"), ("pub2", "srv"), ("srv", "pub1"), ("lanphone", "pub2"),
    ("pub1", "lanphone"), ("pub1", "gw"), ("lanphone", "srv"),
    ("lanphone2", "pub1"), ("pub1", "pub2"), ("srv", "gw"),
]


def test_reachability(topo):
    failures = []
    for src, dst in PAIRS:
        ok, text = probe(topo, src, topo.ip(dst), dst)
        if not ok:
            failures.append("%s -> %s (%s): %s" % (src, dst, topo.ip(dst),
                                                   text))
        elif text.split(":")[0] != topo.ip(src):
            # no NAT yet: the far end must see the real source address
            failures.append("%s -> %s seen from %s" % (src, dst, text))
    assert not failures, "unreachable: " + "; ".join(failures)


def test_router_wan_reachable(topo):
    ok, text = probe(topo, "pub1", "203.0.113.1", "office-rtr")
    assert ok, text


def test_broken_link_is_detected(topo):
    rtr = topo["office-rtr"]
    rtr.link_set("eth1", up=False)
    try:
        ok, text = probe(topo, "pub1", topo.ip("srv"), "srv")
        assert not ok, "probe crossed a downed link: " + text
    finally:
        rtr.link_set("eth1", up=True)
    ok, text = probe(topo, "pub1", topo.ip("srv"), "srv")
    assert ok, "link did not come back: " + text


def _direct(env, scenario):
    """Call straight from pub1 to lanphone (no proxy: remote = callee)."""
    s = env.sipp("pub1", scenario, "direct-uac",
                 remote="%s:5060" % env.topo.ip("lanphone"),
                 media_port=labenv.MEDIA_PORT, service="bob",
                 pause_ms=3000 if scenario == "uac.xml" else 300, timeout=15,
                 keys={"domain": labenv.DOMAIN, "user": "alice"})
    return s


def test_direct_call_rtp_both_ways(bare_env):
    env = bare_env
    caps = env.capture("pub1", "lanphone")
    callee = env.uas("lanphone", "bob", answer_ms=200)
    caller = _direct(env, "uac.xml")
    assert caller.run() == 0, "direct call failed"
    env.wait_ok(callee)
    counts = env.assert_media(caps, ("pub1", "lanphone"))
    assert all(n < 400 for n in counts.values()), counts   # ~50 pps


def test_direct_cancel(bare_env):
    env = bare_env
    callee = env.uas("lanphone", "bob", scenario="uas_ring.xml")
    caller = _direct(env, "uac_cancel.xml")
    assert caller.run() == 0, "direct CANCEL flow failed"
    env.wait_ok(callee)


def test_pcap_reader_rejects_garbage(tmp_path):
    import pcap
    p = tmp_path / "x.pcap"
    p.write_bytes(b"not a pcap file at all, really")
    try:
        list(pcap.read_udp(str(p)))
    except ValueError:
        return
    raise AssertionError("garbage accepted as pcap")


def _fake_peer(env, mode, host="lanphone"):
    tool = os.path.join(TOOLS, "fake_authpeer.py")
    log = os.path.join(env.workdir, "fake-%s.log" % mode)
    node = env.topo[host]
    p = node.popen([PY, tool, mode, "alice", labenv.USERS["alice"],
                    env.topo.ip(host)], log)
    env.report.add("fake peer " + mode, lambda: open(log).read())
    assert labnet.wait_until(lambda: "ready" in open(log).read(), 3)
    return p, log


def test_register_scenario_answers_digest_challenge(bare_env):
    env = bare_env
    peer, log = _fake_peer(env, "register")
    s = env.sipp("pub1", "register.xml", "reg-fake",
                 remote="%s:5060" % env.topo.ip("lanphone"), service="alice",
                 auth=("alice", labenv.USERS["alice"]), timeout=10,
                 auth_uri=labenv.auth_uri("sip:example.com"),
                 keys={"domain": labenv.DOMAIN, "expires": 60,
                       "via_port": 5060})
    assert s.run() == 0
    assert peer.wait(timeout=10) == 0, open(log).read()


def test_uac_scenario_proxy_auth_and_route_set(bare_env):
    env = bare_env
    peer, log = _fake_peer(env, "invite")
    s = env.sipp("pub1", "uac.xml", "uac-fake",
                 remote="%s:5060" % env.topo.ip("lanphone"), service="bob",
                 auth=("alice", labenv.USERS["alice"]), pause_ms=300,
                 auth_uri=labenv.auth_uri("sip:bob@example.com"),
                 timeout=10, keys={"domain": labenv.DOMAIN, "user": "alice"})
    assert s.run() == 0
    assert peer.wait(timeout=10) == 0, open(log).read()


def test_media_check_catches_one_way_audio(bare_env):
    """The router drops RTP towards pub1: the call still completes, but the
    media check must fail for pub1 and pass for lanphone. (Drops happen in
    the network: a capture on the receiver's eth0 sees packets before its
    own firewall, so local input drops are invisible to it.)"""
    env = bare_env
    rtr = env.topo["office-rtr"]
    rtr.nft("""table ip labdrop {
    chain forward {
        type filter hook forward priority filter; policy accept;
        ip daddr %s udp dport %d drop
    }
}
""" % (env.topo.ip("pub1"), labenv.MEDIA_PORT))
    try:
        caps = env.capture("pub1", "lanphone")
        callee = env.uas("lanphone", "bob", answer_ms=200)
        caller = _direct(env, "uac.xml")
        assert caller.run() == 0
        env.wait_ok(callee)
        env.stop_captures(caps)
        assert env.rtp_at(caps, "pub1") == 0
        assert env.rtp_at(caps, "lanphone") >= labenv.MIN_RTP
        try:
            env.assert_media(caps, ("pub1", "lanphone"))
        except AssertionError as e:
            assert "'pub1': 0" in str(e), str(e)
        else:
            raise AssertionError("one-way audio went unnoticed")
    finally:
        rtr.run(["nft", "delete", "table", "ip", "labdrop"], check=False)


def test_direct_callee_hangs_up(bare_env):
    env = bare_env
    caps = env.capture("pub1", "lanphone")
    callee = env.uas("lanphone", "bob", scenario="uas_bye.xml",
                     answer_ms=200)
    caller = _direct(env, "uac_wait_bye.xml")
    assert caller.run() == 0, "direct call with callee BYE failed"
    env.wait_ok(callee)
    env.assert_media(caps, ("pub1", "lanphone"))

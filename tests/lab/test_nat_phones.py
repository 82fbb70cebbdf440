"""First far-end NAT scenarios: a phone behind each kind of home NAT
registers (pinhole must classify it) and is called from a public phone;
media must flow both ways, through pinhole's relay on srv.

The office is the foundation's (no NAT); each home site is a router with
its own LAN 192.168.1.0/24 and one phone at 192.168.1.10."""

import pytest

import labnet
import topology

KINDS = {
    # kind: (site, WAN address, expected verdict)
    "full-cone": ("fc", "203.0.113.21", "behind-nat"),
    "restricted": ("rc", "203.0.113.22", "behind-nat"),
    "port-restricted": ("prc", "203.0.113.23", "behind-nat"),
    "symmetric": ("sym", "203.0.113.24", "behind-nat"),
    # the ALG rewrites Contact/Via to the public address: pinhole should
    # still notice (DESIGN 3: "nonat-suspect")
    "alg": ("alg", "203.0.113.25", "nonat-suspect"),
}


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    """Overrides conftest's topo for this module: office + home sites."""
    homes = [topology.home_site(site, wan, kind)
             for kind, (site, wan, _) in KINDS.items()]
    yield from labnet.module_topology(
        str(tmp_path_factory.mktemp("natphones")),
        lambda lab: topology.build(lab, dict(topology.PUBLIC),
                                   [topology.OFFICE] + homes))


@pytest.mark.alarms("nonat-suspect")
@pytest.mark.parametrize("kind", list(KINDS))
def test_call_to_phone_behind_nat(env, pinhole, kind):
    site, wan, verdict = KINDS[kind]
    phone = site + "-phone"
    env.register("pub1", "alice")
    callee = env.phone(phone, "bob", answer_ms=300)
    [b] = pinhole.bindings_for("bob")
    assert b["verdict"] == verdict, b
    assert str(b["public"]).startswith(wan + ":"), b
    caps = env.capture("pub1", phone)
    env.call("pub1", "bob", user="alice", duration_ms=2000)
    env.wait_ok(callee)
    # the phone's private address is unreachable from pub1: all media
    # must come from the relay, in both directions
    env.assert_relayed(caps, ("pub1", phone), env.topo.ip("srv"))


@pytest.mark.alarms("nonat-suspect")
@pytest.mark.parametrize("kind", ["symmetric", "alg"])
def test_call_from_phone_behind_nat(env, pinhole, kind):
    """The NATed phone calls out: responses, the callee's in-dialog
    requests and the relayed media must find their way back through the
    mapping the phone opened."""
    site, wan, _ = KINDS[kind]
    phone = site + "-phone"
    env.register(phone, "alice")
    callee = env.phone("pub1", "bob", scenario="uas_bye.xml", answer_ms=300)
    caps = env.capture("pub1", phone)
    env.call(phone, "bob", user="alice", scenario="uac_wait_bye.xml")
    env.wait_ok(callee)
    env.assert_relayed(caps, ("pub1", phone), env.topo.ip("srv"))

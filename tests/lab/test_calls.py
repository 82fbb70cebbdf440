"""Scenario 2: a LAN phone and a public phone call each other through
pinhole (auth, Record-Route, relay); RTP is counted where it lands, at
both phones, and must flow both ways."""

import pytest

# (caller host, caller user, callee host, callee user)
DIRECTIONS = [
    pytest.param("lanphone", "alice", "pub1", "bob", id="lan-to-public"),
    pytest.param("pub1", "bob", "lanphone", "alice", id="public-to-lan"),
]


@pytest.mark.parametrize("src,caller,dst,callee", DIRECTIONS)
def test_call_two_way_rtp(env, src, caller, dst, callee):
    env.register(src, caller)
    callee_run = env.phone(dst, callee, answer_ms=300)
    caps = env.capture(src, dst)
    env.call(src, callee, user=caller, duration_ms=3000)
    env.wait_ok(callee_run)
    env.assert_media(caps, (src, dst))


def test_call_between_public_phones(env):
    env.register("pub1", "alice")
    callee_run = env.phone("pub2", "bob", answer_ms=300)
    caps = env.capture("pub1", "pub2")
    env.call("pub1", "bob", user="alice", duration_ms=3000)
    env.wait_ok(callee_run)
    env.assert_media(caps, ("pub1", "pub2"))


def test_no_relay_without_nat(env):
    """DESIGN 4: relay only when an end is behind a far-end NAT or the ends
    are on different sides of the local NAT. Here there is no NAT at all
    (verdicts local and public), so media must flow end to end."""
    env.register("lanphone", "alice")
    callee_run = env.phone("pub1", "bob", answer_ms=300)
    caps = env.capture("lanphone", "pub1")
    env.call("lanphone", "bob", user="alice", duration_ms=2000)
    env.wait_ok(callee_run)
    env.assert_direct(caps, ("lanphone", "pub1"))


def test_call_to_unregistered_user_fails(env):
    # carol exists but has no binding: the call must not succeed.
    s = env.call("pub1", "carol", user="alice", duration_ms=500, timeout=10,
                 expect_ok=False)
    assert s.rc != 0, "a call to an unregistered user was answered"
    final = [line for line in s.messages().splitlines()
             if line.startswith("SIP/2.0 4") or line.startswith("SIP/2.0 5")]
    assert any(code in line for line in final
               for code in ("404", "480")), (
        "expected 404/480 for an unregistered user, got %s" % final)


@pytest.mark.parametrize("src,caller,dst,callee", DIRECTIONS)
def test_callee_hangs_up(env, src, caller, dst, callee):
    """The callee's BYE must reach the caller through pinhole (Route set
    from the Record-Route the callee saw in the INVITE)."""
    env.register(src, caller)
    callee_run = env.phone(dst, callee, scenario="uas_bye.xml",
                           answer_ms=300)
    caps = env.capture(src, dst)
    env.call(src, callee, user=caller, scenario="uac_wait_bye.xml")
    env.wait_ok(callee_run)
    env.assert_media(caps, (src, dst))

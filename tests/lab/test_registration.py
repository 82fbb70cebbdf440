"""Scenario 1: digest-authenticated REGISTER, visible in
`pinhole show registrations --json`; a wrong password is refused and
leaves no binding; an unregister (Expires: 0) removes the binding."""

import pytest

import labnet

CONTRACT_KEYS = {"aor", "contact", "public", "transport", "local",
                 "private_contact", "verdict", "expires", "user_agent",
                 "node", "q"}


def test_register_with_auth_shows_binding(env, pinhole, topo):
    env.register("pub1", "alice")
    bindings = pinhole.bindings_for("alice")
    assert len(bindings) == 1, "expected one binding for alice, got %r" % (
        pinhole.registrations(),)
    b = bindings[0]
    missing = CONTRACT_KEYS - set(b)
    assert not missing, "binding lacks contract keys %s: %r" % (missing, b)
    assert "alice@example.com" in str(b["aor"]), b
    assert "sip:alice@203.0.113.31:5060" in str(b["contact"]), b
    assert "203.0.113.31" in str(b["public"]), b
    assert str(b["transport"]).lower() == "udp", b
    assert 0 < int(b["expires"]) <= 3600, b
    assert "pinhole-lab-sipp" in str(b["user_agent"]), b
    # no NAT in the foundation topology: the phone is public as it says,
    # and the active check (OPTIONS from another port) proved it
    assert b["verdict"] == "public", b
    assert "answered an OPTIONS from another port" in b["nat_reason"], b


@pytest.mark.alarms("nonat-suspect")
def test_public_looking_phone_that_ignores_options_is_suspect(env, pinhole):
    """The active check must be able to fail: a public-looking phone that
    does not answer pinhole's OPTIONS from another port (here SIPp without
    an out-of-call scenario; it then exits, so later tries meet ICMP port
    unreachable) is nonat-suspect within the check's 3.5 s, with an
    alarm."""
    env.register("pub1", "alice", no_options=True)
    got = {}

    def suspect():
        got["b"] = pinhole.bindings_for("alice")
        return got["b"] and got["b"][0]["verdict"] == "nonat-suspect"
    assert labnet.wait_until(suspect, 6), got
    assert "another port" in got["b"][0]["nat_reason"], got
    alarms = pinhole.api("/api/alarms")
    assert any(a["code"] == "nonat-suspect" and "alice" in a["subject"]
               for a in alarms), alarms


def test_lan_phone_binding(env, pinhole):
    env.register("lanphone", "bob")
    bindings = pinhole.bindings_for("bob")
    assert len(bindings) == 1, pinhole.registrations()
    assert "sip:bob@10.10.0.21:5060" in str(bindings[0]["contact"]), bindings
    # 10.10.0.0/24 is in intranet_subnets
    assert bindings[0]["verdict"] == "local", bindings


def test_register_over_tcp(env, pinhole):
    env.register("pub2", "carol", transport="t1")
    bindings = pinhole.bindings_for("carol")
    assert len(bindings) == 1, pinhole.registrations()
    b = bindings[0]
    assert str(b["transport"]).lower() == "tcp", b
    assert "sip:carol@203.0.113.32:5060" in str(b["contact"]), b


def test_responses_follow_rport(env, pinhole):
    """The Via claims port 5999 but the phone sends from (and listens on)
    5060: with ;rport the 401 and the 200 must come back to 5060."""
    env.register("pub1", "alice", via_port=5999)
    assert len(pinhole.bindings_for("alice")) == 1, pinhole.registrations()


def test_wrong_password_is_refused(env, pinhole):
    # register_refused.xml passes only if the authenticated REGISTER gets
    # 401 or 403 (a 200 is an unexpected message there).
    env.register("pub2", "carol", password="not-carols-password",
                 expect_ok=False)
    assert pinhole.bindings_for("carol") == [], pinhole.registrations()


@pytest.mark.alarms("auth-wrong-password")
def test_repeated_wrong_password_raises_alarm(env, pinhole):
    """A phone configured with a wrong password retries: after 5 refusals
    within a minute pinhole raises one alarm naming the account and the
    fix, shown by the API and by pinhole doctor."""
    for _ in range(5):
        env.register("pub2", "carol", password="not-carols-password",
                     expect_ok=False)
    alarms = [a for a in pinhole.api("/api/alarms")
              if a["code"] == "auth-wrong-password"]
    assert len(alarms) == 1 and "carol" in alarms[0]["subject"], alarms
    assert "password" in alarms[0]["text"], alarms
    doctor = pinhole.cli("doctor", check=False, timeout=40).stdout
    assert "auth-wrong-password" in doctor, doctor


def test_unknown_user_is_refused(env, pinhole):
    # mallory has no account: REGISTER must not create a binding.
    s = env.sipp("pub2", "register_refused.xml", "reg-mallory",
                 remote=env.proxy, service="mallory",
                 auth=("mallory", "whatever"), timeout=10,
                 auth_uri="example.com",
                 keys={"domain": "example.com", "expires": 3600})
    rc = s.run()
    # A 401/403 to the authenticated REGISTER (rc 0) or a 403/404 straight
    # away (SIPp sees an unexpected final response, rc 1) are both refusals;
    # what must never happen is a binding.
    assert rc in (0, 1), "SIPp exit %s" % rc
    assert "SIP/2.0 200" not in s.messages(), "unknown user got a 200"
    assert pinhole.bindings_for("mallory") == [], pinhole.registrations()


def test_unregister_removes_binding(env, pinhole):
    env.register("pub1", "alice")
    assert len(pinhole.bindings_for("alice")) == 1, pinhole.registrations()
    env.register("pub1", "alice", expires=0)
    assert pinhole.bindings_for("alice") == [], pinhole.registrations()

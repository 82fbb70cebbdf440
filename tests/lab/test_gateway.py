"""Scenario 3: a public phone dials 9123; pinhole routes it by the [routes]
prefix "9" to the registration-less gateway (a SIPp UAS at 10.10.0.50),
keeping the user part; two-way RTP."""

import re


def test_call_to_gateway_by_prefix(env, topo):
    env.register("pub1", "alice")
    gw = env.uas("gw", "gateway", answer_ms=300)
    caps = env.capture("pub1", "gw")
    env.call("pub1", "9123", user="alice", duration_ms=3000)
    env.wait_ok(gw)
    env.assert_media(caps, ("pub1", "gw"))
    # The gateway saw the dialled number as the user part, its own address
    # as host.
    first_invite = re.search(r"^INVITE (\S+) SIP/2.0", gw.messages(), re.M)
    assert first_invite, "gateway got no INVITE"
    uri = first_invite.group(1)
    assert uri.startswith("sip:9123@10.10.0.50"), (
        "gateway Request-URI %s, expected sip:9123@10.10.0.50[:5060]" % uri)

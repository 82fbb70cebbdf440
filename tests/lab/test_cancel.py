"""Scenario 5: CANCEL before answer. The caller gets 180, sends CANCEL; the
callee receives the CANCEL (200 + 487 in uas_ring.xml); the caller gets 200
for its CANCEL and 487 for its INVITE (uac_cancel.xml)."""

import pytest


@pytest.mark.parametrize("src,dst", [("lanphone", "pub2"),
                                     ("pub2", "lanphone")],
                         ids=["lan-cancels-public", "public-cancels-lan"])
def test_cancel_before_answer(env, src, dst):
    env.register(src, "alice")
    callee = env.phone(dst, "bob", scenario="uas_ring.xml")
    env.call(src, "bob", user="alice", scenario="uac_cancel.xml",
             duration_ms=500, timeout=15)
    env.wait_ok(callee)

"""Scenario 6: bindings persist across a restart. Register, stop pinhole
with SIGTERM, start it again on the same store, call the registered phone
without re-registering: the call and its media must work."""


def test_binding_survives_restart(env, pinhole):
    env.register("pub1", "alice")
    env.register("pub2", "bob")
    before = pinhole.bindings_for("bob")
    assert len(before) == 1, pinhole.registrations()

    rc, clean = pinhole.stop()
    assert clean, "pinhole ignored SIGTERM for 5 s"
    assert rc == 0, "pinhole exited %s on SIGTERM" % rc
    pinhole.start()

    after = pinhole.bindings_for("bob")
    assert len(after) == 1, "binding lost in restart: %r" % (
        pinhole.registrations(),)
    assert after[0].get("contact") == before[0].get("contact"), (before, after)

    callee = env.uas("pub2", "bob", answer_ms=300)
    caps = env.capture("pub1", "pub2")
    env.call("pub1", "bob", user="alice", duration_ms=3000)
    env.wait_ok(callee)
    env.assert_media(caps, ("pub1", "pub2"))

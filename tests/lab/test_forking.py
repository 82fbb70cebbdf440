"""Scenario 4: bob has two devices (pub2 and lanphone2); a call to bob rings
both; pub2 answers, lanphone2 must then receive a CANCEL and answer it with
200 and the INVITE with 487 (asserted inside uas_ring.xml)."""


def test_fork_answer_cancels_other_branch(env, pinhole):
    env.register("pub1", "alice")
    env.register("pub2", "bob")
    env.register("lanphone2", "bob")
    contacts = sorted(str(b.get("contact")) for b in
                      pinhole.bindings_for("bob"))
    assert len(contacts) == 2, "bob should have two bindings: %s" % contacts
    # The loser rings first so that it has surely got its INVITE (and sent
    # 180) before the winner answers.
    winner = env.uas("pub2", "bob", answer_ms=1500)
    loser = env.uas("lanphone2", "bob", scenario="uas_ring.xml")
    caps = env.capture("pub1", "pub2")
    env.call("pub1", "bob", user="alice", duration_ms=3000)
    env.wait_ok(winner, loser)
    env.assert_media(caps, ("pub1", "pub2"))

"""Telephony features run by the proxy: hunt groups, call forwarding
(always, busy, no answer, unreachable), simultaneous ring, 3xx recursion,
forwarding loops. Phones are Python UAs on loopback; settings are made
with the real CLI (`pinhole user set`, `pinhole group set`)."""
import time

from sipclient import UA, recv_request
from test_proxy import SDP, answer, invite, recv_status


def no_request(ua, method, timeout=1.0):
    try:
        m = recv_request(ua, method, timeout)
    except Exception:
        return True
    return m is None


def test_forward_always(pbx):
    pbx.cli("user", "set", "alice", "forward_always=bob")
    dave = UA(pbx.port, "dave")
    invite(dave, "alice")
    inv = recv_request(pbx.phones["bob"], "INVITE")
    assert inv.first.startswith("INVITE sip:bob@127.0.0.1")
    answer(pbx.phones["bob"], inv, 200, "OK", tag="b",
           extra="Content-Type: application/sdp\r\n", body=SDP)
    assert dave.final().status == 200
    assert no_request(pbx.phones["alice"], "INVITE", 0.5)


def test_forward_busy(pbx):
    pbx.cli("user", "set", "alice", "forward_busy=carol")
    dave = UA(pbx.port, "dave")
    invite(dave, "alice")
    inv = recv_request(pbx.phones["alice"], "INVITE")
    answer(pbx.phones["alice"], inv, 486, "Busy Here", tag="a")
    inv2 = recv_request(pbx.phones["carol"], "INVITE")
    answer(pbx.phones["carol"], inv2, 200, "OK", tag="c",
           extra="Content-Type: application/sdp\r\n", body=SDP)
    ok = dave.final()
    assert ok.status == 200 and ok.get("To").endswith("tag=c")


def test_forward_noanswer_after_ring_time(pbx):
    pbx.cli("user", "set", "alice", "forward_noanswer=bob",
            "forward_noanswer_after=2")
    dave = UA(pbx.port, "dave")
    invite(dave, "alice")
    inv = recv_request(pbx.phones["alice"], "INVITE")
    answer(pbx.phones["alice"], inv, 180, "Ringing", tag="a")
    cancel = recv_request(pbx.phones["alice"], "CANCEL", timeout=5)
    answer(pbx.phones["alice"], cancel, 200, "OK", tag="a")
    answer(pbx.phones["alice"], inv, 487, "Request Terminated", tag="a")
    inv2 = recv_request(pbx.phones["bob"], "INVITE", timeout=5)
    answer(pbx.phones["bob"], inv2, 200, "OK", tag="b",
           extra="Content-Type: application/sdp\r\n", body=SDP)
    assert dave.final(timeout=5).status == 200


def test_forward_unreachable(pbx):
    pbx.cli("user", "set", "dave", "forward_unreachable=carol")
    bob = pbx.phones["bob"]
    invite(bob, "dave")          # dave has no registered device
    inv = recv_request(pbx.phones["carol"], "INVITE")
    answer(pbx.phones["carol"], inv, 486, "Busy", tag="c")
    assert bob.final().status == 486


def test_simultaneous_ring(pbx):
    pbx.cli("user", "set", "alice", "also_ring=bob,carol")
    dave = UA(pbx.port, "dave")
    invite(dave, "alice")
    invs = {u: recv_request(pbx.phones[u], "INVITE") for u in ("alice", "bob", "carol")}
    for u in ("alice", "bob"):   # ringing: a CANCEL may follow (RFC 3261 9.1)
        answer(pbx.phones[u], invs[u], 180, "Ringing", tag=u)
    answer(pbx.phones["carol"], invs["carol"], 200, "OK", tag="c",
           extra="Content-Type: application/sdp\r\n", body=SDP)
    assert dave.final().status == 200
    for u in ("alice", "bob"):
        assert recv_request(pbx.phones[u], "CANCEL")


def test_hunt_group_sequential_to_final(pbx):
    pbx.cli("group", "set", "600", "members=alice,bob", "mode=sequential",
            "ring_time=2", "final=carol")
    assert "alice,bob" in pbx.cli("group", "list").stdout
    dave = UA(pbx.port, "dave")
    invite(dave, "600")
    a = recv_request(pbx.phones["alice"], "INVITE")
    answer(pbx.phones["alice"], a, 180, "Ringing", tag="a")
    cancel = recv_request(pbx.phones["alice"], "CANCEL", timeout=5)   # ring time
    answer(pbx.phones["alice"], cancel, 200, "OK", tag="a")
    answer(pbx.phones["alice"], a, 487, "Request Terminated", tag="a")
    b = recv_request(pbx.phones["bob"], "INVITE", timeout=5)
    answer(pbx.phones["bob"], b, 486, "Busy Here", tag="b")           # busy
    c = recv_request(pbx.phones["carol"], "INVITE", timeout=5)        # final
    answer(pbx.phones["carol"], c, 200, "OK", tag="c",
           extra="Content-Type: application/sdp\r\n", body=SDP)
    assert dave.final(timeout=5).status == 200


def test_hunt_group_parallel_all_unreachable_reaches_final(pbx):
    pbx.cli("group", "set", "700", "members=dave", "mode=parallel",
            "ring_time=5", "final=bob")
    carol = pbx.phones["carol"]
    invite(carol, "700")           # dave is not registered anywhere
    b = recv_request(pbx.phones["bob"], "INVITE")
    answer(pbx.phones["bob"], b, 200, "OK", tag="b",
           extra="Content-Type: application/sdp\r\n", body=SDP)
    assert carol.final().status == 200


def test_redirect_followed_by_proxy(pbx):
    dave = UA(pbx.port, "dave")
    invite(dave, "alice")
    a = recv_request(pbx.phones["alice"], "INVITE")
    answer(pbx.phones["alice"], a, 302, "Moved", tag="a",
           extra="Contact: <sip:bob@example.com>\r\n")
    b = recv_request(pbx.phones["bob"], "INVITE")
    answer(pbx.phones["bob"], b, 200, "OK", tag="b",
           extra="Content-Type: application/sdp\r\n", body=SDP)
    assert dave.final().status == 200


def test_forwarding_loop_ends(pbx):
    pbx.cli("user", "set", "alice", "forward_always=bob")
    pbx.cli("user", "set", "bob", "forward_always=alice")
    dave = UA(pbx.port, "dave")
    invite(dave, "alice")
    r = dave.final()
    assert r.status == 482, r


def test_cli_rejects_unknown_key(pbx):
    r = pbx.cli("user", "set", "alice", "forward_sometimes=bob", check=False)
    assert r.returncode == 2 and "forward_busy" in r.stderr

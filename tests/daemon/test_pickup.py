"""Call pickup (directed *78 + extension, group *8) against the running
daemon on loopback. pinhole sends the picker's INVITE to the caller of the
ringing call with a Replaces header for the caller's early dialog (RFC
3891: to-tag = the caller's own tag, from-tag = the ringing phone's To
tag); the caller answers the picker and CANCELs its first INVITE, which
reaches the ringing phone as any CANCEL does."""
import tempfile

from conftest import Daemon, setup_pbx
from sipclient import UA, recv_request
from test_proxy import SDP, answer, invite, recv_status


def ring(pbx, caller, callee, tag):
    """caller calls callee, whose phone answers 180 with a To tag; returns
    the 180 the caller got and the INVITE the callee got."""
    invite(caller, callee)
    inv = recv_request(pbx.phones[callee], "INVITE")
    answer(pbx.phones[callee], inv, 180, "Ringing", tag=tag)
    return recv_status(caller, 180), inv


def cancel_original(caller, r180):
    """The caller CANCELs its first INVITE (same Via branch)."""
    caller.send("CANCEL sip:bob@example.com SIP/2.0\r\n"
                f"Via: {r180.get('Via')}\r\n"
                f"From: <sip:{caller.user}@example.com>;tag={caller.user}tag\r\n"
                f"To: <sip:bob@example.com>\r\nCall-ID: {r180.get('Call-ID')}\r\n"
                f"CSeq: {r180.get('CSeq').split()[0]} CANCEL\r\n"
                "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")


def test_directed_pickup(pbx):
    alice, bob, carol = (pbx.phones[u] for u in ("alice", "bob", "carol"))
    r180, bob_inv = ring(pbx, alice, "bob", "bobring")
    assert r180.get("To").endswith("tag=bobring")

    invite(carol, "*78bob")
    inv = recv_request(alice, "INVITE")
    # to the Contact of alice's INVITE, on the flow it came from
    assert inv.first == f"INVITE sip:alice@127.0.0.1:{alice.port} SIP/2.0"
    assert inv.get("Replaces") == \
        f"{alice.call_id};to-tag=alicetag;from-tag=bobring;early-only"
    assert inv.get("Require") == "replaces"
    assert inv.get("From").startswith("<sip:carol@example.com>")
    assert inv.all("Record-Route"), "the pickup dialog is Record-Routed"
    assert not inv.get("Proxy-Authorization"), "our credentials stay with us"

    answer(alice, inv, 200, "OK", tag="alicepick",
           extra="Content-Type: application/sdp\r\n", body=SDP)
    ok = recv_status(carol, 200)
    assert ok.get("To").endswith("tag=alicepick")
    assert ok.get("Call-ID") == carol.call_id

    cancel_original(alice, r180)
    assert recv_status(alice, 200).get("CSeq").endswith("CANCEL")
    cancel = recv_request(bob, "CANCEL")
    assert cancel.get("Call-ID") == alice.call_id
    answer(bob, cancel, 200, "OK", tag="bobring")
    answer(bob, bob_inv, 487, "Request Terminated", tag="bobring")
    assert recv_status(alice, 487).get("Call-ID") == alice.call_id
    log = open(pbx.log).read()
    assert "pickup: carol picks up the call" in log


def test_oldest_ringing_call_is_picked(pbx):
    alice, carol = pbx.phones["alice"], pbx.phones["carol"]
    dave = UA(pbx.port, "dave")
    ring(pbx, alice, "bob", "first")
    ring(pbx, dave, "bob", "second")
    invite(carol, "*78bob")
    inv = recv_request(alice, "INVITE")
    assert inv.get("Replaces").endswith("from-tag=first;early-only")


def test_call_under_pickup_not_picked_twice_until_that_fails(pbx):
    alice, carol = pbx.phones["alice"], pbx.phones["carol"]
    dave = UA(pbx.port, "dave")
    ring(pbx, alice, "bob", "twice")
    invite(carol, "*78bob")
    first = recv_request(alice, "INVITE")      # not answered yet
    invite(dave, "*78bob")
    assert dave.final().status == 480
    answer(alice, first, 481, "Call Does Not Exist", tag="no")
    assert carol.final().status == 481
    invite(dave, "*78bob")                     # the failed pickup let go
    again = recv_request(alice, "INVITE")
    assert again.get("From").startswith("<sip:dave@")
    assert again.get("Replaces").endswith("from-tag=twice;early-only")


def test_nothing_ringing_480(pbx):
    carol = pbx.phones["carol"]
    invite(carol, "*78bob")
    r = carol.final()
    assert (r.status, r.first.split(" ", 2)[2]) == (480, "Nothing To Pick Up")


def test_call_not_yet_ringing_is_not_picked(pbx):
    """100 Trying only (no early dialog): nothing to replace yet."""
    alice, carol = pbx.phones["alice"], pbx.phones["carol"]
    invite(alice, "bob")
    assert recv_request(pbx.phones["bob"], "INVITE")
    invite(carol, "*78bob")
    assert carol.final().status == 480


def test_unknown_extension_404(pbx):
    carol = pbx.phones["carol"]
    invite(carol, "*78nobody")
    r = carol.final()
    assert r.status == 404


def test_group_pickup(pbx):
    pbx.cli("group", "set", "600", "members=bob,carol", "mode=parallel")
    alice, carol = pbx.phones["alice"], pbx.phones["carol"]
    ring(pbx, alice, "bob", "grpring")
    invite(carol, "*8")
    inv = recv_request(alice, "INVITE")
    assert inv.get("Replaces") == \
        f"{alice.call_id};to-tag=alicetag;from-tag=grpring;early-only"


def test_group_pickup_of_a_call_to_the_group(pbx):
    """A call to the group number rings bob and carol; carol's *8 takes
    bob's early dialog, never her own."""
    pbx.cli("group", "set", "600", "members=bob,carol", "mode=parallel")
    alice, bob, carol = (pbx.phones[u] for u in ("alice", "bob", "carol"))
    invite(alice, "600")
    ib, ic = recv_request(bob, "INVITE"), recv_request(carol, "INVITE")
    answer(carol, ic, 180, "Ringing", tag="carolring")
    answer(bob, ib, 180, "Ringing", tag="bobring")
    recv_status(alice, 180)
    picker = UA(pbx.port, "carol")       # carol's second phone
    invite(picker, "*8")
    inv = recv_request(alice, "INVITE")
    assert inv.get("Replaces").endswith("from-tag=bobring;early-only")


def test_group_pickup_outside_any_group_480(pbx):
    pbx.cli("group", "set", "600", "members=bob,carol")
    alice, dave = pbx.phones["alice"], UA(pbx.port, "dave")
    ring(pbx, alice, "bob", "r")
    invite(dave, "*8")
    r = dave.final()
    assert (r.status, r.first.split(" ", 2)[2]) == (480, "Not In A Pickup Group")


def test_group_pickup_nothing_ringing_480(pbx):
    pbx.cli("group", "set", "600", "members=bob,carol")
    carol = pbx.phones["carol"]
    invite(carol, "*8")
    assert carol.final().status == 480


def test_unauthenticated_picker_challenged(pbx):
    alice, carol = pbx.phones["alice"], pbx.phones["carol"]
    ring(pbx, alice, "bob", "r")
    carol.send(carol.request("INVITE", "sip:*78bob@example.com",
                             "Content-Type: application/sdp\r\n"
                             f"Contact: <sip:carol@127.0.0.1:{carol.port}>\r\n",
                             body=SDP))
    r = carol.final()
    assert r.status == 407 and r.get("Proxy-Authenticate")
    # a stranger (foreign From, nothing to authenticate) may not pick up
    stranger = UA(pbx.port, "eve", domain="evil.example.net")
    stranger.send(stranger.request("INVITE", "sip:*78bob@example.com",
                                   "Content-Type: application/sdp\r\n",
                                   body=SDP))
    r = stranger.final()
    assert r.status == 403
    try:
        m = recv_request(alice, "INVITE", timeout=0.5)
    except Exception:
        m = None
    assert m is None, "nothing reaches the caller"


def test_prefix_from_config(request):
    tmp = tempfile.mkdtemp(prefix="pinhole-test-")
    d = Daemon(tmp, extra="[features]\npickup_prefix = **\n"
                          "group_pickup_code = *9#\n")
    d.start()
    try:
        setup_pbx(d)
        alice, carol = d.phones["alice"], d.phones["carol"]
        ring(d, alice, "bob", "cfgring")
        invite(carol, "*78bob")         # the default is gone: an ordinary call
        assert carol.final().status == 404
        invite(carol, "**bob")
        inv = recv_request(alice, "INVITE")
        assert inv.get("Replaces").endswith("from-tag=cfgring;early-only")
        # '#' arrives escaped in the Request-URI (RFC 3261 25.1)
        invite(carol, "*9%23")
        r = carol.final()
        assert (r.status, r.first.split(" ", 2)[2]) == \
            (480, "Not In A Pickup Group")
    finally:
        d.finish(request)

"""Proxy behaviour against the running daemon on loopback: forking and the
best response, CANCEL, double Record-Route across transports, loose routing
of in-dialog requests, ACK for non-2xx absorbed hop by hop."""
import re
import socket
import time

import pytest

from sipclient import UA, Msg, ack_non2xx, digest, recv_request


@pytest.fixture
def users(daemon):
    for u in ("alice", "bob", "carol"):
        daemon.cli("user", "add", u, "password1")
    return daemon


SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
       "t=0 0\r\nm=audio 40000 RTP/AVP 0\r\n")


def answer(ua, req, status, reason="X", tag="t", extra="", body=""):
    vias = req.all("Via")
    rr = "".join(f"Record-Route: {v}\r\n" for v in req.all("Record-Route")) \
        if status < 300 or status < 200 else ""
    resp = (f"SIP/2.0 {status} {reason}\r\n" + "".join(f"Via: {v}\r\n" for v in vias) +
            rr + f"From: {req.get('From')}\r\nTo: {req.get('To')};tag={tag}\r\n"
            f"Call-ID: {req.get('Call-ID')}\r\nCSeq: {req.get('CSeq')}\r\n"
            f"Contact: <sip:{ua.user}@127.0.0.1:{ua.port}>\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n{body}")
    ua.send(resp)


def invite(caller, callee_user, body=SDP):
    """Send an authenticated INVITE; return the Call-ID and branch used."""
    ruri = f"sip:{callee_user}@example.com"
    caller.send(caller.request("INVITE", ruri, "Content-Type: application/sdp\r\n"
                               f"Contact: <sip:{caller.user}@127.0.0.1:{caller.port}>\r\n",
                               body=body))
    r = caller.final()
    assert r.status == 407, r
    # ACK the 407 (same branch as the INVITE: RFC 3261 17.1.1.3)
    ack_non2xx(caller, r, ruri)
    cred = digest(r.get("Proxy-Authenticate"), "INVITE", ruri, caller.user, "password1")
    caller.send(caller.request("INVITE", ruri,
                               f"Proxy-Authorization: {cred}\r\n"
                               "Content-Type: application/sdp\r\n"
                               f"Contact: <sip:{caller.user}@127.0.0.1:{caller.port}>\r\n",
                               body=body))




def recv_status(ua, status, timeout=4):
    end = time.time() + timeout
    while True:
        m = ua.recv(max(0.1, end - time.time()))
        if m.is_response and m.status == status:
            return m


def two_devices(port, user):
    d1, d2 = UA(port, user), UA(port, user)
    d1.call_id = d2.call_id = "reg-" + user
    assert d1.register().status == 200
    r = d2.register(extra="")
    assert r.status == 200 and len(r.all("Contact")) >= 1
    return d1, d2


def test_fork_first_200_wins_other_cancelled(users):
    bob, c1, c2, i1, i2 = fork_to_two(users)
    answer(c1, i1, 180, "Ringing", tag="c1")
    answer(c2, i2, 180, "Ringing", tag="c2")
    assert recv_status(bob, 180)
    answer(c2, i2, 200, "OK", tag="c2", extra="Content-Type: application/sdp\r\n", body=SDP)
    ok = recv_status(bob, 200)
    assert ok.get("To").endswith("tag=c2")
    assert ok.all("Record-Route"), "proxy must Record-Route"
    cancel = recv_request(c1, "CANCEL")
    assert cancel.get("CSeq").endswith("CANCEL")
    answer(c1, cancel, 200, "OK", tag="c1")
    answer(c1, i1, 487, "Request Terminated", tag="c1")
    ack = recv_request(c1, "ACK")   # hop-by-hop ACK for the 487
    assert ack
    # end-to-end ACK for the 200 follows the Record-Route set to c2
    rr = ok.all("Record-Route")
    bob.send(f"ACK sip:carol@127.0.0.1:{c2.port} SIP/2.0\r\n"
             f"Via: SIP/2.0/UDP 127.0.0.1:{bob.port};branch=z9hG4bKack1;rport\r\n"
             + "".join(f"Route: {v}\r\n" for v in rr) +
             f"From: {ok.get('From')}\r\nTo: {ok.get('To')}\r\n"
             f"Call-ID: {ok.get('Call-ID')}\r\nCSeq: {bob.cseq} ACK\r\n"
             "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    a2 = recv_request(c2, "ACK")
    assert not a2.all("Route"), "our own Route entry must be removed"
    # BYE from the callee side, in dialog, through us to bob
    c2.send(f"BYE sip:bob@127.0.0.1:{bob.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{c2.port};branch=z9hG4bKbye1;rport\r\n"
            + "".join(f"Route: {v}\r\n" for v in reversed(rr)) +
            f"From: {ok.get('To')}\r\nTo: {ok.get('From')}\r\n"
            f"Call-ID: {ok.get('Call-ID')}\r\nCSeq: 1 BYE\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    bye = recv_request(bob, "BYE")
    answer(bob, bye, 200, "OK", tag="bobtag")
    assert recv_status(c2, 200)


def fork_to_two(users):
    """bob calls carol, who has two devices; returns them and their INVITEs."""
    c1, c2 = two_devices(users.port, "carol")
    bob = UA(users.port, "bob")
    invite(bob, "carol")
    return bob, c1, c2, recv_request(c1, "INVITE"), recv_request(c2, "INVITE")


@pytest.mark.parametrize("first,second,best", [
    ((486, "Busy Here"), (603, "Decline"), 603),       # 6xx wins
    ((503, "Unavailable"), (486, "Busy Here"), 486),   # lowest class
])
def test_fork_best_response(users, first, second, best):
    bob, c1, c2, i1, i2 = fork_to_two(users)
    answer(c1, i1, first[0], first[1], tag="c1")
    answer(c2, i2, second[0], second[1], tag="c2")
    assert bob.final().status == best


def test_cancel_before_answer(users):
    bob, c1, c2, i1, i2 = fork_to_two(users)
    answer(c1, i1, 180, "Ringing", tag="c1")
    answer(c2, i2, 180, "Ringing", tag="c2")
    r180 = recv_status(bob, 180)
    via = r180.get("Via")
    bob.send(f"CANCEL sip:carol@example.com SIP/2.0\r\nVia: {via}\r\n"
             f"From: <sip:bob@example.com>;tag=bobtag\r\nTo: <sip:carol@example.com>\r\n"
             f"Call-ID: {bob.call_id}\r\nCSeq: {bob.cseq} CANCEL\r\n"
             "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    assert recv_status(bob, 200).get("CSeq").endswith("CANCEL")
    for dev, inv in ((c1, i1), (c2, i2)):
        cancel = recv_request(dev, "CANCEL")
        answer(dev, cancel, 200, "OK", tag="x")
        answer(dev, inv, 487, "Request Terminated", tag=dev.user + str(dev.port))
    assert recv_status(bob, 487)


def test_double_record_route_udp_to_tcp(users):
    alice = UA(users.port, "alice", transport="tcp")
    assert alice.register().status == 200
    bob = UA(users.port, "bob")
    invite(bob, "alice")
    inv = recv_request(alice, "INVITE")
    rr = inv.all("Record-Route")
    assert len(rr) == 2, rr
    assert "transport=tcp" in rr[0] and "transport=tcp" not in rr[1]
    answer(alice, inv, 486, "Busy", tag="al")
    assert bob.final().status == 486
    # the hop-by-hop ACK reaches alice over her TCP connection
    assert recv_request(alice, "ACK")


def test_unanswered_branch_times_out_408(users):
    """A contact that never answers: Timer B ends the branch, caller gets
    408 (the registered contact is a silent socket)."""
    mute = UA(users.port, "carol")
    assert mute.register().status == 200
    bob = UA(users.port, "bob")
    invite(bob, "carol")
    assert recv_request(mute, "INVITE")
    r = bob.final(timeout=40)
    assert r.status == 408


def test_loop_detected_482(users):
    """A request that comes back to us unchanged (our Via with the same
    loop hash on it) is a loop: 482. Built by sending pinhole its own
    forwarded request back."""
    carol = UA(users.port, "carol")
    assert carol.register().status == 200
    bob = UA(users.port, "bob")
    invite(bob, "carol")
    inv = recv_request(carol, "INVITE")
    # carol's "phone" sends the INVITE it got straight back to pinhole
    looped = inv.raw.replace(f"sip:carol@127.0.0.1:{carol.port}".encode(),
                             b"sip:carol@example.com", 1)
    carol.send(looped)
    r = carol.final()
    assert r.status == 482, r


def test_strict_route_compatibility(users):
    """An RFC 2543 strict router puts our Record-Route URI in the
    Request-URI and the real target in the last Route: pinhole restores
    the Request-URI (RFC 3261 16.4) and forwards to it."""
    carol = UA(users.port, "carol")
    assert carol.register().status == 200
    bob = UA(users.port, "bob")
    target = f"sip:carol@127.0.0.1:{carol.port}"
    bob.send(f"BYE sip:127.0.0.1:{users.port} SIP/2.0\r\n"
             f"Via: SIP/2.0/UDP 127.0.0.1:{bob.port};branch=z9hG4bKstrict1;rport\r\n"
             f"Route: <{target}>\r\n"
             "From: <sip:bob@example.com>;tag=b1\r\nTo: <sip:carol@example.com>;tag=c1\r\n"
             "Call-ID: strict-1\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\n"
             "Content-Length: 0\r\n\r\n")
    bye = recv_request(carol, "BYE")
    assert bye.first.startswith(f"BYE {target} SIP/2.0"), bye.first
    assert not bye.all("Route")

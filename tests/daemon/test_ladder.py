"""SIP ladders (diag/ladder.c) against the running daemon on loopback: a
whole call is recorded in order with addresses and the text as on the wire;
unknown Call-IDs give 404; ladder_calls = 0 records nothing; the oldest call
is evicted first and registrations never evict calls; keepalive OPTIONS make
no ladder; `pinhole show ladder` prints it."""
import json
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import Daemon
from sipclient import UA, ack_non2xx, digest, recv_request, sdp_body


def api(d, path):
    """(status, JSON body) of a GET on the admin API."""
    try:
        with urllib.request.urlopen(
                f"http://127.0.0.1:{d.admin_port}{path}", timeout=3) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def ladder(d, call_id):
    return api(d, "/api/calls/ladder?call_id=" + urllib.parse.quote(call_id, safe=""))


def make_daemon(request, edit=lambda conf: conf):
    tmp = tempfile.mkdtemp(prefix="pinhole-test-")
    d = Daemon(tmp)
    with open(d.conf) as f:
        text = edit(f.read())
    with open(d.conf, "w") as f:
        f.write(text)
    d.start()
    request.addfinalizer(lambda: d.finish(request))
    return d


def with_ladder_calls(n):
    return lambda conf: conf.replace("[admin]\n", f"[admin]\nladder_calls = {n}\n")


def reply(ua, req, status, reason, tag="calleetag", body=""):
    """A response from ua to req: its Vias and Record-Routes echoed."""
    to = req.get("To")
    if ";tag=" not in to:
        to += f";tag={tag}"
    ua.send(f"SIP/2.0 {status} {reason}\r\n"
            + "".join(f"Via: {v}\r\n" for v in req.all("Via"))
            + "".join(f"Record-Route: {v}\r\n" for v in req.all("Record-Route"))
            + f"From: {req.get('From')}\r\nTo: {to}\r\n"
            f"Call-ID: {req.get('Call-ID')}\r\nCSeq: {req.get('CSeq')}\r\n"
            f"Contact: <sip:{ua.user}@127.0.0.1:{ua.port}>\r\n"
            + ("Content-Type: application/sdp\r\n" if body else "")
            + f"Content-Length: {len(body)}\r\n\r\n{body}")


def invite_challenged(caller, callee_user):
    """INVITE -> 407 -> ACK: the shortest call attempt (one ladder)."""
    ruri = f"sip:{callee_user}@example.com"
    caller.send(caller.request("INVITE", ruri, "Content-Type: application/sdp\r\n"
                               f"Contact: <sip:{caller.user}@127.0.0.1:{caller.port}>\r\n",
                               body=sdp_body("127.0.0.1", 40000)))
    r = caller.final()
    assert r.status == 407, r
    ack_non2xx(caller, r, ruri)
    return r


def whole_call(d):
    """bob calls alice through the daemon: 407 first, then INVITE, 180,
    200, ACK, BYE, 200. Returns (bob, alice, what alice received)."""
    for u in ("alice", "bob"):
        d.cli("user", "add", u, "password1")
    alice, bob = UA(d.port, "alice"), UA(d.port, "bob")
    assert alice.register().status == 200
    ruri = "sip:alice@example.com"
    r = invite_challenged(bob, "alice")
    cred = digest(r.get("Proxy-Authenticate"), "INVITE", ruri, "bob", "password1")
    bob.send(bob.request("INVITE", ruri, f"Proxy-Authorization: {cred}\r\n"
                         "Content-Type: application/sdp\r\n"
                         f"Contact: <sip:bob@127.0.0.1:{bob.port}>\r\n",
                         body=sdp_body("127.0.0.1", 40000)))
    got = {"INVITE": recv_request(alice, "INVITE")}
    reply(alice, got["INVITE"], 180, "Ringing")
    reply(alice, got["INVITE"], 200, "OK", body=sdp_body("127.0.0.1", 40002))
    ok = bob.final()
    assert ok.status == 200, ok
    rr = ok.all("Record-Route")
    assert rr, "the proxy Record-Routes"
    contact = f"sip:alice@127.0.0.1:{alice.port}"

    def in_dialog(method, cseq, branch):
        return (f"{method} {contact} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{bob.port};branch={branch};rport\r\n"
                + "".join(f"Route: {v}\r\n" for v in rr)
                + f"From: {ok.get('From')}\r\nTo: {ok.get('To')}\r\n"
                f"Call-ID: {bob.call_id}\r\nCSeq: {cseq} {method}\r\n"
                "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")

    bob.send(in_dialog("ACK", bob.cseq, "z9hG4bKladack1"))
    got["ACK"] = recv_request(alice, "ACK")
    bob.send(in_dialog("BYE", bob.cseq + 1, "z9hG4bKladbye1"))
    got["BYE"] = recv_request(alice, "BYE")
    reply(alice, got["BYE"], 200, "OK")
    assert bob.final().status == 200
    return bob, alice, got


def find(msgs, start, what, **want):
    """Index of the first message at or after start matching want
    (first_line prefix as 'line', other keys exactly)."""
    for i in range(start, len(msgs)):
        m = msgs[i]
        if not m["first_line"].startswith(want.get("line", "")):
            continue
        if all(m[k] == v for k, v in want.items() if k != "line"):
            return i
    raise AssertionError(f"{what} not found after message {start} in:\n" +
                         "\n".join(f"{i}: {m['dir']} {m['remote']} {m['first_line']}"
                                   for i, m in enumerate(msgs)))


def test_whole_call_in_order_with_addresses(daemon):
    bob, alice, got = whole_call(daemon)
    status, body = ladder(daemon, bob.call_id)
    assert status == 200, body
    assert body["call_id"] == bob.call_id
    assert body["kind"] == "call"
    assert body["dropped"] == 0
    msgs = body["messages"]
    me = f"127.0.0.1:{daemon.port}"
    b, a = f"127.0.0.1:{bob.port}", f"127.0.0.1:{alice.port}"
    for m in msgs:
        assert m["local"] == me and m["proto"] == "udp", m
        assert m["dir"] in ("in", "out") and m["t"] > 1.6e12, m
        assert m["text"].startswith(m["first_line"]), m
    inv = "INVITE sip:alice@example.com SIP/2.0"
    # the challenge first
    i = find(msgs, 0, "first INVITE in", line=inv, dir="in", remote=b)
    assert i == 0, "the ladder starts with the caller's INVITE"
    i = find(msgs, i, "407 out", line="SIP/2.0 407", dir="out", remote=b)
    i = find(msgs, i, "ACK of the 407 in", line="ACK ", dir="in", remote=b)
    # then the call, both sides, in order
    i = find(msgs, i, "INVITE in", line=inv, dir="in", remote=b)
    assert "Proxy-Authorization:" in msgs[i]["text"]
    i = find(msgs, i, "INVITE out", line="INVITE sip:alice@127.0.0.1", dir="out", remote=a)
    out_invite = msgs[i]
    top_via = [ln for ln in out_invite["text"].split("\r\n") if ln.startswith("Via:")][0]
    assert top_via.startswith(f"Via: SIP/2.0/UDP {me};branch=z9hG4bKph"), top_via
    # captured as sent on the wire: what alice received, byte for byte
    assert out_invite["text"] == got["INVITE"].raw.decode()
    assert out_invite["size"] == len(got["INVITE"].raw) and not out_invite["truncated"]
    i = find(msgs, i, "180 in", line="SIP/2.0 180", dir="in", remote=a)
    i = find(msgs, i, "180 out", line="SIP/2.0 180", dir="out", remote=b)
    i = find(msgs, i, "200 in", line="SIP/2.0 200", dir="in", remote=a)
    i = find(msgs, i, "200 out", line="SIP/2.0 200", dir="out", remote=b)
    i = find(msgs, i, "ACK in", line="ACK ", dir="in", remote=b)
    i = find(msgs, i, "ACK out", line="ACK ", dir="out", remote=a)
    assert msgs[i]["text"] == got["ACK"].raw.decode()
    i = find(msgs, i, "BYE in", line="BYE ", dir="in", remote=b)
    i = find(msgs, i, "BYE out", line="BYE ", dir="out", remote=a)
    i = find(msgs, i, "200 (BYE) in", line="SIP/2.0 200", dir="in", remote=a)
    i = find(msgs, i, "200 (BYE) out", line="SIP/2.0 200", dir="out", remote=b)
    assert "CSeq: " in msgs[i]["text"] and " BYE\r\n" in msgs[i]["text"]
    times = [m["t"] for m in msgs]
    assert times == sorted(times)

    # the list: this call with its first line, time and count; alice's
    # REGISTER is in the other ring
    status, lst = api(daemon, "/api/ladders")
    assert status == 200
    row = next(r for r in lst if r["call_id"] == bob.call_id)
    assert row["kind"] == "call" and row["first_line"] == inv
    assert row["messages"] == len(msgs) and row["time"] == msgs[0]["t"]
    reg = next(r for r in lst if r["call_id"] == alice.call_id)
    assert reg["kind"] == "other" and reg["first_line"].startswith("REGISTER ")
    assert lst[0]["call_id"] == bob.call_id, "newest first"

    # the CLI draws it
    out = daemon.cli("show", "ladder", bob.call_id).stdout
    assert bob.call_id in out
    assert f"{me} <- {b}" in out and f"{me} -> {a}" in out
    lines = [ln for ln in out.splitlines() if "INVITE sip:alice@" in ln]
    assert len(lines) >= 3, out
    full = daemon.cli("show", "ladder", bob.call_id, "--full").stdout
    assert "Proxy-Authorization:" in full
    js = json.loads(daemon.cli("show", "ladder", bob.call_id, "--json").stdout)
    assert js["call_id"] == bob.call_id
    lst_out = daemon.cli("show", "ladder").stdout
    assert bob.call_id in lst_out and inv in lst_out


def test_unknown_call_id_is_404(daemon):
    status, body = ladder(daemon, "no-such-call@nowhere")
    assert status == 404 and "no ladder" in body["error"]
    status, body = api(daemon, "/api/calls/ladder")
    assert status == 400 and "call_id" in body["error"]
    r = daemon.cli("show", "ladder", "no-such-call@nowhere", check=False)
    assert r.returncode == 1 and "no ladder" in r.stderr


def test_ladder_calls_zero_records_nothing(request):
    d = make_daemon(request, with_ladder_calls(0))
    d.cli("user", "add", "bob", "password1")
    bob = UA(d.port, "bob")
    assert bob.register().status == 200
    bob.call_id = "call-off-1"
    invite_challenged(bob, "alice")
    assert api(d, "/api/ladders") == (200, [])
    assert ladder(d, "call-off-1")[0] == 404


def test_oldest_call_evicted_registrations_do_not_evict(request):
    d = make_daemon(request, with_ladder_calls(3))
    d.cli("user", "add", "bob", "password1")
    bob = UA(d.port, "bob")
    for n in range(4):      # N + 1 calls
        bob.call_id = f"evict-call-{n}"
        invite_challenged(bob, "alice")
    assert ladder(d, "evict-call-0")[0] == 404, "the oldest call is evicted"
    for n in (1, 2, 3):
        assert ladder(d, f"evict-call-{n}")[0] == 200
    # many registrations, each with its own Call-ID: calls stay
    for n in range(5):
        bob.call_id = f"evict-reg-{n}"
        assert bob.register().status == 200
    for n in (1, 2, 3):
        assert ladder(d, f"evict-call-{n}")[0] == 200
    status, lst = api(d, "/api/ladders")
    kinds = [r["kind"] for r in lst]
    assert kinds.count("call") == 3
    assert kinds.count("other") == 1, "a quarter of ladder_calls, at least 1"
    assert lst[0]["call_id"] == "evict-reg-4"


def test_keepalive_options_make_no_ladder(request):
    # a private Contact from 127.0.0.1 outside the intranet: behind-nat,
    # pinged every second
    d = make_daemon(request, lambda c: c.replace(
        "intranet_subnets = 127.0.0.0/8",
        "intranet_subnets = 10.99.0.0/16\nkeepalive_interval = 1"))
    d.cli("user", "add", "carol", "password1")
    carol = UA(d.port, "carol")
    assert carol.register(contact="<sip:carol@192.168.1.5:5060>").status == 200
    answered = 0
    end = time.time() + 6
    while answered < 2 and time.time() < end:
        try:
            m = carol.recv(1)
        except OSError:
            continue
        if m.method == "OPTIONS":
            reply(carol, m, 200, "OK")
            answered += 1
    assert answered == 2, "keepalives expected"
    time.sleep(0.3)
    status, lst = api(d, "/api/ladders")
    assert [r["call_id"] for r in lst] == [carol.call_id], lst


def test_long_ladder_keeps_start_and_end_big_message_cut(daemon):
    """40 OPTIONS on one Call-ID (80 messages): the first 16 and the
    latest 48 are kept, 16 counted as dropped; a 6 KB message is kept cut
    to 4 KB with its wire size."""
    ua = UA(daemon.port, "probe")
    ua.call_id = "long-ladder-1"
    ruri = f"sip:127.0.0.1:{daemon.port}"
    for n in range(40):
        pad = f"X-Pad: {'p' * 6000}\r\n" if n == 0 else ""
        ua.send(ua.request("OPTIONS", ruri, pad))
        assert ua.final().status == 200
    status, body = ladder(daemon, "long-ladder-1")
    assert status == 200, body
    msgs = body["messages"]
    assert len(msgs) == 64 and body["dropped"] == 16 and body["dropped_at"] == 16
    assert body["kind"] == "other"
    cseqs = [int(m["text"].split("CSeq: ")[1].split(" ")[0]) for m in msgs]
    assert cseqs[:16] == [n // 2 + 1 for n in range(16)]
    assert cseqs[16:] == [n // 2 + 1 for n in range(32, 80)]
    big = msgs[0]
    assert big["truncated"] and big["size"] > 6000 and len(big["text"]) == 4096
    status, lst = api(daemon, "/api/ladders")
    row = next(r for r in lst if r["call_id"] == "long-ladder-1")
    assert row["messages"] == 80 and row["dropped"] == 16


def test_reload_turns_recording_off_and_on_tcp_recorded(request):
    d = make_daemon(request)
    d.cli("user", "add", "bob", "password1")
    bob = UA(d.port, "bob", transport="tcp")
    assert bob.register().status == 200
    status, body = ladder(d, bob.call_id)
    assert status == 200
    m = body["messages"][0]
    assert m["proto"] == "tcp" and m["dir"] == "in"
    assert m["remote"] == f"127.0.0.1:{bob.port}" and m["local"] == f"127.0.0.1:{d.port}"
    assert body["messages"][1]["dir"] == "out" and body["messages"][1]["proto"] == "tcp"
    metrics = urllib.request.urlopen(
        f"http://127.0.0.1:{d.admin_port}/metrics", timeout=3).read().decode()
    assert 'pinhole_ladders{kind="other"} 1' in metrics

    with open(d.conf) as f:
        conf = f.read()
    with open(d.conf, "w") as f:
        f.write(with_ladder_calls(0)(conf))
    d.cli("reload")
    assert api(d, "/api/ladders") == (200, [])
    assert bob.register().status == 200
    assert api(d, "/api/ladders") == (200, [])

    with open(d.conf, "w") as f:
        f.write(with_ladder_calls(5)(conf))
    d.cli("reload")
    assert bob.register().status == 200
    status, lst = api(d, "/api/ladders")
    assert [r["call_id"] for r in lst] == [bob.call_id]

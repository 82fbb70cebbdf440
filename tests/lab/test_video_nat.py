"""Video calls through NATs (issue 5): a call with three media streams -
m=audio, m=video and a second m=video (content:slides) - between a phone
behind a symmetric NAT and a phone behind a port-restricted NAT (or a
public phone) is relayed by pinhole on every stream, both ways; then a
re-INVITE from the NAT'ed caller removes the slides stream (m=video 0):
the rejected stream stays at port 0 in the SDP pinhole forwards, audio and
the main video keep flowing through the same relay ports.

SIPp does the signalling (video3_uac.xml / video3_uas.xml) and streams the
audio from -mp (6000); SIPp binds -mp .. -mp+3 itself, so the two video
streams live on 6010 and 6012, sent and counted by tools/rtpstreams.py in
each phone's namespace: it sends to the relay address and port the phone
received in its SDP (read back from SIPp's message trace), from the port
it receives on (symmetric RTP: the relay latches on it), and stops sending
the slides stream when its SIPp touches the re-INVITE flag file.

Proof of "relayed" per stream: tcpdump at each phone counts >= 50 RTP
packets arriving on each of the three ports, every one from the relay
address; /api/calls, sampled during the call, shows the session with three
streams, each with >= 25 packets received by the relay from both parties.
After the re-INVITE: >= 25 more packets at each phone on the audio and the
main video port, counted from the moment the answer reached the caller,
and the relay's counters for both still growing both ways.

test_removed_stream_no_longer_relayed: the callee's phone keeps sending the
removed slides stream; the relay stops carrying it and frees its ports (it
forwarded it until the BYE before nat.c freed port-0 streams).
"""

import json
import os
import re
import time

import pytest

import labenv
import labnet
import pcap
import topology

PY = "/usr/bin/python3"
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools")
RELAY_IP = "10.10.0.10"            # srv: pinhole's relay
LAN = "192.168.1.0/24"
PHONE_IP = "192.168.1.10"
AUDIO_PORT = labenv.MEDIA_PORT     # 6000, SIPp's rtp_stream
VIDEO_PORT = 6010                  # SIPp itself holds -mp .. -mp+3
SLIDES_PORT = 6012
PORTS = (AUDIO_PORT, VIDEO_PORT, SLIDES_PORT)
TALK_MS = 3000                     # before the re-INVITE (-d)
TALK2_MS = 2500                    # after it (fixed in video3_uac.xml)
AFTER_MIN = 25                     # packets per stream after the re-INVITE

SITES = {"sym": ("203.0.113.24", "symmetric"),
         "prc": ("203.0.113.23", "port-restricted")}


def _home(name, wan, kind):
    return topology.Site(name=name, wan_ip=wan, lan=LAN,
                         router_ip="192.168.1.1",
                         hosts={name + "-phone": PHONE_IP}, nat=kind,
                         nat_host=name + "-phone")


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    """Overrides conftest's topo: the office (srv = pinhole), pub1/pub2,
    a symmetric and a port-restricted home site."""
    lab = labnet.Lab(str(tmp_path_factory.mktemp("video")))
    try:
        homes = [_home(n, w, k) for n, (w, k) in SITES.items()]
        t = topology.build(lab, dict(topology.PUBLIC),
                           [topology.OFFICE] + homes)
    except Exception:
        lab.close()
        raise
    yield t
    lab.close()


# -- SDP and SIP trace helpers -----------------------------------------------

def sdp_media(msg):
    """[(media, ip, port)] for each m= line of a SIP message's SDP, the
    address from the media's own c= line or else the session's."""
    body = msg.split("\r\n\r\n", 1)[-1] if "\r\n\r\n" in msg \
        else msg.split("\n\n", 1)[-1]
    session_ip, out = None, []
    for line in body.splitlines():
        line = line.strip()
        m = re.match(r"m=(\w+) (\d+)", line)
        if m:
            out.append([m.group(1), session_ip, int(m.group(2))])
            continue
        c = re.match(r"c=IN IP4 (\S+)", line)
        if c:
            if out:
                out[-1][1] = c.group(1)
            else:
                session_ip = c.group(1)
    return [tuple(x) for x in out]


def _received(run, needle):
    """SIP messages a SIPp run received (its -trace_msg log) holding
    needle, oldest first."""
    parts = re.split(r"^-{20,}.*$", run.messages(), flags=re.M)
    # each part: "UDP message received [N] bytes :", a blank line, the message
    return [p.split("\n", 2)[-1].lstrip() for p in parts
            if "message received" in p and needle in p]


def _cseq(msg):
    m = re.search(r"^CSeq:\s*(\d+) (\w+)", msg, re.M | re.I)
    return (int(m.group(1)), m.group(2)) if m else (None, None)


def _sip_at(cap, dst_ip):
    """(ts, text) of the SIP messages sent to dst_ip:5060 in a capture
    taken with a large snaplen, oldest first."""
    return [(u.ts, u.payload.decode(errors="replace"))
            for u in pcap.read_udp(cap.path)
            if u.dst == dst_ip and u.dport == 5060]


def _start_streams(env, host, sdp, tag, keep_slides=False):
    """rtpstreams.py in host: 6010/6012 to the relay ports its SDP gave
    for the two m=video lines; the slides stream stops when host's SIPp
    gets/sends the re-INVITE, unless keep_slides (a phone that goes on
    sending a removed stream). Returns (proc, json path)."""
    video, slides = sdp[1], sdp[2]
    out = os.path.join(env.workdir, "streams-%s.json" % host)
    log = os.path.join(env.workdir, "streams-%s.log" % host)
    env.report.add("rtpstreams " + host,
                   lambda: open(log).read() if os.path.exists(log) else "")
    def flag(what):         # touched by the scenario (SIPp's cwd)
        return os.path.join(env.workdir, "video3_%s_%s.flag" % (tag, what))
    argv = [PY, os.path.join(TOOLS, "rtpstreams.py"),
            "--bind", env.topo.ip(host),
            "--stream", "%d:%s:%d:96" % (VIDEO_PORT, video[1], video[2]),
            "--stream", "%d:%s:%d:97" % (SLIDES_PORT, slides[1], slides[2]),
            "--duration", "%.1f" % ((TALK_MS + TALK2_MS) / 1000.0 + 3),
            "--stop-file", "%s:%d" % (flag("reinvite"), SLIDES_PORT),
            "--end-file", flag("bye"), "--out", out]
    if keep_slides:
        argv.remove("--stop-file")
        argv.remove("%s:%d" % (flag("reinvite"), SLIDES_PORT))
    return env.topo[host].popen(argv, log, name="rtpstreams"), out


def _watch(env, run, interval=0.3):
    """Sample /api/calls until run ends: [(time, [media sessions])]."""
    samples = []
    env.report.add("relay samples (/api/calls)",
                   lambda: "\n".join("%.3f %s" % (t, json.dumps(s))
                                     for t, s in samples[-8:]))
    while run.proc.running():
        try:
            calls = [c for c in env.pinhole.api("/api/calls")
                     if "streams" in c and c.get("call_id")]
        except Exception:               # keep watching
            calls = []
        samples.append((time.time(), calls))
        time.sleep(interval)
    return samples


def _three_streams_relayed(samples, minimum=25):
    """The first sampled session with three streams, each with >= minimum
    packets received by the relay from both parties."""
    for t, sessions in samples:
        for s in sessions:
            sts = s["streams"]
            if len(sts) >= 3 and all(
                    st["a"]["rx_packets"] >= minimum
                    and st["b"]["rx_packets"] >= minimum for st in sts):
                return t, s
    return None, None


def _rx(sample, index):
    """(a, b) packets the relay got on stream index in one session."""
    for st in sample["streams"]:
        if st["index"] == index:
            return st["a"]["rx_packets"], st["b"]["rx_packets"]
    return None


# -- the call ----------------------------------------------------------------

class VideoCall:
    """What one three-stream call left behind: SIPp exit codes, the SDPs,
    captures, /api/calls samples and the stream tools' JSON."""


def _video_call(env, pinhole, topo, caller, callee, callee_keeps_slides=False):
    """alice at caller calls bob at callee with audio + video + slides
    (video3_uac.xml / video3_uas.xml); the caller removes the slides stream
    by re-INVITE after TALK_MS. Asserts the registrations and the first
    offer/answer; returns a VideoCall for the test's own checks."""
    env.register(caller, "alice")
    env.register(callee, "bob")
    for user, host in (("alice", caller), ("bob", callee)):
        [b] = pinhole.bindings_for(user)
        want = "behind-nat" if host.endswith("-phone") else "public"
        assert b["verdict"] == want, "binding of %s: %s" % (user, b)
    keys = {"video_port": VIDEO_PORT, "slides_port": SLIDES_PORT}
    uas = env.uas(callee, "bob", scenario="video3_uas.xml", keys=keys,
                  timeout=30)
    caps = env.capture(caller, callee, snaplen=2048)
    run = env.caller(caller, "bob", "alice", duration_ms=TALK_MS,
                     scenario="video3_uac.xml", keys=keys, timeout=30)
    run.start(wait_bound=False)

    def offers():
        """(SDP the caller got in the 200, SDP the callee got in the
        INVITE), once both are in the SIPp traces."""
        got = [m for m in _received(run, "m=video")
               if m.startswith("SIP/2.0 200")]
        sent = [m for m in _received(uas, "m=video")
                if m.startswith("INVITE ")]
        if got and sent:
            return sdp_media(got[0]), sdp_media(sent[0])
        return None
    found = labnet.wait_until(offers, timeout=10, interval=0.05)
    streams = []
    if found and all(len(s) == 3 for s in found):
        streams = [_start_streams(env, caller, found[0], "uac"),
                   _start_streams(env, callee, found[1], "uas",
                                  keep_slides=callee_keeps_slides)]
    samples = _watch(env, run)
    rc = run.wait()
    uas_rc = uas.wait()
    tools = {}
    for (proc, out), host in zip(streams, (caller, callee)):
        try:
            proc.wait(timeout=10)
        except Exception:
            proc.stop()
        with open(out) as f:
            tools[host] = json.load(f)["streams"]
    env.stop_captures(caps)

    assert found, "no 200 with m=video at the caller or no INVITE with " \
        "m=video at the callee (see the SIPp traces)"
    # the scenarios check the offers: two m=video at the callee, m=video 0
    # in the re-INVITE at the callee and in its 200 at the caller
    assert rc == 0, "caller SIPp exit %s (see sipp %s)" % (rc, run.name)
    assert uas_rc == 0, "callee SIPp exit %s (see sipp %s)" % (uas_rc,
                                                               uas.name)
    answer, offer = found
    for who, sdp in (("answer at the caller", answer),
                     ("offer at the callee", offer)):
        assert [m for m, _, _ in sdp] == ["audio", "video", "video"], (
            who, sdp)
        assert all(ip == RELAY_IP and port > 0 for _, ip, port in sdp), (
            "%s does not point every stream at the relay: %s" % (who, sdp))
    c = VideoCall()
    c.caller, c.callee, c.caps, c.samples, c.tools = (caller, callee, caps,
                                                      samples, tools)
    c.answer, c.offer = answer, offer
    c.ips = {h: topo.ip(h) for h in (caller, callee)}
    # the re-INVITE removing the slides stream, as pinhole forwarded it
    c.reinvite = [(ts, m) for ts, m in _sip_at(caps[callee], c.ips[callee])
                  if _cseq(m) == (3, "INVITE") and m.startswith("INVITE ")]
    c.reinvite_ok = [(ts, m) for ts, m in _sip_at(caps[caller],
                                                   c.ips[caller])
                     if _cseq(m) == (3, "INVITE")
                     and m.startswith("SIP/2.0 200")]
    assert c.reinvite and c.reinvite_ok, \
        "re-INVITE (CSeq 3) or its 200 not captured"
    # both ends know the stream is gone from here on
    c.t_after = max(c.reinvite[0][0], c.reinvite_ok[0][0]) + 0.1
    return c


def _after(c, host, port, margin=0.0):
    """RTP packets that reached host:port after the re-INVITE's 200."""
    return sum(1 for u in c.caps[host].packets_to(c.ips[host], port)
               if u.ts > c.t_after + margin)


def _sample_after(c, t):
    """The first /api/calls sample taken after time t: {call_id: session}."""
    for ts, sessions in c.samples:
        if ts > t:
            return {s["call_id"]: s for s in sessions}
    return {}


# -- the tests ---------------------------------------------------------------

CASES = [
    pytest.param("sym-phone", "prc-phone", id="symmetric-to-port-restricted"),
    pytest.param("sym-phone", "pub1", id="symmetric-to-pub1"),
]


@pytest.mark.parametrize("caller,callee", CASES)
def test_three_stream_video_call(env, pinhole, topo, caller, callee):
    """Audio, video and slides relayed both ways; the re-INVITE removing
    the slides keeps them at port 0 and audio + video flowing."""
    c = _video_call(env, pinhole, topo, caller, callee)

    # every stream relayed both ways: counted at each phone, on each port
    counts, sources = {}, {}
    for h in (caller, callee):
        for port in PORTS:
            pk = c.caps[h].packets_to(c.ips[h], port)
            counts["%s:%d" % (h, port)] = len(pk)
            sources["%s:%d" % (h, port)] = sorted(
                {"%s:%d" % (u.src, u.sport) for u in pk})
    short = {k: n for k, n in counts.items() if n < labenv.MIN_RTP}
    assert not short, ("too little RTP on some stream (need >= %d): %s; "
                       "all: %s" % (labenv.MIN_RTP, short, counts))
    stray = {k: v for k, v in sources.items()
             if any(s.split(":")[0] != RELAY_IP for s in v)}
    assert not stray, "RTP not from the relay %s: %s" % (RELAY_IP, stray)

    # the relay session had three streams with packets from both parties
    _, sess = _three_streams_relayed(c.samples)
    assert sess, ("no /api/calls sample with 3 streams carrying >= 25 "
                  "packets from each party; last: %s" % (
                      json.dumps(c.samples[-3:]),))

    # the forwarded re-INVITE and its 200: slides at port 0, audio and
    # video on the same relay address and ports as before
    re_sdp = sdp_media(c.reinvite[0][1])
    ok_sdp = sdp_media(c.reinvite_ok[0][1])
    for who, before, after in (("re-INVITE at the callee", c.offer, re_sdp),
                               ("its 200 at the caller", c.answer, ok_sdp)):
        assert [m for m, _, _ in after] == ["audio", "video", "video"], (
            who, after)
        assert after[2][2] == 0, ("%s: the removed slides stream is not "
                                  "at port 0: %s" % (who, after))
        assert after[:2] == before[:2], (
            "%s: audio/video moved off their relay ports: before %s, "
            "after %s" % (who, before, after))

    # audio and the main video keep flowing after the re-INVITE: at the
    # phones, and through the relay (its counters still grow both ways)
    after = {"%s:%d" % (h, port): _after(c, h, port)
             for h in (caller, callee) for port in (AUDIO_PORT, VIDEO_PORT)}
    assert all(n >= AFTER_MIN for n in after.values()), (
        "RTP after the re-INVITE (need >= %d per stream): %s" % (
            AFTER_MIN, after))
    first = _sample_after(c, c.t_after).get(sess["call_id"])
    last = [s for _, ss in c.samples for s in ss
            if s["call_id"] == sess["call_id"]][-1]
    assert first, "no /api/calls sample after the re-INVITE"
    grown = {}
    for i in (0, 1):
        (a0, b0), (a1, b1) = _rx(first, i), _rx(last, i)
        grown[i] = (a1 - a0, b1 - b0)
    assert all(min(g) >= AFTER_MIN for g in grown.values()), (
        "relay counters after the re-INVITE, stream: (a, b) growth: %s"
        % grown)
    print("video3 %s -> %s: at the phones %s; after the re-INVITE %s; "
          "relay growth after it %s; tools (sent, received) %s" % (
              caller, callee, counts, after, grown,
              {h: {p: (v["sent"], v["received"]) for p, v in d.items()}
               for h, d in c.tools.items()}))


class RemovedStreamRelayed(AssertionError):
    """The relay still carries a stream both ends removed (port 0)."""


def test_removed_stream_no_longer_relayed(env, pinhole, topo):
    """After the re-INVITE removing the slides stream (m=video 0 in offer
    and answer), the callee's phone goes on sending slides (a late or
    buggy phone): the relay must not carry them to the caller any more
    (RFC 3264 8.2: a port-0 stream is gone) and should free its ports."""
    caller, callee = "sym-phone", "prc-phone"
    c = _video_call(env, pinhole, topo, caller, callee,
                    callee_keeps_slides=True)
    # the rest of the call is fine
    after = {"%s:%d" % (h, port): _after(c, h, port)
             for h in (caller, callee) for port in (AUDIO_PORT, VIDEO_PORT)}
    assert all(n >= AFTER_MIN for n in after.values()), after
    assert sdp_media(c.reinvite_ok[0][1])[2][2] == 0
    sent = c.tools[callee][str(SLIDES_PORT)]["sent"]
    # 0.3 s after the 200: packets already in flight are done
    leaked = _after(c, caller, SLIDES_PORT, margin=0.3)
    # the last sample before the BYE ended the session
    last = ([ss for _, ss in c.samples if ss] or [[]])[-1]
    still = [s for s in last if len(s["streams"]) > 2]
    if leaked > 2 or still:
        raise RemovedStreamRelayed(
            "slides removed by re-INVITE at %.3f, callee sent %d slides "
            "packets in all: %d still reached the caller from the relay "
            "after it; streams in the last /api/calls sample: %s" % (
                c.t_after, sent, leaked,
                [[st["index"] for st in s["streams"]] for s in last]))

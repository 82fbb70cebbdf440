"""Phones, calls and media checks on top of a built topology.

LabEnv is what a scenario test talks to:

    env.register("pub1", "alice")                 # REGISTER with auth
    bob = env.phone("pub2", "bob")                # register + UAS (answers)
    caps = env.capture("pub1", "pub2")            # tcpdump at both phones
    env.call("pub1", "bob", user="alice")         # UAC with RTP, then BYE
    env.wait_ok(bob)                              # UAS ended well
    env.assert_media(caps, ("pub1", "pub2"))      # RTP both ways

Every SIPp run and capture is registered with the test's report, so a
failing test shows the SIP messages of each party (see conftest.py).
"""

import json
import os
import time

import sipp

DOMAIN = "example.com"
SIP_PORT = 5060
MEDIA_PORT = 6000
# Users provisioned in pinhole for every test (name -> password).
USERS = {"alice": "alice-pw-1", "bob": "bob-pw-2", "carol": "carol-pw-3"}
MIN_RTP = 50          # packets per direction for a ~3 s call (50 pps sent)


def auth_uri(request_uri):
    """The -auth_uri value giving digest uri == Request-URI (SIPp prefixes
    "sip:" itself)."""
    return request_uri[4:] if request_uri.startswith("sip:") else request_uri


class LabEnv:
    def __init__(self, topo, workdir, report, server="srv", pinhole=None):
        self.topo = topo
        self.workdir = workdir
        self.report = report          # conftest.Report: add(label, fn)
        self.server = server
        self.pinhole = pinhole
        self._seq = 0
        sipp.write_tone(os.path.join(workdir, sipp.TONE))

    def _name(self, what, host):
        self._seq += 1
        return "%02d-%s-%s" % (self._seq, what, host)

    @property
    def proxy(self):
        """host:port phones send to (the pinhole server)."""
        return "%s:%d" % (self.topo.ip(self.server), SIP_PORT)

    def sipp(self, host, scenario, what, **kw):
        s = sipp.Sipp(self.topo[host], self.workdir, scenario,
                      self._name(what, host), **kw)
        self.report.add("sipp " + s.name, s.report)
        return s

    # -- registration -------------------------------------------------------
    def register(self, host, user, password=None, port=SIP_PORT,
                 expires=3600, expect_ok=True, transport="u1", via_port=None,
                 scenario=None, keys=None, no_options=False, cid_str=None):
        """REGISTER user from host:port; asserts the run's outcome.
        Like a phone, the registering SIPp answers OPTIONS (pinhole's
        active NAT check arrives before the 200 OK); no_options=True makes
        it a phone that ignores them. cid_str: SIPp's Call-ID format.
        transport: SIPp -t value ("u1" UDP, "t1" TCP); via_port: the port
        the Via claims (default: the real one); scenario/keys: another
        register scenario (e.g. register_stun.xml) and its extra -key's."""
        password = USERS[user] if password is None else password
        scen = scenario or ("register.xml" if expect_ok
                            else "register_refused.xml")
        k = {"domain": DOMAIN, "expires": expires,
             "via_port": via_port or port}
        k.update(keys or {})
        s = self.sipp(host, scen, "reg-" + user, remote=self.proxy, port=port,
                      service=user, auth=(user, password), timeout=10,
                      auth_uri=auth_uri("sip:%s" % DOMAIN),
                      transport=transport, keys=k,
                      ooc=None if no_options else "ooc_options.xml",
                      cid_str=cid_str)
        rc = s.run()
        assert rc == 0, "%s of %s from %s: SIPp exit %s (see sipp %s)" % (
            "REGISTER" if expect_ok else "refused REGISTER", user, host, rc,
            s.name)
        return s

    # -- callee side ----------------------------------------------------------
    def uas(self, host, user, scenario="uas.xml", port=SIP_PORT,
            answer_ms=300, timeout=25, keys=None):
        """Start a UAS on host:port (background); wait_ok() it later.
        keys: extra -key's of the scenario."""
        k = {"user": user}
        k.update(keys or {})
        s = self.sipp(host, scenario, "uas-" + user, port=port,
                      media_port=MEDIA_PORT, pause_ms=answer_ms,
                      timeout=timeout, keys=k)
        return s.start()

    def phone(self, host, user, scenario="uas.xml", port=SIP_PORT,
              answer_ms=300, timeout=25, keys=None):
        """A registered phone: REGISTER run, then a UAS on the same port."""
        self.register(host, user, port=port)
        return self.uas(host, user, scenario, port, answer_ms, timeout, keys)

    # -- caller side ----------------------------------------------------------
    def caller(self, host, target, user, duration_ms=3000,
               scenario="uac.xml", port=SIP_PORT, timeout=25, auth=True,
               keys=None):
        """A caller run (not started): sip:target@domain from host as
        user; auth=False for a peer trusted by address (the gateway)."""
        k = {"domain": DOMAIN, "user": user}
        k.update(keys or {})
        return self.sipp(host, scenario, "uac-%s-to-%s" % (user, target),
                         remote=self.proxy, port=port, media_port=MEDIA_PORT,
                         service=target,
                         auth=(user, USERS[user]) if auth else None,
                         pause_ms=duration_ms, timeout=timeout,
                         auth_uri=auth_uri("sip:%s@%s" % (target, DOMAIN)),
                         keys=k)

    def call(self, host, target, user, duration_ms=3000, scenario="uac.xml",
             port=SIP_PORT, timeout=25, expect_ok=True, auth=True, keys=None):
        """Call sip:target@domain from host as user (auth as user)."""
        s = self.caller(host, target, user, duration_ms, scenario, port,
                        timeout, auth, keys)
        rc = s.run()
        if expect_ok:
            assert rc == 0, ("call %s -> %s from %s: caller SIPp exit %s "
                             "(see sipp %s)" % (user, target, host, rc, s.name))
        return s

    def call_watched(self, host, target, user, interval=0.4, **kw):
        """As call(), but samples pinhole's /api/calls while the caller
        runs (a relayed session is gone after the BYE). Returns (caller run,
        {call_id: last sample of that media session})."""
        expect_ok = kw.pop("expect_ok", True)
        s = self.caller(host, target, user, **kw).start(wait_bound=False)
        seen = self.watch_relay(s, interval)
        rc = s.wait()
        if expect_ok:
            assert rc == 0, ("call %s -> %s from %s: caller SIPp exit %s "
                             "(see sipp %s)" % (user, target, host, rc, s.name))
        return s, seen

    def watch_relay(self, run, interval=0.4, pinhole=None):
        """Poll /api/calls until run's process ends; keep each media
        session's last sample (entries with "streams")."""
        ph = pinhole or self.pinhole
        seen = {}
        samples = []
        self.report.add("relay samples (/api/calls)",
                        lambda: "\n".join(samples[-6:]))
        while run.proc.running():
            try:
                calls = ph.api("/api/calls")
            except Exception as e:         # keep watching; report it
                samples.append("error: %s" % e)
                calls = []
            for c in calls:
                if "streams" in c and c.get("call_id"):
                    seen[c["call_id"]] = c
            if calls:
                samples.append(json.dumps(calls))
            time.sleep(interval)
        return seen

    def assert_relay_streams(self, seen, nstreams=1, minimum=25):
        """Some relayed session had >= nstreams streams, each with >=
        minimum packets received by the relay from BOTH parties (so the
        media did go through pinhole's relay). Returns that session."""
        def ok(sess):
            sts = sess.get("streams") or []
            good = [st for st in sts
                    if st["a"]["rx_packets"] >= minimum
                    and st["b"]["rx_packets"] >= minimum]
            return len(good) >= nstreams
        hits = [s for s in seen.values() if ok(s)]
        assert hits, ("no relayed session with %d stream(s) carrying >= %d "
                      "packets from each side; sessions seen: %s" % (
                          nstreams, minimum, json.dumps(seen, indent=1)))
        return hits[0]

    def wait_ok(self, *runs):
        for s in runs:
            rc = s.wait()
            assert rc == 0, "%s: SIPp exit %s (see sipp %s)" % (
                s.name, rc, s.name)

    # -- media ------------------------------------------------------------------
    def capture(self, *hosts, snaplen=256):
        """tcpdump at each host (snaplen 256 keeps RTP headers; a larger
        one keeps whole SIP messages, e.g. to time a re-INVITE)."""
        caps = {}
        for h in hosts:
            c = sipp.Capture(self.topo[h], self.workdir, self._name("cap", h),
                             snaplen=snaplen)
            self.report.add("rtp flows at " + h,
                            lambda c=c: _flows_text(c))
            caps[h] = c.start()
        return caps

    def stop_captures(self, caps):
        for c in caps.values():
            c.stop()

    def rtp_at(self, caps, host):
        return caps[host].rtp_to(self.topo.ip(host), MEDIA_PORT)

    def assert_media(self, caps, hosts, minimum=MIN_RTP):
        """RTP reached each host's media port at least `minimum` times."""
        self.stop_captures(caps)
        counts = {h: self.rtp_at(caps, h) for h in hosts}
        short = {h: n for h, n in counts.items() if n < minimum}
        assert not short, (
            "too little RTP arrived (need >= %d per phone): %s; flows: %s" % (
                minimum, counts,
                {h: _flows_text(caps[h]) for h in hosts}))
        return counts

    def media_sources(self, caps, host):
        """{source ip:port: packets} of the RTP that reached host's media
        port: tells a relayed call (source = relay) from a direct one."""
        self.stop_captures(caps)
        out = {}
        for u in caps[host].packets_to(self.topo.ip(host), MEDIA_PORT):
            key = "%s:%d" % (u.src, u.sport)
            out[key] = out.get(key, 0) + 1
        return out

    def assert_relayed(self, caps, hosts, relay_ip, minimum=MIN_RTP):
        """Each host got >= minimum RTP packets, all from relay_ip."""
        for h in hosts:
            src = self.media_sources(caps, h)
            assert sum(src.values()) >= minimum, (h, src)
            assert all(k.split(":")[0] == relay_ip for k in src), (
                "%s got RTP not from the relay %s: %s" % (h, relay_ip, src))

    def assert_direct(self, caps, peers, minimum=MIN_RTP):
        """RTP went end to end: each host of the pair (a, b) got >= minimum
        packets, all from the other one's address."""
        a, b = peers
        for dst, src_host in ((a, b), (b, a)):
            src = self.media_sources(caps, dst)
            assert sum(src.values()) >= minimum, (dst, src)
            want = self.topo.ip(src_host)
            assert all(k.split(":")[0] == want for k in src), (
                "%s got RTP not straight from %s: %s" % (dst, src_host, src))


def _flows_text(cap):
    try:
        flows = cap.flows()
    except Exception as e:             # capture missing or unreadable
        return "unreadable capture %s: %s" % (cap.path, e)
    if not flows:
        return "no RTP in %s" % cap.path
    return "\n".join("%s:%d -> %s:%d  %d packets" % (k + (n,))
                     for k, n in sorted(flows.items()))

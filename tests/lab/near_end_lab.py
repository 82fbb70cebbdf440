"""Helpers for the near-end NAT scenarios (test_near_end.py): pinhole sits
behind the office router's own NAT, with port forwards.

Built only on the harness's stable parts (labnet, topology, sipp, pcap,
pinhole.Pinhole and labenv.LabEnv's report/capture/media helpers); the
per-host proxy (office WAN address for remote phones, the server's private
address for LAN phones) and parallel call rounds live here.

    topo = build(lab)                      # office behind NAT + remote sites
    set_office(topo, wan_ip, rtp_forward)  # re-address / re-forward the router
    stun = start_stun(topo, workdir)       # coturn --stun-only on 203.0.113.70
    env = NearEndEnv(topo, workdir, report, pinhole)
    env.register_all([...]); env.round([Call(...), ...])
"""

import json
import os
import re
import time
from dataclasses import dataclass, field

import labenv
import labnet
import pinhole as pinhole_mod
import topology

OFFICE_WAN = "203.0.113.1"
NEW_WAN = "203.0.113.101"          # the router's address after the change
SRV = "10.10.0.10"
INTRANET = "10.10.0.0/24"
RTP_MIN, RTP_MAX = 30000, 30100
STUN_IP, STUN_PORT = "203.0.113.70", 3478
STUN_IP2 = "203.0.113.71"     # second address (RFC 5780 tests only)
PUBLIC_GW_IP = "203.0.113.60"
TURNSERVER = "/usr/bin/turnserver"
DOMAIN = labenv.DOMAIN
SIP_PORT = labenv.SIP_PORT
MEDIA_PORT = labenv.MEDIA_PORT
MIN_RTP = labenv.MIN_RTP

# Users provisioned in every near-end test (name -> password).
USERS = {"alice": "alice-pw-1", "bob": "bob-pw-2", "carol": "carol-pw-3",
         "dave": "dave-pw-4", "erin": "erin-pw-5", "frank": "frank-pw-6",
         "gina": "gina-pw-7"}
# Who uses which phone.
PHONE_USER = {"prc-phone": "alice", "sym-phone": "bob", "pub1": "carol",
              "lanphone": "dave", "pub4": "erin", "pub5": "frank",
              "prc2-phone": "gina"}
# Dialled numbers routed by [routes] prefix to the two gateways.
LAN_GW_NUMBER = "9123"
PUBLIC_GW_NUMBER = "8123"
GATEWAY_HOST = {LAN_GW_NUMBER: "gw", PUBLIC_GW_NUMBER: "pgw"}
# Far-end NAT kinds of the remote phones (None: public address).
NAT_OF = {"prc-phone": "port-restricted", "sym-phone": "symmetric",
          "prc2-phone": "port-restricted",
          "pub1": None, "pub4": None, "pub5": None, "pgw": None}


def office_site(wan_ip=OFFICE_WAN, rtp_forward=True):
    """The office: pinhole (srv), a LAN phone and the LAN gateway behind a
    masquerading router that forwards SIP (UDP+TCP 5060) and, unless
    rtp_forward is False, the relay's RTP range to the server."""
    forwards = [("udp", SIP_PORT, "srv", SIP_PORT),
                ("tcp", SIP_PORT, "srv", SIP_PORT)]
    if rtp_forward:
        forwards.append(("udp", "%d-%d" % (RTP_MIN, RTP_MAX), "srv", None))
    return topology.Site(
        name="office", wan_ip=wan_ip, lan=INTRANET, router_ip="10.10.0.1",
        hosts={"srv": SRV, "lanphone": "10.10.0.21", "gw": "10.10.0.50"},
        nat="port-restricted", forwards=forwards)


def remote_sites():
    home = dict(lan="192.168.1.0/24", router_ip="192.168.1.1")
    return [
        topology.Site(name="prc", wan_ip="203.0.113.23",
                      hosts={"prc-phone": "192.168.1.10"},
                      nat="port-restricted", **home),
        topology.Site(name="sym", wan_ip="203.0.113.24",
                      hosts={"sym-phone": "192.168.1.10"},
                      nat="symmetric", **home),
        # only used by the missing-RTP-forward scenario (fresh conntrack)
        topology.Site(name="prc2", wan_ip="203.0.113.26",
                      hosts={"prc2-phone": "192.168.1.10"},
                      nat="port-restricted", **home),
    ]


PUBLIC_HOSTS = {"pub1": "203.0.113.31",
                "pub4": "203.0.113.34",      # missing forward, far end first
                "pub5": "203.0.113.35",      # missing forward, relay first
                "pgw": PUBLIC_GW_IP,         # public gateway (SIPp UAS)
                "stun": STUN_IP}             # coturn, STUN only


def build(lab):
    return topology.build(lab, dict(PUBLIC_HOSTS),
                          [office_site()] + remote_sites())


def pinhole_overrides(nat, rtp_range=(RTP_MIN, RTP_MAX)):
    """Config sections for pinhole behind the office NAT; nat: extra [nat]
    keys (public_ip, or stun_server + stun_refresh); rtp_range: the relay
    ports (the forwarded range unless a test says otherwise)."""
    n = {"enabled": "yes", "behind_nat": "yes", "intranet_subnets": INTRANET}
    n.update(nat)
    return {"nat": n,
            "media": {"relay": "yes", "rtp_port_min": str(rtp_range[0]),
                      "rtp_port_max": str(rtp_range[1])},
            "routes": {LAN_GW_NUMBER[0]: "sip:10.10.0.50:5060",
                       PUBLIC_GW_NUMBER[0]: "sip:%s:5060" % PUBLIC_GW_IP}}


def set_office(topo, wan_ip, rtp_forward=True):
    """Re-address the office router's WAN side and/or change its port
    forwards. The old address is deleted before the new one is added (a
    deleted primary address would take its secondaries along); the kernel
    then drops the masqueraded conntrack entries of the old address. The
    nft ruleset is replaced in one transaction. All inet hosts share the
    /24, so no route needs fixing."""
    rtr = topo["office-rtr"]
    site = office_site(wan_ip, rtp_forward)
    old = rtr.ifaces["eth0"]
    new = "%s/%d" % (wan_ip, topology.INET_PREFIXLEN)
    if old != new:
        rtr.ip("addr", "del", old, "dev", "eth0")
        rtr.ip("addr", "add", new, "dev", "eth0")
        rtr.ifaces["eth0"] = new
    rtr.nft("flush ruleset\n" + topology.nat_ruleset(site))
    topo.sites["office"] = site
    return site


# `conntrack -F` without the conntrack tool: one ctnetlink
# IPCTNL_MSG_CT_DELETE without attributes flushes the namespace's table.
_CT_FLUSH = r"""
import socket, struct, sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETFILTER
body = struct.pack("=BBH", socket.AF_INET, 0, 0)            # nfgenmsg
s.send(struct.pack("=IHHII", 16 + len(body), (1 << 8) | 2, 1 | 4, 1, 0)
       + body)
s.settimeout(2)
ack = s.recv(4096)
err = struct.unpack("=i", ack[16:20])[0]
sys.exit(0 if err in (0, -2) else 1)
"""


def flush_conntrack(node):
    """Forget every connection tracked in node (a router): NAT mappings,
    port-forward entries, unanswered inbound flows."""
    node.run([pinhole_mod.PYTHON, "-c", _CT_FLUSH])


def conntrack_count(node):
    r = node.run(["cat", "/proc/sys/net/netfilter/nf_conntrack_count"],
                 check=False)
    return int(r.stdout.strip() or -1)


def office_ruleset(topo):
    return topo["office-rtr"].run(["nft", "list", "ruleset"]).stdout


def in_office(topo, host):
    return host in topo.sites["office"].hosts


# -- STUN server --------------------------------------------------------------
def start_stun(topo, workdir, rfc5780=False):
    """coturn as a plain STUN server (no TURN, no TLS, no CLI, no config
    file, its own empty user db instead of /var/lib/turn/turndb) on
    STUN_IP:3478, foreground, under the lab-only name lab-stun; recorded by
    the Lab (stopped at the test's teardown by PID)."""
    node = topo["stun"]
    log = os.path.join(workdir, "stun.log")
    argv = [labnet.alias(TURNSERVER, "lab-stun"), "-n", "--stun-only",
            "-L", STUN_IP, "-p", str(STUN_PORT), "--no-cli", "--no-tls",
            "--no-dtls", "--log-file", "stdout", "--simple-log",
            "--pidfile", os.path.join(workdir, "stun.pid"),
            "--userdb", os.path.join(workdir, "stun-users.sqlite"),
            "--no-stun-backward-compatibility"]
    if rfc5780:
        # RFC 5780 needs a second address: answers to CHANGE-REQUEST
        # leave from STUN_IP2:STUN_PORT+1
        r = node.run(["ip", "-o", "addr", "show", "dev", "eth0"],
                     check=False)
        if STUN_IP2 + "/" not in r.stdout:
            node.ip("addr", "add", "%s/%d" % (STUN_IP2,
                                              topology.INET_PREFIXLEN),
                    "dev", "eth0")
        argv += ["-L", STUN_IP2]
    else:
        argv.append("--no-rfc5780")
    proc = node.popen(argv, log, cwd=workdir, name="lab-stun")

    def bound():
        r = node.run(["ss", "-H", "-uln", "sport = :%d" % STUN_PORT],
                     check=False)
        return r.stdout.strip() != ""
    if not labnet.wait_until(bound, timeout=8, interval=0.1):
        proc.stop()
        raise RuntimeError("STUN server did not bind %s:%d:\n%s" % (
            STUN_IP, STUN_PORT, proc.log()[-3000:]))
    return proc


# -- SIP message trace parsing ------------------------------------------------
def received_messages(run):
    """The SIP messages a SIPp run received (texts), from its -trace_msg."""
    out = []
    for block in re.split(r"^-{10,}.*$", run.messages(), flags=re.M):
        m = re.search(r"message received \[\d+\] bytes :\s*\n", block)
        if m:
            out.append(block[m.end():].strip("\r\n"))
    return out


def first_line(msg):
    return msg.split("\n", 1)[0].strip()


def sdp_conn(msg):
    """The c= addresses of a message's SDP."""
    return re.findall(r"^c=IN IP4 (\S+)", msg, re.M)


def header_values(msg, name):
    return [v.strip() for v in re.findall(
        r"^%s:\s*(.*)$" % re.escape(name), msg, re.M | re.I)]


def call_id_of(run):
    m = re.search(r"^Call-ID:\s*(\S+)", run.messages(), re.M | re.I)
    return m.group(1) if m else None


# -- the environment ---------------------------------------------------------
@dataclass
class Call:
    """One call of a round: src phone dials target (a user or a gateway
    number). relayed: what pinhole must do with the media."""
    src: str
    target: str                        # user name or gateway number
    dst: str                           # callee host
    relayed: bool = True
    # None: ne_uac_rr2.xml when the call crosses the office NAT (pinhole
    # Record-Routes twice; one Route line per entry), else uac.xml
    caller_scenario: str = None
    callee_scenario: str = "uas.xml"
    duration_ms: int = 2500
    # filled in by the round
    caller: object = None
    callee: object = None
    call_id: str = None
    session: dict = None
    rtp: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)

    def label(self):
        return "%s -> %s (%s)" % (self.src, self.target, self.dst)


class NearEndEnv(labenv.LabEnv):
    """LabEnv whose phones use the address they would be configured with:
    remote phones the office router's WAN address, LAN phones the server's
    private address."""

    def __init__(self, topo, workdir, report, pinhole):
        super().__init__(topo, workdir, report, server="srv",
                         pinhole=pinhole)

    @property
    def wan(self):
        return self.topo.sites["office"].wan_ip

    def proxy_for(self, host):
        ip = SRV if in_office(self.topo, host) else self.wan
        return "%s:%d" % (ip, SIP_PORT)

    def face_for(self, host):
        """The address pinhole must show host (Via, Record-Route, SDP)."""
        return SRV if in_office(self.topo, host) else self.wan

    # -- registration ---------------------------------------------------------
    def register_as(self, host, user=None, expect="ok", expires=3600):
        """REGISTER host's user through its proxy; expect "ok" (401 then
        200) or "503" (refused: public address unknown)."""
        user = user or PHONE_USER[host]
        scen = {"ok": "register.xml", "503": "ne_register_503.xml"}[expect]
        s = self.sipp(host, scen, "reg-" + user, remote=self.proxy_for(host),
                      service=user, auth=(user, USERS[user]), timeout=8,
                      auth_uri=labenv.auth_uri("sip:%s" % DOMAIN),
                      keys={"domain": DOMAIN, "expires": expires,
                            "via_port": SIP_PORT},
                      ooc="ooc_options.xml")
        rc = s.run()
        assert rc == 0, ("REGISTER of %s from %s via %s: expected %s, SIPp "
                         "exit %s (see sipp %s)" % (
                             user, host, self.proxy_for(host), expect, rc,
                             s.name))
        return s

    def register_all(self, hosts):
        return [self.register_as(h) for h in hosts]

    # -- calls -------------------------------------------------------------
    def _callee(self, call):
        if call.target in GATEWAY_HOST:
            user = "gateway"
        else:
            user = call.target
            self.register_as(call.dst, user)     # fresh NAT mapping
        return self.sipp(call.dst, call.callee_scenario, "uas-" + user,
                         port=SIP_PORT, media_port=MEDIA_PORT, pause_ms=300,
                         timeout=call.duration_ms // 1000 + 20,
                         keys={"user": user}).start()

    def crosses(self, call):
        """A LAN party and an outside party: pinhole shows each its own
        face (double Record-Route)."""
        return in_office(self.topo, call.src) != in_office(self.topo,
                                                            call.dst)

    def _caller(self, call):
        user = PHONE_USER[call.src]
        if call.caller_scenario is None:
            call.caller_scenario = ("ne_uac_rr2.xml" if self.crosses(call)
                                    else "uac.xml")
        return self.sipp(call.src, call.caller_scenario,
                         "uac-%s-to-%s" % (user, call.target),
                         remote=self.proxy_for(call.src), port=SIP_PORT,
                         media_port=MEDIA_PORT, service=call.target,
                         auth=(user, USERS[user]), pause_ms=call.duration_ms,
                         timeout=call.duration_ms // 1000 + 15,
                         auth_uri=labenv.auth_uri("sip:%s@%s" % (
                             call.target, DOMAIN)),
                         keys={"domain": DOMAIN, "user": user})

    def place(self, calls, interval=0.3):
        """Run calls in parallel (each host in at most one call): callees
        registered and listening, captures at every phone, callers
        started together; /api/calls sampled until the callers end.
        Returns {call_id: last relay sample}; fills each Call's runs,
        RTP counts and sources. Asserts nothing about media."""
        hosts = []
        for c in calls:
            for h in (c.src, c.dst):
                assert h not in hosts, "%s in two calls of a round" % h
                hosts.append(h)
        for c in calls:
            c.callee = self._callee(c)
        caps = self.capture(*hosts)
        for c in calls:
            c.caller = self._caller(c).start(wait_bound=False)
        seen = {}
        samples = []
        self.report.add("relay samples (/api/calls)",
                        lambda: "\n".join(samples[-8:]))
        while any(c.caller.proc.running() for c in calls):
            try:
                sessions = self.pinhole.api("/api/calls")
            except Exception as e:          # keep watching; report it
                samples.append("error: %s" % e)
                sessions = []
            for s in sessions:
                if "streams" in s and s.get("call_id"):
                    seen[s["call_id"]] = s
            if sessions:
                samples.append(json.dumps(sessions))
            time.sleep(interval)
        for c in calls:
            c.caller.wait()
            c.call_id = call_id_of(c.caller)
            c.session = seen.get(c.call_id)
        for c in calls:
            c.callee.wait()
        self.stop_captures(caps)
        for c in calls:
            for h in (c.src, c.dst):
                c.rtp[h] = self.rtp_at(caps, h)
                c.sources[h] = self.media_sources(caps, h)
        return seen

    def round(self, calls, minimum=MIN_RTP):
        """place() the calls, then check every one: both SIPp runs ended
        well, >= minimum RTP packets arrived at each phone, from the relay's
        face for that phone (office WAN for remote phones, the server's
        private address for LAN phones) when relayed, straight from the
        other party otherwise; the relay session in /api/calls carried
        media from both sides; the SDP each party received advertised
        the right face. All failures are collected and reported together."""
        self.place(calls)
        problems = []
        for c in calls:
            problems += ["%s: %s" % (c.label(), p) for p in self.check(c,
                                                                      minimum)]
        assert not problems, "\n".join(problems)
        return calls

    def check(self, c, minimum=MIN_RTP):
        p = []
        for what, run in (("caller", c.caller), ("callee", c.callee)):
            if run.rc != 0:
                p.append("%s SIPp exit %s (see sipp %s)" % (what, run.rc,
                                                           run.name))
        for h, other in ((c.src, c.dst), (c.dst, c.src)):
            n = c.rtp.get(h, 0)
            if n < minimum:
                p.append("only %d RTP packets reached %s (need >= %d); "
                         "sources %s" % (n, h, minimum, c.sources.get(h)))
                continue
            want = (self.face_for(h) if c.relayed
                    else self.topo.ip(other))
            bad = {k: v for k, v in c.sources[h].items()
                   if k.split(":")[0] != want}
            if bad:
                p.append("RTP at %s not from %s (%s): %s" % (
                    h, want, "relay" if c.relayed else "direct", bad))
        if c.relayed:
            st = (c.session or {}).get("streams") or []
            if not any(s["a"]["rx_packets"] >= minimum // 2
                       and s["b"]["rx_packets"] >= minimum // 2 for s in st):
                p.append("no relay session with media from both sides in "
                         "/api/calls for Call-ID %s: %s" % (
                             c.call_id, json.dumps(c.session)))
        elif c.session and c.session.get("streams"):
            p.append("relayed although both ends are public and not NATed:"
                     " %s" % json.dumps(c.session))
        # The callee's INVITE: pinhole's top Via and first Record-Route
        # show the callee's face; a call crossing the office NAT is
        # Record-Routed twice (callee's face, then the caller's).
        invites = [m for m in received_messages(c.callee)
                   if first_line(m).startswith("INVITE")]
        want_rr = [self.face_for(c.dst)]
        if self.crosses(c):
            want_rr.append(self.face_for(c.src))
        rr = rr_hosts(invites[0]) if invites else None
        if rr != want_rr:
            p.append("Record-Route of the INVITE at %s names %s, expected "
                     "%s" % (c.dst, rr, want_rr))
        via = top_via_host(invites[0]) if invites else None
        if via != self.face_for(c.dst):
            p.append("top Via of the INVITE at %s is %s, expected %s" % (
                c.dst, via, self.face_for(c.dst)))
        # The SDP each party got must name the face pinhole shows it
        # (relayed) or the other party (direct).
        for run, h, other in ((c.callee, c.dst, c.src),
                              (c.caller, c.src, c.dst)):
            want = self.face_for(h) if c.relayed else self.topo.ip(other)
            conns = [a for m in received_messages(run)
                     if (first_line(m).startswith("INVITE")
                         or first_line(m).startswith("SIP/2.0 200"))
                     for a in sdp_conn(m)]
            if not conns or any(a != want for a in conns):
                p.append("SDP received by %s has c= %s, expected %s" % (
                    h, conns, want))
        return p


def rr_hosts(msg):
    """Hosts in a message's Record-Route headers."""
    hosts = []
    for v in header_values(msg, "Record-Route"):
        hosts += re.findall(r"sip:(?:[^@;>]*@)?([0-9.]+)", v)
    return hosts


def top_via_host(msg):
    vias = header_values(msg, "Via") + header_values(msg, "v")
    m = re.match(r"SIP/2\.0/\S+\s+([^:;,\s]+)", vias[0]) if vias else None
    return m.group(1) if m else None


def near_end(ph):
    return ph.api("/api/status").get("near_end_nat") or {}


def wait_public_ip(ph, want, timeout):
    """Poll /api/status until near_end_nat.public_ip == want; returns
    (seconds waited or None, last near_end_nat)."""
    t0 = time.monotonic()
    last = {}
    while time.monotonic() - t0 < timeout:
        try:
            last = near_end(ph)
        except pinhole_mod.PinholeError as e:
            last = {"error": str(e)}
        if last.get("public_ip") == want:
            return time.monotonic() - t0, last
        time.sleep(0.25)
    return None, last

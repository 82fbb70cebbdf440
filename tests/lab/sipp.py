"""Run SIPp (and tcpdump) inside lab nodes; generate the RTP source file.

Every SIPp run is bounded: -m 1, a global -timeout with -timeout_error, and
the harness's own wait timeout on top. SIPp runs with the test's work
directory as cwd because rtp_stream's file name is not keyword-expanded:
scenarios stream "lab-tone.wav" from the current folder.

A "phone" is a registration run that exits, then a UAS-mode SIPp on the
same local port (a UAC-mode SIPp cannot accept a new incoming INVITE).
"""

import math
import os
import re
import signal
import subprocess
import time
import wave

import labnet
import pcap

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, "scenarios")
SIPP = "/usr/bin/sipp"
TCPDUMP = "/usr/bin/tcpdump"
TONE = "lab-tone.wav"
# SIPp exits 0 on SIGTERM ("Test Terminated") even mid-call, so a run only
# counts as good if its final screen also shows one successful call.
_SUCCESS_RE = re.compile(r"^\s*Successful call\s*\|\s*\d+\s*\|\s*(\d+)",
                         re.M)
KILLED_EARLY = -998       # rc 0 but no successful call: stopped from outside


def _ulaw(sample):
    """G.711 mu-law encode one 16-bit linear sample."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, clip) + bias
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def write_tone(path, seconds=1.0, freq=440.0):
    """An 8 kHz mono 8-bit mu-law tone as a WAV file (SIPp reads the data
    chunk and sends it as PCMU, 160 bytes = 20 ms per packet)."""
    n = int(8000 * seconds)
    data = bytes(_ulaw(int(8000 * math.sin(2 * math.pi * freq * i / 8000)))
                 for i in range(n))
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(data)
    return path


def wait_udp_bound(node, port, timeout=5.0):
    """True once something in node listens on UDP port."""
    def bound():
        r = node.run(["ss", "-H", "-uln", "sport = :%d" % port], check=False)
        return r.returncode == 0 and r.stdout.strip() != ""
    return labnet.wait_until(bound, timeout=timeout, interval=0.05)


class Sipp:
    """One SIPp run in a node. Logs land in workdir/<name>.*"""

    def __init__(self, node, workdir, scenario, name, remote=None,
                 port=5060, media_port=6000, service=None, auth=None,
                 keys=None, pause_ms=None, timeout=20, transport="u1",
                 auth_uri=None, ooc=None, cid_str=None):
        self.node = node
        self.workdir = workdir
        self.scenario = os.path.join(SCENARIOS, scenario)
        self.name = name
        self.remote = remote
        self.port = port
        self.media_port = media_port
        self.service = service
        self.auth = auth                 # (user, password) or None
        # Digest uri: must be the Request-URI (SIPp's default is
        # remote_ip:port, which a strict server rightly refuses).
        self.auth_uri = auth_uri
        # Out-of-call scenario: what to do with requests outside the call
        # (e.g. ooc_options.xml: answer pinhole's OPTIONS like a phone).
        self.ooc = os.path.join(SCENARIOS, ooc) if ooc else None
        self.cid_str = cid_str           # SIPp -cid_str (Call-ID format)
        self.keys = dict(keys or {})
        self.pause_ms = pause_ms
        self.timeout = timeout
        self.transport = transport
        self.proc = None
        self.rc = None
        base = os.path.join(workdir, name)
        self.out_path = base + ".out"
        self.err_path = base + ".errors.log"
        self.msg_path = base + ".messages.log"
        self.screen_path = base + ".screen.log"

    def argv(self):
        ip = self.node.addr("eth0")
        a = [labnet.alias(SIPP, "lab-ua"), "-sf", self.scenario, "-i", ip, "-p", str(self.port),
             "-mi", ip, "-mp", str(self.media_port), "-t", self.transport,
             "-m", "1", "-l", "1", "-nostdin",
             "-timeout", "%ds" % self.timeout, "-timeout_error",
             "-max_recv_loops", "1000",
             "-trace_err", "-error_file", self.err_path,
             "-trace_msg", "-message_file", self.msg_path,
             "-trace_screen", "-screen_file", self.screen_path]
        if self.service:
            a += ["-s", self.service]
        if self.auth:
            a += ["-au", self.auth[0], "-ap", self.auth[1]]
        if self.auth_uri:
            a += ["-auth_uri", self.auth_uri]
        if self.pause_ms is not None:
            a += ["-d", str(self.pause_ms)]
        if self.ooc:
            a += ["-oocsf", self.ooc]
        if self.cid_str:
            a += ["-cid_str", self.cid_str]
        for k, v in self.keys.items():
            a += ["-key", k, str(v)]
        if self.remote:
            a.append(self.remote)
        return a

    def start(self, wait_bound=True):
        """Start in the background (UAS); waits until the SIP port is bound."""
        self.proc = self.node.popen(self.argv(), self.out_path,
                                    cwd=self.workdir, name=self.name)
        if wait_bound and not wait_udp_bound(self.node, self.port):
            raise RuntimeError("%s: SIPp did not bind UDP %d\n%s" % (
                self.name, self.port, self.report()))
        return self

    def wait(self, extra=10):
        """Wait for the run to end (bounded); returns SIPp's exit code
        (0 = the call succeeded)."""
        try:
            self.rc = self.proc.wait(timeout=self.timeout + extra)
        except subprocess.TimeoutExpired:
            self.proc.stop(signal.SIGTERM)
            self.rc = -999
        if self.rc == 0 and self.successful_calls() != 1:
            self.rc = KILLED_EARLY
        return self.rc

    def successful_calls(self):
        """Cumulative "Successful call" count on SIPp's final screen."""
        found = _SUCCESS_RE.findall(_read(self.out_path))
        return int(found[-1]) if found else None

    def run(self):
        """Run to completion in the foreground; returns the exit code."""
        self.start(wait_bound=False)
        return self.wait()

    def messages(self):
        return _read(self.msg_path)

    def report(self):
        """Everything useful about this run, for a failure message."""
        note = ""
        if self.rc == KILLED_EARLY:
            note = (" (SIPp exited 0 without a successful call: it was "
                    "stopped by a signal from outside the test)")
        elif self.rc == -999:
            note = " (did not end by itself; stopped by the harness)"
        parts = ["=== SIPp %s in %s: rc=%s%s" % (self.name, self.node.name,
                                                  self.rc, note),
                 "argv: " + " ".join(self.argv())]
        for label, path in (("stdout", self.out_path),
                            ("errors", self.err_path),
                            ("messages", self.msg_path)):
            text = _read(path)
            if text:
                parts.append("--- %s (%s)\n%s" % (label, path,
                                                  _tail(text, 12000)))
        return "\n".join(parts)


class Capture:
    """tcpdump of UDP on one interface of a node, into a pcap file."""

    def __init__(self, node, workdir, name, iface="eth0", filt="udp",
                 snaplen=256):
        self.node = node
        self.path = os.path.join(workdir, name + ".pcap")
        self.log = os.path.join(workdir, name + ".tcpdump.log")
        self.iface = iface
        self.filt = filt
        self.snaplen = snaplen        # RTP header is enough; SIP needs more
        self.proc = None

    def start(self):
        self.proc = self.node.popen(
            [labnet.alias(TCPDUMP, "lab-capture"), "-i", self.iface, "-n",
             "-U", "--immediate-mode", "-Z", "root", "-s", str(self.snaplen),
             "-w", self.path, self.filt], self.log, name="tcpdump")
        if not labnet.wait_until(lambda: "listening on" in _read(self.log),
                                 timeout=5):
            raise RuntimeError("tcpdump did not start: " + _read(self.log))
        return self

    def stop(self):
        """Stop capturing; packets already in flight get 0.2 s to land."""
        if self.proc and not self.proc.stopped:
            time.sleep(0.2)
            self.proc.stop(signal.SIGINT, grace=3)
        return self

    def rtp_to(self, ip=None, port=None):
        """Number of RTP packets in the capture sent to ip[:port]."""
        return len(pcap.rtp_packets(self.path, ip, port))

    def packets_to(self, ip=None, port=None):
        """The RTP packets (pcap.Udp) in the capture sent to ip[:port]."""
        return pcap.rtp_packets(self.path, ip, port)

    def flows(self):
        return pcap.rtp_summary(self.path)


def header(msg, name):
    """The first value of header name in a traced SIP message, or None."""
    m = re.search(r"^\s*%s\s*:\s*(.*?)\s*$" % re.escape(name), msg,
                  flags=re.M | re.I)
    return m.group(1) if m else None


def tag(value):
    """The tag parameter of a From / To value, or None."""
    m = re.search(r";\s*tag=([^;>\s]+)", value or "")
    return m.group(1) if m else None


def order(run):
    """"sent|received <first line> <Call-ID>" for each message in a run's
    -trace_msg, in order (to assert which came first)."""
    out = []
    for p in re.split(r"^-{20,}.*$", run.messages(), flags=re.M):
        lines = [l.strip() for l in p.splitlines() if l.strip()]
        if len(lines) > 1 and re.search(r"message (sent|received)", lines[0]):
            d = "sent" if "message sent" in lines[0] else "received"
            out.append("%s %s %s" % (d, lines[1], header(p, "Call-ID")))
    return out


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _tail(text, n):
    return text if len(text) <= n else "...\n" + text[-n:]

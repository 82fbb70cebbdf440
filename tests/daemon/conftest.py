"""Fixtures for daemon-level tests on loopback: a pinhole started on a free
port with its own config and store, stopped (and its log shown on failure)
at the end. Traffic goes only to 127.0.0.1."""
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# The sanitizer build when there is one: a bad input that corrupts memory
# fails the test instead of passing by luck.
BIN = os.environ.get("PINHOLE_BIN") or next(
    (p for p in (os.path.join(ROOT, "build", "pinhole-san"),
                 os.path.join(ROOT, "build", "pinhole")) if os.path.exists(p)))


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Daemon:
    def __init__(self, tmp, extra="", intranet="127.0.0.0/8"):
        """intranet: the [nat] intranet_subnets; one without loopback
        makes the test's phones remote (a Contact that is not the source
        is then behind-nat)."""
        self.tmp = tmp
        # a port free for both UDP and TCP
        while True:
            self.port = free_port()
            try:
                t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                t.bind(("127.0.0.1", self.port))
                t.close()
                break
            except OSError:
                continue
        self.admin_port = free_port(socket.SOCK_STREAM)
        self.conf = os.path.join(tmp, "pinhole.conf")
        with open(self.conf, "w") as f:
            f.write(f"""[sip]
domain = example.com
listen = 127.0.0.1
port = {self.port}
[nat]
intranet_subnets = {intranet}
[store]
path = {tmp}/pinhole.db
[admin]
http = 127.0.0.1:{self.admin_port}
[log]
level = debug
{extra}""")
        self.log = os.path.join(tmp, "pinhole.log")
        self.proc = None

    def cli(self, *args, check=True):
        return subprocess.run([BIN, "-c", self.conf, *args], capture_output=True,
                              text=True, check=check, timeout=20)

    def start(self):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([BIN, "-c", self.conf, "run"],
                                     stdout=self.logf, stderr=self.logf)
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                urllib.request.urlopen(
                    f"http://127.0.0.1:{self.admin_port}/api/status", timeout=1)
                return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("pinhole did not start:\n" + open(self.log).read()[-3000:])

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()
        return self.proc.returncode if self.proc else None

    def options_ok(self):
        """True when the daemon answers an OPTIONS to itself with 200."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(2)
        lport = s.getsockname()[1]
        msg = (f"OPTIONS sip:127.0.0.1:{self.port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bKping{time.time_ns()}\r\n"
               "From: <sip:probe@example.com>;tag=1\r\nTo: <sip:127.0.0.1>\r\n"
               f"Call-ID: ping{time.time_ns()}\r\nCSeq: 1 OPTIONS\r\n"
               "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        s.sendto(msg.encode(), ("127.0.0.1", self.port))
        try:
            data, _ = s.recvfrom(65535)
            return data.startswith(b"SIP/2.0 200")
        except socket.timeout:
            return False
        finally:
            s.close()


    def finish(self, request):
        """Stop; show the log if the test failed; fail on any sanitizer
        report or a non-zero exit (a crash)."""
        rc = self.stop()
        log = open(self.log, errors="replace").read()
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            print("---- pinhole log (tail) ----")
            print(log[-8000:])
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            assert bad not in log, log[log.find(bad) - 200:log.find(bad) + 3000]
        assert rc == 0, f"pinhole exited with {rc} (crash?)"


def run_daemon(request, prefix="pinhole-test-", users=(), **conf):
    """The body of a daemon fixture: `yield from run_daemon(request, ...)`.
    A Daemon(**conf) in a fresh temporary folder, started, users added
    (password "password1"); finished at teardown (log shown on failure,
    a crash or sanitizer report fails the test)."""
    d = Daemon(tempfile.mkdtemp(prefix=prefix), **conf)
    d.start()
    for u in users:
        d.cli("user", "add", u, "password1")
    yield d
    d.finish(request)


@pytest.fixture
def daemon(request):
    yield from run_daemon(request)


def setup_pbx(daemon):
    """Users alice, bob, carol and dave; Python phones (sipclient.UA) for
    alice, bob and carol, registered, in daemon.phones."""
    from sipclient import UA
    for u in ("alice", "bob", "carol", "dave"):
        daemon.cli("user", "add", u, "password1")
    phones = {}
    for u in ("alice", "bob", "carol"):
        phones[u] = UA(daemon.port, u)
        assert phones[u].register().status == 200
    daemon.phones = phones
    return daemon


@pytest.fixture
def pbx(daemon):
    """The daemon with setup_pbx's users and registered phones."""
    return setup_pbx(daemon)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)

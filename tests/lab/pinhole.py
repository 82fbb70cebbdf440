"""Drive the system under test, build/pinhole, inside a lab node.

One Pinhole object = one config file + one SQLite store in the test's work
directory; start()/stop() may be called repeatedly (restart tests). Each
run's stderr goes to its own log file (pinhole.<n>.log), attached to a
failing test's report by conftest.py.
"""

import json
import os
import signal
import time

import labnet

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BINARY = os.environ.get("PINHOLE_BIN", os.path.join(REPO, "build", "pinhole"))
HTTPGET = os.path.join(HERE, "tools", "httpget.py")
PYTHON = "/usr/bin/python3"

DEFAULTS = {
    "sip": {"domain": "example.com", "listen": "0.0.0.0", "port": "5060",
            "transports": "udp, tcp"},
    "nat": {"enabled": "yes", "behind_nat": "no",
            "intranet_subnets": "10.10.0.0/24"},
    "media": {"relay": "yes", "rtp_port_min": "30000",
              "rtp_port_max": "31000"},
    "auth": {"required": "yes"},
    "store": {"path": None},          # filled with <workdir>/pinhole.db
    "routes": {"9": "sip:10.10.0.50:5060"},
    "admin": {"http": "127.0.0.1:8080"},
    "log": {"level": "debug"},
}
SECTION_ORDER = ["sip", "nat", "media", "auth", "store", "routes", "admin",
                 "log"]


def render_config(sections):
    out = []
    names = SECTION_ORDER + [s for s in sections if s not in SECTION_ORDER]
    for name in names:
        if name not in sections:
            continue
        out.append("[%s]" % name)
        for k, v in sections[name].items():
            out.append("%s = %s" % (k, v))
        out.append("")
    return "\n".join(out)


class PinholeError(AssertionError):
    pass


# Alarm codes the running test provokes on purpose (its
# @pytest.mark.alarms(...) marker, set by conftest for each test). Any other
# alarm a daemon raised during a test is a false alarm and fails it.
EXPECTED_ALARMS = set()


class Pinhole:
    def __init__(self, node, workdir, overrides=None, binary=BINARY):
        self.node = node
        self.workdir = workdir
        self.binary = binary
        self.sections = {k: dict(v) for k, v in DEFAULTS.items()}
        self.sections["store"]["path"] = os.path.join(workdir, "pinhole.db")
        for sec, kv in (overrides or {}).items():
            if kv is None:
                self.sections.pop(sec, None)
                continue
            self.sections.setdefault(sec, {}).update(kv)
        # (no "pinhole" in the lab's command lines: see labnet.alias)
        self.conf = os.path.join(workdir, "sut.conf")
        with open(self.conf, "w") as f:
            f.write(render_config(self.sections))
        self.admin = self.sections["admin"]["http"]
        self.proc = None
        self.runs = 0
        self.logs = []
        self.cli_log = os.path.join(workdir, "pinhole-cli.log")

    # -- command line -----------------------------------------------------
    def cli(self, *args, check=True, timeout=15):
        """Run `pinhole -c CONF ARGS...` in the server node."""
        res = self.node.run([self.exe(), "-c", self.conf] + list(args),
                            check=False, timeout=timeout)
        with open(self.cli_log, "a") as f:
            f.write("$ pinhole %s\n-> exit %d\n%s%s\n" % (
                " ".join(args), res.returncode, res.stdout, res.stderr))
        if check and res.returncode != 0:
            raise PinholeError("pinhole %s failed (exit %d):\n%s%s" % (
                " ".join(args), res.returncode, res.stdout, res.stderr))
        return res

    def exe(self):
        """The binary to run: a per-run snapshot of build/pinhole under a
        lab-only name (see labnet.alias and labnet.snapshot)."""
        path = labnet.snapshot(self.binary, "lab-sut")
        if path is None:
            raise PinholeError("%s is missing: build it with `make` in %s"
                               % (self.binary, REPO))
        return path

    def user_add(self, name, password):
        return self.cli("user", "add", name, password)

    # -- daemon -----------------------------------------------------------
    def start(self, ready_timeout=5.0):
        exe = self.exe()
        self.runs += 1
        log = os.path.join(self.workdir, "pinhole.%d.log" % self.runs)
        self.logs.append(log)
        self.proc = self.node.popen([exe, "-c", self.conf, "run"],
                                    log, cwd=self.workdir, name="pinhole")
        res = self.node.run([PYTHON, HTTPGET, "--wait", str(ready_timeout),
                             "http://%s/api/status" % self.admin],
                            check=False, timeout=ready_timeout + 10)
        if res.returncode != 0:
            alive = self.proc.running()
            raise PinholeError(
                "pinhole not ready within %.0fs (process %s): %s" % (
                    ready_timeout, "running" if alive else
                    "exited %s" % self.proc.popen.returncode,
                    res.stdout.strip()))
        return self

    def stop(self, sig=signal.SIGTERM, grace=5.0):
        """Stop the daemon; returns (exit code, stopped_by_sig_in_grace)."""
        if not self.proc:
            return None, True
        proc, self.proc = self.proc, None
        if not proc.running():
            return proc.popen.returncode, True
        proc.send_signal(sig)
        try:
            rc = proc.popen.wait(timeout=grace)
            clean = True
        except Exception:
            rc = proc.stop(signal.SIGKILL)
            clean = False
        return rc, clean

    def running(self):
        return self.proc is not None and self.proc.running()

    def stop_after_test(self, lab_closed):
        """Fixture teardown: stop; return a failure text when the daemon
        had died during the test (a crash must fail the test), else None."""
        died = self.proc is not None and not self.running() and not lab_closed
        rc = self.proc.popen.returncode if died else None
        false_alarms = [] if died or lab_closed else self.false_alarms()
        self.stop()
        if died:
            return ("pinhole died during the test (exit %s); log: %s"
                    % (rc, self.logs[-1]))
        if false_alarms:
            return ("false alarm: the test does not provoke %s, yet pinhole "
                    "raised %s (mark the test @pytest.mark.alarms(...) if "
                    "it does)" % (
                        sorted({a["code"] for a in false_alarms}),
                        json.dumps(false_alarms, indent=1)))
        return None

    def false_alarms(self):
        """Alarms raised that the running test does not expect."""
        if not self.running():
            return []
        try:
            alarms = self.api("/api/alarms")
        except PinholeError:
            return []
        return [a for a in alarms if a.get("code") not in EXPECTED_ALARMS]

    def assert_running(self):
        if not self.running():
            rc = self.proc.popen.returncode if self.proc else None
            raise PinholeError("pinhole is not running (exit %s)" % rc)

    # -- admin API ----------------------------------------------------------
    def api(self, path):
        res = self.node.run([PYTHON, HTTPGET, "http://%s%s" % (self.admin,
                                                               path)],
                            check=False)
        if res.returncode != 0:
            raise PinholeError("GET %s: %s" % (path, res.stdout.strip()))
        return json.loads(res.stdout)

    def wait_ringing(self, timeout=8.0):
        """Until /api/calls shows a call with a branch that got a 180;
        returns that call."""
        end = time.time() + timeout
        while time.time() < end:
            for c in self.api("/api/calls"):
                if any(l.get("status") == 180 for l in c.get("legs") or []):
                    return c
            time.sleep(0.2)
        raise AssertionError("no call rang within %.0f s: %s" % (
            timeout, self.api("/api/calls")))

    def registrations(self):
        """`pinhole show registrations --json`, parsed (a list of dicts)."""
        res = self.cli("show", "registrations", "--json")
        try:
            data = json.loads(res.stdout)
        except ValueError as e:
            raise PinholeError("show registrations --json printed invalid "
                               "JSON (%s):\n%s" % (e, res.stdout))
        if not isinstance(data, list):
            raise PinholeError("show registrations --json: not an array:\n"
                               + res.stdout)
        return data

    def bindings_for(self, user):
        """Bindings whose AOR names user (sip:user@domain or user@domain)."""
        out = []
        for b in self.registrations():
            aor = str(b.get("aor", ""))
            local = aor.split(":", 1)[1] if aor.startswith("sip:") else aor
            if local.split("@")[0] == user:
                out.append(b)
        return out

    def report(self):
        parts = ["=== pinhole config (%s)\n%s" % (
            self.conf, render_config(self.sections))]
        for path in [self.cli_log] + self.logs:
            try:
                with open(path, errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            if len(text) > 40000:
                text = "...\n" + text[-40000:]
            parts.append("=== %s\n%s" % (os.path.basename(path), text))
        return "\n".join(parts)

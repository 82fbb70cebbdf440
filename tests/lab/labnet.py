"""labnet: a small internet in network namespaces, for pinhole's lab tests.

A Lab owns every namespace and process it creates. Nodes are network
namespaces named "<prefix><name>" where the prefix is "phl<pid>-" of the
Python process that built them, so a crashed run leaves names that a later
run recognises (its pid is dead) and removes (cleanup_stale()).

Building blocks, all parametric so NAT sites can be added later:
  - Switch: a namespace holding one Linux bridge "br0"; hosts and routers
    attach to it with veth pairs created directly between the two
    namespaces (nothing is created in, or moved through, the root namespace).
  - Node: a namespace with interfaces, addresses, routes, sysctls and an
    optional nftables ruleset. A router is a Node with ip_forward=1.
  - Proc: a process started inside a node; recorded by PID (it leads its
    own process group) and stopped by the Lab at teardown.

Teardown (Lab.close) is idempotent and runs from pytest finalizers, from
an atexit hook and from a SIGTERM handler installed by conftest.py.
"""

import atexit
import os
import re
import shutil
import signal
import subprocess
import time

PREFIX_FAMILY = "phl"
_STALE_RE = re.compile(r"^%s(\d+)-" % PREFIX_FAMILY)
_live_labs = []


def _sh(args, check=True, timeout=20, input=None):
    """Run a command in the root namespace (only `ip netns ...` and
    `ip -n NS ...` invocations go through here) and return its stdout."""
    res = subprocess.run(args, input=input, capture_output=True, text=True,
                         timeout=timeout)
    if check and res.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n%s%s" % (
            res.returncode, " ".join(args), res.stdout, res.stderr))
    return res.stdout


def netns_list():
    out = _sh(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_ns_pids(ns):
    """Kill the processes still inside one of our namespaces, by PID."""
    out = _sh(["ip", "netns", "pids", ns], check=False)
    for tok in out.split():
        try:
            os.kill(int(tok), signal.SIGKILL)
        except (ValueError, ProcessLookupError):
            pass


def cleanup_stale():
    """Remove namespaces of this prefix family whose owning run is dead."""
    removed = []
    for ns in netns_list():
        m = _STALE_RE.match(ns)
        if not m:
            continue
        owner = int(m.group(1))
        if owner == os.getpid() or _pid_alive(owner):
            continue
        _kill_ns_pids(ns)
        _sh(["ip", "netns", "del", ns], check=False)
        removed.append(ns)
    for name in os.listdir("/tmp"):
        m = re.match(r"^%s(\d+)-bin$" % PREFIX_FAMILY, name)
        if m and not _pid_alive(int(m.group(1))):
            d = os.path.join("/tmp", name)
            for f in os.listdir(d):
                os.unlink(os.path.join(d, f))
            os.rmdir(d)
            removed.append(d)
    return removed


class Proc:
    """A process started in a namespace; leads its own process group."""

    def __init__(self, lab, node, argv, popen, log_path, name):
        self.lab = lab
        self.node = node
        self.argv = argv
        self.popen = popen
        self.pid = popen.pid
        self.log_path = log_path
        self.name = name
        self.stopped = False

    def running(self):
        return self.popen.poll() is None

    def wait(self, timeout=None):
        """Wait for exit; returns the exit code (raises on timeout)."""
        return self.popen.wait(timeout=timeout)

    def send_signal(self, sig):
        if self.running() and not self.stopped:
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, sig=signal.SIGTERM, grace=3.0):
        """Stop the process (and its group): sig, then SIGKILL after grace."""
        if self.stopped:
            return self.popen.returncode
        if self.running():
            self.send_signal(sig)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.send_signal(signal.SIGKILL)
                try:
                    self.popen.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    pass
        # Anything left in the group is ours (the leader's session); once
        # stopped we never signal this PID again (it may be reused).
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.stopped = True
        return self.popen.returncode

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Node:
    """A network namespace: host, router or switch."""

    def __init__(self, lab, name, kind):
        self.lab = lab
        self.name = name
        self.ns = lab.prefix + name
        self.kind = kind
        self.ifaces = {}        # ifname -> "addr/len"
        self._port_seq = 0

    # -- commands ---------------------------------------------------------
    def argv(self, args):
        return ["ip", "netns", "exec", self.ns] + list(args)

    def run(self, args, check=True, timeout=20, input=None, cwd=None):
        """Run a command in this namespace and wait; returns CompletedProcess."""
        res = subprocess.run(self.argv(args), input=input, capture_output=True,
                             text=True, timeout=timeout, cwd=cwd)
        if check and res.returncode != 0:
            raise RuntimeError("[%s] command failed (%d): %s\n%s%s" % (
                self.name, res.returncode, " ".join(args), res.stdout,
                res.stderr))
        return res

    def popen(self, args, log_path, cwd=None, name=None, env=None):
        """Start a background process in this namespace; stdout+stderr go to
        log_path. The Lab records it and stops it at teardown."""
        logf = open(log_path, "ab")
        p = subprocess.Popen(self.argv(args), stdout=logf,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=cwd, start_new_session=True, env=env)
        logf.close()
        proc = Proc(self.lab, self, args, p, log_path,
                    name or os.path.basename(args[0]))
        self.lab.procs.append(proc)
        return proc

    def ip(self, *args, check=True):
        return _sh(["ip", "-n", self.ns] + list(args), check=check)

    def sysctl(self, key, value):
        # /proc/sys/net is per namespace; write it from inside.
        self.run(["sysctl", "-q", "-w", "%s=%s" % (key, value)])

    def nft(self, ruleset):
        """Load an nftables ruleset (text, as for `nft -f`) in this node."""
        self.run(["nft", "-f", "-"], input=ruleset)

    def nft_flush(self):
        self.run(["nft", "flush", "ruleset"])

    def route(self, dst, via):
        self.ip("route", "replace", dst, "via", via)

    def addr(self, ifname="eth0"):
        """The IPv4 address (without prefix length) of an interface."""
        return self.ifaces[ifname].split("/")[0]

    def link_set(self, ifname, up):
        """Take an interface up or down (to simulate a broken link)."""
        self.ip("link", "set", ifname, "up" if up else "down")

    def __repr__(self):
        return "<%s %s>" % (self.kind, self.ns)


class Lab:
    """Owns namespaces and processes; close() removes all of them."""

    def __init__(self, workdir, tag=""):
        self.prefix = "%s%d-%s" % (PREFIX_FAMILY, os.getpid(), tag)
        self.workdir = workdir
        self.nodes = {}
        self.procs = []
        self.closed = False
        _live_labs.append(self)

    # -- building ---------------------------------------------------------
    def _add_ns(self, name, kind, sysctls=None):
        if name in self.nodes:
            raise ValueError("node %s exists" % name)
        node = Node(self, name, kind)
        _sh(["ip", "netns", "add", node.ns])
        self.nodes[name] = node
        node.ip("link", "set", "lo", "up")
        # No IPv6 chatter (RS, MLD) in captures; TEST-NET is IPv4 only.
        node.sysctl("net.ipv6.conf.all.disable_ipv6", 1)
        node.sysctl("net.ipv6.conf.default.disable_ipv6", 1)
        for k, v in (sysctls or {}).items():
            node.sysctl(k, v)
        return node

    def add_switch(self, name):
        """A layer-2 segment: a namespace with bridge br0."""
        sw = self._add_ns(name, "switch")
        sw.ip("link", "add", "br0", "type", "bridge")
        sw.ip("link", "set", "br0", "type", "bridge", "stp_state", "0")
        sw.ip("link", "set", "br0", "up")
        return sw

    def add_host(self, name, sysctls=None):
        return self._add_ns(name, "host", sysctls)

    def add_router(self, name, sysctls=None, nft=None):
        sc = {"net.ipv4.ip_forward": 1}
        sc.update(sysctls or {})
        r = self._add_ns(name, "router", sc)
        if nft:
            r.nft(nft)
        return r

    def connect(self, node, switch, ifname, cidr, gateway=None):
        """Plug node into switch: veth node:ifname <-> switch:pN on br0."""
        switch._port_seq += 1
        port = "p%d" % switch._port_seq
        node.ip("link", "add", ifname, "type", "veth", "peer", "name", port,
                "netns", switch.ns)
        switch.ip("link", "set", port, "master", "br0")
        switch.ip("link", "set", port, "up")
        node.ip("addr", "add", cidr, "dev", ifname)
        node.ip("link", "set", ifname, "up")
        node.ifaces[ifname] = cidr
        if gateway:
            node.ip("route", "replace", "default", "via", gateway)
        return port

    # -- teardown ---------------------------------------------------------
    def close(self):
        if self.closed:
            return
        self.closed = True
        for proc in reversed(self.procs):
            try:
                proc.stop(grace=2.0)
            except Exception:
                pass
        for node in list(self.nodes.values()):
            _kill_ns_pids(node.ns)
            _sh(["ip", "netns", "del", node.ns], check=False)
        self.nodes.clear()
        if self in _live_labs:
            _live_labs.remove(self)

    def __getitem__(self, name):
        return self.nodes[name]


def module_topology(workdir, build, tag=""):
    """The body of a test module's own topo fixture:

        yield from labnet.module_topology(str(tmp_path_factory.mktemp(..)),
                                          lambda lab: topology.build(..))

    A Lab in workdir, built by build(lab), whose result is yielded; the
    lab is closed after the module, or at once when build fails (no
    half-built namespaces left to the next module)."""
    lab = Lab(workdir, tag=tag)
    try:
        built = build(lab)
    except Exception:
        lab.close()
        raise
    yield built
    lab.close()


def close_all():
    for lab in list(_live_labs):
        try:
            lab.close()
        except Exception:
            pass


atexit.register(close_all)


_alias_dir = None


def _private_dir():
    """/tmp/phl<pid>-bin: this run's tool aliases and snapshots."""
    global _alias_dir
    if _alias_dir is None:
        _alias_dir = "/tmp/%s%d-bin" % (PREFIX_FAMILY, os.getpid())
        os.makedirs(_alias_dir, exist_ok=True)
        atexit.register(_remove_alias_dir)
    return _alias_dir


def alias(binary, name):
    """A symlink `name` -> binary in a private folder, to run tools under a
    lab-only process name: other people's `pkill sipp` / `killall pinhole`
    on a shared machine then leave the lab's processes alone."""
    path = os.path.join(_private_dir(), name)
    if os.path.islink(path) and os.readlink(path) == binary:
        return path
    tmp = path + ".new"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(binary, tmp)
    os.replace(tmp, path)
    return path


def snapshot(binary, name):
    """A private copy of binary named `name` (once per run): the whole run
    tests one build even if someone rebuilds or cleans build/ meanwhile.
    Returns None if binary does not exist (yet)."""
    path = os.path.join(_private_dir(), name)
    if not os.path.exists(path):
        if not os.access(binary, os.X_OK):
            return None
        tmp = path + ".new"
        shutil.copy2(binary, tmp)
        os.replace(tmp, path)
    return path


def _remove_alias_dir():
    if _alias_dir and os.path.isdir(_alias_dir):
        for f in os.listdir(_alias_dir):
            os.unlink(os.path.join(_alias_dir, f))
        os.rmdir(_alias_dir)


def wait_until(fn, timeout=5.0, interval=0.05):
    """Poll fn() until it returns a true value or timeout; returns the value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)

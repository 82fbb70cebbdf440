"""pytest glue for the pinhole lab: topology, daemon and failure reports.

Fixtures
  topo        (module)   the office topology (labnet namespaces), torn down
                         at the end of the module, even on failure
  lab_report  (function) logs to attach when the test fails
  bare_env    (function) LabEnv without pinhole (harness self-tests)
  own_pinhole (function) starts pinholes with a module's config overrides
                         and users (own config + store in the test's tmp
                         dir), stopped at teardown; a daemon that died
                         during the test, or raised an undeclared alarm,
                         makes the teardown fail
  pinhole     (function) own_pinhole() with the defaults: "srv", USERS
  env         (function) LabEnv wired to that pinhole
Processes a test starts are stopped at its teardown (by PID); namespaces at
module teardown; the atexit hook and SIGTERM handler cover interrupted runs;
namespaces left by a dead earlier run are removed at session start.
"""

import fcntl
import os
import signal
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import labenv      # noqa: E402
import labnet      # noqa: E402
import pinhole as pinhole_mod  # noqa: E402
import topology    # noqa: E402

REQUIRED_TOOLS = ["/usr/bin/sipp", "/usr/bin/tcpdump", "/usr/sbin/nft",
                  "/usr/sbin/ip", "/usr/bin/ss"]


def _on_sigterm(signum, frame):
    # Let pytest unwind: fixture finalizers tear the lab down.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise KeyboardInterrupt("SIGTERM")


_LAB_LOCK = "/run/pinhole-lab.lock"
_lock_fd = None


def _take_lab_lock():
    """One lab at a time on this machine: namespace names are fixed, so two
    concurrent runs would tear each other's topology down. Waits."""
    global _lock_fd
    _lock_fd = os.open(_LAB_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(_lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.stderr.write("lab: another lab run holds %s; waiting\n"
                         % _LAB_LOCK)
        fcntl.flock(_lock_fd, fcntl.LOCK_EX)


def pytest_sessionstart(session):
    if os.geteuid() != 0:
        return
    _take_lab_lock()
    removed = labnet.cleanup_stale()
    if removed:
        sys.stderr.write("lab: removed stale namespaces %s\n" % removed)
    signal.signal(signal.SIGTERM, _on_sigterm)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    # after the runner's own teardown of the fixtures (interrupted runs)
    labnet.close_all()


class Report:
    """(label, callable -> text) pairs shown under a failing test."""

    def __init__(self):
        self.items = []

    def add(self, label, fn):
        self.items.append((label, fn))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    report = getattr(item, "_lab_report", None)
    if report is None:
        return
    for label, fn in report.items:
        try:
            text = fn()
        except Exception as e:          # never hide the real failure
            text = "(could not collect: %s)" % e
        if text:
            rep.sections.append(("lab %s: %s" % (rep.when, label), text))


@pytest.fixture(scope="session", autouse=True)
def _lab_preconditions():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces)")
    missing = [t for t in REQUIRED_TOOLS if not os.access(t, os.X_OK)]
    if missing:
        pytest.fail("lab tools missing: %s" % missing)
    yield
    labnet.close_all()


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    yield from labnet.module_topology(str(tmp_path_factory.mktemp("topo")),
                                      topology.build_office)


@pytest.fixture
def lab_report(request):
    report = Report()
    request.node._lab_report = report
    return report


@pytest.fixture
def _test_procs(topo):
    """Stop every process the test started, at its teardown."""
    first = len(topo.lab.procs)
    yield
    started = topo.lab.procs[first:]
    del topo.lab.procs[first:]
    for proc in reversed(started):
        proc.stop(grace=2.0)


@pytest.fixture
def workdir(tmp_path):
    # the test's own folder: SIPp runs here (lab-tone.wav), traces, pcaps,
    # pinhole config/store/logs
    return str(tmp_path)


@pytest.fixture
def bare_env(topo, workdir, lab_report, _test_procs):
    return labenv.LabEnv(topo, workdir, lab_report)


@pytest.fixture
def own_pinhole(topo, workdir, lab_report, _test_procs):
    """own_pinhole(overrides=None, users=None, node="srv") -> a running
    pinhole in node: config (DEFAULTS with overrides) and store in the
    test's folder, users ({name: password}, labenv.USERS by default)
    provisioned, its config and logs in the failure report. Every daemon
    started is stopped at teardown; one that died during the test, or
    raised an alarm the test does not declare, fails the test
    (Pinhole.stop_after_test)."""
    started = []

    def start(overrides=None, users=None, node="srv"):
        ph = pinhole_mod.Pinhole(topo[node], workdir, overrides=overrides)
        lab_report.add("pinhole", ph.report)
        if users is None:
            users = labenv.USERS
        for user, password in users.items():
            ph.user_add(user, password)
        ph.start()
        started.append(ph)
        return ph
    yield start
    failures = [f for f in (ph.stop_after_test(topo.lab.closed)
                            for ph in started) if f]
    if failures:
        pytest.fail("; ".join(failures))


@pytest.fixture
def pinhole(own_pinhole):
    return own_pinhole()


@pytest.fixture(autouse=True)
def _expected_alarms(request):
    """@pytest.mark.alarms("code", ...): the alarms a test provokes. Every
    daemon stopped at a test's teardown is checked: any other alarm fails
    the test (no false alarms in the whole lab run)."""
    m = request.node.get_closest_marker("alarms")
    pinhole_mod.EXPECTED_ALARMS.clear()
    pinhole_mod.EXPECTED_ALARMS.update(m.args if m else ())
    yield


@pytest.fixture
def env(topo, workdir, lab_report, pinhole):
    return labenv.LabEnv(topo, workdir, lab_report, pinhole=pinhole)


def pytest_addoption(parser):
    parser.addini("lab_test_timeout", "seconds a lab test's setup or call "
                  "may take before it is failed", default="120")


class LabTestTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise LabTestTimeout("lab test exceeded lab_test_timeout")


def _guarded(item):
    """Bound setup and call of a test with SIGALRM (no pytest-timeout in
    Debian's pytest); teardown is left alone so cleanup always finishes."""
    m = item.get_closest_marker("lab_timeout")
    seconds = int(m.args[0]) if m else int(item.config.getini(
        "lab_test_timeout"))
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(seconds)
    return old


def _unguard(old):
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    old = _guarded(item)
    try:
        yield
    finally:
        _unguard(old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    old = _guarded(item)
    try:
        yield
    finally:
        _unguard(old)


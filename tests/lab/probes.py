"""UDP reachability probes between lab nodes (the lab has no ping)."""

import os

import labnet

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = os.path.join(HERE, "tools", "udpprobe.py")
PY = "/usr/bin/python3"


def echo_server(node, port, seconds=5.0):
    """Start a UDP echo on node:port for `seconds`; returns its Proc."""
    log = os.path.join(node.lab.workdir, "echo-%s-%d-%d.log" % (
        node.name, port, len(node.lab.procs)))
    open(log, "w").close()
    proc = node.popen([PY, PROBE, "echo", str(port), str(seconds)], log,
                      name="udpecho")
    if not labnet.wait_until(lambda: "ready" in open(log).read(), 3):
        proc.stop(grace=1)
        raise RuntimeError("echo server did not start in %s: %s" % (
            node.name, open(log).read()))
    return proc


def send(node, dst_ip, port, sport=0, payload=None, timeout=1.5):
    """One probe from node (from sport) to dst_ip:port.
    Returns (answered, "ip:port" the echoer saw, or the failure text)."""
    args = [PY, PROBE, "send", dst_ip, str(port), str(timeout), str(sport)]
    if payload is not None:
        args.append(payload)
    r = node.run(args, check=False, timeout=timeout + 10)
    return r.returncode == 0, r.stdout.strip()


def probe(topo, src, dst_ip, dst_node, port=9999, sport=0):
    """Echo served by dst_node, probe sent from src."""
    echo = echo_server(topo[dst_node], port)
    try:
        return send(topo[src], dst_ip, port, sport)
    finally:
        echo.stop(grace=1)

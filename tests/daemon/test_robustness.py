"""Bad input against the running daemon, on loopback: every RFC 4475/5118
torture message over UDP and TCP gets the answer its MANIFEST asks for (or
none where none can be built), random garbage never kills the daemon, and
the daemon keeps answering afterwards."""
import csv
import os
import random
import socket
import time

import pytest

from conftest import ROOT

TORTURE = os.environ.get("TORTURE_DIR",
                         os.path.join(ROOT, "..", "shared", "testdata", "sip-torture"))

# Per-file answers beyond "valid -> not 400 / invalid -> 400" (RFC 4475 text).
EXPECT = {
    "3.1.2.16-badvers.sip": {505},
    "3.3.2-unkscm.sip": {416},
    "3.3.3-novelsc.sip": {416},
    "3.3.5-bext01.sip": {420},
    "3.3.11-zeromf.sip": {483},
    "3.3.7-regaut01.sip": {401},
    # 3.2.1: "must not break": any answer, including 400
    "3.2.1-badbranch.sip": None,
}
# Messages that lack what a response needs (RFC 3261 8.2.6 cannot apply).
NO_REPLY_OK = {"3.3.1-insuf.sip", "3.1.2.1-badinv01.sip"}  # no usable Via / Call-ID


def manifest():
    rows = []
    with open(os.path.join(TORTURE, "MANIFEST.tsv")) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            rows.append(row)
    return rows


def exchange_udp(port, data, wait=0.6):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(wait)
    s.sendto(data, ("127.0.0.1", port))
    out = []
    end = time.time() + wait
    while time.time() < end:
        try:
            d, _ = s.recvfrom(65535)
            out.append(d)
        except socket.timeout:
            break
    s.close()
    return out


def status_of(resp):
    try:
        return int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


@pytest.mark.parametrize("row", manifest(), ids=lambda r: r["file"])
def test_torture_udp(daemon, row):
    data = open(os.path.join(TORTURE, row["file"]), "rb").read()
    is_response = data.startswith(b"SIP/2.0 ")
    answers = [status_of(r) for r in exchange_udp(daemon.port, data)]
    final = [a for a in answers if a and a >= 200]
    assert daemon.alive()
    if is_response:
        # We never answer responses; a stray one must not be forwarded to
        # the Via it names (we would be a reflector). Nothing comes back.
        assert answers == [], answers
        return
    name = row["file"]
    if name in EXPECT:
        if EXPECT[name] is not None:
            assert final and final[0] in EXPECT[name], (name, answers)
        return
    if row["expectation"] == "invalid-should-reject":
        if name in NO_REPLY_OK and not final:
            return
        assert final and final[0] == 400, (name, answers)
    else:
        assert final, (name, "no answer")
        assert final[0] not in (400, 505), (name, answers)
    assert daemon.options_ok()


def test_torture_tcp_stream(daemon):
    """All torture requests back to back on one TCP connection: the
    daemon frames what it can, drops the connection on what it cannot
    frame, and stays up; a fresh connection works afterwards."""
    for row in manifest():
        data = open(os.path.join(TORTURE, row["file"]), "rb").read()
        c = socket.create_connection(("127.0.0.1", daemon.port), timeout=2)
        c.settimeout(0.3)
        try:
            c.sendall(data)
            try:
                c.recv(65535)
            except (socket.timeout, ConnectionResetError):
                pass
        finally:
            c.close()
    assert daemon.alive()
    assert daemon.options_ok()


def test_garbage_does_not_crash(daemon):
    """Bounded random input over UDP and TCP, then mutated real messages."""
    rnd = random.Random(4475)
    seed = open(os.path.join(TORTURE, "3.1.1.1-wsinv.sip"), "rb").read()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(3000):
        if i % 2:
            blob = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 1500)))
        else:
            b = bytearray(seed)
            for _ in range(rnd.randint(1, 20)):
                b[rnd.randrange(len(b))] = rnd.getrandbits(8)
            blob = bytes(b)
        s.sendto(blob, ("127.0.0.1", daemon.port))
        if i % 500 == 0:
            time.sleep(0.05)
    s.close()
    for _ in range(30):
        c = socket.create_connection(("127.0.0.1", daemon.port), timeout=2)
        c.sendall(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 5000))))
        c.close()
    time.sleep(0.3)
    assert daemon.alive()
    assert daemon.options_ok()


def test_tcp_partial_and_pipelined(daemon):
    """One OPTIONS split in tiny pieces, then two pipelined in one write:
    three 200 answers on the same connection."""
    def options(n):
        return (f"OPTIONS sip:127.0.0.1:{daemon.port} SIP/2.0\r\n"
                f"Via: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKtcp{n}{time.time_ns()}\r\n"
                "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n"
                f"Call-ID: tcp{n}-{time.time_ns()}\r\nCSeq: 1 OPTIONS\r\n"
                "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()
    c = socket.create_connection(("127.0.0.1", daemon.port), timeout=3)
    one = options(1)
    for i in range(0, len(one), 7):
        c.sendall(one[i:i + 7])
        time.sleep(0.002)
    c.sendall(options(2) + b"\r\n\r\n" + options(3))
    got = b""
    end = time.time() + 3
    while got.count(b"SIP/2.0 200") < 3 and time.time() < end:
        try:
            got += c.recv(65535)
        except socket.timeout:
            break
    c.close()
    assert got.count(b"SIP/2.0 200") == 3, got[:2000]


def test_max_forwards_and_loop(daemon):
    """A request whose Via already carries our branch for the same request
    is a loop (482); Max-Forwards 0 to a user is 483."""
    base = ("MESSAGE sip:nobody@example.com SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKmf{n};rport\r\n"
            "From: <sip:x@elsewhere.example>;tag=9\r\nTo: <sip:nobody@example.com>\r\n"
            "Call-ID: mf{n}\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: {mf}\r\n"
            "Content-Length: 0\r\n\r\n")
    r = exchange_udp(daemon.port, base.format(n=1, mf=0).encode())
    assert r and status_of(r[0]) == 483, r
    r = exchange_udp(daemon.port, base.format(n=2, mf=70).encode())
    assert r and status_of(r[-1]) == 404, r

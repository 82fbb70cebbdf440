#!/usr/bin/python3
"""A scripted SIP peer that checks the lab's SIPp scenarios on their own
(harness self-test, no pinhole): it challenges like a registrar/proxy and
answers like a Record-Routing proxy + callee in one.

  fake_authpeer.py register USER PASSWORD   expect REGISTER, 401, REGISTER
                                            with a valid Authorization, 200
  fake_authpeer.py invite USER PASSWORD     expect INVITE, 407, ACK (same
                                            branch), INVITE with a valid
                                            Proxy-Authorization; 180, 200
                                            with Record-Route; then ACK and
                                            BYE must carry the Route and
                                            target the Contact
Listens on UDP 5060 for 15 s at most; prints "OK" and exits 0 on success,
else prints what was wrong and exits 1.
"""
import hashlib
import re
import socket
import sys

REALM = "example.com"
NONCE = "labnonce0123"


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def hdr(msg, name):
    m = re.search(r"^%s:\s*(.*?)\r?$" % re.escape(name), msg, re.M | re.I)
    return m.group(1) if m else None


def check_digest(msg, header, method, user, password):
    value = hdr(msg, header)
    if not value:
        return "no %s header" % header
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', value))
    ruri = msg.split(" ")[1]
    if params.get("uri") != ruri:
        return "digest uri %r is not the Request-URI %r" % (
            params.get("uri"), ruri)
    ha1 = md5("%s:%s:%s" % (user, REALM, password))
    ha2 = md5("%s:%s" % (method, params.get("uri", "")))
    if params.get("qop"):
        want = md5("%s:%s:%s:%s:%s:%s" % (ha1, NONCE, params.get("nc"),
                                          params.get("cnonce"),
                                          params["qop"], ha2))
    else:
        want = md5("%s:%s:%s" % (ha1, NONCE, ha2))
    if params.get("username") != user or params.get("response") != want:
        return "bad digest in %s: %s" % (header, value)
    return None


def reply(sock, peer, req, code, reason, extra="", body="", to_tag="fk1"):
    to = hdr(req, "To")
    if "tag=" not in to:
        to += ";tag=" + to_tag
    lines = ["SIP/2.0 %d %s" % (code, reason)]
    for v in re.findall(r"^Via:\s*(.*?)\r?$", req, re.M | re.I):
        lines.append("Via: " + v)
    lines += ["From: " + hdr(req, "From"), "To: " + to,
              "Call-ID: " + hdr(req, "Call-ID"), "CSeq: " + hdr(req, "CSeq")]
    if extra:
        lines.append(extra)
    lines.append("Content-Length: %d" % len(body))
    sock.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), peer)


def recv_request(sock, method):
    while True:
        data, peer = sock.recvfrom(65535)
        msg = data.decode(errors="replace")
        if msg.startswith("SIP/2.0"):
            continue
        if msg.split(" ", 1)[0] == method:
            return msg, peer
        # retransmission of an earlier request: ignore


def branch(msg):
    m = re.search(r"branch=([^;,\s]+)", hdr(msg, "Via") or "")
    return m.group(1) if m else None


def run(mode, user, password):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 5060))
    s.settimeout(15)
    print("ready", flush=True)
    if mode == "register":
        req, peer = recv_request(s, "REGISTER")
        reply(s, peer, req, 401, "Unauthorized",
              'WWW-Authenticate: Digest realm="%s", nonce="%s", '
              'algorithm=MD5' % (REALM, NONCE))
        req, peer = recv_request(s, "REGISTER")
        err = check_digest(req, "Authorization", "REGISTER", user, password)
        if err:
            return err
        reply(s, peer, req, 200, "OK", "Contact: " + hdr(req, "Contact") +
              ";expires=60")
        return None
    me = s.getsockname()
    req, peer = recv_request(s, "INVITE")
    b1 = branch(req)
    reply(s, peer, req, 407, "Proxy Authentication Required",
          'Proxy-Authenticate: Digest realm="%s", nonce="%s", algorithm=MD5'
          % (REALM, NONCE))
    ack, _ = recv_request(s, "ACK")
    if branch(ack) != b1:
        return "ACK for 407 has branch %s, INVITE had %s" % (branch(ack), b1)
    req, peer = recv_request(s, "INVITE")
    err = check_digest(req, "Proxy-Authorization", "INVITE", user, password)
    if err:
        return err
    ip = sys.argv[4] if len(sys.argv) > 4 else "127.0.0.1"
    rr = "Record-Route: <sip:%s:5060;lr>" % ip
    contact = "Contact: <sip:callee@%s:5060;transport=UDP>" % ip
    sdp = ("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
           "m=audio 6000 RTP/AVP 0\r\n" % (ip, ip))
    reply(s, peer, req, 180, "Ringing", rr + "\r\n" + contact)
    reply(s, peer, req, 200, "OK", rr + "\r\n" + contact +
          "\r\nContent-Type: application/sdp", sdp)
    for method in ("ACK", "BYE"):
        msg, peer = recv_request(s, method)
        route = hdr(msg, "Route")
        if route != "<sip:%s:5060;lr>" % ip:
            return "%s without the Record-Route as Route: %r" % (method, route)
        ruri = msg.split(" ")[1]
        if ruri != "sip:callee@%s:5060;transport=UDP" % ip:
            return "%s Request-URI %s is not the Contact" % (method, ruri)
    reply(s, peer, msg, 200, "OK")
    return None


if __name__ == "__main__":
    try:
        problem = run(sys.argv[1], sys.argv[2], sys.argv[3])
    except socket.timeout:
        problem = "timed out waiting for a request"
    print(problem or "OK")
    sys.exit(1 if problem else 0)

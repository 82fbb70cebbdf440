"""A tiny SIP user agent for daemon tests: builds requests, answers digest
challenges (MD5 or SHA-256), sends over UDP or TCP on loopback, and parses
responses. Just enough to drive the registrar and proxy precisely."""
import hashlib
import re
import socket
import time
import uuid


def parse(data):
    """Return (first_line, headers as list of (name, value), body)."""
    text = data.decode("utf-8", "replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    hdrs = []
    for line in lines[1:]:
        if ":" in line:
            n, v = line.split(":", 1)
            hdrs.append((n.strip(), v.strip()))
    return lines[0], hdrs, body


class Msg:
    def __init__(self, data):
        self.raw = data
        self.first, self.headers, self.body = parse(data)
        parts = self.first.split(" ", 2)
        self.is_response = parts[0] == "SIP/2.0"
        self.status = int(parts[1]) if self.is_response else None
        self.method = None if self.is_response else parts[0]

    def all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def get(self, name):
        v = self.all(name)
        return v[0] if v else None

    def __repr__(self):
        return self.first


def digest(challenge, method, uri, user, password):
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    alg = params.get("algorithm", "MD5")
    h = (lambda s: hashlib.sha256(s.encode()).hexdigest()) if alg == "SHA-256" \
        else (lambda s: hashlib.md5(s.encode()).hexdigest())
    ha1 = h(f"{user}:{params['realm']}:{password}")
    ha2 = h(f"{method}:{uri}")
    cnonce = uuid.uuid4().hex[:8]
    nc = "00000001"
    if "qop" in params:
        resp = h(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{ha2}")
        return (f'Digest username="{user}", realm="{params["realm"]}", '
                f'nonce="{params["nonce"]}", uri="{uri}", response="{resp}", '
                f'algorithm={alg}, qop=auth, nc={nc}, cnonce="{cnonce}"')
    resp = h(f"{ha1}:{params['nonce']}:{ha2}")
    return (f'Digest username="{user}", realm="{params["realm"]}", '
            f'nonce="{params["nonce"]}", uri="{uri}", response="{resp}", '
            f'algorithm={alg}')


class UA:
    def __init__(self, server_port, user, password="password1", transport="udp",
                 domain="example.com"):
        self.server = ("127.0.0.1", server_port)
        self.user, self.password, self.domain = user, password, domain
        self.transport = transport
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
        else:
            self.sock = socket.create_connection(self.server, timeout=3)
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(2)
        self.call_id = uuid.uuid4().hex
        self.cseq = 0
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        if self.transport == "udp":
            self.sock.sendto(data, self.server)
        else:
            self.sock.sendall(data)

    def recv(self, timeout=2):
        self.sock.settimeout(timeout)
        if self.transport == "udp":
            data, _ = self.sock.recvfrom(65535)
            return Msg(data)
        end = time.time() + timeout
        while True:
            m = re.search(rb"\r\n\r\n", self.buf)
            if m:
                head = self.buf[:m.end()]
                cl = re.search(rb"(?i)\r\n(?:content-length|l)\s*:\s*(\d+)", head)
                n = m.end() + (int(cl.group(1)) if cl else 0)
                if len(self.buf) >= n:
                    data, self.buf = self.buf[:n], self.buf[n:]
                    return Msg(data)
            left = end - time.time()
            if left <= 0:
                raise socket.timeout()
            self.sock.settimeout(left)
            chunk = self.sock.recv(65535)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def request(self, method, ruri, headers="", body="", to=None, cseq=None,
                call_id=None, branch=None):
        self.cseq = cseq if cseq is not None else self.cseq + 1
        to = to or f"<{ruri}>"
        branch = branch or "z9hG4bK" + uuid.uuid4().hex[:16]
        tp = self.transport.upper()
        return (f"{method} {ruri} SIP/2.0\r\n"
                f"Via: SIP/2.0/{tp} 127.0.0.1:{self.port};branch={branch};rport\r\n"
                f"From: <sip:{self.user}@{self.domain}>;tag={self.user}tag\r\n"
                f"To: {to}\r\n"
                f"Call-ID: {call_id or self.call_id}\r\n"
                f"CSeq: {self.cseq} {method}\r\n"
                f"Max-Forwards: 70\r\n{headers}"
                f"Content-Length: {len(body)}\r\n\r\n{body}")

    def transact(self, method, ruri, headers="", body="", auth=True, **kw):
        """Send, skip provisionals, answer one 401/407 when auth, return the
        final response."""
        self.send(self.request(method, ruri, headers, body, **kw))
        r = self.final()
        if auth and r.status in (401, 407):
            ch = r.get("WWW-Authenticate" if r.status == 401 else "Proxy-Authenticate")
            cred = digest(ch, method, ruri, self.user, self.password)
            hname = "Authorization" if r.status == 401 else "Proxy-Authorization"
            kw.pop("cseq", None)
            self.send(self.request(method, ruri, headers + f"{hname}: {cred}\r\n",
                                   body, **kw))
            r = self.final()
        return r

    def final(self, timeout=3):
        end = time.time() + timeout
        while True:
            r = self.recv(max(0.1, end - time.time()))
            if r.is_response and r.status >= 200:
                return r

    def register(self, contact=None, expires=300, extra=""):
        contact = contact or f"<sip:{self.user}@127.0.0.1:{self.port}" + \
            (";transport=tcp>" if self.transport == "tcp" else ">")
        return self.transact("REGISTER", f"sip:{self.domain}",
                             f"Contact: {contact}\r\nExpires: {expires}\r\n{extra}",
                             to=f"<sip:{self.user}@{self.domain}>")


def sdp_body(ip, port, extra=""):
    """A one-stream PCMU offer/answer."""
    return (f"v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n{extra}")


def recv_request(ua, method, timeout=3):
    """The next request of this method arriving at ua (others skipped)."""
    end = time.time() + timeout
    while True:
        m = ua.recv(max(0.1, end - time.time()))
        if not m.is_response and m.method == method:
            return m


def ack_non2xx(ua, resp, ruri):
    """The ACK for a non-2xx final: same Via (branch) as the INVITE."""
    ua.send(f"ACK {ruri} SIP/2.0\r\nVia: {resp.get('Via')}\r\nFrom: {resp.get('From')}\r\n"
            f"To: {resp.get('To')}\r\nCall-ID: {resp.get('Call-ID')}\r\n"
            f"CSeq: {ua.cseq} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
